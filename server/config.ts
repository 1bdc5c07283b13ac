/**
 * The gateway's configuration: one TOML file (`--config FILE`, or SMSGATE_CONFIG), every key documented below,
 * environment overrides for containers, command-line flags over both. An unknown key, a value of the wrong type or
 * out of range is an error at start-up that names the key and where it came from: a typo never passes silently.
 *
 * The documentation of each key lives here, once: `smsgate config example` prints the commented file from it.
 */
import { readFileSync } from 'node:fs';
import cron from 'node-cron';
import { parse as parseToml, TomlError } from 'smol-toml';
import { ErrorCodes, SmsgateError } from '../modem/errors.js';

type Kind = 'string' | 'int' | 'bool' | 'strings' | 'tables';
type Value = string | number | boolean | string[] | Record<string, string>[];

interface KeySpec {
  kind: Kind;
  default: Value;
  doc: string;
  min?: number;
  max?: number;
  /** Allowed values of a string. */
  oneOf?: string[];
  /** A list of tables ([[section.key]]): their string fields, the required ones marked. */
  fields?: Record<string, { required?: boolean; doc: string }>;
}

/** Sections and their keys; "" is the top level. */
const SCHEMA: Record<string, Record<string, KeySpec>> = {
  '': {
    data_dir: { kind: 'string', default: './data', doc: 'Where the SQLite database, the simulator and other state live.' },
    db: {
      kind: 'string',
      default: '',
      doc: 'The database: "sqlite:/path/file.db" or "mysql://user:password@host:3306/smsgate".\nEmpty: SQLite in data_dir (smsgate.db).',
    },
    listen: { kind: 'string', default: '0.0.0.0:8080', doc: 'HOST:PORT the HTTP API and the web pages listen on.' },
    trust_proxy: {
      kind: 'string',
      default: '',
      doc: 'Behind a reverse proxy (nginx), which proxies to believe about the client address (X-Forwarded-For),\nwhich the login limits count by: "loopback" (a proxy on this box), a number of hops ("1"), or\naddresses and subnets ("10.0.0.1, 192.168.0.0/16"). Empty: none (the connection\'s address counts).',
    },
  },
  send: {
    default_country_code: {
      kind: 'string',
      default: '',
      doc: 'Country calling code for national numbers, e.g. "7" (8 916 123-45-67 -> +79161234567) or "49".\nEmpty: national numbers are sent as they are written (type "national").',
    },
    max_recipients: { kind: 'int', default: 10000, min: 1, max: 100_000, doc: 'The most recipients one request may name.' },
    max_text_length: { kind: 'int', default: 2000, min: 1, max: 39015, doc: 'The longest text, in characters.' },
    default_attempts: { kind: 'int', default: 3, min: 1, max: 20, doc: 'Attempts per message when a request does not say.' },
    max_attempts: { kind: 'int', default: 10, min: 1, max: 100, doc: 'The most attempts a request may ask for.' },
  },
  auth: {
    max_failures: {
      kind: 'int',
      default: 10,
      min: 1,
      max: 10_000,
      doc: 'Failed logins allowed per client address, and per user name, within failure_window_s;\nafter that the address (or name) gets 429 until the window passes.',
    },
    failure_window_s: { kind: 'int', default: 900, min: 1, max: 86_400, doc: 'The window of max_failures, in seconds.' },
    session_hours: { kind: 'int', default: 12, min: 1, max: 24 * 90, doc: 'How long a web login lasts.' },
    bcrypt_cost: { kind: 'int', default: 10, min: 4, max: 15, doc: 'bcrypt cost of new password hashes (each +1 doubles the work).' },
  },
  dispatch: {
    on_unknown: {
      kind: 'string',
      default: 'hold',
      oneOf: ['hold', 'resend'],
      doc: 'A message cut off mid-send (its fate unknown): "hold" it for a resend on request,\nor "resend" it at once (the recipient may get it twice).',
    },
    retention_days: { kind: 'int', default: 90, min: 0, max: 36_500, doc: 'Days of finished messages and events to keep (0 = for ever).' },
  },
  callbacks: {
    secret: {
      kind: 'string',
      default: '',
      doc: 'HMAC-SHA256 key that signs callbacks (X-Smsgate-Signature).\nEmpty: one is generated once and kept in the database (table settings, name callback_secret).',
    },
    max_attempts: { kind: 'int', default: 10, min: 1, max: 100, doc: 'Tries per callback before it is given up (back-off 10 s, doubling, at most 1 h).' },
    timeout_ms: { kind: 'int', default: 10_000, min: 100, max: 120_000, doc: 'How long a receiver may take to answer.' },
  },
  modems: {
    globs: {
      kind: 'strings',
      default: ['/dev/ttyUSB*', '/dev/ttyACM*', '/dev/serial/by-id/*'],
      doc: 'Ports to probe for modems.',
    },
    pin: { kind: 'string', default: '', doc: "The SIMs' PIN, when they ask for one." },
    lock_dir: { kind: 'string', default: '/var/lock', doc: 'UUCP lock files, shared with Gammu and minicom.' },
  },
  log: {
    format: {
      kind: 'string',
      default: 'auto',
      oneOf: ['auto', 'json', 'text'],
      doc: 'Log lines on stdout: "json" (for journald: every field searchable), "text", or "auto"\n(json unless stdout is a terminal).',
    },
    debug_at: {
      kind: 'string',
      default: '',
      doc: "Log the raw AT dialogue of the channel on this port (e.g. /dev/ttyUSB2); empty: none.",
    },
  },
  inbound: {
    sweep_s: {
      kind: 'int',
      default: 60,
      min: 5,
      max: 86_400,
      doc: "How often each SIM's storage is read (AT+CMGL) besides the modem's announcements (+CMTI):\nsome modems announce nothing.",
    },
    incomplete_wait_s: {
      kind: 'int',
      default: 3600,
      min: 10,
      max: 30 * 86_400,
      doc: 'How long the parts of a concatenated message wait for the rest; then it is shown and\ndelivered incomplete ("[…]" for each missing part), and a late part still completes it.',
    },
    webhooks: { kind: 'strings', default: [], doc: 'URLs that get every received message as a signed JSON POST (like callbacks).' },
    command: {
      kind: 'strings',
      default: [],
      doc: 'A command run for every received message, like gammu-smsd RunOnReceive: the program and its\narguments, run without a shell; the message id is added as the last argument and the message is in\nthe environment (SMS_1_NUMBER, SMS_1_TEXT, SMSGATE_FROM, SMSGATE_TEXT, … see the README).',
    },
    command_timeout_s: { kind: 'int', default: 30, min: 1, max: 3600, doc: 'How long the command may run before it is killed (and retried).' },
    max_attempts: { kind: 'int', default: 10, min: 1, max: 100, doc: 'Tries per webhook, command or forward before it is given up (back-off 10 s, doubling, at most 1 h).' },
    forward: {
      kind: 'tables',
      default: [],
      doc: 'Forwarding rules, one [[inbound.forward]] table each: received messages that match are sent on\nas SMS "From <sender>: <text>" to the rule\'s number.',
      fields: {
        to: { required: true, doc: 'The number to forward to.' },
        sim: { doc: 'Only messages that came in on this SIM (id, IMSI, number or label); absent: every SIM.' },
        from: { doc: 'Only senders matching this regular expression (e.g. "^\\+7900"); absent: every sender.' },
        user: { doc: 'The user the forwarded message is sent as (default: the first admin).' },
      },
    },
  },
  balance: {
    schedule: {
      kind: 'string',
      default: '17 */6 * * *',
      doc: "When the balance of every SIM with a balance code is asked (cron: minute hour day month weekday,\noptionally seconds first); empty: only on demand.",
    },
    ussd: { kind: 'string', default: '', doc: 'The balance USSD code of SIMs that set none (e.g. "*100#"); empty: such SIMs are not asked.' },
    pattern: {
      kind: 'string',
      default: '',
      doc: 'A regular expression that finds the amount in the answer (its first group, or a group named\n"amount"; "currency" may name the currency); empty: the built-in reader, which understands\nanswers such as "Баланс: 123,45 р." and "Balance 12.30 USD".',
    },
    low: { kind: 'string', default: '', doc: 'The low-balance threshold of SIMs that set none (e.g. "50"); empty: no alert.' },
  },
  alerts: {
    webhooks: { kind: 'strings', default: [], doc: 'URLs that get alerts (low balance, a channel given up) as signed JSON POSTs.' },
    sms_to: { kind: 'strings', default: [], doc: "Admins' numbers that get alerts by SMS." },
  },
  watchdog: {
    reset: {
      kind: 'bool',
      default: true,
      doc: 'When re-initialising a channel that stopped answering does not help, restart its modem\n(AT+CFUN=1,1 or the vendor\'s reset) and wait for its port to come back (found again by IMEI).',
    },
    reappear_s: { kind: 'int', default: 90, min: 5, max: 3600, doc: 'How long to wait for a restarted modem to come back.' },
  },
  simulate: {
    modems: { kind: 'int', default: 0, min: 0, max: 64, doc: 'Run this many simulated modems instead of probing (0 = use real modems).' },
    latency_ms: { kind: 'int', default: 2000, min: 0, max: 600_000, doc: "The simulated network's time per message part." },
  },
};

export interface Config {
  dataDir: string;
  db: string;
  listen: string;
  trustProxy: string;
  send: { defaultCountryCode: string; maxRecipients: number; maxTextLength: number; defaultAttempts: number; maxAttempts: number };
  auth: { maxFailures: number; failureWindowS: number; sessionHours: number; bcryptCost: number };
  dispatch: { onUnknown: 'hold' | 'resend'; retentionDays: number };
  callbacks: { secret: string; maxAttempts: number; timeoutMs: number };
  modems: { globs: string[]; pin: string; lockDir: string };
  inbound: {
    sweepS: number;
    incompleteWaitS: number;
    webhooks: string[];
    command: string[];
    commandTimeoutS: number;
    maxAttempts: number;
    forward: ForwardRule[];
  };
  balance: { schedule: string; ussd: string; pattern: string; low: string };
  alerts: { webhooks: string[]; smsTo: string[] };
  watchdog: { reset: boolean; reappearS: number };
  log: { format: 'auto' | 'json' | 'text'; debugAt: string };
  simulate: { modems: number; latencyMs: number };
}

/** A forwarding rule as the config gives it. */
export interface ForwardRule {
  to: string;
  sim?: string;
  from?: string;
  user?: string;
}

const camel = (key: string) => key.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase());

function fail(message: string, key: string): never {
  throw new SmsgateError(ErrorCodes.BadMessage, message, key);
}

/** Checks one value against its key's spec; `raw` strings (environment) are converted first. */
function checkValue(spec: KeySpec, value: unknown, name: string, where: string, raw: boolean): Value {
  let v = value;
  if (raw && typeof v === 'string') {
    if (spec.kind === 'int') v = /^-?\d+$/.test(v.trim()) ? Number(v.trim()) : v;
    else if (spec.kind === 'bool') v = /^(1|true|yes|on)$/i.test(v) ? true : /^(0|false|no|off)$/i.test(v) ? false : v;
    else if (spec.kind === 'strings') v = v.split(/[,\s]+/).filter(Boolean);
    else if (spec.kind === 'tables') {
      try {
        v = JSON.parse(v);
      } catch {
        fail(`${where}: ${name} must be a JSON list of tables`, name);
      }
    }
  }
  switch (spec.kind) {
    case 'string':
      if (typeof v !== 'string') fail(`${where}: ${name} must be a string`, name);
      if (spec.oneOf && !spec.oneOf.includes(v)) fail(`${where}: ${name} must be one of ${spec.oneOf.join(', ')} (not "${v}")`, name);
      return v;
    case 'int':
      if (typeof v !== 'number' || !Number.isInteger(v)) fail(`${where}: ${name} must be a whole number`, name);
      if ((spec.min !== undefined && v < spec.min) || (spec.max !== undefined && v > spec.max)) {
        fail(`${where}: ${name} must be between ${spec.min} and ${spec.max} (not ${v})`, name);
      }
      return v;
    case 'bool':
      if (typeof v !== 'boolean') fail(`${where}: ${name} must be true or false`, name);
      return v;
    case 'strings':
      if (!Array.isArray(v) || !v.every((x) => typeof x === 'string')) fail(`${where}: ${name} must be a list of strings`, name);
      return v as string[];
    case 'tables': {
      if (!Array.isArray(v)) fail(`${where}: ${name} must be a list of tables ([[${name}]])`, name);
      return v.map((table: unknown, i) => {
        const at = `${name}[${i}]`;
        if (typeof table !== 'object' || table === null || Array.isArray(table)) fail(`${where}: ${at} must be a table`, at);
        for (const [field, value] of Object.entries(table)) {
          if (!spec.fields?.[field]) fail(`${where}: unknown key "${at}.${field}" (known: ${Object.keys(spec.fields ?? {}).join(', ')})`, `${at}.${field}`);
          if (typeof value !== 'string') fail(`${where}: ${at}.${field} must be a string`, `${at}.${field}`);
        }
        for (const [field, f] of Object.entries(spec.fields ?? {})) {
          if (f.required && !(field in table)) fail(`${where}: ${at} needs ${field}`, `${at}.${field}`);
        }
        return table as Record<string, string>;
      });
    }
  }
}

/** Every environment variable a config key can be set by. */
export function envNames(): string[] {
  return Object.entries(SCHEMA).flatMap(([section, keys]) => Object.keys(keys).map((key) => envName(section, key)));
}

/** The environment variable of a key: SMSGATE_LISTEN, SMSGATE_SEND_MAX_RECIPIENTS, … */
export function envName(section: string, key: string): string {
  return `SMSGATE_${section ? `${section}_` : ''}${key}`.toUpperCase();
}

/**
 * The configuration from the defaults, the file (when given), then the environment. Throws SmsgateError naming the
 * key for an unknown key or a bad value.
 */
export function loadConfig(options: { file?: string; env?: NodeJS.ProcessEnv } = {}): Config {
  const values: Record<string, Record<string, Value>> = {};
  for (const [section, keys] of Object.entries(SCHEMA)) {
    values[section] = Object.fromEntries(Object.entries(keys).map(([k, spec]) => [k, spec.default]));
  }
  if (options.file) {
    let text: string;
    try {
      text = readFileSync(options.file, 'utf8');
    } catch (error) {
      throw new SmsgateError(ErrorCodes.BadMessage, `cannot read the config file ${options.file}: ${(error as Error).message}`, 'config');
    }
    let doc: Record<string, unknown>;
    try {
      doc = parseToml(text) as Record<string, unknown>;
    } catch (error) {
      const where = error instanceof TomlError ? ` (line ${error.line}, column ${error.column})` : '';
      throw new SmsgateError(ErrorCodes.BadMessage, `${options.file}${where}: not valid TOML: ${(error as Error).message.split('\n')[0]}`, 'config');
    }
    for (const [name, value] of Object.entries(doc)) {
      const top = SCHEMA['']![name];
      if (top) {
        values['']![name] = checkValue(top, value, name, options.file, false);
        continue;
      }
      const section = SCHEMA[name];
      if (!section || name === '') fail(`${options.file}: unknown key "${name}" (see smsgate config example)`, name);
      if (typeof value !== 'object' || value === null || Array.isArray(value)) fail(`${options.file}: [${name}] must be a section`, name);
      for (const [key, v] of Object.entries(value as Record<string, unknown>)) {
        const spec = section[key];
        if (!spec) fail(`${options.file}: unknown key "${name}.${key}" (see smsgate config example)`, `${name}.${key}`);
        values[name]![key] = checkValue(spec, v, `${name}.${key}`, options.file, false);
      }
    }
  }
  const env = options.env ?? process.env;
  for (const [section, keys] of Object.entries(SCHEMA)) {
    for (const [key, spec] of Object.entries(keys)) {
      const name = envName(section, key);
      const v = env[name];
      if (v !== undefined) values[section]![key] = checkValue(spec, v, section ? `${section}.${key}` : key, `environment ${name}`, true);
    }
  }
  checkValues(values);
  const top = values['']!;
  const shape = (section: string) => Object.fromEntries(Object.entries(values[section]!).map(([k, v]) => [camel(k), v]));
  return {
    dataDir: top.data_dir as string,
    db: top.db as string,
    listen: top.listen as string,
    trustProxy: top.trust_proxy as string,
    send: shape('send') as Config['send'],
    auth: shape('auth') as Config['auth'],
    dispatch: shape('dispatch') as Config['dispatch'],
    callbacks: shape('callbacks') as Config['callbacks'],
    modems: shape('modems') as Config['modems'],
    inbound: shape('inbound') as unknown as Config['inbound'],
    balance: shape('balance') as Config['balance'],
    alerts: shape('alerts') as Config['alerts'],
    watchdog: shape('watchdog') as Config['watchdog'],
    log: shape('log') as Config['log'],
    simulate: shape('simulate') as Config['simulate'],
  };
}

/** Checks that go beyond one value's type: URLs, the cron schedule, the rules' patterns. */
function checkValues(values: Record<string, Record<string, Value>>): void {
  for (const [section, key] of [
    ['inbound', 'webhooks'],
    ['alerts', 'webhooks'],
  ] as const) {
    for (const url of values[section]![key] as string[]) {
      let ok = false;
      try {
        ok = ['http:', 'https:'].includes(new URL(url).protocol);
      } catch {
        ok = false;
      }
      if (!ok) fail(`${section}.${key}: "${url}" is not an http(s) URL`, `${section}.${key}`);
    }
  }
  const schedule = values.balance!.schedule as string;
  if (schedule && !cron.validate(schedule)) fail(`balance.schedule: "${schedule}" is not a cron expression (e.g. "17 */6 * * *")`, 'balance.schedule');
  (values.inbound!.forward as Record<string, string>[]).forEach((rule, i) => {
    if (rule.from === undefined) return;
    try {
      new RegExp(rule.from);
    } catch (error) {
      fail(`inbound.forward[${i}].from is not a regular expression: ${(error as Error).message}`, `inbound.forward[${i}].from`);
    }
  });
  const pattern = values.balance!.pattern as string;
  if (pattern) {
    try {
      new RegExp(pattern, 'iu');
    } catch (error) {
      fail(`balance.pattern is not a regular expression: ${(error as Error).message}`, 'balance.pattern');
    }
  }
}

/** The defaults, as a config object (tests, the bare server). */
export function defaultConfig(): Config {
  return loadConfig({ env: {} });
}

/** "HOST:PORT", "[IPv6]:PORT" or "PORT" alone (all interfaces) -> its parts. */
export function parseListen(text: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d{1,5})$/.exec(text.trim()) ?? /^()()(\d{1,5})$/.exec(text.trim());
  const port = m ? Number(m[3]) : NaN;
  if (!m || port > 65535) throw new SmsgateError(ErrorCodes.BadMessage, `listen takes HOST:PORT (e.g. 0.0.0.0:8080, [::1]:8080), got "${text}"`, 'listen');
  return { host: m[1] || m[2] || '0.0.0.0', port };
}

/** The commented example file, every key with its default. */
export function exampleConfig(): string {
  const lines = [
    '# smsgate configuration (TOML). Every key is optional; the value shown is the default.',
    '# Each key can also be set in the environment: SMSGATE_<SECTION>_<KEY>, e.g. SMSGATE_LISTEN,',
    '# SMSGATE_SEND_DEFAULT_COUNTRY_CODE=7. Command-line flags win over both. Unknown keys are errors.',
    '',
  ];
  for (const [section, keys] of Object.entries(SCHEMA)) {
    if (section) lines.push(`[${section}]`);
    for (const [key, spec] of Object.entries(keys)) {
      for (const doc of spec.doc.split('\n')) lines.push(`# ${doc}`);
      if (spec.kind === 'tables') {
        lines.push(`# (environment: ${envName(section, key)}, as JSON)`);
        lines.push(`# [[${section}.${key}]]`);
        for (const [field, f] of Object.entries(spec.fields ?? {})) lines.push(`# ${field} = "…"   # ${f.required ? 'required. ' : ''}${f.doc}`);
      } else {
        lines.push(`# (environment: ${envName(section, key)})`);
        lines.push(`${key} = ${JSON.stringify(spec.default)}`);
      }
      lines.push('');
    }
  }
  return lines.join('\n');
}
