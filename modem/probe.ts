/**
 * Port probing: which ttys are modems' AT ports, and which ports belong to one physical modem.
 *
 * Theory of operation (after ModemManager's mm-port-probe). The configured globs are expanded and the paths that
 * lead to one device (`/dev/serial/by-id/…` links and `/dev/ttyUSB0`) are probed once, all devices at the same
 * time. Each is opened under its lock — a port another program holds is skipped and reported, never touched — and
 * sent `AT` a few times with a short timeout: any recognisable answer, `ERROR` included, proves an AT port; only
 * silence means "not AT". An AT port is then identified, and the ports with one IMEI are one modem: a modem with
 * two AT ports is two channels on one SIM. Every step has a timeout, so a silent port cannot hang the probe.
 */
import { readdirSync, realpathSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { ErrorCodes, type SmsgateError } from './errors.js';
import { Modem, type ModemIdentity } from './modem.js';

export const DEFAULT_GLOBS = ['/dev/ttyUSB*', '/dev/ttyACM*', '/dev/serial/by-id/*'];

export interface ProbeOptions {
  globs?: string[];
  /** `AT` attempts per port (default 3). */
  tries?: number;
  /** Milliseconds to wait for each `AT` (default 700). */
  atTimeoutMs?: number;
  lockDir?: string;
  baudRate?: number;
  pin?: string;
}

export interface ProbedModem {
  /** null when the modem would not say (its ports are then listed one per entry). */
  imei: string | null;
  identity: ModemIdentity;
  /** Its AT ports: the channels. */
  ports: string[];
}

export interface ProbeReport {
  modems: ProbedModem[];
  /** Ports that never answered AT (diagnostic, GPS, audio ports of a modem; other devices). */
  silent: string[];
  /** Ports not probed: held by another program, or failing to open. */
  skipped: { path: string; reason: 'locked' | 'open-failed' | 'error'; detail: string }[];
  /** Other names found for a probed device (by-id links), path -> names. */
  aliases: Record<string, string[]>;
}

/** Paths matching a glob whose wildcards (`*`, `?`, `[…]`) are in the last component only. */
export function expandGlob(pattern: string): string[] {
  const dir = dirname(pattern);
  const base = basename(pattern);
  if (/[*?[]/.test(dir)) throw new Error(`glob "${pattern}": wildcards are supported in the last path component only`);
  if (!/[*?[]/.test(base)) return existsEntry(dir, base) ? [pattern] : [];
  const re = new RegExp(`^${base.replace(/[.+^${}()|\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.')}$`);
  let entries: string[];
  try {
    entries = readdirSync(dir);
  } catch {
    return [];
  }
  return entries
    .filter((e) => re.test(e))
    .sort(naturalCompare)
    .map((e) => join(dir, e));
}

function existsEntry(dir: string, name: string): boolean {
  try {
    return readdirSync(dir).includes(name);
  } catch {
    return false;
  }
}

/** "ttyUSB2" before "ttyUSB10". */
function naturalCompare(a: string, b: string): number {
  return a.localeCompare(b, 'en', { numeric: true });
}

/** Probes every port the globs find. */
export async function probe(options: ProbeOptions = {}): Promise<ProbeReport> {
  const byDevice = new Map<string, string[]>();
  for (const pattern of options.globs ?? DEFAULT_GLOBS) {
    for (const path of expandGlob(pattern)) {
      let real: string;
      try {
        real = realpathSync(path);
      } catch {
        continue; // a dangling link
      }
      const names = byDevice.get(real) ?? [];
      if (!names.includes(path)) names.push(path);
      byDevice.set(real, names);
    }
  }
  const report: ProbeReport = { modems: [], silent: [], skipped: [], aliases: {} };
  const found: { path: string; identity: ModemIdentity }[] = [];
  await Promise.all(
    [...byDevice.values()].map(async ([path, ...aliases]) => {
      if (aliases.length > 0) report.aliases[path!] = aliases;
      const outcome = await probeOne(path!, options);
      if (outcome.kind === 'at') found.push({ path: path!, identity: outcome.identity });
      else if (outcome.kind === 'silent') report.silent.push(path!);
      else report.skipped.push({ path: path!, reason: outcome.kind, detail: outcome.detail });
    }),
  );
  for (const { path, identity } of found.sort((a, b) => naturalCompare(a.path, b.path))) {
    const modem = identity.imei === null ? undefined : report.modems.find((m) => m.imei === identity.imei);
    if (modem) modem.ports.push(path);
    else report.modems.push({ imei: identity.imei, identity, ports: [path] });
  }
  report.silent.sort(naturalCompare);
  report.skipped.sort((a, b) => naturalCompare(a.path, b.path));
  return report;
}

type Outcome =
  | { kind: 'at'; identity: ModemIdentity }
  | { kind: 'silent' }
  | { kind: 'locked' | 'open-failed' | 'error'; detail: string };

async function probeOne(path: string, options: ProbeOptions): Promise<Outcome> {
  let modem: Modem;
  try {
    modem = await Modem.open(path, { lockDir: options.lockDir, baudRate: options.baudRate, commandTimeoutMs: 3_000, pin: options.pin });
  } catch (error) {
    const e = error as SmsgateError;
    return { kind: e.code === ErrorCodes.PortLocked ? 'locked' : 'open-failed', detail: e.message };
  }
  try {
    if (!(await modem.ping(options.tries ?? 3, options.atTimeoutMs ?? 700))) return { kind: 'silent' };
    await modem.channel.run('ATE0').catch(() => undefined);
    return { kind: 'at', identity: await modem.identify() };
  } catch (error) {
    return { kind: 'error', detail: (error as Error).message };
  } finally {
    await modem.close().catch(() => undefined);
  }
}
