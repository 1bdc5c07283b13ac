/** The project's shell scripts are shellcheck clean, each for the shell its first line names. */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT } from './helpers/cli.js';

describe('shell scripts', () => {
  it.each(['install.sh', 'test/prerequisites.sh', '.ci/run'])('%s passes shellcheck', (script) => {
    const r = spawnSync('shellcheck', [join(ROOT, script)], { encoding: 'utf8' });
    expect(r.error, 'shellcheck is missing: apt-get install shellcheck (test/prerequisites.sh does)').toBeUndefined();
    expect(r.stdout + r.stderr).toBe('');
    expect(r.status).toBe(0);
  });
});
