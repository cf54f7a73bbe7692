/** A free loopback port, for a server that must be named in flags before it starts: the bench's, one copy for both. */
export { freePort } from '../../tools/bench/provider-process.js';
