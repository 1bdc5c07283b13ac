/** Runs the built `smsgate` command as a user would, or its main() in-process with captured output. */
import { spawn, spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { main } from '../../server/cli.js';

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const BIN = join(ROOT, 'dist', 'server', 'smsgate.js');

export interface CliResult {
  status: number;
  stdout: string;
  stderr: string;
}

/** `node bin/smsgate.js ...args` in a child process. */
export function runCli(args: string[], input?: string): CliResult {
  const run = spawnSync(process.execPath, [BIN, ...args], { input, encoding: 'utf8', timeout: 20_000 });
  return { status: run.status ?? -1, stdout: run.stdout, stderr: run.stderr };
}

/** main() in this process, for fast checks of what each verb prints. */
export async function runMain(args: string[], input = ''): Promise<CliResult> {
  const out: string[] = [];
  const err: string[] = [];
  const status = await main(args, { stdout: (l) => out.push(l), stderr: (l) => err.push(l), readStdin: () => input });
  return { status, stdout: out.join('\n'), stderr: err.join('\n') };
}

/** Starts `smsgate serve` and resolves with the child and the URL it printed. */
export function startServe(args: string[]): Promise<{ child: ReturnType<typeof spawn>; url: string; output: () => string }> {
  const child = spawn(process.execPath, [BIN, 'serve', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`serve did not start: ${output}`));
    }, 60_000);
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      const m = /listening on (http:\/\/\S+)/.exec(output);
      if (m) {
        clearTimeout(timer);
        resolve({ child, url: m[1]!, output: () => output });
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`serve exited with ${code}: ${output}`));
    });
  });
}
