/**
 * The `smsgate` command line. Each verb parses its own options with node:util's parseArgs (strict: an unknown
 * option is an error), prints its result on stdout (JSON for machine-facing verbs) and reports a failure as one line
 * on stderr. Exit status: 0 success, 1 failed (bad input, modem or network error), 2 wrong usage.
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { ErrorCodes, SmsgateError } from '../modem/errors.js';
import { type EncodingChoice, countSegments, decodePdu, encodeSubmit } from '../modem/pdu/index.js';
import { startGateway } from './gateway.js';
import { type CliIo, UsageError, configOf } from './cli-common.js';
import { queue, send, sim, status } from './cli-admin.js';
import { box } from './cli-box.js';
import { config, token, user } from './cli-users.js';
import { envNames, parseListen } from './config.js';
import { createLogger } from './log.js';
import { systemdNotifier } from './systemd.js';
import { identify, probeCommand, sendsms, simulate } from './cli-modem.js';
import { VERSION } from './version.js';

const HELP = `smsgate ${VERSION}: a self-hosted SMS gateway for USB GSM modems

Usage: smsgate <command> [options]

Commands:
  serve [--config FILE] [--listen HOST:PORT] [--data DIR] [--db sqlite:PATH|mysql://…]
        [--simulate N] [--sim-latency MS] [--glob G]... [--pin PIN] [--lock-dir DIR]
        [--unknown hold|resend] [--retention-days N] [--debug-at PORT] [--log-format auto|json|text]
        Run the gateway: HTTP API, web pages, dispatcher, modems (default 0.0.0.0:8080, data and
        the SQLite database under ./data). Finds the modems, or simulates N under DATA/sim.
        Settings come from the config file (smsgate config example prints every key), then the
        environment (SMSGATE_…), then these flags. A message whose fate is unknown (cut off
        mid-send) is held for a resend on request (default), or with --unknown resend sent again
        at once (the recipient may get it twice). Logs go to stdout (JSON unless on a terminal);
        --debug-at PORT adds that channel's raw AT dialogue. GET /health, /health/ready, /metrics.
  user add NAME [--admin] [--password-stdin] | user passwd NAME [--password-stdin]
  user list [--json] | user disable|enable NAME
        Users: a generated password is printed unless one is piped in; a new password ends
        the user's web sessions; the last enabled admin cannot be disabled.
  token create USER [--label L] | token list [USER] [--json] | token revoke ID
        API tokens (Authorization: Bearer …): printed once, stored as a hash.
  (user, token, status, sim, queue, send and box work on the database the service uses:
   --config FILE (or SMSGATE_CONFIG), --data DIR or --db URL.)
  status [--json]
        Channels (signal, network, health, last error), SIMs (quota used and left), queue depth
        and the oldest queued message, the last errors; fits 80 columns.
  sim list [--json]
  sim set SIM [--label L] [--quota N|none] [--billing-day D] [--pacing MS]
              [--quiet HH:MM-HH:MM|none] [--owner NAME]... [--no-owners] [--enable|--disable]
              [--balance-ussd CODE|none] [--balance-pattern RE|none] [--balance-low AMOUNT|none]
              [--balance-pause|--no-balance-pause]
        SIMs and their settings (SIM: id, IMSI, number or label); the balance code, the pattern
        that reads its answer, the low threshold and whether a low balance pauses the SIM.
  queue list [--state S] [--to DIGITS] [--limit N] [--json] | queue retry ID... | queue cancel ID...
        Messages: retry queues failed or unknown ones again; cancel stops queued ones.
  send --user NAME --to N[,N...] --text T|- [--flash] [--replace N] [--report] [--attempts N]
       [--sim SIM] [--msg-id K] [--send-at TIME] [--json]
        Queue a message as the API does; the running service sends it.
  config example | config check [--config FILE]
        Print the commented config file with every key and its default; check a config file.
  pdu encode --to NUMBER --text TEXT [options]
        Encode an SMS as SMS-SUBMIT PDUs, printed as JSON:
        {"encoding":"gsm7"|"ucs2","reference":N|null,"parts":[{"pdu":HEX,"length":N}]}
        "pdu" is what to write after AT+CMGS's "> " prompt (SMSC field first, 00 = the modem's
        SMSC); "length" is the AT+CMGS argument (TPDU octets, SMSC field excluded).
          --to NUMBER        recipient: +CC... international (type 0x91), digits national (0x81)
          --text TEXT        the message; "-" reads it from standard input
          --flash            flash SMS (message class 0)
          --replace N        replace-ID 1..7 (TP-PID 0x40+N; single-part texts only, as Gammu)
          --report           request a status report (TP-SRR)
          --ref N            concatenation reference (0..255, or 0..65535 with --16bit); random if absent
          --16bit            16-bit concatenation reference (IEI 0x08)
          --validity MINUTES relative validity, rounded up to what TP-VP can say (5 min .. 63 weeks);
                             "none" for no TP-VP; default 63 weeks (0xFF), as Gammu
          --unicode          force UCS-2      --gsm7  force GSM-7 (transliterating what it lacks)
          --smsc NUMBER      put this SMSC in front instead of 00
  pdu decode HEX [--length N]
        Decode a PDU as +CMGL/+CMGR print it (SMSC field first) to JSON: type (deliver, submit,
        status-report), number, text, class, encoding, concat {ref,total,seq}, timestamp (ISO 8601
        with offset), and for status reports reference, status (delivered|pending|failed) and
        statusCode. --length N is the +CMGL/+CMGR <length>: a PDU of exactly N octets has no SMSC field.
  pdu count --text TEXT [--16bit] [--unicode|--gsm7]
        Encoding, parts and units left in the last part, as JSON.
  identify --port P [--baud B] [--pin PIN]
        Identify the modem and SIM on one AT port, as JSON: manufacturer, model, revision, imei,
        imsi, iccid, number, operator, registration, signal (dBm), rssi.
  probe [--glob G]... [--json]
        Find modems: try AT on every port the globs match (default /dev/ttyUSB* /dev/ttyACM*
        /dev/serial/by-id/*), group the AT ports by IMEI, report silent and locked ports.
  sendsms TEXT NUMBER (--port P | -s N) [-text T] [-unicode] [-autolen N] [-len N] [-flash]
          [-replacemessages N] [-report] [-validity HOUR|6HOURS|DAY|3DAYS|WEEK|MAX|MINUTES]
          [-smscnumber N] [-maxsms N] [-16bit] [--pin PIN]
        Send at once through one modem, as "gammu sendsms" does (the text from -text or stdin;
        -s N is the Nth channel "probe" lists, from 0). Exit 0 only when every part was accepted.
  simulate --dir DIR [--modems N] [--ports K] [--at-ports LIST] [--latency MS] [--first N]
           [--flavour generic|huawei|zte|simcom|quectel[,…]] [--noise]
        Run virtual modems on pseudo-terminals DIR/ttyUSB<n> until stopped; what the network
        receives goes to DIR/network.jsonl; faults and events through DIR/control.sock (README).
  box add NAME --host H [--port 22] --user U --key FILE [--fingerprint SHA256:… | --yes]
  box channel NAME --imsi IMSI -- COMMAND…   (e.g. -- gammu -s 0, or -- smsgate --port /dev/ttyUSB2)
  box list [--json] | box remove NAME
        Remote boxes reached over SSH: add shows the host key's fingerprint and pins it once
        accepted; channel registers one of the box's modems. With --data DIR or --db URL.
  help, --help, -h    this text
  version, --version  the version

Options for modem commands: --lock-dir DIR (UUCP lock files, default /var/lock).
Errors go to stderr as one line; exit status 0 only on success (1 failure, 2 wrong usage).
`;

export type { CliIo } from './cli-common.js';

/** The environment variables smsgate reads (SMSGATE_CONFIG and one per config key). */
const KNOWN_ENV = new Set(['SMSGATE_CONFIG', ...envNames()]);

const defaultIo: CliIo = {
  stdout: (line) => process.stdout.write(`${line}\n`),
  stderr: (line) => process.stderr.write(`${line}\n`),
  readStdin: () => readFileSync(0, 'utf8'),
};

/**
 * The help of one command: the blocks of HELP whose first line starts with it (an entry runs until the next line
 * that starts a command at the same indentation).
 */
export function commandHelp(command: string): string | null {
  const lines = HELP.split('\n');
  const out: string[] = [];
  let inside = false;
  for (const line of lines) {
    const starts = /^ {2}\S/.test(line);
    if (starts) inside = line.slice(2).split(/\s/)[0] === command || line.includes(`| ${command} `);
    else if (!/^ {4,}/.test(line)) inside = false;
    if (inside) out.push(line);
  }
  return out.length > 0 ? `Usage: smsgate ${command} …\n\n${out.join('\n')}` : null;
}

/** Runs the CLI; resolves to the exit status (serve resolves only when the server stops). */
export async function main(argv: string[], io: CliIo = defaultIo): Promise<number> {
  const [command, ...rest] = argv;
  // `smsgate VERB --help` (or -h) anywhere among a verb's options: that verb's help. Not after "--" (box channel).
  const beforeDashes = rest.includes('--') ? rest.slice(0, rest.indexOf('--')) : rest;
  if (command && !command.startsWith('-') && command !== 'help' && beforeDashes.includes('--help')) {
    const help = commandHelp(command);
    if (help) {
      io.stdout(help.trimEnd());
      return 0;
    }
  }
  try {
    switch (command) {
      case undefined:
        io.stderr(HELP.trimEnd());
        return 2;
      case 'help':
      case '--help':
      case '-h':
        io.stdout(HELP.trimEnd());
        return 0;
      case 'version':
      case '--version':
        io.stdout(VERSION);
        return 0;
      case 'pdu':
        return pdu(rest, io);
      case 'serve':
        return await serve(rest, io);
      case 'identify':
        return await identify(rest, io);
      case 'probe':
        return await probeCommand(rest, io);
      case 'sendsms':
        return await sendsms(rest, io);
      case 'simulate':
        return await simulate(rest, io);
      case 'box':
        return await box(rest, io);
      case 'user':
        return await user(rest, io);
      case 'token':
        return await token(rest, io);
      case 'config':
        return await config(rest, io);
      case 'status':
        return await status(rest, io);
      case 'sim':
        return await sim(rest, io);
      case 'queue':
        return await queue(rest, io);
      case 'send':
        return await send(rest, io);
      default:
        throw new UsageError(`unknown command "${command}"`);
    }
  } catch (error) {
    // Name the verb in the message: "pdu encode: …", "serve: …".
    const verb = command === 'pdu' && rest[0] && !rest[0].startsWith('-') ? `pdu ${rest[0]}` : command;
    return report(error, verb, io);
  }
}

function report(error: unknown, verb: string | undefined, io: CliIo): number {
  const where = verb ? `${verb}: ` : '';
  // One line, whatever the input the message quotes held.
  const line = (text: string) => io.stderr(text.replace(/\r?\n|\r/g, '\\n'));
  if (error instanceof UsageError || isParseArgsError(error)) {
    line(`smsgate: ${where}${(error as Error).message} (see smsgate --help)`);
    return 2;
  }
  if (error instanceof SmsgateError) {
    line(`smsgate: ${where}${error.message} [${error.code}]`);
    return 1;
  }
  line(`smsgate: ${where}${error instanceof Error ? error.message : String(error)}`);
  return 1;
}

function isParseArgsError(error: unknown): boolean {
  const code = (error as { code?: unknown })?.code;
  return typeof code === 'string' && code.startsWith('ERR_PARSE_ARGS');
}

function parse<T extends NonNullable<ParseArgsConfig['options']>>(args: string[], options: T, positionals = false) {
  return parseArgs({ args, options, strict: true, allowPositionals: positionals });
}

function pdu(args: string[], io: CliIo): number {
  const [sub, ...rest] = args;
  switch (sub) {
    case 'encode':
      return pduEncode(rest, io);
    case 'decode':
      return pduDecode(rest, io);
    case 'count':
      return pduCount(rest, io);
    default:
      throw new UsageError(sub ? `unknown pdu command "${sub}" (encode, decode, count)` : 'pdu needs encode, decode or count');
  }
}

const ENCODING_OPTIONS = {
  unicode: { type: 'boolean' },
  gsm7: { type: 'boolean' },
  '16bit': { type: 'boolean' },
} as const;

function encodingChoice(values: { unicode?: boolean; gsm7?: boolean }): EncodingChoice {
  if (values.unicode && values.gsm7) throw new UsageError('--unicode and --gsm7 exclude each other');
  return values.unicode ? 'ucs2' : values.gsm7 ? 'gsm7' : 'auto';
}

function textOption(text: string | undefined, io: CliIo): string {
  if (text === undefined) throw new UsageError('--text is required');
  const value = text === '-' ? io.readStdin().replace(/\r?\n$/, '') : text;
  if (value === '') throw new SmsgateError(ErrorCodes.BadMessage, 'the text is empty', 'text');
  return value;
}

function pduEncode(args: string[], io: CliIo): number {
  const { values } = parse(args, {
    to: { type: 'string' },
    text: { type: 'string' },
    flash: { type: 'boolean' },
    replace: { type: 'string' },
    report: { type: 'boolean' },
    ref: { type: 'string' },
    validity: { type: 'string' },
    smsc: { type: 'string' },
    ...ENCODING_OPTIONS,
  });
  if (values.to === undefined) throw new UsageError('--to is required');
  const message = encodeSubmit({
    to: values.to,
    text: textOption(values.text, io),
    encoding: encodingChoice(values),
    flash: values.flash,
    replace: integerOption(values.replace, '--replace'),
    report: values.report,
    reference: integerOption(values.ref, '--ref'),
    concat16: values['16bit'],
    validity: values.validity === 'none' ? null : numberOption(values.validity, '--validity'),
    smsc: values.smsc,
  });
  for (const warning of message.warnings) io.stderr(`smsgate: pdu encode: warning: ${warning}`);
  io.stdout(
    JSON.stringify({
      encoding: message.encoding,
      reference: message.reference,
      parts: message.parts.map(({ pdu, length }) => ({ pdu, length })),
    }),
  );
  return 0;
}

function pduDecode(args: string[], io: CliIo): number {
  const { values, positionals } = parse(args, { length: { type: 'string' } }, true);
  if (positionals.length === 0) throw new UsageError('pdu decode needs the PDU in hex');
  // Hex may come split over several arguments (copied with spaces); it is one PDU.
  const hex = positionals.join('');
  const decoded = decodePdu(hex, { tpduLength: integerOption(values.length, '--length') });
  for (const warning of decoded.warnings) io.stderr(`smsgate: pdu decode: warning: ${warning}`);
  // The fields most readers want first, then the rest of what the PDU says.
  const { type, number, text, class: messageClass, encoding, concat, timestamp, warnings: _w, ...more } = decoded;
  io.stdout(JSON.stringify({ type, number, text, class: messageClass, encoding, concat, timestamp, ...more }));
  return 0;
}

function pduCount(args: string[], io: CliIo): number {
  const { values } = parse(args, { text: { type: 'string' }, ...ENCODING_OPTIONS });
  io.stdout(
    JSON.stringify(countSegments(textOption(values.text, io), { encoding: encodingChoice(values), concat16: values['16bit'] })),
  );
  return 0;
}

function integerOption(value: string | undefined, name: string): number | undefined {
  if (value === undefined) return undefined;
  if (!/^\d+$/.test(value)) throw new UsageError(`${name} takes a whole number, got "${value}"`);
  return Number(value);
}

function numberOption(value: string | undefined, name: string): number | undefined {
  if (value === undefined) return undefined;
  if (!/^\d+(\.\d+)?$/.test(value)) throw new UsageError(`${name} takes a number, got "${value}"`);
  return Number(value);
}

async function serve(args: string[], io: CliIo): Promise<number> {
  const { values } = parse(args, {
    config: { type: 'string' },
    listen: { type: 'string' },
    data: { type: 'string' },
    db: { type: 'string' },
    simulate: { type: 'string' },
    'sim-latency': { type: 'string' },
    glob: { type: 'string', multiple: true },
    pin: { type: 'string' },
    'lock-dir': { type: 'string' },
    unknown: { type: 'string' },
    'retention-days': { type: 'string' },
    'debug-at': { type: 'string' },
    'log-format': { type: 'string' },
  });
  if (values.unknown !== undefined && values.unknown !== 'hold' && values.unknown !== 'resend') {
    throw new UsageError(`--unknown takes hold or resend, got "${values.unknown}"`);
  }
  // The config file (and the environment), then the flags over them.
  const config = configOf(values);
  if (values.listen !== undefined) {
    try {
      parseListen(values.listen);
    } catch {
      throw new UsageError(`--listen takes HOST:PORT, got "${values.listen}"`);
    }
    config.listen = values.listen;
  }
  parseListen(config.listen);
  const simulate = integerOption(values.simulate, '--simulate');
  if (simulate !== undefined) config.simulate.modems = simulate;
  config.simulate.latencyMs = integerOption(values['sim-latency'], '--sim-latency') ?? config.simulate.latencyMs;
  if (values.glob) config.modems.globs = values.glob;
  if (values.pin !== undefined) config.modems.pin = values.pin;
  if (values['lock-dir'] !== undefined) config.modems.lockDir = values['lock-dir'];
  if (values.unknown) config.dispatch.onUnknown = values.unknown as 'hold' | 'resend';
  config.dispatch.retentionDays = integerOption(values['retention-days'], '--retention-days') ?? config.dispatch.retentionDays;
  if (values['debug-at'] !== undefined) config.log.debugAt = values['debug-at'];
  if (values['log-format'] !== undefined) {
    if (!['auto', 'json', 'text'].includes(values['log-format'])) throw new UsageError(`--log-format takes auto, json or text, got "${values['log-format']}"`);
    config.log.format = values['log-format'] as 'auto' | 'json' | 'text';
  }
  const logger = createLogger({ format: config.log.format, write: io.stdout });
  // A stop asked for while the gateway starts (probing can take a while) waits for the start, then stops it.
  let stopRequested: string | null = null;
  let onStop: ((signal: string) => void) | null = null;
  const requestStop = (signal: string) => {
    if (onStop) onStop(signal);
    else stopRequested = signal;
  };
  process.once('SIGINT', () => requestStop('SIGINT'));
  process.once('SIGTERM', () => requestStop('SIGTERM'));
  for (const name of Object.keys(process.env)) {
    if (name.startsWith('SMSGATE_') && !KNOWN_ENV.has(name)) logger.warn(`unknown environment variable ${name} (ignored; see smsgate config example)`);
  }
  const dataDir = resolve(config.dataDir);
  const gateway = await startGateway({ config, log: logger.log });
  logger.log(`smsgate ${VERSION} listening on ${gateway.url} (data in ${dataDir})`, { url: gateway.url, data: dataDir });
  // Under systemd: ready now, and a watchdog that pings only while the gateway is well.
  const systemd = systemdNotifier(process.env, logger.warn);
  systemd.notify('READY=1');
  systemd.startWatchdog(() => gateway.healthy());
  return new Promise((done) => {
    onStop = (signal: string) => {
      logger.log(`${signal}: stopping (the sends in flight finish first)`);
      systemd.notify('STOPPING=1');
      gateway
        .stop()
        .then(
          () => done(0),
          (error: unknown) => {
            io.stderr(`smsgate: serve: stopping failed: ${(error as Error).message}`);
            done(1);
          },
        )
        .finally(() => systemd.close());
    };
    if (stopRequested) onStop(stopRequested);
  });
}
