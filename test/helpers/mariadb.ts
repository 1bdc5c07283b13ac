/**
 * A throwaway MariaDB server for tests (Debian's mariadb-server): its own data directory and a free port on
 * 127.0.0.1, started by the tests that need it and stopped after them. No mock stands in for it.
 * (It lives in bench/mariadb.ts, which the benchmarks use too.)
 */
export { startMariaDb, type TestMariaDb } from '../../bench/mariadb.js';
