/**
 * @module observability
 * Logs, metrics and the names of log events: declared here, used everywhere.
 */
export {
  createLogger,
  redact,
  scrub,
  silentLogger,
  type LogFields,
  type LogFormat,
  type LogLevel,
  type Logger,
  type LoggerOptions,
} from './logger.js';
export { createProviderMetrics, type ProviderMetrics } from './metrics.js';
export { renderPrometheus, Registry } from './registry.js';
export { EVENTS, type EventName } from './events.js';
