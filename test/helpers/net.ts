/** A free TCP port on 127.0.0.1, for the servers tests start (shared with the benchmarks, in bench/net.ts). */
export { freePort } from '../../bench/net.js';
