/** Where the project lives and which version it is: the directory with smsgate's package.json above this file. */
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The project's root (the same from server/ and dist/server/). */
export const PROJECT_ROOT = (() => {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    try {
      const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { name?: string };
      if (pkg.name === 'smsgate') return dir;
    } catch {
      // not at this level
    }
    const up = dirname(dir);
    if (up === dir) throw new Error('smsgate: cannot find the project root (package.json)');
    dir = up;
  }
})();

export const VERSION = (JSON.parse(readFileSync(join(PROJECT_ROOT, 'package.json'), 'utf8')) as { version?: string }).version ?? 'unknown';
