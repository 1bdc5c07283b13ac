/**
 * The admin's everyday verbs over SSH, on the database the service uses (--config FILE, --data DIR or --db URL):
 *
 *   status [--json]                         channels, SIMs, signal, quota, queue depth, last errors (80 columns)
 *   sim list [--json]
 *   sim set SIM [--label L] [--quota N|none] [--billing-day D] [--pacing MS] [--quiet HH:MM-HH:MM|none]
 *               [--owner NAME]... [--no-owners] [--enable|--disable]
 *   queue list [--state S] [--to DIGITS] [--limit N] [--json]
 *   queue retry ID… | queue cancel ID…
 *   send --user NAME --to N[,N…] (--text T | --text -) [--flash] [--replace N] [--report] [--attempts N]
 *        [--sim SIM] [--msg-id K] [--send-at TIME]
 *
 * `send` goes through the queue as the API does (the running service's dispatcher picks it up within a second).
 * SIM settings are checked by the same code as PATCH /api/v1/sims/:id.
 */
import { ErrorCodes, SmsgateError } from '../modem/errors.js';
import { billingPeriod } from '../scheduler/rules.js';
import { MESSAGE_STATES, type Message, type MessageState, type Storage } from '../sql/storage.js';
import { simPatch } from './api.js';
import { type CliIo, UsageError, parseDbVerb, configOf, withStorage } from './cli-common.js';
import { findSim, prepareSend } from './requests.js';

/** Table lines without the padding of their last cell. */
function trimmed(io: CliIo): CliIo {
  return { ...io, stdout: (line) => io.stdout(line.trimEnd()) };
}



/** Cuts a cell to `width` (with an ellipsis) and pads it. */
function cell(value: unknown, width: number, right = false): string {
  let text = value === null || value === undefined ? '-' : String(value).replace(/[\r\n\t]+/g, ' ');
  if ([...text].length > width) text = `${[...text].slice(0, width - 1).join('')}…`;
  const pad = ' '.repeat(Math.max(0, width - [...text].length));
  return right ? pad + text : text + pad;
}

function ago(at: number | null, now: number): string {
  if (at === null) return '-';
  const s = Math.max(0, Math.round((now - at) / 1000));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.round(s / 60)}m`;
  if (s < 86_400) return `${Math.round(s / 3600)}h`;
  return `${Math.round(s / 86_400)}d`;
}

interface SimRow {
  id: number;
  name: string;
  operator: string | null;
  enabled: boolean;
  used: number;
  quota: number | null;
  left: number | null;
  owners: string[];
  quiet: string | null;
  pacingMs: number;
  billingDay: number;
}

async function simRows(storage: Storage, now: number): Promise<SimRow[]> {
  const users = new Map((await storage.listUsers()).map((u) => [u.id, u.name]));
  const rows: SimRow[] = [];
  for (const s of await storage.listSims()) {
    const usage = await storage.usage(s.id, billingPeriod(s.billingDay, now));
    const used = usage.used + usage.reserved;
    rows.push({
      id: s.id,
      name: s.label ?? s.number ?? s.imsi,
      operator: s.operator,
      enabled: s.enabled,
      used,
      quota: s.monthlyQuota,
      left: s.monthlyQuota === null ? null : Math.max(0, s.monthlyQuota - used),
      owners: (await storage.simOwners(s.id)).map((id) => users.get(id) ?? String(id)),
      quiet: s.quietStart && s.quietEnd ? `${s.quietStart}-${s.quietEnd}` : null,
      pacingMs: s.pacingMs,
      billingDay: s.billingDay,
    });
  }
  return rows;
}

async function statusData(storage: Storage, now: number) {
  const counts = await storage.countByState();
  const oldest = await storage.oldestDue(now);
  const sims = await simRows(storage, now);
  const simName = new Map(sims.map((s) => [s.id, s.name]));
  const boxes = new Map((await storage.listBoxes()).map((b) => [b.id, b.name]));
  const channels = (await storage.listChannels()).map((c) => ({
    id: c.id,
    port: c.boxId === 0 ? c.port : `${boxes.get(c.boxId) ?? c.boxId}:${c.port}`,
    sim: c.simId === null ? null : (simName.get(c.simId) ?? String(c.simId)),
    signalDbm: c.signalDbm,
    registration: c.registration,
    healthy: c.healthy,
    lastSeenAt: c.lastSeenAt,
    lastError: c.lastError,
  }));
  const errors = (await storage.listEvents({ limit: 200 }))
    .filter((e) => e.kind === 'message.attempt-failed' || e.kind === 'channel.unhealthy' || e.kind === 'callback.failed')
    .slice(0, 5)
    .map((e) => ({ at: e.at, kind: e.kind, messageId: e.messageId, text: String((e.detail as { text?: string; error?: string } | null)?.text ?? (e.detail as { error?: string } | null)?.error ?? '') }));
  return { queue: { ...counts, oldestQueuedAt: oldest }, channels, sims, errors };
}

export async function status(args: string[], rawIo: CliIo): Promise<number> {
  const io = trimmed(rawIo);
  const { values, positionals } = parseDbVerb(args, { json: { type: 'boolean' } });
  if (positionals.length > 0) throw new UsageError('status takes no arguments');
  const now = Date.now();
  const data = await withStorage(values, (storage) => statusData(storage, now));
  if (values.json) {
    io.stdout(JSON.stringify(data));
    return 0;
  }
  const q = data.queue as Partial<Record<MessageState, number>> & { oldestQueuedAt: number | null };
  const parts = MESSAGE_STATES.filter((s) => (q[s] ?? 0) > 0).map((s) => `${q[s]} ${s}`);
  io.stdout(`Queue: ${parts.length ? parts.join(', ') : 'empty'}${q.oldestQueuedAt !== null ? ` (oldest queued ${ago(q.oldestQueuedAt, now)} ago)` : ''}`);
  io.stdout('');
  io.stdout(`${cell('CHANNEL', 24)} ${cell('SIM', 16)} ${cell('SIGNAL', 7, true)} ${cell('NET', 8)} ${cell('HEALTH', 9)} ${cell('SEEN', 5, true)}`);
  if (data.channels.length === 0) io.stdout('(no channel yet: start the service with modems attached)');
  for (const c of data.channels) {
    io.stdout(
      `${cell(c.port, 24)} ${cell(c.sim, 16)} ${cell(c.signalDbm === null ? '-' : `${c.signalDbm}dBm`, 7, true)} ${cell(c.registration, 8)} ${cell(c.healthy ? 'ok' : 'UNHEALTHY', 9)} ${cell(ago(c.lastSeenAt, now), 5, true)}`,
    );
    if (c.lastError) io.stdout(`  ${cell(`last error: ${c.lastError}`, 76)}`);
  }
  io.stdout('');
  io.stdout(`${cell('ID', 4, true)} ${cell('SIM', 20)} ${cell('OPERATOR', 12)} ${cell('USED', 7, true)} ${cell('LEFT', 9, true)} ${cell('STATE', 8)} ${cell('OWNERS', 12)}`);
  for (const s of data.sims) {
    io.stdout(
      `${cell(s.id, 4, true)} ${cell(s.name, 20)} ${cell(s.operator, 12)} ${cell(s.used, 7, true)} ${cell(s.left === null ? 'unlimited' : s.left, 9, true)} ${cell(s.enabled ? 'enabled' : 'disabled', 8)} ${cell(s.owners.join(',') || '-', 12)}`,
    );
  }
  if (data.errors.length > 0) {
    io.stdout('');
    io.stdout('Last errors:');
    for (const e of data.errors) io.stdout(`  ${cell(`${ago(e.at, now)} ago ${e.messageId !== null ? `msg ${e.messageId}: ` : ''}${e.text || e.kind}`, 76)}`);
  }
  return 0;
}

export async function sim(args: string[], rawIo: CliIo): Promise<number> {
  const io = trimmed(rawIo);
  const [verb, ...rest] = args;
  switch (verb) {
    case 'list': {
      const { values, positionals } = parseDbVerb(rest, { json: { type: 'boolean' } });
      if (positionals.length > 0) throw new UsageError('sim list takes no arguments');
      const rows = await withStorage(values, (storage) => simRows(storage, Date.now()));
      if (values.json) {
        io.stdout(JSON.stringify(rows));
        return 0;
      }
      io.stdout(`${cell('ID', 4, true)} ${cell('SIM', 18)} ${cell('USED', 6, true)} ${cell('QUOTA', 9, true)} ${cell('DAY', 3, true)} ${cell('PACING', 7, true)} ${cell('QUIET', 11)} ${cell('OWNERS', 14)}`);
      for (const s of rows) {
        io.stdout(
          `${cell(s.id, 4, true)} ${cell(`${s.name}${s.enabled ? '' : ' (off)'}`, 18)} ${cell(s.used, 6, true)} ${cell(s.quota ?? 'unlimited', 9, true)} ${cell(s.billingDay, 3, true)} ${cell(`${s.pacingMs}ms`, 7, true)} ${cell(s.quiet, 11)} ${cell(s.owners.join(',') || '-', 14)}`,
        );
      }
      return 0;
    }
    case 'set': {
      const { values, positionals } = parseDbVerb(rest, {
        label: { type: 'string' },
        quota: { type: 'string' },
        'billing-day': { type: 'string' },
        pacing: { type: 'string' },
        quiet: { type: 'string' },
        owner: { type: 'string', multiple: true },
        'no-owners': { type: 'boolean' },
        enable: { type: 'boolean' },
        disable: { type: 'boolean' },
        'balance-ussd': { type: 'string' },
        'balance-pattern': { type: 'string' },
        'balance-low': { type: 'string' },
        'balance-pause': { type: 'boolean' },
        'no-balance-pause': { type: 'boolean' },
      });
      if (positionals.length !== 1) throw new UsageError('sim set takes one SIM (id, IMSI, number or label)');
      if (values['balance-pause'] && values['no-balance-pause']) throw new UsageError('--balance-pause and --no-balance-pause exclude each other');
      if (values.enable && values.disable) throw new UsageError('--enable and --disable exclude each other');
      if (values.owner && values['no-owners']) throw new UsageError('--owner and --no-owners exclude each other');
      // The flags as the API's PATCH body, checked by the same code.
      const body: Record<string, unknown> = {};
      if (values.label !== undefined) body.label = values.label;
      if (values.quota !== undefined) body.monthly_quota = values.quota === 'none' ? null : values.quota;
      if (values['billing-day'] !== undefined) body.billing_day = values['billing-day'];
      if (values.pacing !== undefined) body.pacing_ms = values.pacing;
      if (values.quiet !== undefined) {
        if (values.quiet === 'none') {
          body.quiet_start = null;
          body.quiet_end = null;
        } else {
          const m = /^(\d{2}:\d{2})-(\d{2}:\d{2})$/.exec(values.quiet);
          if (!m) throw new UsageError(`--quiet takes HH:MM-HH:MM or none, got "${values.quiet}"`);
          body.quiet_start = m[1];
          body.quiet_end = m[2];
        }
      }
      if (values.owner) body.owners = values.owner;
      if (values['no-owners']) body.owners = [];
      if (values.enable) body.enabled = true;
      if (values.disable) body.enabled = false;
      for (const key of ['balance-ussd', 'balance-pattern', 'balance-low'] as const) {
        if (values[key] !== undefined) body[key.replace(/-/g, '_')] = values[key] === 'none' ? null : values[key];
      }
      if (values['balance-pause']) body.balance_pause = true;
      if (values['no-balance-pause']) body.balance_pause = false;
      if (Object.keys(body).length === 0) throw new UsageError('sim set needs at least one setting (see smsgate --help)');
      const updated = await withStorage(values, async (storage) => {
        const target = findSim(await storage.listSims(), positionals[0], 'sim');
        const { settings, owners } = await simPatch(storage, body, target);
        const s = await storage.updateSim(target.id, settings);
        if (owners) await storage.setSimOwners(target.id, owners);
        // The running service looks at the waiting messages again (as after a change through the API).
        await storage.wakeWaiting();
        await storage.logEvent({ kind: 'sim.settings', simId: target.id, detail: { by: 'cli', settings, owners } });
        return s;
      });
      io.stdout(`SIM ${updated.id} (${updated.label ?? updated.number ?? updated.imsi}) updated`);
      return 0;
    }
    default:
      throw new UsageError(verb ? `unknown sim command "${verb}" (list, set)` : 'sim needs list or set');
  }
}

function ids(positionals: string[], verb: string): number[] {
  if (positionals.length === 0) throw new UsageError(`queue ${verb} takes one or more message ids`);
  return positionals.map((p) => {
    if (!/^\d+$/.test(p)) throw new UsageError(`queue ${verb} takes message ids, got "${p}"`);
    return Number(p);
  });
}

function messageLine(m: Message, now: number): string {
  const detail = m.errorText ?? m.reason ?? '';
  return `${cell(m.id, 7, true)} ${cell(ago(m.createdAt, now), 4, true)} ${cell(m.recipient, 16)} ${cell(m.state, 9)} ${cell(`${m.attempts}/${m.maxAttempts}`, 5)} ${cell(detail, 33)}`;
}

export async function queue(args: string[], rawIo: CliIo): Promise<number> {
  const io = trimmed(rawIo);
  const [verb, ...rest] = args;
  switch (verb) {
    case 'list': {
      const { values, positionals } = parseDbVerb(rest, { state: { type: 'string' }, to: { type: 'string' }, limit: { type: 'string' }, json: { type: 'boolean' } });
      if (positionals.length > 0) throw new UsageError('queue list takes no arguments');
      if (values.state !== undefined && !MESSAGE_STATES.includes(values.state as MessageState)) throw new UsageError(`--state takes one of ${MESSAGE_STATES.join(', ')}`);
      if (values.limit !== undefined && !/^\d+$/.test(values.limit)) throw new UsageError('--limit takes a number');
      const messages = await withStorage(values, (storage) =>
        storage.listMessages({ state: values.state as MessageState | undefined, recipientContains: values.to, limit: values.limit ? Number(values.limit) : 50 }),
      );
      if (values.json) {
        io.stdout(JSON.stringify(messages));
        return 0;
      }
      const now = Date.now();
      io.stdout(`${cell('ID', 7, true)} ${cell('AGE', 4, true)} ${cell('TO', 16)} ${cell('STATE', 9)} ${cell('TRIES', 5)} ${cell('DETAIL', 33)}`);
      for (const m of messages) io.stdout(messageLine(m, now));
      return 0;
    }
    case 'retry':
    case 'cancel': {
      const { values, positionals } = parseDbVerb(rest, {});
      const list = ids(positionals, verb);
      const refused: string[] = [];
      await withStorage(values, async (storage) => {
        for (const id of list) {
          const done = verb === 'retry' ? await storage.resend(id) : await storage.cancelMessage(id);
          const m = done ? null : await storage.getMessage(id);
          if (done) io.stdout(`message ${id} ${verb === 'retry' ? 'queued again' : 'cancelled'}`);
          else refused.push(m ? `message ${id} is ${m.state}` : `no message ${id}`);
        }
      });
      if (refused.length > 0) {
        const why = verb === 'retry' ? 'only failed or unknown messages can be retried' : 'only queued messages can be cancelled';
        throw new SmsgateError(refused.every((r) => r.startsWith('no ')) ? ErrorCodes.NotFound : ErrorCodes.Conflict, `${refused.join('; ')} (${why})`);
      }
      return 0;
    }
    default:
      throw new UsageError(verb ? `unknown queue command "${verb}" (list, retry, cancel)` : 'queue needs list, retry or cancel');
  }
}

export async function send(args: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseDbVerb(args, {
    user: { type: 'string' },
    to: { type: 'string' },
    text: { type: 'string' },
    flash: { type: 'boolean' },
    replace: { type: 'string' },
    report: { type: 'boolean' },
    attempts: { type: 'string' },
    sim: { type: 'string' },
    'msg-id': { type: 'string' },
    'send-at': { type: 'string' },
    json: { type: 'boolean' },
  });
  if (positionals.length > 0) throw new UsageError('send takes options only (--user, --to, --text)');
  if (!values.user || !values.to || values.text === undefined) throw new UsageError('send needs --user NAME, --to NUMBER[,NUMBER…] and --text TEXT (or --text - for stdin)');
  const text = values.text === '-' ? io.readStdin().replace(/\r?\n$/, '') : values.text;
  const config = configOf(values);
  const messages = await withStorage(values, async (storage) => {
    const user = await storage.getUserByName(values.user!);
    if (!user || user.disabled) throw new SmsgateError(ErrorCodes.NotFound, `no enabled user "${values.user}"`, 'user');
    const prepared = await prepareSend(
      {
        to: values.to,
        text,
        flash: values.flash,
        replaceId: values.replace,
        report: values.report,
        attempts: values.attempts,
        sim: values.sim,
        msgId: values['msg-id'],
        sendAt: values['send-at'],
        fields: { replaceId: 'replace', msgId: 'msg-id', sendAt: 'send-at' },
      },
      user,
      'cli',
      config.send,
      storage,
    );
    for (const w of prepared.warnings) io.stderr(`smsgate: send: warning: ${w}`);
    const result = await storage.enqueue(prepared.items, Date.now(), { requestHash: prepared.requestHash });
    return result.messages;
  });
  if (values.json) io.stdout(JSON.stringify(messages.map((m) => ({ id: m.id, to: m.recipient, state: m.state, encoding: m.encoding, parts: m.parts }))));
  else for (const m of messages) io.stdout(`message ${m.id} to ${m.recipient}: ${m.state} (${m.encoding === 'gsm7' ? 'GSM-7' : 'UCS-2'}, ${m.parts} part${m.parts === 1 ? '' : 's'})`);
  return 0;
}
