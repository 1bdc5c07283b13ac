/**
 * The two database engines behind one small interface: statements with `?` parameters, rows as plain objects,
 * transactions. The storage logic (storage.ts) is written once against it.
 *
 * SQLite (better-sqlite3) is synchronous and has one connection, so every operation and every transaction of this
 * process goes through one async mutex: no statement can slip into another's transaction between its awaits. The
 * file runs in WAL mode with a busy timeout, for readers in other processes (the admin CLI). MariaDB (mysql2) uses a
 * pool; a transaction holds one connection from BEGIN to COMMIT, and row locks with SKIP LOCKED keep several gateway
 * processes off each other's messages.
 */
import { closeSync, fdatasync, mkdirSync, openSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import mysql from 'mysql2/promise';
import type { Dialect } from './schema.js';

export type Param = string | number | bigint | null;

export interface RunResult {
  changes: number;
  insertId: number;
}

export interface Db {
  readonly dialect: Dialect;
  all<T>(sql: string, params?: Param[]): Promise<T[]>;
  run(sql: string, params?: Param[]): Promise<RunResult>;
  /** Runs `fn` in a transaction; commits when it resolves, rolls back when it throws. */
  tx<T>(fn: (db: Db) => Promise<T>): Promise<T>;
  /**
   * SQLite: folds the write-ahead log back into the database file (a checkpoint) once enough has been written since
   * the last one, or always with `force`. Callers run it when a pause costs nothing (see openSqlite). MariaDB: nothing.
   */
  checkpoint(options?: { force?: boolean }): Promise<void>;
  close(): Promise<void>;
}

/** Writes after which a checkpoint is worth running when asked, and after which it runs by itself. */
const CHECKPOINT_SOFT = 100;
const CHECKPOINT_HARD = 1000;

/** A FIFO async mutex. */
class Mutex {
  private tail: Promise<unknown> = Promise.resolve();
  lock<T>(fn: () => Promise<T>): Promise<T> {
    const result = this.tail.then(fn);
    this.tail = result.catch(() => undefined);
    return result;
  }
}

/** How an SQLite database makes its commits durable: fdatasync of the write-ahead log's file (tests may watch it). */
export type SyncFile = (fd: number) => Promise<void>;

const fdatasyncFile: SyncFile = (fd) =>
  new Promise((resolve, reject) => {
    fdatasync(fd, (error) => (error ? reject(error) : resolve()));
  });

export function openSqlite(path: string, options: { syncFile?: SyncFile } = {}): Db {
  if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true });
  const db = new Database(path);
  db.pragma('journal_mode = WAL');
  // Every commit is on disk before its promise resolves: a message marked `sending` must survive a power cut, or it
  // could go out twice without a record; an accepted message must not vanish. SQLite's FULL would fsync inside the
  // commit, and better-sqlite3 would hold the whole event loop — serial ports included — for it (0.6 ms here, several
  // ms on an SD card). So the commit itself does not wait for the disk (NORMAL, which in WAL mode keeps the database
  // consistent and syncs the log before each checkpoint), and the log's file is then synced off the event loop: the
  // caller's promise resolves only after an fdatasync that began after its commit. Commits that come while one runs
  // share the next one.
  db.pragma('synchronous = NORMAL');
  db.pragma('busy_timeout = 5000');
  db.pragma('foreign_keys = ON');
  // SQLite's own checkpoint runs inside whichever commit fills the log past 1000 pages — now and then a commit that
  // takes 10 ms instead of 0.3 (several times that on an SD card), and the whole event loop waits. So the log is folded
  // back when the gateway asks (Storage.checkpoint: when no channel is starting a send, and in housekeeping), and by
  // itself only after CHECKPOINT_HARD writes nobody asked about.
  db.pragma('wal_autocheckpoint = 0');
  let written = 0;
  const fold = () => {
    written = 0;
    db.pragma('wal_checkpoint(PASSIVE)');
  };
  const counted = (statement: Database.Statement) => {
    if (!statement.readonly) written++;
    return statement;
  };
  const syncFile = options.syncFile ?? fdatasyncFile;
  let logFd: number | null = null;
  let syncing: Promise<void> | null = null;
  let next: Promise<void> | null = null;
  /** Resolves once an fdatasync of the log that began after this call has ended. */
  const durable = (): Promise<void> => {
    if (path === ':memory:') return Promise.resolve();
    if (!syncing) {
      if (logFd === null) {
        try {
          logFd = openSync(`${path}-wal`, 'r+');
        } catch (error) {
          // No log yet: nothing was written to it, so there is nothing to make durable.
          if ((error as NodeJS.ErrnoException).code === 'ENOENT') return Promise.resolve();
          throw error;
        }
      }
      syncing = syncFile(logFd).finally(() => {
        syncing = null;
      });
      return syncing;
    }
    // One is under way, perhaps begun before this commit: the next one covers it, and every commit made meanwhile.
    next ??= syncing
      .catch(() => undefined)
      .then(() => {
        next = null;
        return durable();
      });
    return next;
  };
  const mutex = new Mutex();
  // Statements are prepared once: the storage's SQL is a fixed set of strings (parameters go apart), and preparing
  // costs more than running most of them.
  const statements = new Map<string, Database.Statement>();
  const prepared = (sql: string): Database.Statement => {
    let statement = statements.get(sql);
    if (!statement) {
      statement = db.prepare(sql);
      if (statements.size >= 500) statements.delete(statements.keys().next().value!);
      statements.set(sql, statement);
    }
    return statement;
  };
  const direct: Db = {
    dialect: 'sqlite',
    all: async <T>(sql: string, params: Param[] = []) => counted(prepared(sql)).all(...params) as T[],
    run: async (sql: string, params: Param[] = []) => {
      const r = counted(prepared(sql)).run(...params);
      return { changes: r.changes, insertId: Number(r.lastInsertRowid) };
    },
    tx: (fn) => fn(direct),
    checkpoint: async () => undefined,
    close: async () => {
      db.close();
    },
  };
  /** Runs one operation under the mutex; if it wrote, waits (outside the mutex) until its commit is on disk. */
  const operation = async <T>(work: () => Promise<T>): Promise<T> => {
    let wrote = false;
    const result = await mutex.lock(async () => {
      const before = written;
      const value = await work();
      wrote = written !== before;
      // Committed: the log folded back by itself only after many writes nobody asked about (see above).
      if (written >= CHECKPOINT_HARD) fold();
      return value;
    });
    if (wrote) await durable();
    return result;
  };
  return {
    dialect: 'sqlite',
    all: <T>(sql: string, params?: Param[]) => operation(() => direct.all<T>(sql, params)),
    run: (sql, params) => operation(() => direct.run(sql, params)),
    tx: (fn) =>
      operation(async () => {
        db.exec('BEGIN IMMEDIATE');
        try {
          const result = await fn(direct);
          db.exec('COMMIT');
          return result;
        } catch (error) {
          if (db.inTransaction) db.exec('ROLLBACK');
          throw error;
        }
      }),
    checkpoint: (options) =>
      mutex.lock(async () => {
        if (options?.force ? written > 0 : written >= CHECKPOINT_SOFT) fold();
      }),
    close: () =>
      mutex.lock(async () => {
        // Whatever was committed is on disk before the file is let go.
        if (syncing || next) await Promise.allSettled([syncing, next]);
        db.close();
        if (logFd !== null) closeSync(logFd);
        logFd = null;
      }),
  };
}

export function openMysql(url: string): Db {
  const pool = mysql.createPool({ uri: url, connectionLimit: 8, supportBigNumbers: true, bigNumberStrings: false, charset: 'utf8mb4' });
  const over = (conn: mysql.Pool | mysql.PoolConnection): Pick<Db, 'all' | 'run'> => ({
    all: async <T>(sql: string, params: Param[] = []) => {
      const [rows] = await conn.query(sql, params);
      return rows as T[];
    },
    run: async (sql: string, params: Param[] = []) => {
      const [result] = await conn.query(sql, params);
      const r = result as mysql.ResultSetHeader;
      return { changes: r.affectedRows, insertId: Number(r.insertId) };
    },
  });
  // A single statement that InnoDB picked as a deadlock victim was rolled back whole: running it again is safe.
  const direct = over(pool);
  const retried = async <T>(fn: () => Promise<T>): Promise<T> => {
    for (let attempt = 1; ; attempt++) {
      try {
        return await fn();
      } catch (error) {
        if (!isLockConflict(error) || attempt >= 10) throw error;
        await new Promise((r) => setTimeout(r, Math.random() * 20 * attempt));
      }
    }
  };
  const db: Db = {
    dialect: 'mysql',
    all: (sql, params) => retried(() => direct.all(sql, params)),
    run: (sql, params) => retried(() => direct.run(sql, params)),
    tx: async (fn) => {
      // InnoDB resolves lock conflicts between concurrent transactions (gap locks on inserts, FOR UPDATE of a row
      // that does not exist yet) by aborting one as a deadlock; the transaction is then simply run again.
      for (let attempt = 1; ; attempt++) {
        const conn = await pool.getConnection();
        try {
          await conn.beginTransaction();
          const inner: Db = { dialect: 'mysql', ...over(conn), tx: (f) => f(inner), checkpoint: async () => undefined, close: async () => undefined };
          const result = await fn(inner);
          await conn.commit();
          return result;
        } catch (error) {
          await conn.rollback().catch(() => undefined);
          if (isLockConflict(error) && attempt < 10) {
            await new Promise((r) => setTimeout(r, Math.random() * 20 * attempt));
            continue;
          }
          throw error;
        } finally {
          conn.release();
        }
      }
    },
    checkpoint: async () => undefined,
    close: () => pool.end(),
  };
  return db;
}

/** InnoDB gave up on a lock: a deadlock victim, or a wait that timed out. The statement or transaction can run again. */
function isLockConflict(error: unknown): boolean {
  const code = (error as { code?: string }).code;
  return code === 'ER_LOCK_DEADLOCK' || code === 'ER_LOCK_WAIT_TIMEOUT';
}
