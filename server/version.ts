/** The package version, read once from package.json (two levels up from both server/ and dist/server/). */
import { readFileSync } from 'node:fs';

function findVersion(): string {
  for (const path of ['../package.json', '../../package.json']) {
    try {
      const pkg = JSON.parse(readFileSync(new URL(path, import.meta.url), 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'smsgate' && pkg.version) return pkg.version;
    } catch {
      // not at this level
    }
  }
  return 'unknown';
}

export const VERSION = findVersion();
