/**
 * @module emulator/emulator
 * One loopback HTTP server playing Secrets Manager, SSM, STS, IAM's and KMS's reads (SigV4-verified,
 * per-region data), EKS's Pod Identity association reads, the Kubernetes GETs the provider and
 * `doctor` make (service accounts, pods, nodes, CSIDriver objects, the issuer discovery document),
 * and the EKS Pod Identity agent; plus fault injection, added latency and a call log.
 * `startEmulator()` is the programmatic entry point.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { Logger } from '../../src/observability/index.js';
import { FaultTable, faultError, replacesBody, type Fault, type ServiceName } from './faults.js';
import { buildClaims, decodeJwt, signJwt, uidFor, verifyJwt, type IssueTokenInput, type VerifyResult } from './jwt.js';
import { handleSecretsManager, smNames } from './secrets-manager.js';
import { parseAuthorization, signatureMatches } from './sigv4.js';
import { handleSsm, ssmNames } from './ssm.js';
import { handleIam, iamErrorXml } from './iam.js';
import { handleKms, kmsNames } from './kms.js';
import {
  DEFAULT_ACCOUNT,
  DEFAULT_ISSUER,
  EmulatorError,
  roleAccount,
  roleName,
  State,
  type ParameterType,
  type PodRecord,
  type RoleSpec,
  type Session,
} from './state.js';
import { handleSts, stsErrorXml } from './sts.js';

export type { Fault, ServiceName } from './faults.js';
export type { IssueTokenInput } from './jwt.js';
export type { RoleAllow, RoleSpec } from './state.js';
export { DEFAULT_ISSUER } from './state.js';

/** Audience of EKS Pod Identity tokens. */
export const POD_IDENTITY_AUDIENCE = 'pods.eks.amazonaws.com';
/** The cluster's name, as EKS's API and the agent's session tags know it. */
export const CLUSTER_NAME = 'emulator';
/** Credentials from the Pod Identity agent last six hours, as EKS gives them. */
const POD_IDENTITY_SECONDS = 6 * 3600;

export interface EmulatorOptions {
  /** Default 0 (any free port). */
  port?: number;
  /** Default `127.0.0.1`. */
  host?: string;
  /** Added to every answer. */
  latencyMs?: number;
  /** The emulator's clock in ms (token and session expiry); default `Date.now`. */
  now?: () => number;
  accountId?: string;
  /** Debug lines about each call (never values or tokens). */
  logger?: Logger;
}

/** One call as the emulator saw it. Holds names, never values or tokens. */
export interface CallRecord {
  service: ServiceName;
  operation: string;
  region: string;
  roleArn?: string;
  sessionName?: string;
  /** Secret ids / parameter names as requested, `ns/name` for Kubernetes objects and the agent. */
  names: string[];
  /** HTTP status answered; 0 for a call left hanging. */
  status: number;
  errorCode?: string;
  at: number;
  userAgent?: string;
}

export type AgentMode = 'ok' | 'refuse' | 'error500' | 'hang' | { failFirst: number };

/** An extra listener serving the Pod Identity agent, that can be made to fail on its own. */
export interface AgentListener {
  /** Full credentials URL, e.g. `http://[::1]:41234/v1/credentials`. */
  readonly url: string;
  /** Requests this listener received (refused connections are not counted). */
  readonly requests: number;
  setMode(mode: AgentMode): Promise<void>;
  close(): Promise<void>;
}

/** Public, secret-free view of a credential session. */
export interface SessionInfo {
  accessKeyId: string;
  roleArn: string;
  sessionName: string;
  expiration: Date;
  tags: Record<string, string>;
  source: Session['source'];
}

export interface IssuedCredentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken: string;
  expiration: Date;
}

/** A customer managed key as a test makes it (addKmsKey). */
export interface KmsKeySpec {
  arn: string;
  aliases?: string[];
  state?: 'Enabled' | 'Disabled' | 'PendingDeletion';
  /** The key policy document; absent: KMS's default (the account's root may do everything). */
  policy?: unknown;
}

export interface Emulator {
  /** `http://127.0.0.1:PORT` */
  readonly url: string;
  /** The Kubernetes bearer token. */
  readonly apiToken: string;
  /** `${url}/v1/credentials` */
  readonly podIdentityUrl: string;
  readonly accountId: string;
  close(): Promise<void>;
  issueToken(input: IssueTokenInput): string;
  addRole(role: RoleSpec): void;
  addPodIdentityAssociation(a: { namespace: string; serviceAccount: string; roleArn: string }): void;
  addServiceAccount(ns: string, name: string, annotations?: Record<string, string>): void;
  /**
   * A pod; `labels`, `ready` (default true), `serviceAccountName` (default "default"), `volumes` and
   * `containers` (spec.containers, default one `app` container) for `doctor`.
   */
  addPod(
    ns: string,
    name: string,
    nodeName: string,
    o?: {
      labels?: Record<string, string>;
      ready?: boolean;
      serviceAccountName?: string;
      volumes?: unknown[];
      containers?: unknown[];
    },
  ): void;
  /** A CSIDriver object; `tokenRequests` as its spec has them (absent: none). */
  addCsiDriver(name: string, o?: { tokenRequests?: { audience: string; expirationSeconds?: number }[] }): void;
  /** Registers an issuer as an IAM OIDC provider (the default issuer is registered); STS trusts only these. */
  addOidcProvider(issuer: string): void;
  /** A SecretProviderClass (secrets-store.csi.x-k8s.io/v1) with this spec. */
  addSecretProviderClass(ns: string, name: string, spec: unknown): void;
  removeOidcProvider(issuer: string): void;
  removePod(ns: string, name: string): void;
  addNode(name: string, labels?: Record<string, string>): void;
  /**
   * Creates the secret, or adds a version to it (rotation). `kmsKeyId`: a customer managed key, its
   * ARN (the key then exists) or an alias of a key made by addKmsKey; reading needs kms:Decrypt on it.
   */
  putSecret(
    region: string,
    name: string,
    value: string | Uint8Array,
    o?: { versionId?: string; stages?: string[]; kmsFails?: boolean; kmsKeyId?: string },
  ): { arn: string; versionId: string };
  deleteSecret(region: string, name: string): void;
  putParameter(
    region: string,
    name: string,
    value: string,
    o?: { type?: ParameterType; labels?: string[]; kmsFails?: boolean; kmsKeyId?: string },
  ): { version: number; arn: string };
  /**
   * A customer managed KMS key (`arn:aws:kms:<region>:<account>:key/<id>`), its aliases (`alias/<name>`), state
   * and key policy (a document; absent: KMS's default, which lets the account's IAM policies decide).
   */
  addKmsKey(key: KmsKeySpec): void;
  deleteParameter(region: string, name: string): void;
  addFault(f: Fault): string;
  removeFault(id: string): void;
  clearFaults(): void;
  setLatency(ms: number): void;
  readonly calls: readonly CallRecord[];
  resetCalls(): void;
  callCount(filter?: Partial<Pick<CallRecord, 'service' | 'operation' | 'region'>>): number;
  writeKubeconfig(path: string): Promise<void>;
  startAgentListener(o: { host: '127.0.0.1' | '::1' }): Promise<AgentListener>;
  /** Credentials for a role without an STS exchange (test setup, e.g. a writer role). */
  issueCredentials(roleArn: string, o?: { durationSeconds?: number; sessionName?: string }): IssuedCredentials;
  /** Sessions handed out so far (secret-free), newest last. */
  sessions(): SessionInfo[];
}

interface Exchange {
  req: IncomingMessage;
  res: ServerResponse;
  body: Buffer;
  path: string;
  /** A fault that shapes the answer on its way out (trickle, wrong-typed fields). */
  shape?: Fault;
}

interface Answer {
  status: number;
  headers: Record<string, string>;
  body: string;
  /** Instead of `body` alone: `body` then padding up to this many bytes, streamed as the client reads. */
  fill?: { bytes: number; chunked: boolean };
  /** The call log's error code for an answer that is not in the service's error shape. */
  recordCode?: string;
}

/** Content type of each service's answers (a raw body keeps the service's, as a broken upstream would). */
const CONTENT_TYPE: Record<ServiceName, string> = {
  secretsmanager: 'application/x-amz-json-1.1',
  ssm: 'application/x-amz-json-1.1',
  sts: 'text/xml',
  iam: 'text/xml',
  eks: 'application/json',
  kms: 'application/x-amz-json-1.1',
  k8s: 'application/json',
  'pod-identity': 'application/json',
};

/** The bytes of an answer, in pieces: a fill is produced 64 KiB at a time from one shared chunk. */
function* piecesOf(a: Answer): Generator<Buffer> {
  const head = Buffer.from(a.fill !== undefined && a.body === '' ? '{"Padding":"' : a.body, 'utf8');
  if (a.fill === undefined) {
    yield head;
    return;
  }
  const tail = a.body === '' ? Buffer.from('"}') : Buffer.alloc(0);
  let left = a.fill.bytes;
  const take = (b: Buffer): Buffer => b.subarray(0, Math.max(0, Math.min(b.length, left)));
  const first = take(head);
  left -= first.length;
  if (first.length > 0) yield first;
  const chunk = Buffer.alloc(64 * 1024, 'A');
  while (left > tail.length) {
    const piece = chunk.subarray(0, Math.min(chunk.length, left - tail.length));
    left -= piece.length;
    yield piece;
  }
  const last = take(tail);
  if (last.length > 0) yield last;
}

/** Merges a fault's fields into a JSON answer (top level and each entry of its list). */
function reshape(body: string, f: Fault): string {
  let obj: unknown;
  try {
    obj = JSON.parse(body);
  } catch {
    return body;
  }
  if (obj === null || typeof obj !== 'object' || Array.isArray(obj)) return body;
  const top = obj as Record<string, unknown>;
  if (f.entryFields !== undefined) {
    for (const list of ['SecretValues', 'Parameters']) {
      const entries = top[list];
      if (Array.isArray(entries))
        top[list] = entries.map((e: unknown) => (e !== null && typeof e === 'object' ? { ...e, ...f.entryFields } : e));
    }
  }
  return JSON.stringify({ ...top, ...f.answerFields });
}

const JSON_TYPE = 'application/x-amz-json-1.1';

function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

function header(req: IncomingMessage, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

function kubeStatus(code: number, reason: string, message: string): Answer {
  return {
    status: code,
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason, code }),
  };
}

function listen(server: Server, port: number, host: string): Promise<AddressInfo> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve(server.address() as AddressInfo);
    });
  });
}

function urlFor(host: string, port: number): string {
  return host.includes(':') ? `http://[${host}]:${port}` : `http://${host}:${port}`;
}

class EmulatorImpl implements Emulator {
  readonly apiToken = randomBytes(24).toString('base64url');
  readonly state: State;
  private readonly jwtKey = randomBytes(32);
  private readonly faults = new FaultTable();
  private readonly log: CallRecord[] = [];
  private readonly sockets = new Set<Socket>();
  private readonly closing = new AbortController();
  private readonly listeners = new Set<AgentListener>();
  private latency: number;
  private server: Server | undefined;
  url = '';

  constructor(private readonly opts: EmulatorOptions) {
    this.state = new State(opts.accountId ?? DEFAULT_ACCOUNT, opts.now ?? Date.now);
    this.latency = opts.latencyMs ?? 0;
  }

  get accountId(): string {
    return this.state.accountId;
  }

  get podIdentityUrl(): string {
    return `${this.url}/v1/credentials`;
  }

  get calls(): readonly CallRecord[] {
    return this.log;
  }

  async start(): Promise<void> {
    const server = this.track(createServer((req, res) => void this.serve(req, res, 'all')));
    const addr = await listen(server, this.opts.port ?? 0, this.opts.host ?? '127.0.0.1');
    this.server = server;
    this.url = urlFor(addr.address, addr.port);
  }

  private track(server: Server): Server {
    server.on('connection', (s: Socket) => {
      this.sockets.add(s);
      s.on('close', () => this.sockets.delete(s));
    });
    return server;
  }

  async close(): Promise<void> {
    this.closing.abort();
    await Promise.all([...this.listeners].map((l) => l.close()));
    const server = this.server;
    if (server === undefined) return;
    this.server = undefined;
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    for (const s of this.sockets) s.destroy();
    await closed;
  }

  /** Waits `ms`, or until the emulator closes or the client goes away. */
  private wait(ms: number | undefined, req: IncomingMessage): Promise<void> {
    return new Promise((resolve) => {
      if (this.closing.signal.aborted) return resolve();
      const done = (): void => {
        if (timer !== undefined) clearTimeout(timer);
        this.closing.signal.removeEventListener('abort', done);
        req.socket.off('close', done);
        resolve();
      };
      const timer = ms === undefined ? undefined : setTimeout(done, ms);
      this.closing.signal.addEventListener('abort', done);
      req.socket.once('close', done);
    });
  }

  private async send(ex: Exchange, a: Answer): Promise<void> {
    if (this.latency > 0) await this.wait(this.latency, ex.req);
    if (ex.res.destroyed || this.closing.signal.aborted) return;
    const shape = ex.shape;
    const reshaped =
      shape !== undefined &&
      a.fill === undefined &&
      a.status < 300 &&
      (shape.answerFields !== undefined || shape.entryFields !== undefined);
    const out: Answer = reshaped ? { ...a, body: reshape(a.body, shape) } : a;
    if (out.fill === undefined && shape?.trickleMs === undefined) {
      ex.res.writeHead(out.status, { ...out.headers, 'content-length': String(Buffer.byteLength(out.body)) });
      ex.res.end(out.body);
      return;
    }
    const length = out.fill === undefined ? Buffer.byteLength(out.body) : out.fill.bytes;
    ex.res.writeHead(
      out.status,
      out.fill?.chunked === true ? out.headers : { ...out.headers, 'content-length': String(length) },
    );
    await this.stream(ex, piecesOf(out), shape?.trickleMs, shape?.burstBytes ?? 0);
  }

  /**
   * Writes the pieces as the client reads them, or (with `trickleMs`) the first `burstBytes` so and
   * then one byte every `trickleMs`, until done or the client goes.
   */
  private async stream(
    ex: Exchange,
    pieces: Iterable<Buffer>,
    trickleMs: number | undefined,
    burstBytes: number,
  ): Promise<void> {
    const gone = (): boolean => ex.res.destroyed || ex.req.socket.destroyed || this.closing.signal.aborted;
    const drained = (): Promise<void> =>
      new Promise((resolve) => {
        const done = (): void => {
          ex.res.off('drain', done);
          ex.res.off('close', done);
          resolve();
        };
        ex.res.once('drain', done);
        ex.res.once('close', done);
      });
    let burst = burstBytes;
    for (const whole of pieces) {
      let piece = whole;
      if (trickleMs === undefined || burst > 0) {
        const now = trickleMs === undefined ? piece : piece.subarray(0, burst);
        burst -= now.length;
        piece = piece.subarray(now.length);
        if (gone()) return;
        if (!ex.res.write(now)) await drained();
        if (piece.length === 0) continue;
      }
      for (let i = 0; i < piece.length; i++) {
        await this.wait(trickleMs, ex.req);
        if (gone()) return;
        ex.res.write(piece.subarray(i, i + 1));
      }
    }
    if (!gone()) ex.res.end();
  }

  private record(r: CallRecord): void {
    this.log.push(r);
    this.opts.logger?.debug('emulator call', {
      service: r.service,
      operation: r.operation,
      region: r.region,
      names: r.names,
      status: r.status,
      errorCode: r.errorCode,
    });
  }

  // ---------------------------------------------------------------- routing

  async serve(req: IncomingMessage, res: ServerResponse, scope: 'all' | 'agent'): Promise<void> {
    try {
      const body = await readBody(req);
      const path = (req.url ?? '/').split('?')[0] ?? '/';
      const ex: Exchange = { req, res, body, path };
      if (path === '/v1/credentials') return await this.podIdentity(ex);
      if (scope === 'agent')
        return await this.send(ex, {
          status: 404,
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ code: 'NotFound', message: 'not found' }),
        });
      if (
        path.startsWith('/api/') ||
        path === '/api' ||
        path.startsWith('/apis/') ||
        path === '/.well-known/openid-configuration'
      )
        return await this.kube(ex);
      const target = header(req, 'x-amz-target');
      if (req.method === 'POST' && target !== undefined) return await this.awsJson(ex, target);
      if (
        req.method === 'POST' &&
        (header(req, 'content-type') ?? '').startsWith('application/x-www-form-urlencoded')
      ) {
        // Both speak the Query protocol; the signature's scope says which service was meant.
        return parseAuthorization(header(req, 'authorization'))?.service === 'iam'
          ? await this.iam(ex)
          : await this.sts(ex);
      }
      if (path.startsWith('/clusters/')) return await this.eks(ex);
      return await this.send(ex, { status: 404, headers: { 'content-type': 'text/plain' }, body: 'not found\n' });
    } catch (err) {
      this.opts.logger?.error('emulator failed to answer', { error: err instanceof Error ? err.message : String(err) });
      if (!res.headersSent && !res.destroyed) {
        res.writeHead(500, { 'content-type': 'text/plain' });
        res.end('emulator error\n');
      }
    }
  }

  /**
   * Applies a matching fault. Returns an answer to send, 'hang' after waiting out a hang, or
   * undefined when the call should proceed (no fault, or a delay only).
   */
  private async fault(
    ex: Exchange,
    service: ServiceName,
    operation: string,
    region: string,
    names: string[],
    render: (status: number, code: string, message: string) => Answer,
  ): Promise<Answer | 'hang' | undefined> {
    const f = this.faults.take({ service, operation, region, names, path: ex.path });
    if (f === undefined) return undefined;
    if (f.delayMs !== undefined) await this.wait(f.delayMs, ex.req);
    if (f.hang === true) {
      this.record({
        service,
        operation,
        region,
        names,
        status: 0,
        errorCode: 'Hang',
        at: this.state.now(),
        ...this.ua(ex),
      });
      await this.wait(undefined, ex.req);
      if (!ex.res.destroyed) ex.res.destroy();
      return 'hang';
    }
    ex.shape = f;
    if (replacesBody(f)) {
      const a: Answer = {
        status: f.status ?? 200,
        headers: { 'content-type': CONTENT_TYPE[service], 'x-amzn-requestid': randomUUID() },
        body: f.rawBody ?? '',
        recordCode: f.bodyBytes === undefined ? 'RawBody' : 'BigBody',
      };
      if (f.bodyBytes !== undefined) a.fill = { bytes: f.bodyBytes, chunked: f.chunked === true };
      return a;
    }
    if (f.status === undefined && f.code === undefined) return undefined;
    const e = faultError(service, f);
    const a = render(e.status, e.code, e.message);
    if (f.retryAfterSeconds !== undefined) a.headers['retry-after'] = String(f.retryAfterSeconds);
    return a;
  }

  private ua(ex: Exchange): { userAgent?: string } {
    const ua = header(ex.req, 'user-agent');
    return ua === undefined ? {} : { userAgent: ua };
  }

  // ---------------------------------------------------------------- SigV4

  /** Finds and checks the caller's session; throws AWS's error for the service family. */
  private authenticate(
    ex: Exchange,
    service: 'secretsmanager' | 'ssm' | 'sts' | 'iam' | 'eks' | 'kms',
  ): { session: Session; region: string } {
    // STS and IAM (Query protocol) share their error words; the JSON services have their own.
    const sts = service === 'sts' || service === 'iam';
    const auth = parseAuthorization(header(ex.req, 'authorization'));
    if (auth === undefined) {
      throw sts
        ? new EmulatorError('MissingAuthenticationToken', 'Request is missing Authentication Token', 403)
        : new EmulatorError('MissingAuthenticationTokenException', 'Missing Authentication Token');
    }
    const badSig = sts
      ? new EmulatorError(
          'SignatureDoesNotMatch',
          'The request signature we calculated does not match the signature you provided. Check your AWS Secret ' +
            'Access Key and signing method. Consult the service documentation for details.',
          403,
        )
      : new EmulatorError(
          'InvalidSignatureException',
          'The request signature we calculated does not match the signature you provided. Check your AWS Secret ' +
            'Access Key and signing method. Consult the service documentation for details.',
        );
    if (auth.service !== service) {
      throw sts
        ? new EmulatorError(
            'SignatureDoesNotMatch',
            `Credential should be scoped to correct service: '${service}'. `,
            403,
          )
        : new EmulatorError(
            'InvalidSignatureException',
            `Credential should be scoped to correct service: '${service}'. `,
          );
    }
    const session = this.state.sessions.get(auth.accessKeyId);
    const token = header(ex.req, 'x-amz-security-token');
    if (session === undefined || token !== session.sessionToken) {
      throw sts
        ? new EmulatorError('InvalidClientTokenId', 'The security token included in the request is invalid.', 403)
        : new EmulatorError('UnrecognizedClientException', 'The security token included in the request is invalid.');
    }
    if (
      !signatureMatches(
        { method: ex.req.method ?? 'GET', url: ex.req.url ?? '/', headers: ex.req.headers, body: ex.body },
        auth,
        session.secretAccessKey,
      )
    )
      throw badSig;
    if (session.expiresAtMs <= this.state.now()) {
      throw sts
        ? new EmulatorError('ExpiredToken', 'The security token included in the request is expired')
        : new EmulatorError('ExpiredTokenException', 'The security token included in the request is expired');
    }
    return { session, region: auth.region };
  }

  // ---------------------------------------------------------------- Secrets Manager, SSM, KMS (JSON 1.1)

  private async awsJson(ex: Exchange, target: string): Promise<void> {
    const dot = target.indexOf('.');
    const prefix = target.slice(0, dot);
    const operation = target.slice(dot + 1);
    const service: 'secretsmanager' | 'ssm' | 'kms' | undefined =
      prefix === 'secretsmanager'
        ? 'secretsmanager'
        : prefix === 'AmazonSSM'
          ? 'ssm'
          : prefix === 'TrentService'
            ? 'kms'
            : undefined;
    const requestId = randomUUID();
    const error = (status: number, code: string, message: string): Answer => ({
      status,
      headers: { 'content-type': JSON_TYPE, 'x-amzn-requestid': requestId, 'x-amzn-errortype': code },
      body: JSON.stringify({ __type: code, message }),
    });
    const region = parseAuthorization(header(ex.req, 'authorization'))?.region ?? 'us-east-1';
    if (service === undefined) {
      return this.send(ex, error(400, 'UnknownOperationException', ''));
    }
    let body: Record<string, unknown>;
    try {
      const parsed = JSON.parse(ex.body.length === 0 ? '{}' : ex.body.toString('utf8')) as unknown;
      if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new Error('not an object');
      body = parsed as Record<string, unknown>;
    } catch {
      this.record({
        service,
        operation,
        region,
        names: [],
        status: 400,
        errorCode: 'SerializationException',
        at: this.state.now(),
        ...this.ua(ex),
      });
      return this.send(ex, error(400, 'SerializationException', 'Start of structure or map found where not expected.'));
    }
    const names =
      service === 'secretsmanager'
        ? smNames(operation, body)
        : service === 'ssm'
          ? ssmNames(operation, body)
          : kmsNames(body);
    return this.awsCall(
      ex,
      { service, operation, region, names },
      error,
      (a) => (JSON.parse(a.body) as { __type: string }).__type,
      (caller) => {
        const auth = this.authenticate(ex, service);
        caller.session = auth.session;
        const out =
          service === 'secretsmanager'
            ? handleSecretsManager(this.state, auth.region, auth.session, operation, body)
            : service === 'ssm'
              ? handleSsm(this.state, auth.region, auth.session, operation, body)
              : handleKms(this.state, auth.region, auth.session, operation, body);
        return {
          status: 200,
          headers: { 'content-type': JSON_TYPE, 'x-amzn-requestid': requestId },
          body: JSON.stringify(out),
        };
      },
    );
  }

  /**
   * What every AWS service's handler shares: a fault set on the call answers first (or hangs it);
   * else the handler's answer, or its EmulatorError in the service's error format (`error`). Each call
   * is recorded with the session that made it, once the handler knows it (`caller.session`).
   */
  private async awsCall(
    ex: Exchange,
    call: { service: ServiceName; operation: string; region: string; names: string[] },
    error: (status: number, code: string, message: string) => Answer,
    faultCode: (a: Answer) => string,
    handle: (caller: { session?: Session }) => Answer,
  ): Promise<void> {
    const base = { ...call, at: this.state.now(), ...this.ua(ex) };
    const faulted = await this.fault(ex, call.service, call.operation, call.region, call.names, error);
    if (faulted === 'hang') return;
    if (faulted !== undefined) {
      this.record({ ...base, status: faulted.status, errorCode: faulted.recordCode ?? faultCode(faulted) });
      return this.send(ex, faulted);
    }
    const caller: { session?: Session } = {};
    const who = (): { roleArn?: string; sessionName?: string } =>
      caller.session === undefined ? {} : { roleArn: caller.session.roleArn, sessionName: caller.session.sessionName };
    try {
      const answer = handle(caller);
      this.record({ ...base, ...who(), status: answer.status });
      return await this.send(ex, answer);
    } catch (err) {
      if (!(err instanceof EmulatorError)) throw err;
      this.record({ ...base, ...who(), status: err.status, errorCode: err.code });
      return await this.send(ex, error(err.status, err.code, err.message));
    }
  }

  // ---------------------------------------------------------------- STS

  private verifyToken = (token: string, audience: string): VerifyResult =>
    verifyJwt(token, this.jwtKey, { audience, issuers: this.state.oidcProviders, nowMs: this.state.now() });

  private async sts(ex: Exchange): Promise<void> {
    const params = new URLSearchParams(ex.body.toString('utf8'));
    const operation = params.get('Action') ?? '';
    const requestId = randomUUID();
    const region = parseAuthorization(header(ex.req, 'authorization'))?.region ?? 'us-east-1';
    const names = [params.get('RoleArn')].filter((x): x is string => x !== null);
    const error = (status: number, code: string, message: string): Answer => ({
      status,
      headers: { 'content-type': 'text/xml', 'x-amzn-requestid': requestId },
      body: stsErrorXml(code, message, requestId, status >= 500 ? 'Receiver' : 'Sender'),
    });
    const stsFault = (a: Answer): string => /<Code>([^<]*)<\/Code>/.exec(a.body)?.[1] ?? 'Fault';
    return this.awsCall(ex, { service: 'sts', operation, region, names }, error, stsFault, (caller) => {
      if (params.get('Version') !== '2011-06-15') {
        throw new EmulatorError(
          'InvalidAction',
          `Could not find operation ${operation} for version ${params.get('Version') ?? 'NO_VERSION_SPECIFIED'}`,
        );
      }
      // AssumeRoleWithWebIdentity is unsigned: the token is the credential.
      const signed = operation !== 'AssumeRoleWithWebIdentity' ? this.authenticate(ex, 'sts').session : undefined;
      if (signed !== undefined) caller.session = signed;
      const { xml, session } = handleSts(
        { state: this.state, requestId, verify: this.verifyToken, session: signed },
        operation,
        params,
      );
      if (session !== undefined) caller.session = session;
      return { status: 200, headers: { 'content-type': 'text/xml', 'x-amzn-requestid': requestId }, body: xml };
    });
  }

  // ---------------------------------------------------------------- IAM

  private async iam(ex: Exchange): Promise<void> {
    const params = new URLSearchParams(ex.body.toString('utf8'));
    const operation = params.get('Action') ?? '';
    const requestId = randomUUID();
    const region = parseAuthorization(header(ex.req, 'authorization'))?.region ?? 'us-east-1';
    const names = [params.get('RoleName') ?? params.get('PolicySourceArn')].filter((x): x is string => x !== null);
    const error = (status: number, code: string, message: string): Answer => ({
      status,
      headers: { 'content-type': 'text/xml', 'x-amzn-requestid': requestId },
      body: iamErrorXml(code, message, requestId, status >= 500 ? 'Receiver' : 'Sender'),
    });
    const iamFault = (a: Answer): string => /<Code>([^<]*)<\/Code>/.exec(a.body)?.[1] ?? 'Fault';
    return this.awsCall(ex, { service: 'iam', operation, region, names }, error, iamFault, (caller) => {
      const session = this.authenticate(ex, 'iam').session;
      caller.session = session;
      const xml = handleIam(this.state, session, requestId, operation, params);
      return { status: 200, headers: { 'content-type': 'text/xml', 'x-amzn-requestid': requestId }, body: xml };
    });
  }

  // ---------------------------------------------------------------- EKS (Pod Identity associations)

  /** ListPodIdentityAssociations and DescribePodIdentityAssociation (REST JSON, SigV4 scope `eks`). */
  private async eks(ex: Exchange): Promise<void> {
    const url = new URL(ex.req.url ?? '/', 'http://x');
    const list = /^\/clusters\/([^/]+)\/pod-identity-associations$/.exec(ex.path);
    const one = /^\/clusters\/([^/]+)\/pod-identity-associations\/([^/]+)$/.exec(ex.path);
    const operation =
      list !== null ? 'ListPodIdentityAssociations' : one !== null ? 'DescribePodIdentityAssociation' : 'Unknown';
    const cluster = decodeURIComponent((list ?? one)?.[1] ?? '');
    const region = parseAuthorization(header(ex.req, 'authorization'))?.region ?? 'us-east-1';
    const names = [cluster];
    const requestId = randomUUID();
    const error = (status: number, code: string, message: string): Answer => ({
      status,
      headers: { 'content-type': 'application/json', 'x-amzn-requestid': requestId, 'x-amzn-errortype': code },
      body: JSON.stringify({ message }),
    });
    const eksFault = (a: Answer): string => a.headers['x-amzn-errortype'] ?? 'Fault';
    return this.awsCall(ex, { service: 'eks', operation, region, names }, error, eksFault, (caller) => {
      const session = this.authenticate(ex, 'eks').session;
      caller.session = session;
      if (ex.req.method !== 'GET' || operation === 'Unknown')
        throw new EmulatorError('UnknownOperationException', 'not an operation of the emulator', 404);
      if (this.state.roles.get(session.roleArn)?.allow.eksRead !== true) {
        throw new EmulatorError(
          'AccessDeniedException',
          `User: ${session.roleArn} is not authorized to perform: eks:${operation} on resource: ` +
            `arn:aws:eks:${region}:${this.state.accountId}:cluster/${cluster}`,
          403,
        );
      }
      if (cluster !== CLUSTER_NAME)
        throw new EmulatorError('ResourceNotFoundException', `No cluster found for name: ${cluster}.`, 404);
      const idOf = (key: string): string => `a-${uidFor(`pia/${key}`).replace(/-/g, '').slice(0, 17)}`;
      const entries = [...this.state.podIdentity.entries()].map(([key, roleArn]) => {
        const [namespace = '', serviceAccount = ''] = key.split('/');
        const associationId = idOf(key);
        return {
          clusterName: cluster,
          namespace,
          serviceAccount,
          roleArn,
          associationId,
          associationArn:
            `arn:aws:eks:${region}:${this.state.accountId}:` + `podidentityassociation/${cluster}/${associationId}`,
        };
      });
      let out: unknown;
      if (list !== null) {
        const ns = url.searchParams.get('namespace');
        const sa = url.searchParams.get('serviceAccount');
        out = {
          associations: entries
            .filter((e) => (ns === null || e.namespace === ns) && (sa === null || e.serviceAccount === sa))
            .map((e) => ({
              clusterName: e.clusterName,
              namespace: e.namespace,
              serviceAccount: e.serviceAccount,
              associationArn: e.associationArn,
              associationId: e.associationId,
            })),
        };
      } else {
        const id = decodeURIComponent(one?.[2] ?? '');
        const found = entries.find((e) => e.associationId === id);
        if (found === undefined)
          throw new EmulatorError('ResourceNotFoundException', `Pod Identity association ${id} not found.`, 404);
        out = {
          association: { ...found, tags: {}, createdAt: this.state.now() / 1000, modifiedAt: this.state.now() / 1000 },
        };
      }
      return {
        status: 200,
        headers: { 'content-type': 'application/json', 'x-amzn-requestid': requestId },
        body: JSON.stringify(out),
      };
    });
  }

  // ---------------------------------------------------------------- Kubernetes

  /**
   * What `doctor` reads besides the provider's three GETs: a CSIDriver, pods by label (in a
   * namespace or all), a SecretProviderClass, the issuer discovery document. Same token, same Status errors.
   */
  private async kubeExtra(ex: Exchange): Promise<boolean> {
    const csi = /^\/apis\/storage\.k8s\.io\/v1\/csidrivers\/([^/]+)$/.exec(ex.path);
    const list = /^\/api\/v1\/(?:namespaces\/([^/]+)\/)?pods$/.exec(ex.path);
    const spc = /^\/apis\/secrets-store\.csi\.x-k8s\.io\/v1\/namespaces\/([^/]+)\/secretproviderclasses\/([^/]+)$/.exec(
      ex.path,
    );
    const discovery = ex.path === '/.well-known/openid-configuration';
    if (csi === null && list === null && spc === null && !discovery) return false;
    const operation =
      csi !== null
        ? 'GetCSIDriver'
        : list !== null
          ? 'ListPods'
          : spc !== null
            ? 'GetSecretProviderClass'
            : 'GetOpenIDConfiguration';
    const names =
      csi !== null
        ? [decodeURIComponent(csi[1] ?? '')]
        : spc !== null
          ? [`${decodeURIComponent(spc[1] ?? '')}/${decodeURIComponent(spc[2] ?? '')}`]
          : list?.[1] !== undefined
            ? [decodeURIComponent(list[1])]
            : [];
    const base = { service: 'k8s' as const, operation, region: '', names, at: this.state.now(), ...this.ua(ex) };
    const answer = async (a: Answer): Promise<boolean> => {
      const errorCode =
        a.recordCode ?? (a.status >= 400 ? (JSON.parse(a.body) as { reason: string }).reason : undefined);
      this.record({ ...base, status: a.status, ...(errorCode === undefined ? {} : { errorCode }) });
      await this.send(ex, a);
      return true;
    };
    const faulted = await this.fault(ex, 'k8s', operation, '', names, (status, code, message) =>
      kubeStatus(status, code, message),
    );
    if (faulted === 'hang') return true;
    if (faulted !== undefined) return answer(faulted);
    if (header(ex.req, 'authorization') !== `Bearer ${this.apiToken}`)
      return answer(kubeStatus(401, 'Unauthorized', 'Unauthorized'));
    if (ex.req.method !== 'GET')
      return answer(
        kubeStatus(405, 'MethodNotAllowed', `the server does not allow this method on the requested resource`),
      );
    const ok = (obj: unknown): Answer => ({
      status: 200,
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(obj),
    });
    const created = (ms: number): string => new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
    if (discovery) {
      return answer(
        ok({
          issuer: DEFAULT_ISSUER,
          jwks_uri: `${DEFAULT_ISSUER}/keys`,
          authorization_endpoint: 'urn:kubernetes:programmatic_authorization',
          response_types_supported: ['id_token'],
          subject_types_supported: ['public'],
          claims_supported: ['sub', 'iss'],
          id_token_signing_alg_values_supported: ['RS256'],
        }),
      );
    }
    if (spc !== null) {
      const key = names[0] ?? '';
      const [ns = '', name = ''] = key.split('/');
      const c = this.state.secretProviderClasses.get(key);
      if (c === undefined)
        return answer(
          kubeStatus(404, 'NotFound', `secretproviderclasses.secrets-store.csi.x-k8s.io "${name}" not found`),
        );
      return answer(
        ok({
          kind: 'SecretProviderClass',
          apiVersion: 'secrets-store.csi.x-k8s.io/v1',
          metadata: {
            name,
            namespace: ns,
            uid: uidFor(`secretproviderclasses/${key}`),
            resourceVersion: '1',
            generation: 1,
            creationTimestamp: created(c.createdMs),
          },
          spec: c.spec,
        }),
      );
    }
    if (csi !== null) {
      const name = names[0] ?? '';
      const d = this.state.csiDrivers.get(name);
      if (d === undefined) return answer(kubeStatus(404, 'NotFound', `csidrivers.storage.k8s.io "${name}" not found`));
      const spec: Record<string, unknown> = {
        attachRequired: false,
        podInfoOnMount: true,
        volumeLifecycleModes: ['Ephemeral'],
      };
      if (d.tokenRequests !== undefined) spec['tokenRequests'] = d.tokenRequests;
      return answer(
        ok({
          kind: 'CSIDriver',
          apiVersion: 'storage.k8s.io/v1',
          metadata: {
            name,
            uid: uidFor(`csidrivers/${name}`),
            resourceVersion: '1',
            creationTimestamp: created(d.createdMs),
          },
          spec,
        }),
      );
    }
    const ns = names[0];
    const selector = new URL(ex.req.url ?? '/', 'http://x').searchParams.get('labelSelector') ?? '';
    // Equality selectors only (`a=b,c==d`), which is all `doctor` sends.
    const wanted = selector === '' ? [] : selector.split(',').map((term) => term.split(/==?/).map((x) => x.trim()));
    const items = [...this.state.pods.entries()]
      .filter(([key]) => ns === undefined || key.startsWith(`${ns}/`))
      .filter(([, pod]) => wanted.every(([k, v]) => k !== undefined && pod.labels[k] === v))
      .map(([key, pod]) => this.podObject(key, pod));
    return answer(ok({ kind: 'PodList', apiVersion: 'v1', metadata: { resourceVersion: '1' }, items }));
  }

  private podObject(key: string, pod: PodRecord): Record<string, unknown> {
    const [ns = '', name = ''] = key.split('/');
    return {
      kind: 'Pod',
      apiVersion: 'v1',
      metadata: {
        name,
        namespace: ns,
        uid: uidFor(`pods/${ns}/${name}`),
        resourceVersion: '1',
        creationTimestamp: new Date(pod.createdMs).toISOString().replace(/\.\d{3}Z$/, 'Z'),
        ...(Object.keys(pod.labels).length > 0 ? { labels: pod.labels } : {}),
      },
      spec: {
        nodeName: pod.nodeName,
        serviceAccountName: pod.serviceAccountName,
        containers: pod.containers,
        volumes: pod.volumes,
      },
      status: { phase: 'Running', conditions: [{ type: 'Ready', status: pod.ready ? 'True' : 'False' }] },
    };
  }

  private async kube(ex: Exchange): Promise<void> {
    if (await this.kubeExtra(ex)) return;
    const m =
      /^\/api\/v1\/namespaces\/([^/]+)\/(serviceaccounts|pods)\/([^/]+)$/.exec(ex.path) ??
      /^\/api\/v1\/(nodes)\/([^/]+)$/.exec(ex.path);
    const kind = m === null ? undefined : m.length === 4 ? m[2] : m[1];
    const operation =
      kind === 'serviceaccounts'
        ? 'GetServiceAccount'
        : kind === 'pods'
          ? 'GetPod'
          : kind === 'nodes'
            ? 'GetNode'
            : 'Unknown';
    const ns = m !== null && m.length === 4 ? decodeURIComponent(m[1] ?? '') : undefined;
    const name = m === null ? '' : decodeURIComponent((m.length === 4 ? m[3] : m[2]) ?? '');
    const names = m === null ? [] : [ns === undefined ? name : `${ns}/${name}`];
    const base = { service: 'k8s' as const, operation, region: '', names, at: this.state.now(), ...this.ua(ex) };
    const answer = async (a: Answer): Promise<void> => {
      const errorCode =
        a.recordCode ?? (a.status >= 400 ? (JSON.parse(a.body) as { reason: string }).reason : undefined);
      this.record({ ...base, status: a.status, ...(errorCode === undefined ? {} : { errorCode }) });
      return this.send(ex, a);
    };
    const faulted = await this.fault(ex, 'k8s', operation, '', names, (status, code, message) =>
      kubeStatus(status, code, message),
    );
    if (faulted === 'hang') return;
    if (faulted !== undefined) return answer(faulted);
    if (header(ex.req, 'authorization') !== `Bearer ${this.apiToken}`)
      return answer(kubeStatus(401, 'Unauthorized', 'Unauthorized'));
    if (ex.req.method !== 'GET')
      return answer(
        kubeStatus(405, 'MethodNotAllowed', `the server does not allow this method on the requested resource`),
      );
    if (m === null) return answer(kubeStatus(404, 'NotFound', 'the server could not find the requested resource'));
    const ok = (obj: unknown): Answer => ({
      status: 200,
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(obj),
    });
    const meta = (createdMs: number, extra: Record<string, unknown>): Record<string, unknown> => ({
      name,
      ...(ns === undefined ? {} : { namespace: ns }),
      uid: uidFor(`${kind}/${ns ?? ''}/${name}`),
      resourceVersion: '1',
      creationTimestamp: new Date(createdMs).toISOString().replace(/\.\d{3}Z$/, 'Z'),
      ...extra,
    });
    const key = ns === undefined ? name : `${ns}/${name}`;
    const notFound = (): Answer => kubeStatus(404, 'NotFound', `${kind ?? ''} "${name}" not found`);
    if (kind === 'serviceaccounts') {
      const sa = this.state.serviceAccounts.get(key);
      if (sa === undefined) return answer(notFound());
      return answer(
        ok({
          kind: 'ServiceAccount',
          apiVersion: 'v1',
          metadata: meta(sa.createdMs, Object.keys(sa.annotations).length > 0 ? { annotations: sa.annotations } : {}),
        }),
      );
    }
    if (kind === 'pods') {
      const pod = this.state.pods.get(key);
      if (pod === undefined) return answer(notFound());
      return answer(ok(this.podObject(key, pod)));
    }
    const node = this.state.nodes.get(key);
    if (node === undefined) return answer(notFound());
    return answer(
      ok({
        kind: 'Node',
        apiVersion: 'v1',
        metadata: meta(node.createdMs, { labels: node.labels }),
        spec: {},
        status: { conditions: [{ type: 'Ready', status: 'True' }] },
      }),
    );
  }

  // ---------------------------------------------------------------- Pod Identity agent

  private async podIdentity(ex: Exchange): Promise<void> {
    const agentError = (status: number, code: string, message: string): Answer => ({
      status,
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ code, message }),
    });
    const token = header(ex.req, 'authorization') ?? '';
    const claims = decodeJwt(token);
    const k8s = claims?.['kubernetes.io'];
    const names = k8s === undefined ? [] : [`${k8s.namespace}/${k8s.serviceaccount.name}`];
    const base = {
      service: 'pod-identity' as const,
      operation: 'GetCredentials',
      region: '',
      names,
      at: this.state.now(),
      ...this.ua(ex),
    };
    const answer = async (a: Answer, who?: Session): Promise<void> => {
      const code = a.recordCode ?? (a.status >= 400 ? (JSON.parse(a.body) as { code: string }).code : undefined);
      this.record({
        ...base,
        status: a.status,
        ...(code === undefined ? {} : { errorCode: code }),
        ...(who === undefined ? {} : { roleArn: who.roleArn, sessionName: who.sessionName }),
      });
      return this.send(ex, a);
    };
    const faulted = await this.fault(ex, 'pod-identity', 'GetCredentials', '', names, agentError);
    if (faulted === 'hang') return;
    if (faulted !== undefined) return answer(faulted);
    if (ex.req.method !== 'GET') return answer(agentError(405, 'MethodNotAllowed', 'only GET is supported'));
    if (token === '')
      return answer(agentError(400, 'InvalidParameterException', 'Service account token cannot be empty'));
    const v = this.verifyToken(token, POD_IDENTITY_AUDIENCE);
    if (!v.ok) {
      if (v.reason === 'expired')
        return answer(agentError(401, 'ExpiredTokenException', 'Service account token has expired'));
      return answer(
        agentError(
          401,
          'InvalidTokenException',
          `Service account token failed verification ` +
            `(${v.reason === 'audience' ? 'audience is not pods.eks.amazonaws.com' : v.reason})`,
        ),
      );
    }
    const ns = v.claims['kubernetes.io'].namespace;
    const sa = v.claims['kubernetes.io'].serviceaccount.name;
    const roleArn = this.state.podIdentity.get(`${ns}/${sa}`);
    if (roleArn === undefined)
      return answer(
        agentError(
          404,
          'ResourceNotFoundException',
          `No Pod Identity Association found for service account ${sa} in namespace ${ns}`,
        ),
      );
    const associated = this.state.roles.get(roleArn);
    // A role that does not exist, or does not trust the EKS service: the agent cannot assume it.
    if (associated === undefined || associated.podIdentityTrust === false)
      return answer(agentError(403, 'AccessDeniedException', `EKS Pod Identity could not assume role ${roleArn}`));
    const pod = v.claims['kubernetes.io'].pod;
    const tags: Record<string, string> = {
      'eks-cluster-arn': `arn:aws:eks:us-east-1:${this.state.accountId}:cluster/${CLUSTER_NAME}`,
      'eks-cluster-name': CLUSTER_NAME,
      'kubernetes-namespace': ns,
      'kubernetes-service-account': sa,
    };
    if (pod !== undefined) {
      tags['kubernetes-pod-name'] = pod.name;
      tags['kubernetes-pod-uid'] = pod.uid;
    }
    const sessionName = `eks-${CLUSTER_NAME}-${pod?.name ?? sa}-${randomUUID()}`
      .slice(0, 64)
      .replace(/[^\w+=,.@-]/g, '-');
    const s = this.state.createSession(roleArn, sessionName, POD_IDENTITY_SECONDS, 'PodIdentity', tags);
    return answer(
      {
        status: 200,
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({
          AccessKeyId: s.accessKeyId,
          SecretAccessKey: s.secretAccessKey,
          Token: s.sessionToken,
          AccountId: roleAccount(roleArn, this.state.accountId),
          Expiration: new Date(s.expiresAtMs).toISOString().replace(/\.\d{3}Z$/, 'Z'),
        }),
      },
      s,
    );
  }

  async startAgentListener(o: { host: '127.0.0.1' | '::1' }): Promise<AgentListener> {
    let mode: AgentMode = 'ok';
    let failed = 0;
    let requests = 0;
    let server: Server | undefined;
    const sockets = new Set<Socket>();
    const make = (): Server => {
      const s = createServer((req, res) => {
        requests += 1;
        const m = mode;
        if (m === 'error500' || (typeof m === 'object' && failed < m.failFirst)) {
          failed += 1;
          req.resume();
          res.writeHead(500, { 'content-type': 'application/json' });
          res.end(JSON.stringify({ code: 'InternalServerException', message: 'injected agent failure' }));
          return;
        }
        if (m === 'hang') {
          req.resume();
          return; // never answered; the socket is destroyed on close
        }
        void this.serve(req, res, 'agent');
      });
      s.on('connection', (c: Socket) => {
        sockets.add(c);
        this.sockets.add(c);
        c.on('close', () => {
          sockets.delete(c);
          this.sockets.delete(c);
        });
      });
      return s;
    };
    const stop = async (): Promise<void> => {
      const s = server;
      server = undefined;
      if (s === undefined) return;
      const closed = new Promise<void>((resolve) => s.close(() => resolve()));
      for (const c of sockets) c.destroy();
      await closed;
    };
    server = make();
    const addr = await listen(server, 0, o.host);
    const port = addr.port;
    const listener: AgentListener = {
      url: `${urlFor(o.host, port)}/v1/credentials`,
      get requests() {
        return requests;
      },
      setMode: async (next: AgentMode): Promise<void> => {
        mode = next;
        failed = 0;
        if (next === 'refuse') return stop();
        if (server === undefined && !this.closing.signal.aborted) {
          server = make();
          await listen(server, port, o.host);
        }
      },
      close: async (): Promise<void> => {
        this.listeners.delete(listener);
        await stop();
      },
    };
    this.listeners.add(listener);
    return listener;
  }

  // ---------------------------------------------------------------- programmatic API

  issueToken(input: IssueTokenInput): string {
    return signJwt(buildClaims(input, DEFAULT_ISSUER, this.state.now()), this.jwtKey);
  }

  addRole(role: RoleSpec): void {
    if (!/^arn:aws[\w-]*:iam::\d{12}:role\/[\w+=,.@/-]+$/.test(role.arn)) {
      throw new TypeError(`addRole: ${role.arn} is not an IAM role ARN (arn:aws:iam::<12 digits>:role/<name>)`);
    }
    this.state.roles.set(role.arn, structuredClone(role));
  }

  addPodIdentityAssociation(a: { namespace: string; serviceAccount: string; roleArn: string }): void {
    this.state.podIdentity.set(`${a.namespace}/${a.serviceAccount}`, a.roleArn);
  }

  addServiceAccount(ns: string, name: string, annotations: Record<string, string> = {}): void {
    this.state.serviceAccounts.set(`${ns}/${name}`, { annotations: { ...annotations }, createdMs: this.state.now() });
  }

  addPod(
    ns: string,
    name: string,
    nodeName: string,
    o: {
      labels?: Record<string, string>;
      ready?: boolean;
      serviceAccountName?: string;
      volumes?: unknown[];
      containers?: unknown[];
    } = {},
  ): void {
    this.state.pods.set(`${ns}/${name}`, {
      nodeName,
      createdMs: this.state.now(),
      labels: { ...o.labels },
      ready: o.ready ?? true,
      serviceAccountName: o.serviceAccountName ?? 'default',
      volumes: structuredClone(o.volumes ?? []),
      containers: structuredClone(o.containers ?? [{ name: 'app', image: 'example/app:1' }]),
    });
  }

  addCsiDriver(name: string, o: { tokenRequests?: { audience: string; expirationSeconds?: number }[] } = {}): void {
    this.state.csiDrivers.set(name, {
      tokenRequests: o.tokenRequests === undefined ? undefined : structuredClone(o.tokenRequests),
      createdMs: this.state.now(),
    });
  }

  addOidcProvider(issuer: string): void {
    this.state.oidcProviders.add(issuer);
  }

  addSecretProviderClass(ns: string, name: string, spec: unknown): void {
    this.state.secretProviderClasses.set(`${ns}/${name}`, { spec: structuredClone(spec), createdMs: this.state.now() });
  }

  removePod(ns: string, name: string): void {
    this.state.pods.delete(`${ns}/${name}`);
  }

  removeOidcProvider(issuer: string): void {
    this.state.oidcProviders.delete(issuer);
  }

  addNode(name: string, labels: Record<string, string> = {}): void {
    this.state.nodes.set(name, { labels: { ...labels }, createdMs: this.state.now() });
  }

  putSecret(
    region: string,
    name: string,
    value: string | Uint8Array,
    o: { versionId?: string; stages?: string[]; kmsFails?: boolean; kmsKeyId?: string } = {},
  ): { arn: string; versionId: string } {
    const { secret, version } = this.state.putSecret(region, name, value, o);
    return { arn: secret.arn, versionId: version.versionId };
  }

  deleteSecret(region: string, name: string): void {
    this.state.region(region).secrets.delete(name);
  }

  putParameter(
    region: string,
    name: string,
    value: string,
    o: { type?: ParameterType; labels?: string[]; kmsFails?: boolean; kmsKeyId?: string } = {},
  ): { version: number; arn: string } {
    const { parameter, version } = this.state.putParameter(region, name, value, o);
    return { version: version.version, arn: parameter.arn };
  }

  addKmsKey(key: KmsKeySpec): void {
    if (!/^arn:aws:kms:[a-z0-9-]+:\d{12}:key\/[\w-]+$/.test(key.arn))
      throw new TypeError(`addKmsKey: ${key.arn} is not a KMS key ARN (arn:aws:kms:<region>:<12 digits>:key/<id>)`);
    this.state.kmsKeys.set(key.arn, {
      arn: key.arn,
      aliases: [...(key.aliases ?? [])],
      manager: 'CUSTOMER',
      state: key.state ?? 'Enabled',
      ...(key.policy !== undefined ? { policy: JSON.stringify(key.policy) } : {}),
    });
  }

  deleteParameter(region: string, name: string): void {
    this.state.region(region).parameters.delete(name);
  }

  addFault(f: Fault): string {
    return this.faults.add(f);
  }

  removeFault(id: string): void {
    this.faults.remove(id);
  }

  clearFaults(): void {
    this.faults.clear();
  }

  setLatency(ms: number): void {
    if (!Number.isFinite(ms) || ms < 0)
      throw new RangeError(`setLatency: expected a non-negative number of ms, got ${ms}`);
    this.latency = ms;
  }

  resetCalls(): void {
    this.log.length = 0;
  }

  callCount(filter: Partial<Pick<CallRecord, 'service' | 'operation' | 'region'>> = {}): number {
    return this.log.filter(
      (c) =>
        (filter.service === undefined || c.service === filter.service) &&
        (filter.operation === undefined || c.operation === filter.operation) &&
        (filter.region === undefined || c.region === filter.region),
    ).length;
  }

  async writeKubeconfig(path: string): Promise<void> {
    const q = (s: string): string => JSON.stringify(s);
    const text = [
      'apiVersion: v1',
      'kind: Config',
      'clusters:',
      `- name: emulator`,
      '  cluster:',
      `    server: ${q(this.url)}`,
      'contexts:',
      '- name: emulator',
      '  context:',
      '    cluster: emulator',
      '    user: emulator',
      '    namespace: default',
      'current-context: emulator',
      'users:',
      '- name: emulator',
      '  user:',
      `    token: ${q(this.apiToken)}`,
      'preferences: {}',
      '',
    ].join('\n');
    await writeFile(path, text, { mode: 0o600 });
  }

  issueCredentials(roleArn: string, o: { durationSeconds?: number; sessionName?: string } = {}): IssuedCredentials {
    if (!this.state.roles.has(roleArn))
      throw new TypeError(`issueCredentials: unknown role ${roleArn}; add it with addRole first`);
    const s = this.state.createSession(
      roleArn,
      o.sessionName ?? `direct-${roleName(roleArn)}`.slice(0, 64),
      o.durationSeconds ?? 3600,
      'Direct',
    );
    return {
      accessKeyId: s.accessKeyId,
      secretAccessKey: s.secretAccessKey,
      sessionToken: s.sessionToken,
      expiration: new Date(s.expiresAtMs),
    };
  }

  sessions(): SessionInfo[] {
    return [...this.state.sessions.values()].map((s) => ({
      accessKeyId: s.accessKeyId,
      roleArn: s.roleArn,
      sessionName: s.sessionName,
      expiration: new Date(s.expiresAtMs),
      tags: { ...s.tags },
      source: s.source,
    }));
  }
}

/** Starts the emulator on a loopback port (0 = any free one). Close it with `close()`. */
export async function startEmulator(opts: EmulatorOptions = {}): Promise<Emulator> {
  const emu = new EmulatorImpl(opts);
  await emu.start();
  return emu;
}
