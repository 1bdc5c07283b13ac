/** Reading rows the same way on both engines (MariaDB gives BIGINT as strings or numbers, SQLite gives numbers). */
import type { Db } from './db.js';

export type Row = Record<string, unknown>;

export const num = (v: unknown): number => Number(v);
export const numOrNull = (v: unknown): number | null => (v === null || v === undefined ? null : Number(v));
export const strOrNull = (v: unknown): string | null => (v === null || v === undefined ? null : String(v));

/** Row locks where the engine has them: `FOR UPDATE` (with `SKIP LOCKED` for claims) on MariaDB, nothing on SQLite. */
export function forUpdate(db: Db, skipLocked = false): string {
  return db.dialect === 'mysql' ? ` FOR UPDATE${skipLocked ? ' SKIP LOCKED' : ''}` : '';
}

/** `?, ?, ?` for a list of n values (at least one, so that `IN ()` is never written). */
export function marks(n: number): string {
  return Array.from({ length: Math.max(1, n) }, () => '?').join(', ');
}
