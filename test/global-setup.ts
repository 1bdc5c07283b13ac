/**
 * Runs once before the tests: builds the project, so the CLI tests run the compiled `dist/server/smsgate.js` as
 * users do, and type-checks the tests themselves (vitest only strips their types).
 */
import { execFileSync } from 'node:child_process';
import { chmodSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export default function setup(): void {
  const root = join(dirname(fileURLToPath(import.meta.url)), '..');
  const tsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc');
  execFileSync(process.execPath, [tsc, '-p', join(root, 'tsconfig.json')], { stdio: 'inherit' });
  execFileSync(process.execPath, [tsc, '-p', join(root, 'test', 'tsconfig.json')], { stdio: 'inherit' });
  // As `npm run build` leaves them: the commands (package.json "bin") executable, even in a tree built only here.
  for (const bin of ['server/smsgate.js', 'server/integrations/billmanager.js']) chmodSync(join(root, 'dist', bin), 0o755);
}
