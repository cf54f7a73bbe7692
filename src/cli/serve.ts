/**
 * @module cli/serve
 * `serve`, the provider server, and its composition root: flags → logger, metrics, Kubernetes, AWS
 * clients, identity, fetcher, writer → mount pipeline → gRPC server + health/metrics HTTP. Signals.
 */
import path from 'node:path';
import { AwsClientFactory, Fetcher, proxyAgentsFromEnv } from '../aws/index.js';
import { kubeletTargetWriter, checkTargetPath, targetPathProblem } from '../files/index.js';
import { CredentialCache, IdentityResolver } from '../identity/index.js';
import { KubeClient, KubeLookups, loadKubeConfig } from '../k8s/index.js';
import type { MountDeps, MountFn } from '../mount/index.js';
import { createLogger, createProviderMetrics, type Logger } from '../observability/index.js';
import { SocketProbe, startHealthServer, startServer, waitingRoom } from '../server/index.js';
import { appId, NAME, nodeVersionProblem, VERSION } from '../version.js';
// The region rule alone, not spc/'s index: that loads the YAML and JMESPath parsers, which wait for the first mount.
import { regionLabel } from '../spc/regions.js';
// Admission and the namespace it queues by, not mount/'s and spc/'s indexes, for the same reason:
// the server asks admission as each Mount arrives, before the pipeline is loaded.
import { Admission } from '../mount/admission.js';
import { podNamespaceOf } from '../spc/attributes.js';
import { parseFlags, type Flags } from './flags.js';
import type { CommandIO } from './io.js';

export interface Running {
  socketPath: string;
  healthUrl?: string | undefined;
  metricsUrl?: string | undefined;
  /** Graceful stop: drain mounts, remove the socket, close HTTP and AWS sockets. */
  stop(): Promise<void>;
}

/** Builds every part and starts serving. Throws on a start-up failure (bad volume, no kubeconfig). */
export async function start(flags: Flags, env: Record<string, string | undefined>, logger: Logger): Promise<Running> {
  const metrics = createProviderMetrics({ objectNames: flags.metricsObjectNames });
  // Without a Kubernetes config the provider still serves classes that need no lookup (Pod Identity
  // with a region); every lookup then fails with the reason. ASCP exits at start instead.
  let kube: KubeClient | undefined;
  let lookups: MountDeps['kube'];
  /** Why mounts that need the Kubernetes API cannot work (undefined: they can); /readyz says it. */
  let kubeUnavailable: string | undefined;
  try {
    kube = new KubeClient(await loadKubeConfig(env), {
      qps: flags.qps,
      burst: flags.burst,
      onRequest: (resource, code) => metrics.kubernetesRequest(resource, code),
    });
    lookups = new KubeLookups(kube, { onCache: (cache, hit) => metrics.cacheRequest(cache, hit) });
  } catch (err) {
    kubeUnavailable =
      `no Kubernetes API access (${err instanceof Error ? err.message : String(err)}): IRSA roles ` +
      `and node regions cannot be looked up`;
    logger.error('no Kubernetes API access: IRSA and region lookups will fail, and /readyz answers not ready', {
      error: err instanceof Error ? err.message : String(err),
    });
    const fail = async (): Promise<never> => {
      throw err;
    };
    lookups = { roleArn: fail, nodeRegion: fail, podRegion: fail };
  }
  // HTTPS_PROXY/HTTP_PROXY/NO_PROXY as Go's net/http reads them (ASCP's SDK honours them; the JS SDK does not).
  const agents = proxyAgentsFromEnv(env);
  if (agents) logger.info('AWS calls go through the proxy from HTTPS_PROXY/HTTP_PROXY (NO_PROXY honoured)');
  const clients = new AwsClientFactory({ appId: appId(flags.eksAddonVersion), ...(agents ? { agents } : {}) });
  const identity = new IdentityResolver({
    sts: clients,
    cache: new CredentialCache({ onCache: (hit) => metrics.cacheRequest('credentials', hit) }),
    podIdentity: { endpoint: flags.podIdentityEndpoint, timeoutMs: flags.podIdentityHttpTimeoutMs },
    observe: (method, outcome, region, seconds, code) => {
      metrics.credentialExchange(method, outcome);
      const [service, operation] =
        method === 'pod-identity'
          ? (['pod-identity', 'GetCredentials'] as const)
          : (['sts', method === 'irsa' ? 'AssumeRoleWithWebIdentity' : 'AssumeRole'] as const);
      metrics.awsCall(service, operation, regionLabel(region, flags.extraRegions), outcome, code, seconds);
    },
  });
  const fetcher = new Fetcher(clients, (service, operation, region, outcome, code, seconds) =>
    metrics.awsCall(service, operation, regionLabel(region, flags.extraRegions), outcome, code, seconds),
  );
  let warnedTouch = false;
  let toldNoVolume = false;
  const deps: MountDeps = {
    driverWritesSecrets: flags.driverWritesSecrets,
    extraRegions: flags.extraRegions,
    awsRegion: flags.awsRegion,
    nodeName: flags.nodeName,
    podVolume: (targetPath) => targetPathProblem(targetPath, flags.kubeletRoot) === undefined,
    kube: lookups,
    identity,
    fetcher,
    // Only kubelet CSI volume mounts, reached through no link, are written or touched.
    writer: kubeletTargetWriter(flags.kubeletRoot, (targetPath) => {
      // A kubelet volume path under another root means a wrong --kubelet-root; any other path is
      // most likely a caller without a kubelet (the Secrets Store Sync Controller sends
      // /mnt/secrets-store), which reads the answer and has nothing to touch: no warning for it.
      if (targetPath.includes('/volumes/kubernetes.io~csi/')) {
        if (warnedTouch) return;
        warnedTouch = true;
        logger.warn(
          "target path not touched: not a kubelet CSI volume mount under --kubelet-root (is the chart's kubeletPath " +
            'right?)',
          { targetPath, kubeletRoot: flags.kubeletRoot },
        );
      } else if (!toldNoVolume) {
        toldNoVolume = true;
        logger.info(
          'target path not touched: no pod volume (a caller without a kubelet, such as the Secrets Store Sync ' +
            'Controller, takes the files from the answer)',
          { targetPath },
        );
      }
    }),
    logger,
    observeObject: (type, outcome, name) => metrics.objectFetched(type, outcome, name),
  };
  // The pipeline (parser, YAML, JMESPath) is loaded at the first Mount, not at start: an idle
  // provider on a node without secret volumes stays small (idle RSS, docs/benchmarks.md).
  // Admission exists from the start, so the server asks it as each Mount arrives, before the
  // pipeline is loaded. Waiting mounts also leave some of the driver connection's streams free
  // (server/transport.ts): the calls beyond are then answered at once, not held in the driver's client.
  const admission = new Admission({
    concurrency: flags.maxConcurrentMounts,
    maxQueued: Math.min(flags.maxQueuedMounts, waitingRoom(flags.maxConcurrentMounts)),
  });
  metrics.watchWaiting(() => admission.stats().queued);
  let pipeline: Promise<MountFn> | undefined;
  const mount: MountFn = async (input, signal, summary) => {
    pipeline ??= import('../mount/index.js').then((m) => {
      return m.createMount({
        ...deps,
        values: flags.cacheTtlMs > 0 ? new m.ValueCache(flags.cacheTtlMs) : undefined,
        admission,
        maxMountBytes: flags.maxMountBytes,
        maxMountFiles: flags.maxMountFiles,
      });
    });
    return (await pipeline)(input, signal, summary);
  };

  const socketPath = path.join(flags.providerVolume, 'aws.sock');
  const server = await startServer({
    socketPath,
    mount,
    // The namespace is read from the request only when fairness needs it (a full queue).
    arrive: (attributes, deadline) => admission.arrive(() => podNamespaceOf(attributes), deadline),
    logger,
    metrics,
    // Provider-writes mode: a target that is not a kubelet CSI volume mount is refused before any
    // work ('' is the pipeline's own "Missing mount path"). Driver-writes mode writes nothing there.
    checkTarget: flags.driverWritesSecrets
      ? undefined
      : (targetPath) => (targetPath === '' ? Promise.resolve() : checkTargetPath(targetPath, flags.kubeletRoot)),
  });
  // /readyz asks our own socket, with one kept client (not one per request).
  const probe = new SocketProbe(socketPath);
  let http: Awaited<ReturnType<typeof startHealthServer>> | undefined;
  try {
    http = await startHealthServer({
      healthAddr: flags.healthAddr,
      metricsAddr: flags.metricsAddr,
      registry: metrics.registry,
      // Ready = what mounts need: our socket answers, and the Kubernetes API can be asked (IRSA's
      // role annotation, the node's region). Checked once at start too, so the log says it at once.
      ready: async (signal) => {
        await probe.check(signal);
        if (kubeUnavailable !== undefined) throw new Error(kubeUnavailable);
      },
      checkAtStart: true,
      logger,
    });
  } catch (err) {
    probe.close();
    await server.close(0);
    throw err;
  }
  return {
    socketPath,
    healthUrl: http.healthUrl,
    metricsUrl: http.metricsUrl,
    async stop() {
      await server.close();
      await http?.close();
      probe.close();
      kube?.close();
      clients.close();
    },
  };
}

/** `run(argv, io) → exit code`: parse flags, start, wait for SIGTERM/SIGINT, drain, 0. */
export async function run(argv: readonly string[], io: CommandIO): Promise<number> {
  const { env } = io;
  const parsed = parseFlags(argv, env);
  if (parsed.kind === 'help' || parsed.kind === 'version') {
    io.stdout(parsed.text + '\n');
    return 0;
  }
  if (parsed.kind === 'error') {
    io.stderr(`${NAME}: ${parsed.message}\n`);
    return 2;
  }
  const { flags } = parsed;
  const tooOld = nodeVersionProblem(process.version);
  if (tooOld !== undefined) {
    io.stderr(`${NAME}: ${tooOld}\n`);
    return 1;
  }
  // A promise rejected with no handler is logged, not fatal: the server keeps serving the mounts it can.
  process.on('unhandledRejection', (reason) => {
    io.stderr(
      JSON.stringify({
        level: 'error',
        msg: 'unhandled rejection',
        error: reason instanceof Error ? reason.message : String(reason),
      }) + '\n',
    );
  });
  const logger = createLogger({ level: flags.logLevel, format: flags.logFormat });
  logger.info(`starting ${NAME} ${VERSION}`, {
    node: process.version,
    writeMode: flags.driverWritesSecrets ? 'driver' : 'provider',
  });
  logger.info(
    'this provider requires tokenRequests in the CSIDriver spec (audiences: sts.amazonaws.com, pods.eks.amazonaws.com)',
  );
  for (const w of parsed.warnings) logger.warn(w);

  // Signal handlers first: a SIGTERM that arrives while we start must still stop us cleanly.
  const stopSignal = new Promise<NodeJS.Signals>((resolve) => {
    process.once('SIGTERM', () => resolve('SIGTERM'));
    process.once('SIGINT', () => resolve('SIGINT'));
  });
  let running: Running;
  try {
    running = await start(flags, env, logger);
  } catch (err) {
    logger.error('start-up failed', { error: err instanceof Error ? err.message : String(err) });
    return 1;
  }
  const signal = await stopSignal;
  logger.info('received signal: draining mounts in flight', { signal });
  await running.stop();
  logger.info('stopped');
  return 0;
}
