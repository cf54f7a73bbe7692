/**
 * @module aws/clients
 * Builds and reuses the AWS SDK v3 clients. One keep-alive HTTP agent is shared by every client
 * (sockets, TLS sessions), the SDK modules are imported on first use (idle memory and start-up CPU),
 * and there is one client per service and region, whoever the caller: each call carries its own
 * credentials (see `fromCall`), so memory does not grow with the number of pods or identities.
 * Endpoints come from the SDK's own environment handling: AWS_ENDPOINT_URL, AWS_ENDPOINT_URL_<SERVICE>,
 * AWS_USE_FIPS_ENDPOINT (docs/behaviour.md, "Flags"). Every attempt is bounded in time and in answer size
 * (aws/bounded-http.ts): an upstream that trickles or floods fails one call, not the node's provider.
 */
import type { Agent as HttpAgent } from 'node:http';
import type { Agent as HttpsAgent } from 'node:https';
import { http, https } from '../node-http.js';
import type { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import type { SSMClient } from '@aws-sdk/client-ssm';
import type { STSClient } from '@aws-sdk/client-sts';
import type { NodeHttpHandler } from '@smithy/node-http-handler';
import { setBounded } from '../bounded-map.js';
import { BoundedHttpHandler } from './bounded-http.js';
import { callContext, type AwsCredentials } from './call-context.js';

export type { AwsCredentials } from './call-context.js';

/**
 * Most bytes of one AWS answer: 1 MiB. The largest real ones are far below it: one Secrets Manager
 * value is at most 64 KiB (~87 KiB of base64 as SecretBinary; ~400 KiB as a SecretString of
 * control characters, each a 6-byte JSON escape), ten SSM parameters of 8 KiB at most ~500 KiB
 * the same way, STS credentials a few KiB. A larger answer is not from AWS (a proxy, a misdirected
 * endpoint). Every byte of a refused answer was still read and allocated, so the limit is kept
 * near the real largest: a flood costs 1 MiB per call, not more.
 */
export const MAX_ANSWER_BYTES = 1024 * 1024;

/**
 * Most bytes of a BatchGetSecretValue answer: 4 MiB. Twenty secrets of 64 KiB are ~1.8 MiB as
 * base64, ~2.6 MiB as strings of quotes (2-byte escapes); a batch past it (twenty values of control
 * characters) is refused and its secrets are read one by one, each well under MAX_ANSWER_BYTES.
 */
export const MAX_BATCH_ANSWER_BYTES = 4 * 1024 * 1024;

/**
 * Most bytes of all AWS answers being read at once: 16 MiB, four of the largest batches together.
 * Real answers are a few KiB each (a warm poll of hundreds of pods stays far below); a proxy
 * flooding every call is stopped here instead of at 1 MiB times every call in flight (the shared
 * agents allow 50 sockets per endpoint).
 */
export const MAX_ANSWER_BYTES_IN_FLIGHT = 16 * 1024 * 1024;

export interface AwsClientOptions {
  /** User agent app id (`<name>-<version>`). */
  appId: string;
  /** Attempts per call, the SDK's standard retry (default 3, as ASCP). */
  maxAttempts?: number;
  /**
   * Most time one attempt takes, its whole answer included, in ms (default 10 s): a call that never
   * answers, or answers a byte at a time, must not hold a mount until its deadline. The SDK retries it.
   */
  requestTimeoutMs?: number;
  /** Most silence on a connection in ms (default 5 s, at most requestTimeoutMs): a stalled socket is given up sooner.
   * */
  idleTimeoutMs?: number;
  /** Most bytes of one answer (default MAX_ANSWER_BYTES). */
  maxAnswerBytes?: number;
  /** Most bytes of a BatchGetSecretValue answer (default MAX_BATCH_ANSWER_BYTES). */
  maxBatchAnswerBytes?: number;
  /** Most bytes of all answers being read at once (default MAX_ANSWER_BYTES_IN_FLIGHT). */
  maxAnswerBytesInFlight?: number;
  /** Agents to use instead of plain keep-alive ones (e.g. through a proxy). */
  agents?: { http: HttpAgent; https: HttpsAgent };
  /** Most clients kept (LRU). */
  maxClients?: number;
}

/** What the factory needs of any SDK client it keeps: `send`, and `destroy` on close. */
interface SdkClient {
  send: unknown;
  destroy(): void;
}

/** The configuration every client gets: region, the call's own credentials, retries, the shared handler. */
export interface SdkClientConfig {
  region: string;
  credentials: typeof fromCall;
  userAgentAppId: string;
  maxAttempts: number;
  cacheMiddleware: boolean;
  requestHandler: BoundedHttpHandler;
}

/** What the pipeline calls on a client: `send`, already bound to one call's credentials. */
export type Sender<C extends { send: unknown }> = Pick<C, 'send'>;

/**
 * The client's credential provider: the credentials of the SDK call running in this async context
 * (call-context.ts). One client per service and region serves every pod, instead of one client
 * (middleware stack, resolved config, signer) per pod token, which cost about 1 MiB per pod on a
 * full node. Marked `memoized` so the SDK uses it as it is: its own
 * memoizing wrapper would keep the first call's credentials, and share one pending resolution
 * between concurrent calls, that is, hand one pod's credentials to another's call. The guard
 * below refuses to send a request signed with anything but the call's own access key, so a
 * future SDK that ignored the mark would fail calls, never cross identities.
 */
const fromCall = Object.assign(
  async (): Promise<{ accessKeyId: string; secretAccessKey: string; sessionToken?: string; expiration?: Date }> => {
    const c = callContext.getStore()?.creds;
    if (!c) throw new Error('no credentials for this AWS call');
    return {
      accessKeyId: c.accessKeyId,
      secretAccessKey: c.secretAccessKey,
      ...(c.sessionToken ? { sessionToken: c.sessionToken } : {}),
      ...(c.expiration ? { expiration: new Date(c.expiration) } : {}),
    };
  },
  { memoized: true },
);

/** SigV4 names the access key in `Authorization: … Credential=<key>/<date>/…`. */
function signedWith(headers: Record<string, string>): string | undefined {
  const auth = headers['authorization'] ?? headers['Authorization'];
  if (auth === undefined) return undefined;
  const m = /Credential=([^/,\s]+)\//.exec(auth);
  return m?.[1] ?? '';
}

interface GuardedStack {
  middlewareStack: {
    add(
      mw: (next: (args: { request: unknown }) => Promise<unknown>) => (args: { request: unknown }) => Promise<unknown>,
      o: { step: 'deserialize'; name: string; priority: 'high' },
    ): void;
  };
}

/**
 * Checked on the signed request, just before it leaves: the access key it carries is the call's
 * own, and an unsigned request (AssumeRoleWithWebIdentity) runs with no call credentials at all.
 */
function guardIdentity(client: GuardedStack): void {
  client.middlewareStack.add(
    (next) => async (args) => {
      const req = args.request as { headers?: Record<string, string> } | undefined;
      const signed = req?.headers ? signedWith(req.headers) : undefined;
      const own = callContext.getStore()?.creds;
      if (signed !== undefined && signed !== own?.accessKeyId) {
        throw new Error("refused to send an AWS request signed with credentials that are not this call's own");
      }
      return next(args);
    },
    { step: 'deserialize', name: 'callIdentityGuard', priority: 'high' },
  );
}

export class AwsClientFactory {
  private readonly opts: Required<Omit<AwsClientOptions, 'agents'>>;
  private readonly agents: { http: HttpAgent; https: HttpsAgent };
  private handler: BoundedHttpHandler | undefined;
  /** One client per service and region, whoever calls (credentials travel with each call). */
  private readonly cache = new Map<string, Promise<SdkClient>>();

  constructor(opts: AwsClientOptions) {
    const requestTimeoutMs = opts.requestTimeoutMs ?? 10_000;
    this.opts = {
      maxAttempts: 3,
      maxClients: 64,
      maxAnswerBytes: MAX_ANSWER_BYTES,
      maxBatchAnswerBytes: MAX_BATCH_ANSWER_BYTES,
      maxAnswerBytesInFlight: MAX_ANSWER_BYTES_IN_FLIGHT,
      ...opts,
      requestTimeoutMs,
      idleTimeoutMs: Math.min(opts.idleTimeoutMs ?? 5_000, requestTimeoutMs),
    };
    this.agents = opts.agents ?? {
      http: new http.Agent({ keepAlive: true, maxSockets: 50 }),
      https: new https.Agent({ keepAlive: true, maxSockets: 50 }),
    };
  }

  private async requestHandler(): Promise<BoundedHttpHandler> {
    if (!this.handler) {
      const { NodeHttpHandler } = await import('@smithy/node-http-handler');
      // No `requestTimeout` here: in this SDK it only prints a warning to stderr unless told to
      // throw, and the bounded handler's whole-attempt limit covers it.
      const inner: NodeHttpHandler = new NodeHttpHandler({
        httpAgent: this.agents.http,
        httpsAgent: this.agents.https,
        socketTimeout: this.opts.idleTimeoutMs,
        connectionTimeout: Math.min(5_000, this.opts.requestTimeoutMs),
      });
      this.handler ??= new BoundedHttpHandler(inner, {
        maxBodyBytes: this.opts.maxAnswerBytes,
        maxBatchBodyBytes: this.opts.maxBatchAnswerBytes,
        maxInFlightBytes: this.opts.maxAnswerBytesInFlight,
        attemptTimeoutMs: this.opts.requestTimeoutMs,
      });
    }
    return this.handler;
  }

  private common(region: string): Omit<SdkClientConfig, 'requestHandler'> {
    // cacheMiddleware: each command's middleware stack is resolved once, not on every call. The SDK
    // does so only for calls without options, which is why the abort signal travels in the call's
    // context (bind) instead of in `send`'s options.
    return {
      region,
      credentials: fromCall,
      userAgentAppId: this.opts.appId,
      maxAttempts: this.opts.maxAttempts,
      cacheMiddleware: true,
    };
  }

  /** The client for (kind, region), built once (concurrent first calls share the build). */
  private client<C extends SdkClient>(kind: string, region: string, build: () => Promise<C>): Promise<C> {
    const key = `${kind}\0${region}`;
    const hit = this.cache.get(key) as Promise<C> | undefined;
    if (hit) {
      // refresh LRU position
      this.cache.delete(key);
      this.cache.set(key, hit);
      return hit;
    }
    const made = build().then((c) => {
      guardIdentity(c as unknown as GuardedStack);
      return c;
    });
    made.catch(() => this.cache.delete(key));
    setBounded(this.cache, key, made, this.opts.maxClients);
    return made;
  }

  /**
   * `send` of `client`, run with `creds` as the call's credentials (or none: an unsigned call). An
   * options argument of only `abortSignal` is moved into the call's context, where the request
   * handler follows it; any other options go to the SDK as given.
   */
  private bind<C extends { send: unknown }>(client: C, creds: AwsCredentials | undefined): Sender<C> {
    const send = client.send as (...args: unknown[]) => Promise<unknown>;
    const bound = (command: unknown, options?: unknown): Promise<unknown> => {
      const o = options as { abortSignal?: AbortSignal } | undefined;
      const onlySignal = o === undefined || (typeof o === 'object' && Object.keys(o).every((k) => k === 'abortSignal'));
      const args = onlySignal ? [command] : [command, options];
      return callContext.run({ creds, signal: onlySignal ? o?.abortSignal : undefined }, () =>
        send.apply(client, args),
      );
    };
    return { send: bound };
  }

  async secretsManager(region: string, creds: AwsCredentials): Promise<Sender<SecretsManagerClient>> {
    const client = await this.client('sm', region, async () => {
      const { SecretsManagerClient } = await import('@aws-sdk/client-secrets-manager');
      return new SecretsManagerClient({ ...this.common(region), requestHandler: await this.requestHandler() });
    });
    return this.bind(client, creds);
  }

  async ssm(region: string, creds: AwsCredentials): Promise<Sender<SSMClient>> {
    const client = await this.client('ssm', region, async () => {
      const { SSMClient } = await import('@aws-sdk/client-ssm');
      return new SSMClient({ ...this.common(region), requestHandler: await this.requestHandler() });
    });
    return this.bind(client, creds);
  }

  /**
   * STS for a region. Without credentials: AssumeRoleWithWebIdentity, which is unsigned. With
   * credentials: AssumeRole (role chaining), signed with the caller's session. One client for both.
   */
  async sts(region: string, creds?: AwsCredentials): Promise<Sender<STSClient>> {
    const client = await this.client('sts', region, async () => {
      const { STSClient } = await import('@aws-sdk/client-sts');
      return new STSClient({ ...this.common(region), requestHandler: await this.requestHandler() });
    });
    return this.bind(client, creds);
  }

  /**
   * A client of a package this module does not import, built and kept like the others (shared
   * handler, the call's own credentials, the identity guard), under its own `kind`: `doctor`'s IAM,
   * EKS and KMS clients (aws/iam.ts, aws/eks.ts, aws/kms.ts), whose packages the server never loads.
   */
  async sdkClient<C extends SdkClient>(
    kind: string,
    region: string,
    creds: AwsCredentials,
    build: (config: SdkClientConfig) => Promise<C>,
  ): Promise<Sender<C>> {
    const client = await this.client(kind, region, async () =>
      build({ ...this.common(region), requestHandler: await this.requestHandler() }),
    );
    return this.bind(client, creds);
  }

  /** Bytes of AWS answers being read now (a figure for tests: back to 0 once calls end). */
  get answerBytesInFlight(): number {
    return this.handler?.inFlightBytes ?? 0;
  }

  /** Clients built so far (a figure for tests and the benchmark: it must not grow with pods). */
  get size(): number {
    return this.cache.size;
  }

  /** Destroys idle sockets (shutdown, tests). */
  close(): void {
    for (const c of this.cache.values())
      void c.then(
        (client) => client.destroy(),
        () => {},
      );
    this.cache.clear();
    this.agents.http.destroy();
    this.agents.https.destroy();
  }
}
