/**
 * @module aws/call-context
 * What one AWS SDK call carries besides its command: the caller's credentials and its abort
 * signal. One client per service and region serves every pod, so neither can live on the client;
 * the call runs inside this context, where the client's credential provider (clients.ts) and the
 * request handler (bounded-http.ts) read them. Passing no per-call options to the SDK also lets it
 * resolve each command's middleware stack once instead of on every call.
 */
import { AsyncLocalStorage } from 'node:async_hooks';

/** Static AWS credentials (from STS or the Pod Identity agent). */
export interface AwsCredentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string | undefined;
  /** Epoch ms. */
  expiration?: number | undefined;
}

export interface CallContext {
  /** None for an unsigned call (AssumeRoleWithWebIdentity). */
  readonly creds: AwsCredentials | undefined;
  readonly signal: AbortSignal | undefined;
}

export const callContext = new AsyncLocalStorage<CallContext>();
