/**
 * @module identity/operator
 * The operator's own AWS credentials, for the `mount` command (a dry run of what a pod would get):
 * AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY from the given env, else the SDK's standard chain
 * (profiles, SSO, instance roles). Never used by the provider server, which acts only as the pod.
 */
import { ProviderError } from '../errors.js';
import type { CachedCredentials } from './credential-cache.js';

export /** The operator's credentials: AWS_ACCESS_KEY_ID/SECRET from `env`, else the SDK's standard chain. */
function operatorCredentials(env: Record<string, string | undefined>): () => Promise<CachedCredentials> {
  const id = env['AWS_ACCESS_KEY_ID'];
  const secret = env['AWS_SECRET_ACCESS_KEY'];
  if (id && secret) {
    const creds: CachedCredentials = {
      accessKeyId: id,
      secretAccessKey: secret,
      sessionToken: env['AWS_SESSION_TOKEN'] || undefined,
    };
    return () => Promise.resolve(creds);
  }
  let chain: Promise<CachedCredentials> | undefined;
  return () => {
    chain ??= (async () => {
      const { defaultProvider } = await import('@aws-sdk/credential-provider-node');
      const profile = env['AWS_PROFILE'];
      try {
        const c = await defaultProvider(profile ? { profile } : {})();
        return {
          accessKeyId: c.accessKeyId,
          secretAccessKey: c.secretAccessKey,
          sessionToken: c.sessionToken,
          expiration: c.expiration?.getTime(),
        };
      } catch (err) {
        throw new ProviderError(
          'UNAUTHENTICATED',
          `no AWS credentials found (env AWS_ACCESS_KEY_ID, AWS_PROFILE, SSO or an instance ` +
            `role): ${err instanceof Error ? err.message : String(err)}`,
          {
            reason: 'NoCredentials',
          },
        );
      }
    })();
    return chain;
  };
}
