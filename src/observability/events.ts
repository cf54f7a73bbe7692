/**
 * @module observability/events
 * The log events the provider emits, by name: the `msg` of a log line is one of
 * these constants, so dashboards and alerts can match on it and a rename is one diff here.
 * Fields travel beside the message (`logger.info(EVENTS.mount, { outcome, durationMs })`), never in it.
 */
export const EVENTS = {
  // Process lifetime (cli/serve.ts).
  startupFailed: 'start-up failed',
  signalReceived: 'received signal: draining mounts in flight',
  stopped: 'stopped',
  // gRPC server (server/grpc-server.ts).
  listening: 'listening',
  mount: 'mount',
  mountUnexpectedError: 'unexpected error in mount',
  shutdownGraceOver: 'shutdown grace period over: cancelling mounts in flight',
  // Health and metrics HTTP (server/health-http.ts).
  httpListening: 'http endpoints listening',
  httpServerError: 'health/metrics server error',
  ready: 'ready',
  notReady: 'not ready',
  metricsRenderFailed: 'cannot render metrics',
  // Mount pipeline (mount/, aws/).
  optionalObjectSkipped: 'optional object not found: skipped',
  failoverAnswered: 'failover region answered',
} as const;

export type EventName = (typeof EVENTS)[keyof typeof EVENTS];
