/**
 * SQLite as the gateway runs it. Durable commits without holding the event loop: a write resolves only after an
 * fdatasync of the write-ahead log that began after its commit, run off the loop and shared by the commits made
 * while one runs. And the log is folded back when the gateway asks (Db.checkpoint), not inside whichever commit
 * happens to fill it, and by itself only after many writes nobody asked about: its file stays bounded either way.
 */
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { type Db, type SyncFile, openSqlite } from '../../sql/db.js';

const dirs: string[] = [];
const dbs: Db[] = [];
afterEach(async () => {
  for (const db of dbs.splice(0)) await db.close();
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

async function open(syncFile?: SyncFile): Promise<{ db: Db; wal: () => number; created: Promise<unknown> }> {
  const dir = mkdtempSync(join(tmpdir(), 'smsgate-sqlite-'));
  dirs.push(dir);
  const path = join(dir, 'test.db');
  const db = openSqlite(path, { syncFile });
  dbs.push(db);
  // With a sync the test holds, the table's creation resolves only when the test lets its sync end.
  const created = db.run('CREATE TABLE t (id INTEGER PRIMARY KEY, body TEXT NOT NULL)');
  if (!syncFile) await created;
  return { db, wal: () => statSync(`${path}-wal`).size, created };
}

/** `n` writes, each its own commit, of about a page each. */
async function write(db: Db, n: number): Promise<void> {
  for (let i = 0; i < n; i++) await db.run('INSERT INTO t (body) VALUES (?)', ['x'.repeat(3000)]);
}

describe('durable commits', () => {
  const tick = () => new Promise((r) => setTimeout(r, 20));

  it('resolves a write only after a sync of the log that began after its commit; commits made meanwhile share the next', async () => {
    const syncs: { fd: number; done: () => void }[] = [];
    const { db, created } = await open((fd) => new Promise<void>((resolve) => syncs.push({ fd, done: resolve })));
    await tick();
    expect(syncs).toHaveLength(1);
    syncs[0]!.done();
    await created;
    const settled: string[] = [];
    const track = (name: string, p: Promise<unknown>) => p.then(() => settled.push(name));
    // A write whose sync is under way...
    const zero = track('zero', db.run('INSERT INTO t (body) VALUES (?)', ['z']));
    await tick();
    expect(syncs).toHaveLength(2);
    // ...and two more commits while it runs.
    const first = track('first', db.tx(async (tx) => tx.run('INSERT INTO t (body) VALUES (?)', ['a'])));
    const second = track('second', db.run('INSERT INTO t (body) VALUES (?)', ['b']));
    await tick();
    // Committed (a reader sees them at once), not yet durable: nobody has been told.
    expect(await db.all<{ body: string }>('SELECT body FROM t ORDER BY id')).toEqual([{ body: 'z' }, { body: 'a' }, { body: 'b' }]);
    expect(settled).toEqual([]);
    expect(syncs).toHaveLength(2);
    // The sync under way began before those two commits: it answers only the first write; they wait for the next.
    syncs[1]!.done();
    await zero;
    await tick();
    expect(settled).toEqual(['zero']);
    expect(syncs).toHaveLength(3);
    syncs[2]!.done();
    await Promise.all([first, second]);
    expect(settled.slice(1).sort()).toEqual(['first', 'second']);
    // Two commits, one sync; always the log's file.
    expect(syncs).toHaveLength(3);
    expect(syncs.every((s) => s.fd === syncs[0]!.fd)).toBe(true);
    // A read waits for no sync.
    expect(await db.all('SELECT COUNT(*) AS n FROM t')).toEqual([{ n: 3 }]);
    expect(syncs).toHaveLength(3);
  });

  it('does not make a write that failed wait for the disk', async () => {
    const syncs: (() => void)[] = [];
    const { db, created } = await open(() => new Promise<void>((resolve) => syncs.push(resolve)));
    await tick();
    syncs.splice(0).forEach((done) => done());
    await created;
    await expect(db.tx(async (tx) => tx.run('INSERT INTO nowhere VALUES (1)'))).rejects.toThrow(/no such table/);
    expect(syncs).toHaveLength(0);
  });
});

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
