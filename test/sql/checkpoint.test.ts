/**
 * SQLite's write-ahead log is folded back when the gateway asks (Db.checkpoint), not inside whichever commit happens
 * to fill it, and by itself only after many writes nobody asked about: the log's file stays bounded either way.
 */
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { type Db, openSqlite } from '../../sql/db.js';

const dirs: string[] = [];
const dbs: Db[] = [];
afterEach(async () => {
  for (const db of dbs.splice(0)) await db.close();
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

async function open(): Promise<{ db: Db; wal: () => number }> {
  const dir = mkdtempSync(join(tmpdir(), 'smsgate-ckpt-'));
  dirs.push(dir);
  const path = join(dir, 'test.db');
  const db = openSqlite(path);
  dbs.push(db);
  await db.run('CREATE TABLE t (id INTEGER PRIMARY KEY, body TEXT NOT NULL)');
  return { db, wal: () => statSync(`${path}-wal`).size };
}

/** `n` writes, each its own commit, of about a page each. */
async function write(db: Db, n: number): Promise<void> {
  for (let i = 0; i < n; i++) await db.run('INSERT INTO t (body) VALUES (?)', ['x'.repeat(3000)]);
}

describe('SQLite checkpoints', () => {
  it('leaves the log alone in a commit, and folds it back when asked', async () => {
    const { db, wal } = await open();
    await write(db, 300);
    const grown = wal();
    // Without a checkpoint the log only grows: 300 more writes make it about twice as large.
    await write(db, 300);
    expect(wal()).toBeGreaterThan(grown * 1.7);
    const before = wal();
    // Folded back: the next writes start the log from its beginning again, and it does not grow.
    await db.checkpoint();
    await write(db, 300);
    expect(wal()).toBeLessThanOrEqual(before);
  });

  it('asked with too little written, does nothing; forced, folds whatever there is', async () => {
    const { db, wal } = await open();
    await write(db, 20);
    await db.checkpoint();
    await write(db, 200);
    const unfolded = wal();
    await db.checkpoint({ force: true });
    await write(db, 200);
    expect(wal()).toBeLessThanOrEqual(unfolded);
  });

  it('folds the log by itself after many writes nobody asked about: it stays bounded', async () => {
    const { db, wal } = await open();
    await write(db, 1500);
    const bounded = wal();
    await write(db, 1500);
    // Reused from its beginning after each fold (the high-water mark moves only with how the pages fall).
    expect(wal()).toBeLessThanOrEqual(bounded * 1.05);
    // 3000 page-sized writes unfolded would be over 30 MB of log.
    expect(wal()).toBeLessThan(20_000_000);
  });
});
