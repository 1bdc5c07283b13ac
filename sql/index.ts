/** Opens the storage a `--db` URL names: `sqlite:PATH` (the default, under the data directory) or `mysql://…`. */
import { join } from 'node:path';
import { ErrorCodes, SmsgateError } from '../modem/errors.js';
import { openMysql, openSqlite } from './db.js';
import { Storage } from './storage.js';

export { Storage } from './storage.js';
export type * from './storage.js';
export type * from './inbox.js';

/** The default database: an SQLite file in the data directory. */
export function defaultDbUrl(dataDir: string): string {
  return `sqlite:${join(dataDir, 'smsgate.db')}`;
}

/** Opens and migrates the database. */
export async function openStorage(url: string): Promise<Storage> {
  let storage: Storage;
  if (url.startsWith('sqlite:')) storage = new Storage(openSqlite(url.slice('sqlite:'.length)));
  else if (url.startsWith('mysql://') || url.startsWith('mariadb://')) storage = new Storage(openMysql(url.replace(/^mariadb:/, 'mysql:')));
  else throw new SmsgateError(ErrorCodes.Usage, `the database URL must start with sqlite: or mysql://, got "${url}"`, 'db');
  try {
    await storage.migrate();
  } catch (error) {
    await storage.close().catch(() => undefined);
    throw error;
  }
  return storage;
}
