/**
 * The CLI verbs that talk to modems: `identify`, `probe`, the Gammu-compatible `sendsms`, and `simulate`.
 */
import { parseArgs } from 'node:util';
import { ErrorCodes, SmsgateError } from '../modem/errors.js';
import { Modem } from '../modem/modem.js';
import { type EncodingChoice, encodeSubmit, MAX_VALIDITY_MINUTES } from '../modem/pdu/index.js';
import { DEFAULT_GLOBS, probe } from '../modem/probe.js';
import { Simulator } from '../modem/simulator/simulator.js';
import type { Flavour } from '../modem/simulator/sim-modem.js';
import { type CliIo, UsageError } from './cli-common.js';

const PORT_OPTIONS = {
  port: { type: 'string' },
  baud: { type: 'string' },
  pin: { type: 'string' },
  'lock-dir': { type: 'string' },
} as const;

function whole(value: string | undefined, name: string): number | undefined {
  if (value === undefined) return undefined;
  if (!/^\d+$/.test(value)) throw new UsageError(`${name} takes a whole number, got "${value}"`);
  return Number(value);
}

/** `smsgate identify --port P`: who the modem and its SIM are, as JSON. */
export async function identify(args: string[], io: CliIo): Promise<number> {
  const { values } = parseArgs({ args, options: PORT_OPTIONS, strict: true });
  if (!values.port) throw new UsageError('--port is required');
  const modem = await Modem.open(values.port, { baudRate: whole(values.baud, '--baud'), pin: values.pin, lockDir: values['lock-dir'] });
  try {
    // With a PIN, unlock the SIM so that IMSI and ICCID can be read; without, only wake the modem.
    if (values.pin) await modem.init();
    else await modem.wake();
    const id = await modem.identify();
    io.stdout(
      JSON.stringify({
        port: values.port,
        manufacturer: id.manufacturer,
        model: id.model,
        revision: id.revision,
        imei: id.imei,
        imsi: id.imsi,
        iccid: id.iccid,
        number: id.number,
        operator: id.operator,
        registration: id.registration,
        signal: id.signalDbm,
        rssi: id.rssi,
      }),
    );
    return 0;
  } finally {
    await modem.close();
  }
}

/** `smsgate probe [--glob G]… [--json]`: the modems found, their AT ports, and the ports left alone. */
export async function probeCommand(args: string[], io: CliIo): Promise<number> {
  const { values } = parseArgs({
    args,
    options: { glob: { type: 'string', multiple: true }, json: { type: 'boolean' }, pin: { type: 'string' }, 'lock-dir': { type: 'string' } },
    strict: true,
  });
  const report = await probe({ globs: values.glob ?? DEFAULT_GLOBS, lockDir: values['lock-dir'], pin: values.pin });
  if (values.json) {
    io.stdout(JSON.stringify(report));
    return 0;
  }
  if (report.modems.length === 0) io.stdout(`No modem found on ${(values.glob ?? DEFAULT_GLOBS).join(' ')}.`);
  report.modems.forEach((m, i) => {
    const id = m.identity;
    io.stdout(`Modem ${i}: ${id.manufacturer ?? '?'} ${id.model ?? '?'}, IMEI ${m.imei ?? 'unknown'}`);
    io.stdout(`  SIM: IMSI ${id.imsi ?? '-'}, ICCID ${id.iccid ?? '-'}${id.number ? `, number ${id.number}` : ''}`);
    io.stdout(`  network: ${id.operator ?? '-'} (${id.registration}), signal ${id.signalDbm === null ? 'unknown' : `${id.signalDbm} dBm`}`);
    io.stdout(`  channels: ${m.ports.join(', ')}`);
  });
  if (report.silent.length > 0) io.stdout(`Silent (not AT): ${report.silent.join(', ')}`);
  for (const s of report.skipped) io.stdout(`Skipped ${s.path}: ${s.detail}`);
  return 0;
}

/** Gammu's -validity words, in minutes. */
const VALIDITY_WORDS: Record<string, number> = {
  HOUR: 60,
  '6HOURS': 360,
  DAY: 1440,
  '3DAYS': 4320,
  WEEK: 10080,
  MAX: MAX_VALIDITY_MINUTES,
};

interface SendsmsArgs {
  number: string;
  text: string | null;
  encoding: EncodingChoice;
  flash: boolean;
  replace?: number;
  report: boolean;
  validity?: number;
  len?: number;
  maxsms?: number;
  concat16: boolean;
  smsc?: string;
  port?: string;
  section?: number;
  baud?: number;
  pin?: string;
  lockDir?: string;
}

/**
 * Gammu's syntax: `sendsms TEXT <number> [-text T | -textutf8 T] [-unicode] [-autolen N] [-len N] [-flash]
 * [-replacemessages N] [-report] [-validity HOUR|6HOURS|DAY|3DAYS|WEEK|MAX|<minutes>] [-smscnumber N] [-maxsms N]
 * [-16bit]`, plus ours: `--port P` (or Gammu's `-s N`), `--baud B`, `--pin PIN`, `--lock-dir DIR`.
 */
export function parseSendsms(args: string[]): SendsmsArgs {
  const [type, number, ...rest] = args;
  if (type?.toUpperCase() !== 'TEXT') throw new UsageError('sendsms supports the TEXT message type: smsgate sendsms TEXT <number> …');
  if (!number || number.startsWith('-')) throw new UsageError('sendsms TEXT needs the recipient number');
  const out: SendsmsArgs = { number, text: null, encoding: 'auto', flash: false, report: false, concat16: false };
  for (let i = 0; i < rest.length; i++) {
    const option = rest[i]!;
    const value = (): string => {
      const v = rest[++i];
      if (v === undefined) throw new UsageError(`${option} needs a value`);
      return v;
    };
    switch (option) {
      case '-text':
      case '-textutf8':
        out.text = value();
        break;
      case '-unicode':
        out.encoding = 'ucs2';
        break;
      case '-autolen':
        whole(value(), '-autolen'); // Gammu: concatenate as needed, which smsgate always does
        break;
      case '-len':
        out.len = whole(value(), '-len');
        break;
      case '-flash':
        out.flash = true;
        break;
      case '-replacemessages':
        out.replace = whole(value(), '-replacemessages');
        break;
      case '-report':
        out.report = true;
        break;
      case '-validity': {
        const v = value().toUpperCase();
        out.validity = VALIDITY_WORDS[v] ?? whole(v, '-validity (HOUR, 6HOURS, DAY, 3DAYS, WEEK, MAX or minutes)');
        break;
      }
      case '-smscnumber':
        out.smsc = value();
        break;
      case '-maxsms':
        out.maxsms = whole(value(), '-maxsms');
        break;
      case '-16bit':
        out.concat16 = true;
        break;
      case '--port':
        out.port = value();
        break;
      case '-s':
        out.section = whole(value(), '-s');
        break;
      case '--baud':
        out.baud = whole(value(), '--baud');
        break;
      case '--pin':
        out.pin = value();
        break;
      case '--lock-dir':
        out.lockDir = value();
        break;
      default:
        throw new UsageError(`sendsms: unknown option "${option}"`);
    }
  }
  if (out.port === undefined && out.section === undefined) throw new UsageError('sendsms needs --port P or -s N');
  return out;
}

/** `smsgate sendsms TEXT <number> …`: sends through one modem at once, like `gammu sendsms`. */
export async function sendsms(args: string[], io: CliIo): Promise<number> {
  const options = parseSendsms(args);
  let text = options.text ?? io.readStdin().replace(/\r?\n$/, '');
  if (options.len !== undefined) text = [...text].slice(0, options.len).join('');
  if (text === '') throw new SmsgateError(ErrorCodes.BadMessage, 'the text is empty', 'text');
  const message = encodeSubmit({
    to: options.number,
    text,
    encoding: options.encoding,
    flash: options.flash,
    replace: options.replace,
    report: options.report,
    validity: options.validity,
    concat16: options.concat16,
    smsc: options.smsc,
  });
  if (options.maxsms !== undefined && message.parts.length > options.maxsms) {
    throw new SmsgateError(ErrorCodes.BadMessage, `the text needs ${message.parts.length} parts, -maxsms allows ${options.maxsms}`, 'text');
  }
  for (const warning of message.warnings) io.stderr(`smsgate: sendsms: warning: ${warning}`);
  const port = options.port ?? (await channelBySection(options.section!, options));
  const modem = await Modem.open(port, { baudRate: options.baud, pin: options.pin, lockDir: options.lockDir });
  try {
    await modem.init();
    const results = await modem.send(message.parts);
    const total = results.length;
    for (const [i, result] of results.entries()) {
      if (result.status === 'sent') {
        io.stdout(`Sending SMS ${i + 1}/${total}....waiting for network answer..OK, message reference=${result.reference}`);
      } else if (result.status === 'failed') {
        const e = result.error;
        throw new SmsgateError(e.code, `part ${i + 1}/${total} not sent: ${e.message}${e.retry ? ` (${e.retry})` : ''}`, {
          ...(e.modemCode === undefined ? {} : { modemCode: e.modemCode }),
          ...(e.retry === undefined ? {} : { retry: e.retry }),
        });
      }
    }
    return 0;
  } finally {
    await modem.close();
  }
}

/** Gammu's `-s N`: the Nth channel (0-based, as Gammu's config sections) of those probing finds, modems by IMEI. */
async function channelBySection(section: number, options: SendsmsArgs): Promise<string> {
  const report = await probe({ lockDir: options.lockDir, pin: options.pin });
  const channels = report.modems.flatMap((m) => m.ports);
  const port = channels[section];
  if (!port) throw new UsageError(`-s ${section}: only ${channels.length} channel(s) found (see smsgate probe)`);
  return port;
}

/** `smsgate simulate --dir DIR …`: runs virtual modems on ptys until SIGINT/SIGTERM. */
export async function simulate(args: string[], io: CliIo): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      dir: { type: 'string' },
      modems: { type: 'string' },
      ports: { type: 'string' },
      'at-ports': { type: 'string' },
      latency: { type: 'string' },
      flavour: { type: 'string' },
      noise: { type: 'boolean' },
      first: { type: 'string' },
    },
    strict: true,
  });
  if (!values.dir) throw new UsageError('--dir is required');
  const flavours = values.flavour?.split(',') as Flavour[] | undefined;
  const known: Flavour[] = ['generic', 'huawei', 'zte', 'simcom', 'quectel'];
  for (const f of flavours ?? []) if (!known.includes(f)) throw new UsageError(`--flavour: "${f}" is not one of ${known.join(', ')}`);
  const atPorts = values['at-ports']?.split(',').map((p) => whole(p.trim(), '--at-ports')!);
  const sim = await Simulator.start({
    dir: values.dir,
    modems: whole(values.modems, '--modems'),
    ports: whole(values.ports, '--ports'),
    atPorts,
    latencyMs: whole(values.latency, '--latency'),
    flavour: flavours && flavours.length === 1 ? flavours[0] : flavours,
    noise: values.noise,
    firstIndex: whole(values.first, '--first'),
    control: true,
  });
  io.stdout(JSON.stringify({ dir: sim.dir, network: sim.networkFile, control: sim.controlSocket, modems: sim.info() }));
  await new Promise<void>((resolve) => {
    process.once('SIGINT', () => resolve());
    process.once('SIGTERM', () => resolve());
  });
  await sim.stop();
  return 0;
}
