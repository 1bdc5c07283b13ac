/** What every CLI verb shares: its input/output, the usage error (exit status 2), and the way to the database. */
import { resolve } from 'node:path';
import { type ParseArgsConfig, parseArgs } from 'node:util';
import { defaultDbUrl, openStorage } from '../sql/index.js';
import type { Storage } from '../sql/storage.js';
import { type Config, loadConfig } from './config.js';

/** Raised for wrong usage: exit status 2 and a hint to see --help. */
export class UsageError extends Error {}

export interface CliIo {
  stdout: (line: string) => void;
  stderr: (line: string) => void;
  readStdin: () => string;
}

/** The options that say which database a verb works on: the config file's, or --data DIR / --db URL over it. */
export const DB_OPTIONS = { config: { type: 'string' }, data: { type: 'string' }, db: { type: 'string' } } as const;

/** A database verb's options (strict; positionals allowed): its own, plus --config, --data and --db. */
export function parseDbVerb<T extends NonNullable<ParseArgsConfig['options']>>(args: string[], options: T) {
  return parseArgs({ args, options: { ...DB_OPTIONS, ...options } as typeof DB_OPTIONS & T, strict: true, allowPositionals: true });
}

/** The configuration as `serve` would read it (file, environment), with --data and --db over it. */
export function configOf(values: { config?: string; data?: string; db?: string }): Config {
  const config = loadConfig({ file: values.config ?? process.env.SMSGATE_CONFIG });
  if (values.data !== undefined) config.dataDir = values.data;
  if (values.db !== undefined) config.db = values.db;
  return config;
}

export async function storageOf(values: { config?: string; data?: string; db?: string }): Promise<Storage> {
  const config = configOf(values);
  return openStorage(config.db || defaultDbUrl(resolve(config.dataDir)));
}

/** Runs `fn` with the storage open, and closes it whatever happens. */
export async function withStorage<T>(values: { config?: string; data?: string; db?: string }, fn: (storage: Storage) => Promise<T>): Promise<T> {
  const storage = await storageOf(values);
  try {
    return await fn(storage);
  } finally {
    await storage.close();
  }
}
