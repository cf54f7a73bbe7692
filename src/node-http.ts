/**
 * @module node-http (a leaf)
 * node:http and node:https, loaded with `require`. An ES-module `import` of node:http builds its
 * whole namespace, which runs the lazy getters Node 24 hangs on it (WebSocket & co.) and loads all
 * of undici: ~30 ms of start-up CPU and several MiB of memory for nothing we use
 * (measured by `npm run bench`, docs/benchmarks.md).
 */
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);

export const http = require('node:http') as typeof import('node:http');
export const https = require('node:https') as typeof import('node:https');
