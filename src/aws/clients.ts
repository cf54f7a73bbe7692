/**
 * @module aws/clients
 * Builds and reuses the AWS SDK v3 clients. One keep-alive HTTP agent is shared by every client
 * (sockets, TLS sessions), the SDK modules are imported on first use (idle memory and start-up CPU),
 * and clients are kept per region + credentials in a small LRU so a warm mount builds nothing.
 * Endpoints come from the SDK's own environment handling: AWS_ENDPOINT_URL, AWS_ENDPOINT_URL_<SERVICE>,
 * AWS_USE_FIPS_ENDPOINT (CONTRACT.md §8).
 */
import type { Agent as HttpAgent } from 'node:http';
import type { Agent as HttpsAgent } from 'node:https';
import { http, https } from '../node-http.js';
import type { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import type { SSMClient } from '@aws-sdk/client-ssm';
import type { STSClient } from '@aws-sdk/client-sts';
import type { NodeHttpHandler } from '@smithy/node-http-handler';
import { setBounded } from '../bounded-map.js';

/** Static AWS credentials (from STS or the Pod Identity agent). */
export interface AwsCredentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string | undefined;
  /** Epoch ms. */
  expiration?: number | undefined;
}

export interface AwsClientOptions {
  /** User agent app id (`<name>-<version>`). */
  appId: string;
  /** Attempts per call, the SDK's standard retry (default 3, as ASCP). */
  maxAttempts?: number;
  /** Per-attempt request timeout in ms (default 10 s): a call that never answers must not hold a mount forever. */
  requestTimeoutMs?: number;
  /** Agents to use instead of plain keep-alive ones (e.g. through a proxy). */
  agents?: { http: HttpAgent; https: HttpsAgent };
  /** Most clients kept (LRU). */
  maxClients?: number;
}

type Kind = 'sm' | 'ssm';

export class AwsClientFactory {
  private readonly opts: Required<Omit<AwsClientOptions, 'agents'>>;
  private readonly agents: { http: HttpAgent; https: HttpsAgent };
  private handler: NodeHttpHandler | undefined;
  private readonly cache = new Map<string, SecretsManagerClient | SSMClient>();
  private readonly stsClients = new Map<string, STSClient>();

  constructor(opts: AwsClientOptions) {
    this.opts = { maxAttempts: 3, requestTimeoutMs: 10_000, maxClients: 256, ...opts };
    this.agents = opts.agents ?? {
      http: new http.Agent({ keepAlive: true, maxSockets: 50 }),
      https: new https.Agent({ keepAlive: true, maxSockets: 50 }),
    };
  }

  private async requestHandler(): Promise<NodeHttpHandler> {
    if (!this.handler) {
      const { NodeHttpHandler } = await import('@smithy/node-http-handler');
      this.handler = new NodeHttpHandler({
        httpAgent: this.agents.http,
        httpsAgent: this.agents.https,
        requestTimeout: this.opts.requestTimeoutMs,
        connectionTimeout: Math.min(5_000, this.opts.requestTimeoutMs),
      });
    }
    return this.handler;
  }

  private remember<T extends SecretsManagerClient | SSMClient>(key: string, client: T): T {
    setBounded(this.cache, key, client, this.opts.maxClients);
    return client;
  }

  private lookup(key: string): SecretsManagerClient | SSMClient | undefined {
    const c = this.cache.get(key);
    if (c) {
      // refresh LRU position
      this.cache.delete(key);
      this.cache.set(key, c);
    }
    return c;
  }

  private key(kind: Kind, region: string, creds: AwsCredentials): string {
    return `${kind}\0${region}\0${creds.accessKeyId}\0${creds.sessionToken ?? ''}`;
  }

  private common(region: string, creds: AwsCredentials) {
    return {
      region,
      credentials: {
        accessKeyId: creds.accessKeyId,
        secretAccessKey: creds.secretAccessKey,
        ...(creds.sessionToken ? { sessionToken: creds.sessionToken } : {}),
        ...(creds.expiration ? { expiration: new Date(creds.expiration) } : {}),
      },
      userAgentAppId: this.opts.appId,
      maxAttempts: this.opts.maxAttempts,
    };
  }

  async secretsManager(region: string, creds: AwsCredentials): Promise<SecretsManagerClient> {
    const key = this.key('sm', region, creds);
    const hit = this.lookup(key) as SecretsManagerClient | undefined;
    if (hit) return hit;
    const { SecretsManagerClient } = await import('@aws-sdk/client-secrets-manager');
    return this.remember(key, new SecretsManagerClient({ ...this.common(region, creds), requestHandler: await this.requestHandler() }));
  }

  async ssm(region: string, creds: AwsCredentials): Promise<SSMClient> {
    const key = this.key('ssm', region, creds);
    const hit = this.lookup(key) as SSMClient | undefined;
    if (hit) return hit;
    const { SSMClient } = await import('@aws-sdk/client-ssm');
    return this.remember(key, new SSMClient({ ...this.common(region, creds), requestHandler: await this.requestHandler() }));
  }

  /**
   * STS for a region. Without credentials: AssumeRoleWithWebIdentity is unsigned. With credentials:
   * AssumeRole (role chaining) signs with the caller's session; those clients are not kept.
   */
  async sts(region: string, creds?: AwsCredentials): Promise<STSClient> {
    const { STSClient } = await import('@aws-sdk/client-sts');
    if (creds) {
      return new STSClient({ ...this.common(region, creds), requestHandler: await this.requestHandler() });
    }
    let c = this.stsClients.get(region);
    if (!c) {
      c = new STSClient({
        region,
        userAgentAppId: this.opts.appId,
        maxAttempts: this.opts.maxAttempts,
        requestHandler: await this.requestHandler(),
        // The web-identity exchange is unsigned; never let the SDK go looking for node credentials.
        credentials: async () => {
          throw new Error('AssumeRoleWithWebIdentity is unsigned: no credentials needed');
        },
      });
      this.stsClients.set(region, c);
    }
    return c;
  }

  /** Destroys idle sockets (shutdown, tests). */
  close(): void {
    for (const c of this.cache.values()) c.destroy();
    for (const c of this.stsClients.values()) c.destroy();
    this.cache.clear();
    this.stsClients.clear();
    this.agents.http.destroy();
    this.agents.https.destroy();
  }
}
