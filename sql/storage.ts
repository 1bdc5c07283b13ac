/**
 * The storage interface of the gateway and its one implementation over both engines (see db.ts).
 *
 * Theory of operation for the queue. A message is one row per recipient. The dispatcher claims due messages
 * (`queued`, `next_attempt_at` and `send_at` passed, no live lease) in priority-then-age order by writing a lease
 * (owner + expiry) in a transaction — with `FOR UPDATE SKIP LOCKED` on MariaDB, so gateway processes sharing the
 * database never claim one message twice. Before the first `AT+CMGS` the message is marked `sending` (and its attempt
 * counted); every later state change checks that the caller still holds the lease. A `sending` message whose lease
 * expired was cut off mid-submission — it may or may not have reached the network — so `recoverStale` marks it
 * `unknown`, and only an explicit `resend` queues it again. Quota is reserved per SIM and billing period before
 * sending and committed or released after, in one transaction each, so a SIM never goes over its monthly parts.
 *
 * Rows come back as plain typed objects; no SQL leaves this folder.
 */
import { ErrorCodes, SmsgateError } from '../modem/errors.js';
import type { Db, Param } from './db.js';
import { InboxStore } from './inbox.js';
import { type Row, forUpdate, num, numOrNull, strOrNull } from './rows.js';
import { MIGRATIONS, migrationSql } from './schema.js';

export type Role = 'admin' | 'user';
export type MessageState = 'queued' | 'sending' | 'sent' | 'delivered' | 'undelivered' | 'failed' | 'cancelled' | 'unknown';
/** States a message never leaves by itself. */
export const FINAL_STATES: MessageState[] = ['sent', 'delivered', 'undelivered', 'failed', 'cancelled', 'unknown'];
/** Every state, in the order a message may pass through them. */
export const MESSAGE_STATES: MessageState[] = ['queued', 'sending', ...FINAL_STATES];

export interface User {
  id: number;
  name: string;
  passwordHash: string;
  role: Role;
  disabled: boolean;
  /** The user's messages ask for delivery reports unless a request says otherwise. */
  reportDefault: boolean;
  createdAt: number;
}

export interface Token {
  id: number;
  userId: number;
  label: string | null;
  createdAt: number;
  lastUsedAt: number | null;
  revokedAt: number | null;
  /** Web sessions expire; API tokens do not (null). */
  expiresAt: number | null;
}

export interface Sim {
  id: number;
  imsi: string;
  iccid: string | null;
  number: string | null;
  label: string | null;
  operator: string | null;
  /** Parts per billing period; null = unlimited. */
  monthlyQuota: number | null;
  /** Day of the month the billing period starts (1..28). */
  billingDay: number;
  pacingMs: number;
  /** Local "HH:MM"; the SIM does not send from quietStart to quietEnd. */
  quietStart: string | null;
  quietEnd: string | null;
  enabled: boolean;
  balance: string | null;
  balanceAt: number | null;
  /** The balance USSD code (null: the config's default), the answer's pattern, the low threshold. */
  balanceUssd: string | null;
  balancePattern: string | null;
  balanceLow: string | null;
  /** Pause the SIM (enabled false) when its balance is low. */
  balancePause: boolean;
  /** The low-balance alert went out and the balance has not recovered since. */
  balanceAlerted: boolean;
  /** Why the gateway paused the SIM by itself (null: not paused by the gateway). */
  pausedReason: string | null;
  lastSentAt: number | null;
  createdAt: number;
}

export type SimSettings = Partial<
  Pick<
    Sim,
    | 'label'
    | 'monthlyQuota'
    | 'billingDay'
    | 'pacingMs'
    | 'quietStart'
    | 'quietEnd'
    | 'enabled'
    | 'balance'
    | 'balanceAt'
    | 'balanceUssd'
    | 'balancePattern'
    | 'balanceLow'
    | 'balancePause'
    | 'balanceAlerted'
    | 'pausedReason'
  >
>;

/** An event to log. */
/** Where a send goes: its SIM and channel, the lease it runs under, and the parts it takes from the SIM's quota. */
export interface StartVia {
  simId: number;
  channelId: number | null;
  leaseMs: number;
  period: string;
  parts: number;
  quota: number | null;
}

/** A send's start: 'quota' when its parts do not fit (another process took them), 'lost' when no longer ours. */
export type StartOutcome = 'started' | 'quota' | 'lost';

export interface EventIn {
  kind: string;
  messageId?: number | null;
  simId?: number | null;
  channelId?: number | null;
  detail?: unknown;
}

/** One balance check of a SIM: the amount read from the answer, or why there is none. */
export interface BalanceRecord {
  id: number;
  simId: number;
  at: number;
  /** Decimal, "." as the separator ("123.45", "-5.20"); null when the check failed or the answer had no amount. */
  amount: string | null;
  currency: string | null;
  answer: string | null;
  error: string | null;
}

export interface Channel {
  id: number;
  /** 0 = this box. */
  boxId: number;
  port: string;
  imei: string | null;
  simId: number | null;
  healthy: boolean;
  lastError: string | null;
  lastSeenAt: number | null;
  /** What the last look at the radio found (null: not known yet). */
  signalDbm: number | null;
  operator: string | null;
  registration: string | null;
  createdAt: number;
}

/** What a health check reads from a channel's radio. */
export interface ChannelRadio {
  signalDbm: number | null;
  operator: string | null;
  registration: string | null;
}

export interface Box {
  id: number;
  name: string;
  host: string;
  port: number;
  username: string;
  keyRef: string;
  hostKeyFingerprint: string;
  createdAt: number;
}

export interface Message {
  id: number;
  userId: number;
  recipient: string;
  text: string;
  encoding: string;
  parts: number;
  flash: boolean;
  replaceId: number | null;
  report: boolean;
  priority: number;
  state: MessageState;
  /** Why a queued message waits, or what happened, in words a user can read. */
  reason: string | null;
  attempts: number;
  maxAttempts: number;
  nextAttemptAt: number;
  leaseOwner: string | null;
  leaseExpiresAt: number | null;
  simId: number | null;
  channelId: number | null;
  /** Message references (+CMGS) of the parts sent, in order. */
  partRefs: number[] | null;
  /** The SIM not to use again for this message (it failed it with a SIM error). */
  avoidSimId: number | null;
  /** The SIM the request asked for; null lets the dispatcher choose among the user's SIMs. */
  wantSimId: number | null;
  /** The way the message came in: api, classic, a2p, web, cli. */
  source: string | null;
  errorCode: string | null;
  errorText: string | null;
  clientMsgId: string | null;
  callbackUrl: string | null;
  sendAt: number | null;
  createdAt: number;
  updatedAt: number;
  sentAt: number | null;
  /** When the next callback is due (null: none pending), and how the last tries went. */
  callbackDue: number | null;
  callbackAttempts: number;
  callbackError: string | null;
  /** The last state a callback reported. */
  notifiedState: string | null;
  /** Each part's delivery status, as its status report said (null: no report yet), in the order of partRefs. */
  partStatus: (PartStatus | null)[] | null;
  deliveredAt: number | null;
}

/** What the network reported about one part. */
export interface PartStatus {
  status: 'delivered' | 'pending' | 'failed';
  /** TP-ST and its meaning. */
  code: number;
  text: string;
  at: number;
}

/** A status report to match against the messages a SIM sent. */
export interface ReportIn {
  simId: number;
  reference: number;
  recipient: string;
  status: 'delivered' | 'pending' | 'failed';
  code: number;
  text: string;
}

export interface NewMessage {
  userId: number;
  recipient: string;
  text: string;
  encoding: string;
  parts: number;
  flash?: boolean;
  replaceId?: number | null;
  report?: boolean;
  priority?: number;
  maxAttempts?: number;
  clientMsgId?: string | null;
  callbackUrl?: string | null;
  sendAt?: number | null;
  wantSimId?: number | null;
  source?: string | null;
}

export interface MessageFilter {
  userId?: number;
  state?: MessageState;
  recipient?: string;
  /** Recipients containing these characters (a search box). */
  recipientContains?: string;
  /** Created at or after / before these times (ms). */
  since?: number;
  until?: number;
  /** Messages with an id below this one (paging backwards from the newest). */
  beforeId?: number;
  limit?: number;
}

export interface Usage {
  used: number;
  reserved: number;
}

/** A named message template; `userId` 0 is a shared one (everyone may use it, admins change it). */
export interface Template {
  id: number;
  userId: number;
  name: string;
  body: string;
  createdAt: number;
  updatedAt: number;
}

/** The owner of shared templates. */
export const SHARED_TEMPLATE_OWNER = 0;

export interface EventRecord {
  id: number;
  at: number;
  kind: string;
  messageId: number | null;
  simId: number | null;
  channelId: number | null;
  detail: unknown;
}


function toUser(r: Row): User {
  return {
    id: num(r.id),
    name: String(r.name),
    passwordHash: String(r.password_hash),
    role: r.role === 'admin' ? 'admin' : 'user',
    disabled: num(r.disabled) === 1,
    reportDefault: num(r.report_default ?? 0) === 1,
    createdAt: num(r.created_at),
  };
}

function toToken(r: Row): Token {
  return {
    id: num(r.id),
    userId: num(r.user_id),
    label: strOrNull(r.label),
    createdAt: num(r.created_at),
    lastUsedAt: numOrNull(r.last_used_at),
    revokedAt: numOrNull(r.revoked_at),
    expiresAt: numOrNull(r.expires_at),
  };
}

function toSim(r: Row): Sim {
  return {
    id: num(r.id),
    imsi: String(r.imsi),
    iccid: strOrNull(r.iccid),
    number: strOrNull(r.number),
    label: strOrNull(r.label),
    operator: strOrNull(r.operator),
    monthlyQuota: numOrNull(r.monthly_quota),
    billingDay: num(r.billing_day),
    pacingMs: num(r.pacing_ms),
    quietStart: strOrNull(r.quiet_start),
    quietEnd: strOrNull(r.quiet_end),
    enabled: num(r.enabled) === 1,
    balance: strOrNull(r.balance),
    balanceAt: numOrNull(r.balance_at),
    balanceUssd: strOrNull(r.balance_ussd),
    balancePattern: strOrNull(r.balance_pattern),
    balanceLow: strOrNull(r.balance_low),
    balancePause: num(r.balance_pause) === 1,
    balanceAlerted: num(r.balance_alerted) === 1,
    pausedReason: strOrNull(r.paused_reason),
    lastSentAt: numOrNull(r.last_sent_at),
    createdAt: num(r.created_at),
  };
}

function toChannel(r: Row): Channel {
  return {
    id: num(r.id),
    boxId: num(r.box_id),
    port: String(r.port),
    imei: strOrNull(r.imei),
    simId: numOrNull(r.sim_id),
    healthy: num(r.healthy) === 1,
    lastError: strOrNull(r.last_error),
    lastSeenAt: numOrNull(r.last_seen_at),
    signalDbm: numOrNull(r.signal_dbm),
    operator: strOrNull(r.operator),
    registration: strOrNull(r.registration),
    createdAt: num(r.created_at),
  };
}

function toBox(r: Row): Box {
  return {
    id: num(r.id),
    name: String(r.name),
    host: String(r.host),
    port: num(r.port),
    username: String(r.username),
    keyRef: String(r.key_ref),
    hostKeyFingerprint: String(r.host_key_fingerprint),
    createdAt: num(r.created_at),
  };
}

function toMessage(r: Row): Message {
  return {
    id: num(r.id),
    userId: num(r.user_id),
    recipient: String(r.recipient),
    text: String(r.text),
    encoding: String(r.encoding),
    parts: num(r.parts),
    flash: num(r.flash) === 1,
    replaceId: numOrNull(r.replace_id),
    report: num(r.report) === 1,
    priority: num(r.priority),
    state: String(r.state) as MessageState,
    reason: strOrNull(r.reason),
    attempts: num(r.attempts),
    maxAttempts: num(r.max_attempts),
    nextAttemptAt: num(r.next_attempt_at),
    leaseOwner: strOrNull(r.lease_owner),
    leaseExpiresAt: numOrNull(r.lease_expires_at),
    simId: numOrNull(r.sim_id),
    channelId: numOrNull(r.channel_id),
    partRefs: r.part_refs === null || r.part_refs === undefined ? null : (JSON.parse(String(r.part_refs)) as number[]),
    avoidSimId: numOrNull(r.avoid_sim_id),
    wantSimId: numOrNull(r.want_sim_id),
    source: strOrNull(r.source),
    errorCode: strOrNull(r.error_code),
    errorText: strOrNull(r.error_text),
    clientMsgId: strOrNull(r.client_msg_id),
    callbackUrl: strOrNull(r.callback_url),
    sendAt: numOrNull(r.send_at),
    createdAt: num(r.created_at),
    updatedAt: num(r.updated_at),
    sentAt: numOrNull(r.sent_at),
    callbackDue: numOrNull(r.callback_due),
    callbackAttempts: num(r.callback_attempts ?? 0),
    callbackError: strOrNull(r.callback_error),
    notifiedState: strOrNull(r.notified_state),
    partStatus: r.part_status === null || r.part_status === undefined ? null : (JSON.parse(String(r.part_status)) as (PartStatus | null)[]),
    deliveredAt: numOrNull(r.delivered_at),
  };
}

function toTemplate(r: Row): Template {
  return {
    id: num(r.id),
    userId: num(r.user_id),
    name: String(r.name),
    body: String(r.body),
    createdAt: num(r.created_at),
    updatedAt: num(r.updated_at),
  };
}

/** A unique-key violation, in either engine's words. */
function isDuplicate(error: unknown): boolean {
  const e = error as { code?: string; errno?: number; message?: string };
  return e.code === 'ER_DUP_ENTRY' || e.code === 'SQLITE_CONSTRAINT_UNIQUE' || e.code === 'SQLITE_CONSTRAINT_PRIMARYKEY';
}

/** The clauses whose value is given, and their parameters in order. */
function clauses(candidates: Record<string, Param | undefined>): { sql: string[]; params: Param[] } {
  const given = Object.entries(candidates).filter((entry): entry is [string, Param] => entry[1] !== undefined);
  return { sql: given.map(([clause]) => clause), params: given.map(([, value]) => value) };
}

/**
 * Set in every UPDATE that moves a message to a state its callback reports (with `now` as its parameter): the
 * callback becomes due in the same statement as the change, so no state change is lost between the two.
 */
const NOTIFY = 'callback_due = CASE WHEN callback_url IS NULL THEN NULL ELSE ? END, callback_attempts = 0';

/** Escapes LIKE's wildcards in a user's search text (used with ESCAPE '!'). */
function likeContains(text: string): string {
  return `%${text.replace(/[!%_]/g, (c) => `!${c}`)}%`;
}

const SIM_COLUMNS: Record<keyof SimSettings, string> = {
  label: 'label',
  monthlyQuota: 'monthly_quota',
  billingDay: 'billing_day',
  pacingMs: 'pacing_ms',
  quietStart: 'quiet_start',
  quietEnd: 'quiet_end',
  enabled: 'enabled',
  balance: 'balance',
  balanceAt: 'balance_at',
  balanceUssd: 'balance_ussd',
  balancePattern: 'balance_pattern',
  balanceLow: 'balance_low',
  balancePause: 'balance_pause',
  balanceAlerted: 'balance_alerted',
  pausedReason: 'paused_reason',
};

export class Storage {
  /** Received messages and the deliveries outbox (inbox.ts). */
  readonly inbox: InboxStore;

  constructor(readonly db: Db) {
    this.inbox = new InboxStore(db);
  }

  get dialect(): Db['dialect'] {
    return this.db.dialect;
  }

  /** Applies the migrations this database has not seen; returns how many ran. */
  async migrate(): Promise<number> {
    const bigint = this.db.dialect === 'mysql' ? 'BIGINT' : 'INTEGER';
    await this.db.run(`CREATE TABLE IF NOT EXISTS schema_migrations (version ${bigint} PRIMARY KEY, applied_at ${bigint} NOT NULL)`);
    const done = new Set((await this.db.all<Row>('SELECT version FROM schema_migrations')).map((r) => num(r.version)));
    let applied = 0;
    for (let i = 0; i < MIGRATIONS.length; i++) {
      if (done.has(i + 1)) continue;
      // MariaDB commits each DDL statement by itself; the version row is written last, so a failed migration is
      // retried from its start (each statement must then tolerate "already exists"; ours run in one go on a new
      // database, which is when migration 1 runs).
      await this.db.tx(async (tx) => {
        for (const sql of migrationSql(i, this.db.dialect)) await tx.run(sql);
        await tx.run('INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)', [i + 1, Date.now()]);
      });
      applied++;
    }
    return applied;
  }

  /** Folds SQLite's write-ahead log back when enough was written (or always with `force`); see Db.checkpoint. */
  checkpoint(options?: { force?: boolean }): Promise<void> {
    return this.db.checkpoint(options);
  }

  async close(): Promise<void> {
    await this.db.close();
  }

  // ---- users and tokens

  async createUser(user: { name: string; passwordHash: string; role?: Role }): Promise<User> {
    try {
      const now = Date.now();
      const { insertId } = await this.db.run('INSERT INTO users (name, password_hash, role, disabled, created_at) VALUES (?, ?, ?, 0, ?)', [
        user.name,
        user.passwordHash,
        user.role ?? 'user',
        now,
      ]);
      return (await this.getUser(insertId))!;
    } catch (error) {
      if (isDuplicate(error)) throw new SmsgateError(ErrorCodes.Conflict, `a user named "${user.name}" exists already`, 'name');
      throw error;
    }
  }

  async getUser(id: number): Promise<User | null> {
    const [row] = await this.db.all<Row>('SELECT * FROM users WHERE id = ?', [id]);
    return row ? toUser(row) : null;
  }

  async getUserByName(name: string): Promise<User | null> {
    const [row] = await this.db.all<Row>('SELECT * FROM users WHERE name = ?', [name]);
    return row ? toUser(row) : null;
  }

  async listUsers(): Promise<User[]> {
    return (await this.db.all<Row>('SELECT * FROM users ORDER BY name')).map(toUser);
  }

  async updateUser(id: number, patch: { passwordHash?: string; role?: Role; disabled?: boolean; reportDefault?: boolean }): Promise<User> {
    const { sql, params } = clauses({
      'password_hash = ?': patch.passwordHash,
      'role = ?': patch.role,
      'disabled = ?': patch.disabled === undefined ? undefined : patch.disabled ? 1 : 0,
      'report_default = ?': patch.reportDefault === undefined ? undefined : patch.reportDefault ? 1 : 0,
    });
    if (sql.length > 0) await this.db.run(`UPDATE users SET ${sql.join(', ')} WHERE id = ?`, [...params, id]);
    const user = await this.getUser(id);
    if (!user) throw new SmsgateError(ErrorCodes.NotFound, `no user ${id}`);
    return user;
  }

  async createToken(userId: number, tokenHash: string, label: string | null = null, expiresAt: number | null = null): Promise<Token> {
    const { insertId } = await this.db.run('INSERT INTO tokens (user_id, token_hash, label, created_at, expires_at) VALUES (?, ?, ?, ?, ?)', [
      userId,
      tokenHash,
      label,
      Date.now(),
      expiresAt,
    ]);
    const [row] = await this.db.all<Row>('SELECT * FROM tokens WHERE id = ?', [insertId]);
    return toToken(row!);
  }

  /** The live (not revoked, not expired) token with this hash, and its user. */
  async findToken(tokenHash: string, now = Date.now()): Promise<{ token: Token; user: User } | null> {
    const [row] = await this.db.all<Row>('SELECT * FROM tokens WHERE token_hash = ? AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > ?)', [
      tokenHash,
      now,
    ]);
    if (!row) return null;
    const user = await this.getUser(num(row.user_id));
    return user ? { token: toToken(row), user } : null;
  }

  async listTokens(userId: number): Promise<Token[]> {
    return (await this.db.all<Row>('SELECT * FROM tokens WHERE user_id = ? ORDER BY id', [userId])).map(toToken);
  }

  async touchToken(id: number, at = Date.now()): Promise<void> {
    await this.db.run('UPDATE tokens SET last_used_at = ? WHERE id = ?', [at, id]);
  }

  async getToken(id: number): Promise<Token | null> {
    const [row] = await this.db.all<Row>('SELECT * FROM tokens WHERE id = ?', [id]);
    return row ? toToken(row) : null;
  }

  async revokeToken(id: number, at = Date.now()): Promise<boolean> {
    return (await this.db.run('UPDATE tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL', [at, id])).changes === 1;
  }

  /** Ends every web session of a user (after a password change). */
  async revokeSessions(userId: number, at = Date.now()): Promise<number> {
    return (await this.db.run('UPDATE tokens SET revoked_at = ? WHERE user_id = ? AND expires_at IS NOT NULL AND revoked_at IS NULL', [at, userId])).changes;
  }

  /** Revokes the token with this hash (a web session's logout). */
  async revokeTokenByHash(tokenHash: string, at = Date.now()): Promise<boolean> {
    return (await this.db.run('UPDATE tokens SET revoked_at = ? WHERE token_hash = ? AND revoked_at IS NULL', [at, tokenHash])).changes === 1;
  }

  // ---- settings shared by every process on the database

  /** The stored value of `name`; when there is none, `initial` is stored and returned (the first writer wins). */
  async ensureSetting(name: string, initial: string): Promise<string> {
    const read = async () => (await this.db.all<Row>('SELECT value FROM settings WHERE name = ?', [name]))[0];
    const row = await read();
    if (row) return String(row.value);
    try {
      await this.db.run('INSERT INTO settings (name, value) VALUES (?, ?)', [name, initial]);
      return initial;
    } catch (error) {
      if (!isDuplicate(error)) throw error;
      return String((await read())!.value);
    }
  }

  // ---- message templates

  /** The conflict a second template of one name for one owner is. */
  private templateConflict(userId: number, name: string): SmsgateError {
    const whose = userId === SHARED_TEMPLATE_OWNER ? 'a shared template' : 'a template of this user';
    return new SmsgateError(ErrorCodes.Conflict, `${whose} named "${name}" exists already`, 'name');
  }

  /** Stores a template (`userId` 0: shared); CONFLICT when its owner has one of that name. */
  async createTemplate(template: { userId: number; name: string; body: string }, now = Date.now()): Promise<Template> {
    try {
      const { insertId } = await this.db.run('INSERT INTO templates (user_id, name, body, created_at, updated_at) VALUES (?, ?, ?, ?, ?)', [
        template.userId,
        template.name,
        template.body,
        now,
        now,
      ]);
      return (await this.getTemplate(insertId))!;
    } catch (error) {
      if (isDuplicate(error)) throw this.templateConflict(template.userId, template.name);
      throw error;
    }
  }

  async getTemplate(id: number): Promise<Template | null> {
    const [row] = await this.db.all<Row>('SELECT * FROM templates WHERE id = ?', [id]);
    return row ? toTemplate(row) : null;
  }

  /** The template a user means by a name: their own, else the shared one of that name. */
  async findTemplate(userId: number, name: string): Promise<Template | null> {
    const rows = await this.db.all<Row>('SELECT * FROM templates WHERE name = ? AND user_id IN (?, ?) ORDER BY user_id DESC', [name, userId, SHARED_TEMPLATE_OWNER]);
    const own = rows.find((r) => num(r.user_id) === userId) ?? rows[0];
    return own ? toTemplate(own) : null;
  }

  /** A user's own templates and the shared ones; every template when `userId` is undefined (admins). By name. */
  async listTemplates(userId?: number): Promise<Template[]> {
    const rows =
      userId === undefined
        ? await this.db.all<Row>('SELECT * FROM templates ORDER BY name, user_id, id')
        : await this.db.all<Row>('SELECT * FROM templates WHERE user_id IN (?, ?) ORDER BY name, user_id, id', [userId, SHARED_TEMPLATE_OWNER]);
    return rows.map(toTemplate);
  }

  /** Changes a template's name or body; NOT_FOUND when there is none, CONFLICT when the new name is taken. */
  async updateTemplate(id: number, patch: { name?: string; body?: string }, now = Date.now()): Promise<Template> {
    const before = await this.getTemplate(id);
    if (!before) throw new SmsgateError(ErrorCodes.NotFound, `no template ${id}`, 'id');
    const { sql, params } = clauses({ 'name = ?': patch.name, 'body = ?': patch.body });
    try {
      await this.db.run(`UPDATE templates SET ${[...sql, 'updated_at = ?'].join(', ')} WHERE id = ?`, [...params, now, id]);
    } catch (error) {
      if (isDuplicate(error)) throw this.templateConflict(before.userId, patch.name ?? before.name);
      throw error;
    }
    const after = await this.getTemplate(id);
    if (!after) throw new SmsgateError(ErrorCodes.NotFound, `no template ${id}`, 'id');
    return after;
  }

  async deleteTemplate(id: number): Promise<boolean> {
    return (await this.db.run('DELETE FROM templates WHERE id = ?', [id])).changes === 1;
  }

  // ---- SIMs, channels, boxes

  /** The SIM with this IMSI, created with default settings or with its identity fields brought up to date. */
  async upsertSim(identity: { imsi: string; iccid?: string | null; number?: string | null; operator?: string | null }): Promise<Sim> {
    return this.db.tx(async (tx) => {
      const [row] = await tx.all<Row>(`SELECT * FROM sims WHERE imsi = ?${this.forUpdate()}`, [identity.imsi]);
      if (row) {
        await tx.run('UPDATE sims SET iccid = COALESCE(?, iccid), number = COALESCE(?, number), operator = COALESCE(?, operator) WHERE id = ?', [
          identity.iccid ?? null,
          identity.number ?? null,
          identity.operator ?? null,
          num(row.id),
        ]);
        return toSim((await tx.all<Row>('SELECT * FROM sims WHERE id = ?', [num(row.id)]))[0]!);
      }
      const { insertId } = await tx.run('INSERT INTO sims (imsi, iccid, number, operator, created_at) VALUES (?, ?, ?, ?, ?)', [
        identity.imsi,
        identity.iccid ?? null,
        identity.number ?? null,
        identity.operator ?? null,
        Date.now(),
      ]);
      return toSim((await tx.all<Row>('SELECT * FROM sims WHERE id = ?', [insertId]))[0]!);
    });
  }

  async getSim(id: number): Promise<Sim | null> {
    const [row] = await this.db.all<Row>('SELECT * FROM sims WHERE id = ?', [id]);
    return row ? toSim(row) : null;
  }

  async listSims(): Promise<Sim[]> {
    return (await this.db.all<Row>('SELECT * FROM sims ORDER BY id')).map(toSim);
  }

  async updateSim(id: number, settings: SimSettings): Promise<Sim> {
    const sets: string[] = [];
    const params: Param[] = [];
    for (const [key, column] of Object.entries(SIM_COLUMNS) as [keyof SimSettings, string][]) {
      const value = settings[key];
      if (value === undefined) continue;
      sets.push(`${column} = ?`);
      params.push(typeof value === 'boolean' ? (value ? 1 : 0) : value);
    }
    if (sets.length > 0) await this.db.run(`UPDATE sims SET ${sets.join(', ')} WHERE id = ?`, [...params, id]);
    const sim = await this.getSim(id);
    if (!sim) throw new SmsgateError(ErrorCodes.NotFound, `no SIM ${id}`);
    return sim;
  }

  async setSimOwners(simId: number, userIds: number[]): Promise<void> {
    await this.db.tx(async (tx) => {
      await tx.run('DELETE FROM sim_owners WHERE sim_id = ?', [simId]);
      for (const userId of new Set(userIds)) await tx.run('INSERT INTO sim_owners (sim_id, user_id) VALUES (?, ?)', [simId, userId]);
    });
  }

  /** Every SIM's owners, in one query (the dispatcher's view). */
  async allSimOwners(): Promise<Map<number, number[]>> {
    const out = new Map<number, number[]>();
    for (const r of await this.db.all<Row>('SELECT sim_id, user_id FROM sim_owners ORDER BY sim_id, user_id')) {
      const list = out.get(num(r.sim_id)) ?? [];
      list.push(num(r.user_id));
      out.set(num(r.sim_id), list);
    }
    return out;
  }

  async simOwners(simId: number): Promise<number[]> {
    return (await this.db.all<Row>('SELECT user_id FROM sim_owners WHERE sim_id = ? ORDER BY user_id', [simId])).map((r) => num(r.user_id));
  }

  /** SIMs the user owns or shares. */
  async simsOfUser(userId: number): Promise<Sim[]> {
    return (await this.db.all<Row>('SELECT s.* FROM sims s JOIN sim_owners o ON o.sim_id = s.id WHERE o.user_id = ? ORDER BY s.id', [userId])).map(toSim);
  }

  async upsertChannel(channel: { boxId?: number; port: string; imei?: string | null; simId?: number | null }): Promise<Channel> {
    return this.db.tx(async (tx) => {
      const boxId = channel.boxId ?? 0;
      const now = Date.now();
      const [row] = await tx.all<Row>(`SELECT * FROM channels WHERE box_id = ? AND port = ?${this.forUpdate()}`, [boxId, channel.port]);
      let id: number;
      if (row) {
        id = num(row.id);
        await tx.run('UPDATE channels SET imei = ?, sim_id = ?, last_seen_at = ? WHERE id = ?', [channel.imei ?? null, channel.simId ?? null, now, id]);
      } else {
        id = (
          await tx.run('INSERT INTO channels (box_id, port, imei, sim_id, healthy, last_seen_at, created_at) VALUES (?, ?, ?, ?, 1, ?, ?)', [
            boxId,
            channel.port,
            channel.imei ?? null,
            channel.simId ?? null,
            now,
            now,
          ])
        ).insertId;
      }
      return toChannel((await tx.all<Row>('SELECT * FROM channels WHERE id = ?', [id]))[0]!);
    });
  }

  /**
   * A local channel's modem came back under another port name (found again by its IMEI): the channel row follows
   * it, so its id, history and health stay one. A row that had the new name before (a modem since gone) is removed.
   */
  async moveChannel(id: number, port: string, at = Date.now()): Promise<Channel> {
    return this.db.tx(async (tx) => {
      await tx.run('DELETE FROM channels WHERE box_id = 0 AND port = ? AND id <> ?', [port, id]);
      await tx.run('UPDATE channels SET port = ?, last_seen_at = ? WHERE id = ?', [port, at, id]);
      const [row] = await tx.all<Row>('SELECT * FROM channels WHERE id = ?', [id]);
      if (!row) throw new SmsgateError(ErrorCodes.NotFound, `no channel ${id}`);
      return toChannel(row);
    });
  }

  async listChannels(): Promise<Channel[]> {
    return (await this.db.all<Row>('SELECT * FROM channels ORDER BY box_id, port')).map(toChannel);
  }

  async setChannelHealth(id: number, healthy: boolean, lastError: string | null, at = Date.now()): Promise<void> {
    await this.db.run('UPDATE channels SET healthy = ?, last_error = ?, last_seen_at = ? WHERE id = ?', [healthy ? 1 : 0, lastError, at, id]);
  }

  async setChannelRadio(id: number, radio: ChannelRadio, at = Date.now()): Promise<void> {
    await this.db.run('UPDATE channels SET signal_dbm = ?, operator = ?, registration = ?, last_seen_at = ? WHERE id = ?', [
      radio.signalDbm,
      radio.operator,
      radio.registration,
      at,
      id,
    ]);
  }

  async addBox(box: Omit<Box, 'id' | 'createdAt'>): Promise<Box> {
    try {
      const { insertId } = await this.db.run(
        'INSERT INTO boxes (name, host, port, username, key_ref, host_key_fingerprint, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)',
        [box.name, box.host, box.port, box.username, box.keyRef, box.hostKeyFingerprint, Date.now()],
      );
      return (await this.getBox(insertId))!;
    } catch (error) {
      if (isDuplicate(error)) throw new SmsgateError(ErrorCodes.Conflict, `a box named "${box.name}" exists already`, 'name');
      throw error;
    }
  }

  async getBox(id: number): Promise<Box | null> {
    const [row] = await this.db.all<Row>('SELECT * FROM boxes WHERE id = ?', [id]);
    return row ? toBox(row) : null;
  }

  async listBoxes(): Promise<Box[]> {
    return (await this.db.all<Row>('SELECT * FROM boxes ORDER BY name')).map(toBox);
  }

  async removeBox(id: number): Promise<boolean> {
    return (await this.db.run('DELETE FROM boxes WHERE id = ?', [id])).changes === 1;
  }

  // ---- messages

  /**
   * Stores one message per item, all or none. With a client msg_id, a request stored before under that msg_id
   * returns the stored messages and stores nothing (`duplicate`) — when it is the same request (`requestHash`); a
   * different request under a used msg_id is refused (CONFLICT), never half-merged.
   */
  async enqueue(items: NewMessage[], now = Date.now(), options: { requestHash?: string } = {}): Promise<{ messages: Message[]; duplicate: boolean }> {
    if (items.length === 0) return { messages: [], duplicate: false };
    const { userId, clientMsgId } = items[0]!;
    const hash = options.requestHash ?? '';
    const attempt = () =>
      this.db.tx(async (tx) => {
        if (clientMsgId) {
          try {
            await tx.run('INSERT INTO requests (user_id, client_msg_id, hash, created_at) VALUES (?, ?, ?, ?)', [userId, clientMsgId, hash, now]);
          } catch (error) {
            if (!isDuplicate(error)) throw error;
            const [row] = await tx.all<Row>('SELECT hash FROM requests WHERE user_id = ? AND client_msg_id = ?', [userId, clientMsgId]);
            const existing = await this.existingForRequest(tx, userId, clientMsgId);
            if (row && String(row.hash) !== hash) {
              throw new SmsgateError(
                ErrorCodes.Conflict,
                `msg_id "${clientMsgId}" was used before for a different request (messages ${existing.map((m) => m.id).join(', ') || 'since deleted'}); use a new msg_id`,
                'msg_id',
              );
            }
            return { messages: existing, duplicate: true };
          }
          // Messages stored under this msg_id before its request row existed (or after the row was purged).
          const existing = await this.existingForRequest(tx, userId, clientMsgId);
          if (existing.length > 0) return { messages: existing, duplicate: true };
        }
        const ids: number[] = [];
        for (const m of items) {
          const { insertId } = await tx.run(
            `INSERT INTO messages (user_id, recipient, text, encoding, parts, flash, replace_id, report, priority, state,
               attempts, max_attempts, next_attempt_at, client_msg_id, callback_url, send_at, want_sim_id, source, created_at, updated_at)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'queued', 0, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
            [
              m.userId,
              m.recipient,
              m.text,
              m.encoding,
              m.parts,
              m.flash ? 1 : 0,
              m.replaceId ?? null,
              m.report ? 1 : 0,
              m.priority ?? 0,
              m.maxAttempts ?? 3,
              m.sendAt ?? now,
              m.clientMsgId ?? null,
              m.callbackUrl ?? null,
              m.sendAt ?? null,
              m.wantSimId ?? null,
              m.source ?? null,
              now,
              now,
            ],
          );
          ids.push(insertId);
        }
        return { messages: await this.byIds(tx, ids), duplicate: false };
      });
    try {
      return await attempt();
    } catch (error) {
      // Two identical requests at once: the loser of the unique index finds the winner's rows.
      if (isDuplicate(error) && clientMsgId) return attempt();
      throw error;
    }
  }

  private async existingForRequest(tx: Db, userId: number, clientMsgId: string): Promise<Message[]> {
    return (await tx.all<Row>('SELECT * FROM messages WHERE user_id = ? AND client_msg_id = ? ORDER BY id', [userId, clientMsgId])).map(toMessage);
  }

  /** The messages with these ids, by id (in chunks: SQLite allows 32766 parameters per statement). */
  private async byIds(db: Db, ids: number[]): Promise<Message[]> {
    const out: Message[] = [];
    for (let i = 0; i < ids.length; i += 1000) {
      const chunk = ids.slice(i, i + 1000);
      const rows = await db.all<Row>(`SELECT * FROM messages WHERE id IN (${chunk.map(() => '?').join(',')})`, chunk);
      out.push(...rows.map(toMessage));
    }
    return out.sort((a, b) => a.id - b.id);
  }

  async getMessage(id: number): Promise<Message | null> {
    const [row] = await this.db.all<Row>('SELECT * FROM messages WHERE id = ?', [id]);
    return row ? toMessage(row) : null;
  }

  /** Newest first. */
  async listMessages(filter: MessageFilter = {}): Promise<Message[]> {
    const { sql: where, params } = clauses({
      'user_id = ?': filter.userId,
      'state = ?': filter.state,
      'recipient = ?': filter.recipient,
      "recipient LIKE ? ESCAPE '!'": filter.recipientContains === undefined ? undefined : likeContains(filter.recipientContains),
      'created_at >= ?': filter.since,
      'created_at < ?': filter.until,
      'id < ?': filter.beforeId,
    });
    const limit = Math.max(1, Math.min(1000, Math.floor(filter.limit ?? 100)));
    const rows = await this.db.all<Row>(
      `SELECT * FROM messages ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY id DESC LIMIT ${limit}`,
      params,
    );
    return rows.map(toMessage);
  }

  /** When the oldest queued message that is due now became due (its send_at, or when it was accepted); null: none. */
  async oldestDue(now: number): Promise<number | null> {
    const [row] = await this.db.all<Row>(`SELECT MIN(COALESCE(send_at, created_at)) AS t FROM messages WHERE state = 'queued' AND next_attempt_at <= ?`, [now]);
    return row ? numOrNull(row.t) : null;
  }

  /** Parts the network took through this SIM, in every billing period kept. */
  async partsSent(simId: number): Promise<number> {
    const [row] = await this.db.all<Row>('SELECT SUM(parts_used) AS n FROM sim_usage WHERE sim_id = ?', [simId]);
    return row ? (numOrNull(row.n) ?? 0) : 0;
  }

  /** How many messages are in each state. */
  async countByState(): Promise<Partial<Record<MessageState, number>>> {
    const rows = await this.db.all<Row>('SELECT state, COUNT(*) AS n FROM messages GROUP BY state');
    return Object.fromEntries(rows.map((r) => [String(r.state), num(r.n)]));
  }

  /** Cancels a queued message nobody is about to send; false when it is not (or no longer) queued. */
  async cancelMessage(id: number, now = Date.now()): Promise<boolean> {
    const r = await this.db.run(
      `UPDATE messages SET state = 'cancelled', reason = 'cancelled by request', updated_at = ?, ${NOTIFY}
       WHERE id = ? AND state = 'queued' AND (lease_expires_at IS NULL OR lease_expires_at < ?)`,
      [now, now, id, now],
    );
    return r.changes === 1;
  }

  /**
   * Leases up to `limit` due messages to `owner` for `leaseMs`, priority first, then oldest.
   *
   * With `route`, only messages that one of these SIMs may take (the SIMs with an idle channel now) are claimed:
   * the messages of their owners and of admins, that asked for no SIM or for one of them; with `unroutable`
   * instead the messages none of them may take that have no reason yet (so that the dispatcher can say why they
   * wait). Without it, a
   * backlog that cannot go now would fill every claim and starve the messages behind it.
   */
  async claimDue(owner: string, now: number, leaseMs: number, limit: number, route?: { simIds: number[]; unroutable?: boolean }): Promise<Message[]> {
    let filter = '';
    let filterParams: Param[] = [];
    if (route) {
      const ids = route.simIds.length > 0 ? route.simIds : [-1];
      const marks = ids.map(() => '?').join(',');
      const routable = `((want_sim_id IS NOT NULL AND want_sim_id IN (${marks})) OR (want_sim_id IS NULL AND (
          EXISTS (SELECT 1 FROM users u WHERE u.id = messages.user_id AND u.role = 'admin')
          OR EXISTS (SELECT 1 FROM sim_owners o WHERE o.user_id = messages.user_id AND o.sim_id IN (${marks})))))`;
      // Unroutable messages are looked at until they have a reason; then only a change (a SIM free, a setting) moves them.
      filter = route.unroutable ? ` AND reason IS NULL AND NOT ${routable}` : ` AND ${routable}`;
      filterParams = [...ids, ...ids];
    }
    // (Written so that no part is NULL: NOT of a NULL would exclude a message from both claims.)
    return this.db.tx(async (tx) => {
      const rows = await tx.all<Row>(
        `SELECT id FROM messages
         WHERE state = 'queued' AND next_attempt_at <= ? AND (lease_expires_at IS NULL OR lease_expires_at < ?)${filter}
         ORDER BY priority DESC, id ASC LIMIT ${Math.max(1, Math.floor(limit))}${this.forUpdate(true)}`,
        [now, now, ...filterParams],
      );
      const ids = rows.map((r) => num(r.id));
      if (ids.length === 0) return [];
      await tx.run(
        `UPDATE messages SET lease_owner = ?, lease_expires_at = ?, updated_at = ? WHERE id IN (${ids.map(() => '?').join(',')})`,
        [owner, now + leaseMs, now, ...ids],
      );
      // In the order claimed: priority, then age.
      const byId = new Map((await this.byIds(tx, ids)).map((m) => [m.id, m]));
      return ids.map((id) => byId.get(id)!);
    });
  }

  /** Gives a claimed message back to the queue, with why it waits and when to look again. */
  async release(id: number, owner: string, update: { reason?: string | null; nextAttemptAt?: number }, now = Date.now()): Promise<boolean> {
    return (await this.releaseMany(owner, [{ id, ...update }], now))[0]!;
  }

  /**
   * Gives claimed messages back in one transaction (one commit: a drain that finds many messages unable to go
   * tells them why without a sync each). For each, whether it was still ours to give back.
   */
  async releaseMany(owner: string, releases: { id: number; reason?: string | null; nextAttemptAt?: number }[], now = Date.now()): Promise<boolean[]> {
    if (releases.length === 0) return [];
    return this.db.tx(async (tx) => {
      const done: boolean[] = [];
      for (const r of releases) {
        const result = await tx.run(
          `UPDATE messages SET lease_owner = NULL, lease_expires_at = NULL, reason = ?, next_attempt_at = COALESCE(?, next_attempt_at), updated_at = ?
           WHERE id = ? AND lease_owner = ? AND state = 'queued'`,
          [r.reason ?? null, r.nextAttemptAt ?? null, now, r.id, owner],
        );
        done.push(result.changes === 1);
      }
      return done;
    });
  }

  /**
   * The message is about to go out (before any AT+CMGS): `sending` through this SIM and channel, its attempt
   * counted, its lease extended to cover the send, and — in the same transaction, one commit for both — the SIM's
   * last send time, which pacing reads. False when the caller no longer holds the lease.
   */
  async markSending(id: number, owner: string, via: { simId: number; channelId: number | null; leaseMs: number }, now = Date.now()): Promise<boolean> {
    return this.db.tx(async (tx) => {
      const r = await tx.run(
        `UPDATE messages SET state = 'sending', attempts = attempts + 1, sim_id = ?, channel_id = ?, lease_expires_at = ?, reason = NULL, updated_at = ?
         WHERE id = ? AND lease_owner = ? AND state = 'queued'`,
        [via.simId, via.channelId, now + via.leaseMs, now, id, owner],
      );
      if (r.changes !== 1) return false;
      await tx.run('UPDATE sims SET last_sent_at = ? WHERE id = ?', [now, via.simId]);
      return true;
    });
  }

  async markSent(id: number, owner: string, partRefs: number[], now = Date.now(), db: Db = this.db): Promise<boolean> {
    const r = await db.run(
      `UPDATE messages SET state = 'sent', part_refs = ?, sent_at = ?, lease_owner = NULL, lease_expires_at = NULL,
         error_code = NULL, error_text = NULL, reason = NULL, updated_at = ?, ${NOTIFY}
       WHERE id = ? AND lease_owner = ? AND state = 'sending'`,
      [JSON.stringify(partRefs), now, now, now, id, owner],
    );
    return r.changes === 1;
  }

  /**
   * A send went through, in one transaction (one commit on the dispatcher's busiest path): the quota reservation
   * becomes use, the message `sent` with its part references, and the event logged. False when the lease was lost
   * (nothing is changed then but the quota, which was spent either way).
   */
  async completeSend(id: number, owner: string, partRefs: number[], usage: { simId: number; period: string; reserved: number }, event: EventIn, now = Date.now()): Promise<boolean> {
    return this.db.tx(async (tx) => {
      await this.commitParts(usage.simId, usage.period, usage.reserved, partRefs.length, tx);
      const ok = await this.markSent(id, owner, partRefs, now, tx);
      if (ok) await this.logEvent(event, now, tx);
      return ok;
    });
  }

  /**
   * Before the first AT+CMGS of a claimed message, in one transaction: its parts reserved from the SIM's quota for
   * the period, the message `sending` with its attempt counted, the SIM's last send time (pacing). 'quota' when the
   * parts do not fit (another process took them), 'lost' when the message is no longer ours to send.
   */
  async startSending(id: number, owner: string, via: StartVia, now = Date.now()): Promise<StartOutcome> {
    return this.db.tx((tx) => this.startOne(tx, id, owner, via, now));
  }

  /**
   * Several sends started in one transaction (one commit for channels that start together), each as
   * startSending would; the outcomes in the order asked. In SIM order inside, so that two processes' batches lock
   * the SIMs' usage rows in the same order.
   */
  async startSendingMany(starts: { id: number; owner: string; via: StartVia; now: number }[]): Promise<StartOutcome[]> {
    if (starts.length === 0) return [];
    return this.db.tx(async (tx) => {
      const outcomes = new Map<number, StartOutcome>();
      const order = starts.map((start, index) => ({ start, index })).sort((a, b) => a.start.via.simId - b.start.via.simId || a.index - b.index);
      for (const { start, index } of order) outcomes.set(index, await this.startOne(tx, start.id, start.owner, start.via, start.now));
      return starts.map((_, index) => outcomes.get(index)!);
    });
  }

  private async startOne(tx: Db, id: number, owner: string, via: StartVia, now: number): Promise<StartOutcome> {
    if (!(await this.reserve(tx, via.simId, via.period, via.parts, via.quota))) return 'quota';
    // Ours only while the claim's lease runs (a message claimed in advance may have waited past it).
    const r = await tx.run(
      `UPDATE messages SET state = 'sending', attempts = attempts + 1, sim_id = ?, channel_id = ?, lease_expires_at = ?, reason = NULL, updated_at = ?
       WHERE id = ? AND lease_owner = ? AND state = 'queued' AND (lease_expires_at IS NULL OR lease_expires_at >= ?)`,
      [via.simId, via.channelId, now + via.leaseMs, now, id, owner, now],
    );
    if (r.changes !== 1) {
      // Not ours any more: the reservation goes back with the rest of the transaction's work.
      await this.commitParts(via.simId, via.period, via.parts, 0, tx);
      return 'lost';
    }
    await tx.run('UPDATE sims SET last_sent_at = ? WHERE id = ?', [now, via.simId]);
    return 'started';
  }

  /** A failed attempt that may be retried: back to `queued` at `nextAttemptAt`, the error kept. */
  async markRetry(
    id: number,
    owner: string,
    update: { errorCode: string; errorText: string; nextAttemptAt: number; reason: string; partRefs?: number[]; avoidSimId?: number | null },
    now = Date.now(),
  ): Promise<boolean> {
    const r = await this.db.run(
      `UPDATE messages SET state = 'queued', lease_owner = NULL, lease_expires_at = NULL, error_code = ?, error_text = ?,
         next_attempt_at = ?, reason = ?, part_refs = COALESCE(?, part_refs), avoid_sim_id = ?, updated_at = ?
       WHERE id = ? AND lease_owner = ? AND state IN ('sending', 'queued')`,
      [
        update.errorCode,
        update.errorText,
        update.nextAttemptAt,
        update.reason,
        update.partRefs ? JSON.stringify(update.partRefs) : null,
        update.avoidSimId ?? null,
        now,
        id,
        owner,
      ],
    );
    return r.changes === 1;
  }

  /** The PDU went out but no answer came: the message may have been sent. Never resent by itself. */
  async markUnknown(id: number, owner: string, update: { errorCode: string; errorText: string; partRefs?: number[] }, now = Date.now()): Promise<boolean> {
    const r = await this.db.run(
      `UPDATE messages SET state = 'unknown', lease_owner = NULL, lease_expires_at = NULL, error_code = ?, error_text = ?,
         part_refs = COALESCE(?, part_refs), reason = 'the modem gave no answer after the message went out; it may have been sent: resend on request',
         updated_at = ?, ${NOTIFY}
       WHERE id = ? AND lease_owner = ? AND state = 'sending'`,
      [update.errorCode, update.errorText, update.partRefs ? JSON.stringify(update.partRefs) : null, now, now, id, owner],
    );
    return r.changes === 1;
  }

  /**
   * Makes every queued message that waits for a SIM (quota, quiet hours, no channel) due now: after a setting
   * changed, they should not wait for their next look.
   */
  async wakeWaiting(now = Date.now()): Promise<number> {
    const r = await this.db.run(
      `UPDATE messages SET next_attempt_at = ?, updated_at = ? WHERE state = 'queued' AND next_attempt_at > ? AND attempts = 0`,
      [now, now, now],
    );
    return r.changes;
  }

  /** The SIM that last sent successfully to this recipient (affinity). */
  async lastSimFor(recipient: string): Promise<number | null> {
    const [row] = await this.db.all<Row>(
      `SELECT sim_id FROM messages WHERE recipient = ? AND state IN ('sent', 'delivered') AND sim_id IS NOT NULL ORDER BY id DESC LIMIT 1`,
      [recipient],
    );
    return row ? num(row.sim_id) : null;
  }

  /** A final failure: a permanent error, or the attempts are used up. */
  async markFailed(id: number, owner: string, update: { errorCode: string; errorText: string; reason: string }, now = Date.now()): Promise<boolean> {
    const r = await this.db.run(
      `UPDATE messages SET state = 'failed', lease_owner = NULL, lease_expires_at = NULL, error_code = ?, error_text = ?, reason = ?, updated_at = ?,
         ${NOTIFY}
       WHERE id = ? AND lease_owner = ? AND state IN ('sending', 'queued')`,
      [update.errorCode, update.errorText, update.reason, now, now, id, owner],
    );
    return r.changes === 1;
  }

  /**
   * After a crash or a stuck owner: a `sending` message whose lease expired may have reached the network, so it
   * becomes `unknown` (never resent by itself); a `queued` message's expired lease is simply dropped.
   */
  async recoverStale(now = Date.now()): Promise<{ unknown: number; released: number }> {
    return this.recoverLeases('lease_expires_at < ?', [now], now);
  }

  /** The lease owners that hold messages now. */
  async leaseOwners(): Promise<string[]> {
    const rows = await this.db.all<Row>(`SELECT DISTINCT lease_owner FROM messages WHERE lease_owner IS NOT NULL AND state IN ('queued', 'sending')`);
    return rows.map((r) => String(r.lease_owner));
  }

  /** What `recoverStale` does for expired leases, for every lease of one owner known to be dead. */
  async recoverOwner(owner: string, now = Date.now()): Promise<{ unknown: number; released: number }> {
    return this.recoverLeases('lease_owner = ?', [owner], now);
  }

  /** Leases matching `where`: `sending` becomes `unknown`, `queued` is released. */
  private recoverLeases(where: string, params: Param[], now: number): Promise<{ unknown: number; released: number }> {
    return this.db.tx(async (tx) => {
      const unknown = await tx.run(
        `UPDATE messages SET state = 'unknown', lease_owner = NULL, lease_expires_at = NULL,
           reason = 'the gateway stopped while sending; it may have been sent: resend on request', updated_at = ?, ${NOTIFY}
         WHERE state = 'sending' AND ${where}`,
        [now, now, ...params],
      );
      const released = await tx.run(`UPDATE messages SET lease_owner = NULL, lease_expires_at = NULL, updated_at = ? WHERE state = 'queued' AND ${where}`, [
        now,
        ...params,
      ]);
      return { unknown: unknown.changes, released: released.changes };
    });
  }

  /** Queues an `unknown` or `failed` message again, on request; false for other states. */
  async resend(id: number, now = Date.now(), options: { keepAttempts?: boolean } = {}): Promise<boolean> {
    // On request the message gets its attempts afresh; an automatic resend keeps counting them.
    const r = await this.db.run(
      `UPDATE messages SET state = 'queued', attempts = ${options.keepAttempts ? 'attempts' : '0'}, next_attempt_at = ?, reason = 'resend requested', updated_at = ?
       WHERE id = ? AND state IN ('unknown', 'failed')`,
      [now, now, id],
    );
    return r.changes === 1;
  }

  /** Final-state messages and events older than `before` are deleted (the retention setting). */
  async purgeHistory(before: number): Promise<{ messages: number; events: number }> {
    return this.db.tx(async (tx) => {
      const finals = FINAL_STATES.map(() => '?').join(',');
      // A message whose callback is still due stays until the callback is done with.
      const messages = await tx.run(`DELETE FROM messages WHERE state IN (${finals}) AND updated_at < ? AND callback_due IS NULL`, [...FINAL_STATES, before]);
      const events = await tx.run('DELETE FROM events WHERE at < ?', [before]);
      // Expired web sessions have no use; idempotency keys last as long as history.
      await tx.run('DELETE FROM tokens WHERE expires_at IS NOT NULL AND expires_at < ?', [before]);
      await tx.run('DELETE FROM requests WHERE created_at < ?', [before]);
      return { messages: messages.changes, events: events.changes };
    });
  }

  // ---- delivery reports

  /**
   * Applies a status report to the message part it is about: the most recent message this SIM sent to this
   * recipient within `windowMs` whose parts include the reference and whose part has no final status yet
   * (references are 8-bit and wrap, so the newest open one is meant). The parts roll up: `delivered` when every part
   * is, `undelivered` (with the network's reason) as soon as one failed; a pending report only records the part.
   * Returns the message as it is now, or null when no message matches (a report for something not ours, or a
   * repeat).
   */
  async applyStatusReport(report: ReportIn, now = Date.now(), windowMs = 7 * 86_400_000): Promise<Message | null> {
    const digits = (n: string) => n.replace(/\D/g, '');
    // National and international forms of one number share their last 10 digits.
    const sameNumber = (a: string, b: string) => {
      const x = digits(a);
      const y = digits(b);
      const n = Math.min(10, x.length, y.length);
      return n > 0 && x.slice(-n) === y.slice(-n);
    };
    return this.db.tx(async (tx) => {
      const rows = await tx.all<Row>(
        `SELECT * FROM messages WHERE sim_id = ? AND recipient LIKE ? AND state IN ('sent', 'delivered', 'undelivered') AND sent_at >= ?
         ORDER BY sent_at DESC, id DESC LIMIT 500${this.forUpdate()}`,
        [report.simId, `%${digits(report.recipient).slice(-Math.min(10, digits(report.recipient).length))}`, now - windowMs],
      );
      for (const m of rows.map(toMessage)) {
        if (!sameNumber(m.recipient, report.recipient) || !m.partRefs) continue;
        const statuses = m.partStatus && m.partStatus.length === m.partRefs.length ? [...m.partStatus] : m.partRefs.map(() => null);
        const part = m.partRefs.findIndex((ref, i) => ref === report.reference && (statuses[i] === null || statuses[i]!.status === 'pending'));
        if (part < 0) continue;
        statuses[part] = { status: report.status, code: report.code, text: report.text, at: now };
        const failed = statuses.find((s) => s?.status === 'failed');
        const all = statuses.every((s) => s?.status === 'delivered') && statuses.length === m.parts;
        const state: MessageState = failed ? 'undelivered' : all ? 'delivered' : m.state;
        const changed = state !== m.state;
        const why = failed ? `the network could not deliver it: ${failed.text} (status 0x${failed.code.toString(16).padStart(2, '0')})` : null;
        await tx.run(
          `UPDATE messages SET part_status = ?, state = ?, delivered_at = ?, updated_at = ?,
             error_code = CASE WHEN ? IS NULL THEN error_code ELSE 'REPORT' END, error_text = COALESCE(?, error_text), reason = COALESCE(?, reason)
             ${changed ? `, ${NOTIFY}` : ''}
           WHERE id = ?`,
          [JSON.stringify(statuses), state, all ? now : null, now, why, why, why, ...(changed ? [now] : []), m.id],
        );
        return toMessage((await tx.all<Row>('SELECT * FROM messages WHERE id = ?', [m.id]))[0]!);
      }
      return null;
    });
  }

  // ---- SIM balances

  async addBalance(record: Omit<BalanceRecord, 'id'>): Promise<BalanceRecord> {
    const r = await this.db.run('INSERT INTO balances (sim_id, at, amount, currency, answer, error) VALUES (?, ?, ?, ?, ?, ?)', [
      record.simId,
      record.at,
      record.amount,
      record.currency,
      record.answer,
      record.error,
    ]);
    return { id: r.insertId, ...record };
  }

  /** A SIM's balance checks, newest first. */
  async listBalances(simId: number, limit = 50): Promise<BalanceRecord[]> {
    const rows = await this.db.all<Row>(`SELECT * FROM balances WHERE sim_id = ? ORDER BY at DESC, id DESC LIMIT ${Math.max(1, Math.min(1000, Math.floor(limit)))}`, [simId]);
    return rows.map((r) => ({
      id: num(r.id),
      simId: num(r.sim_id),
      at: num(r.at),
      amount: strOrNull(r.amount),
      currency: strOrNull(r.currency),
      answer: strOrNull(r.answer),
      error: strOrNull(r.error),
    }));
  }

  // ---- the callback outbox

  /** Messages whose callback is due, oldest first. */
  async dueCallbacks(now: number, limit: number): Promise<Message[]> {
    const rows = await this.db.all<Row>(
      `SELECT * FROM messages WHERE callback_due IS NOT NULL AND callback_due <= ? ORDER BY callback_due, id LIMIT ${Math.max(1, Math.floor(limit))}`,
      [now],
    );
    return rows.map(toMessage);
  }

  /**
   * Takes a due callback for this process until `leaseUntil` (another process, or a retry after a crash, finds it
   * again then); false when someone else took it or a state change made it due anew.
   */
  async claimCallback(id: number, due: number, leaseUntil: number): Promise<boolean> {
    return (await this.db.run('UPDATE messages SET callback_due = ? WHERE id = ? AND callback_due = ?', [leaseUntil, id, due])).changes === 1;
  }

  /**
   * The receiver took the callback for `state`, posted under the lease `lease`. When the state moved on meanwhile,
   * the change made the callback due anew (and replaced the lease), and it stays due.
   */
  async callbackDone(id: number, state: MessageState, lease: number): Promise<void> {
    await this.db.run(
      `UPDATE messages SET notified_state = ?, callback_due = CASE WHEN callback_due = ? AND state = ? THEN NULL ELSE callback_due END,
         callback_attempts = CASE WHEN callback_due = ? THEN 0 ELSE callback_attempts END, callback_error = NULL
       WHERE id = ?`,
      [state, lease, state, lease, id],
    );
  }

  /** A callback attempt under `lease` failed: try again at `retryAt`, or give up (null) — unless a newer state is due. */
  async callbackFailed(id: number, lease: number, error: string, retryAt: number | null): Promise<boolean> {
    const r = await this.db.run('UPDATE messages SET callback_attempts = callback_attempts + 1, callback_error = ?, callback_due = ? WHERE id = ? AND callback_due = ?', [
      error,
      retryAt,
      id,
      lease,
    ]);
    return r.changes === 1;
  }

  // ---- quota

  /** The usage of several SIMs in their periods, in one query; keyed "simId:period". */
  async usages(pairs: { simId: number; period: string }[]): Promise<Map<string, Usage>> {
    const out = new Map<string, Usage>();
    if (pairs.length === 0) return out;
    const periods = [...new Set(pairs.map((p) => p.period))];
    const rows = await this.db.all<Row>(`SELECT sim_id, period, parts_used, parts_reserved FROM sim_usage WHERE period IN (${periods.map(() => '?').join(', ')})`, periods);
    for (const row of rows) out.set(`${num(row.sim_id)}:${String(row.period)}`, { used: num(row.parts_used), reserved: num(row.parts_reserved) });
    for (const p of pairs) if (!out.has(`${p.simId}:${p.period}`)) out.set(`${p.simId}:${p.period}`, { used: 0, reserved: 0 });
    return out;
  }

  async usage(simId: number, period: string): Promise<Usage> {
    const [row] = await this.db.all<Row>('SELECT parts_used, parts_reserved FROM sim_usage WHERE sim_id = ? AND period = ?', [simId, period]);
    return { used: row ? num(row.parts_used) : 0, reserved: row ? num(row.parts_reserved) : 0 };
  }

  /** Reserves `parts` of the SIM's quota for `period` (null quota = unlimited); false when they do not fit. */
  async reserveParts(simId: number, period: string, parts: number, quota: number | null): Promise<boolean> {
    return this.db.tx((tx) => this.reserve(tx, simId, period, parts, quota));
  }

  private async reserve(tx: Db, simId: number, period: string, parts: number, quota: number | null): Promise<boolean> {
    const [row] = await tx.all<Row>(`SELECT parts_used, parts_reserved FROM sim_usage WHERE sim_id = ? AND period = ?${this.forUpdate()}`, [simId, period]);
    const taken = row ? num(row.parts_used) + num(row.parts_reserved) : 0;
    if (quota !== null && taken + parts > quota) return false;
    if (row) await tx.run('UPDATE sim_usage SET parts_reserved = parts_reserved + ? WHERE sim_id = ? AND period = ?', [parts, simId, period]);
    else await tx.run('INSERT INTO sim_usage (sim_id, period, parts_used, parts_reserved) VALUES (?, ?, 0, ?)', [simId, period, parts]);
    return true;
  }

  /** Turns a reservation into use: `sent` parts went out (the rest of the reservation is released). */
  async commitParts(simId: number, period: string, reserved: number, sent: number, db: Db = this.db): Promise<void> {
    await db.run(
      'UPDATE sim_usage SET parts_reserved = CASE WHEN parts_reserved >= ? THEN parts_reserved - ? ELSE 0 END, parts_used = parts_used + ? WHERE sim_id = ? AND period = ?',
      [reserved, reserved, sent, simId, period],
    );
  }

  // ---- events

  async logEvent(event: EventIn, at = Date.now(), db: Db = this.db): Promise<void> {
    await db.run('INSERT INTO events (at, kind, message_id, sim_id, channel_id, detail) VALUES (?, ?, ?, ?, ?, ?)', [
      at,
      event.kind,
      event.messageId ?? null,
      event.simId ?? null,
      event.channelId ?? null,
      event.detail === undefined ? null : JSON.stringify(event.detail),
    ]);
  }

  /** Newest first. */
  async listEvents(filter: { messageId?: number; limit?: number } = {}): Promise<EventRecord[]> {
    const limit = Math.max(1, Math.min(1000, Math.floor(filter.limit ?? 100)));
    const rows =
      filter.messageId === undefined
        ? await this.db.all<Row>(`SELECT * FROM events ORDER BY id DESC LIMIT ${limit}`)
        : await this.db.all<Row>(`SELECT * FROM events WHERE message_id = ? ORDER BY id DESC LIMIT ${limit}`, [filter.messageId]);
    return rows.map((r) => ({
      id: num(r.id),
      at: num(r.at),
      kind: String(r.kind),
      messageId: numOrNull(r.message_id),
      simId: numOrNull(r.sim_id),
      channelId: numOrNull(r.channel_id),
      detail: r.detail === null ? null : (JSON.parse(String(r.detail)) as unknown),
    }));
  }

  /** Row locks on MariaDB (SQLite's IMMEDIATE transaction already excludes other writers). */
  private forUpdate(skipLocked = false): string {
    return forUpdate(this.db, skipLocked);
  }
}
