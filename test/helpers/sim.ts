/**
 * A fresh simulator for one test: its own temporary directory and lock directory, port numbers that collide with
 * nothing else on the machine (Gammu's lock files live in the shared /var/lock), and a clean stop.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { connect } from 'node:net';
import { join } from 'node:path';
import { Simulator, type SimulatorOptions } from '../../modem/simulator/simulator.js';

let nextIndex = 1000 + (process.pid % 500) * 40;

export interface TestSim {
  sim: Simulator;
  dir: string;
  lockDir: string;
  stop(): Promise<void>;
}

export async function startSim(options: Omit<SimulatorOptions, 'dir'> = {}): Promise<TestSim> {
  const root = mkdtempSync(join(tmpdir(), 'smsgate-sim-'));
  const dir = join(root, 'dev');
  const lockDir = join(root, 'lock');
  const { mkdirSync } = await import('node:fs');
  mkdirSync(lockDir);
  const firstIndex = options.firstIndex ?? nextIndex;
  nextIndex += (options.modems ?? 1) * (options.ports ?? 1) + 10;
  const sim = await Simulator.start({ latencyMs: 5, ...options, dir, firstIndex });
  return {
    sim,
    dir,
    lockDir,
    stop: async () => {
      await sim.stop();
      rmSync(root, { recursive: true, force: true });
    },
  };
}

/** Waits until `check` holds, polling; fails after `ms`. */
export async function waitFor(check: () => boolean, ms = 15_000): Promise<void> {
  const until = Date.now() + ms;
  while (!check()) {
    if (Date.now() > until) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** One request to a running simulator's control socket (DIR/control.sock); resolves to its JSON answer. */
export function simControl(socketPath: string, request: object): Promise<{ ok: boolean; [key: string]: unknown }> {
  return new Promise((resolve, reject) => {
    const socket = connect(socketPath, () => socket.write(`${JSON.stringify(request)}\n`));
    let buffer = '';
    socket.on('data', (d) => {
      buffer += d.toString();
      if (!buffer.includes('\n')) return;
      resolve(JSON.parse(buffer.slice(0, buffer.indexOf('\n'))) as { ok: boolean });
      socket.end();
    });
    socket.on('error', reject);
  });
}
