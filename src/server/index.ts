/**
 * @module server
 * The edge: gRPC provider server on the unix socket, health service, health/metrics HTTP.
 */
export { startServer, toStatus, STATUS, type RunningServer, type ServerOptions } from './grpc-server.js';
export { HealthStatus, SocketProbe, probeSocket } from './grpc-health.js';
export { startHealthServer, parseListenAddress, type HealthServer } from './health-http.js';
export { waitingRoom } from './transport.js';
