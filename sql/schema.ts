/**
 * The schema, as forward-only migrations written once for both engines.
 *
 * Column types are placeholders that each dialect fills in: `{id}` an auto-increment primary key, `{key}` a string
 * that is indexed (VARCHAR(191) on MariaDB, so a utf8mb4 index fits), `{text}` any string, `{int}` / `{ms}` integers
 * (times are milliseconds since the epoch, UTC: portable and unambiguous), `{bool}` 0/1, `{table}` the table options.
 * A migration never changes once released; a new one is appended.
 */

export type Dialect = 'sqlite' | 'mysql';

const TYPES: Record<Dialect, Record<string, string>> = {
  sqlite: {
    id: 'INTEGER PRIMARY KEY AUTOINCREMENT',
    key: 'TEXT',
    text: 'TEXT',
    int: 'INTEGER',
    ms: 'INTEGER',
    bool: 'INTEGER',
    table: '',
  },
  mysql: {
    id: 'BIGINT PRIMARY KEY AUTO_INCREMENT',
    key: 'VARCHAR(191)',
    text: 'MEDIUMTEXT',
    int: 'INT',
    ms: 'BIGINT',
    bool: 'TINYINT',
    table: 'ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin',
  },
};

/** Each migration is a list of statements. */
export const MIGRATIONS: string[][] = [
  [
    `CREATE TABLE users (
      id {id},
      name {key} NOT NULL UNIQUE,
      password_hash {text} NOT NULL,
      role {key} NOT NULL DEFAULT 'user',
      disabled {bool} NOT NULL DEFAULT 0,
      created_at {ms} NOT NULL
    ) {table}`,
    `CREATE TABLE tokens (
      id {id},
      user_id BIGINT NOT NULL,
      token_hash {key} NOT NULL UNIQUE,
      label {text},
      created_at {ms} NOT NULL,
      last_used_at {ms},
      revoked_at {ms}
    ) {table}`,
    `CREATE TABLE boxes (
      id {id},
      name {key} NOT NULL UNIQUE,
      host {text} NOT NULL,
      port {int} NOT NULL DEFAULT 22,
      username {text} NOT NULL,
      key_ref {text} NOT NULL,
      host_key_fingerprint {text} NOT NULL,
      created_at {ms} NOT NULL
    ) {table}`,
    `CREATE TABLE sims (
      id {id},
      imsi {key} NOT NULL UNIQUE,
      iccid {key},
      number {key},
      label {text},
      operator {text},
      monthly_quota {int},
      billing_day {int} NOT NULL DEFAULT 1,
      pacing_ms {int} NOT NULL DEFAULT 0,
      quiet_start {key},
      quiet_end {key},
      enabled {bool} NOT NULL DEFAULT 1,
      balance {text},
      balance_at {ms},
      last_sent_at {ms},
      created_at {ms} NOT NULL
    ) {table}`,
    `CREATE TABLE sim_owners (
      sim_id BIGINT NOT NULL,
      user_id BIGINT NOT NULL,
      PRIMARY KEY (sim_id, user_id)
    ) {table}`,
    `CREATE TABLE channels (
      id {id},
      box_id BIGINT NOT NULL DEFAULT 0,
      port {key} NOT NULL,
      imei {key},
      sim_id BIGINT,
      healthy {bool} NOT NULL DEFAULT 1,
      last_error {text},
      last_seen_at {ms},
      created_at {ms} NOT NULL
    ) {table}`,
    // box_id 0 is this box (NULLs would not be unique).
    `CREATE UNIQUE INDEX channels_box_port ON channels (box_id, port)`,
    `CREATE TABLE messages (
      id {id},
      user_id BIGINT NOT NULL,
      recipient {key} NOT NULL,
      text {text} NOT NULL,
      encoding {key} NOT NULL,
      parts {int} NOT NULL,
      flash {bool} NOT NULL DEFAULT 0,
      replace_id {int},
      report {bool} NOT NULL DEFAULT 0,
      priority {int} NOT NULL DEFAULT 0,
      state {key} NOT NULL,
      reason {text},
      attempts {int} NOT NULL DEFAULT 0,
      max_attempts {int} NOT NULL DEFAULT 3,
      next_attempt_at {ms} NOT NULL,
      lease_owner {key},
      lease_expires_at {ms},
      sim_id BIGINT,
      channel_id BIGINT,
      part_refs {text},
      error_code {key},
      error_text {text},
      client_msg_id {key},
      callback_url {text},
      send_at {ms},
      created_at {ms} NOT NULL,
      updated_at {ms} NOT NULL,
      sent_at {ms}
    ) {table}`,
    // The dispatcher's query: queued messages that are due, by priority then age.
    `CREATE INDEX messages_due ON messages (state, next_attempt_at, priority, id)`,
    `CREATE INDEX messages_user ON messages (user_id, id)`,
    `CREATE INDEX messages_lease ON messages (state, lease_expires_at)`,
    // A client's msg_id covers every recipient of its request: one row per recipient.
    `CREATE UNIQUE INDEX messages_idempotency ON messages (user_id, client_msg_id, recipient)`,
    `CREATE TABLE sim_usage (
      sim_id BIGINT NOT NULL,
      period {key} NOT NULL,
      parts_used {int} NOT NULL DEFAULT 0,
      parts_reserved {int} NOT NULL DEFAULT 0,
      PRIMARY KEY (sim_id, period)
    ) {table}`,
    `CREATE TABLE events (
      id {id},
      at {ms} NOT NULL,
      kind {key} NOT NULL,
      message_id BIGINT,
      sim_id BIGINT,
      channel_id BIGINT,
      detail {text}
    ) {table}`,
    `CREATE INDEX events_at ON events (at)`,
    `CREATE INDEX events_message ON events (message_id)`,
  ],
  [
    // The SIM a message should not go through again (it failed it with a SIM error: retry on another).
    `ALTER TABLE messages ADD COLUMN avoid_sim_id BIGINT`,
  ],
  [
    // The SIM the request asked for (null: any SIM of the user), and the way in (api, classic, a2p, web, cli).
    `ALTER TABLE messages ADD COLUMN want_sim_id BIGINT`,
    `ALTER TABLE messages ADD COLUMN source {key}`,
    // The callback outbox: a state change sets callback_due (when the message has a callback URL); the callback
    // worker posts the message's state and clears it. Durable: a restart finds what is due in the table.
    `ALTER TABLE messages ADD COLUMN callback_due {ms}`,
    `ALTER TABLE messages ADD COLUMN callback_attempts {int} NOT NULL DEFAULT 0`,
    `ALTER TABLE messages ADD COLUMN callback_error {text}`,
    `ALTER TABLE messages ADD COLUMN notified_state {key}`,
    `CREATE INDEX messages_callback ON messages (callback_due)`,
    // What the last look at a channel's radio found.
    `ALTER TABLE channels ADD COLUMN signal_dbm {int}`,
    `ALTER TABLE channels ADD COLUMN operator {text}`,
    `ALTER TABLE channels ADD COLUMN registration {key}`,
    // Web sessions are tokens that expire.
    `ALTER TABLE tokens ADD COLUMN expires_at {ms}`,
    // One row per idempotent request (a client's msg_id): inserted first in the enqueue transaction, so that
    // concurrent repeats wait on it; the hash tells a repeat from a different request under the same msg_id.
    `CREATE TABLE requests (
      user_id BIGINT NOT NULL,
      client_msg_id {key} NOT NULL,
      hash {key} NOT NULL,
      created_at {ms} NOT NULL,
      PRIMARY KEY (user_id, client_msg_id)
    ) {table}`,
    `CREATE TABLE settings (
      name {key} NOT NULL PRIMARY KEY,
      value {text} NOT NULL
    ) {table}`,
  ],
  [
    // Delivery reports: each part's status (JSON, in the order of part_refs), when the last part was delivered,
    // and whether a user's messages ask for reports unless a request says otherwise.
    `ALTER TABLE messages ADD COLUMN part_status {text}`,
    `ALTER TABLE messages ADD COLUMN delivered_at {ms}`,
    `ALTER TABLE users ADD COLUMN report_default {bool} NOT NULL DEFAULT 0`,
    `CREATE INDEX messages_report ON messages (sim_id, recipient, sent_at)`,
  ],
  [
    // Received messages, one row per message (a concatenated one once complete, or once its wait ran out).
    `CREATE TABLE inbox (
      id {id},
      sim_id BIGINT,
      channel_id BIGINT,
      sender {key} NOT NULL,
      text {text} NOT NULL,
      encoding {key} NOT NULL,
      class {int},
      parts {int} NOT NULL,
      parts_received {int} NOT NULL,
      complete {bool} NOT NULL,
      concat_ref {int},
      sent_at {text},
      received_at {ms} NOT NULL,
      updated_at {ms} NOT NULL
    ) {table}`,
    `CREATE INDEX inbox_sim ON inbox (sim_id, id)`,
    `CREATE INDEX inbox_sender ON inbox (sender, id)`,
    `CREATE INDEX inbox_received ON inbox (received_at)`,
    // Parts of concatenated messages, kept until their set is complete (and afterwards, to build its text again
    // when a late part of a set surfaced as incomplete comes in).
    `CREATE TABLE inbox_parts (
      id {id},
      sim_id BIGINT NOT NULL,
      sender {key} NOT NULL,
      concat_key {key} NOT NULL,
      seq {int} NOT NULL,
      total {int} NOT NULL,
      text {text} NOT NULL,
      encoding {key} NOT NULL,
      class {int},
      sent_at {text},
      pdu {text} NOT NULL,
      inbox_id BIGINT,
      received_at {ms} NOT NULL
    ) {table}`,
    `CREATE INDEX inbox_parts_set ON inbox_parts (sim_id, sender, concat_key)`,
    `CREATE INDEX inbox_parts_open ON inbox_parts (inbox_id, received_at)`,
    // Messages stored in the database but not yet deleted from the modem: a slot ("SM:3") and its PDU's hash. The
    // next sweep that finds the same PDU in the same slot deletes it without storing it twice.
    `CREATE TABLE modem_slots (
      sim_id BIGINT NOT NULL,
      slot {key} NOT NULL,
      pdu_hash {key} NOT NULL,
      stored_at {ms} NOT NULL,
      PRIMARY KEY (sim_id, slot)
    ) {table}`,
    // The outbox of everything pushed out about received messages and alerts: webhooks, command hooks,
    // forwarding, with retries and a lease (several gateway processes on one database).
    `CREATE TABLE deliveries (
      id {id},
      inbox_id BIGINT,
      kind {key} NOT NULL,
      target {text} NOT NULL,
      payload {text},
      state {key} NOT NULL,
      due_at {ms} NOT NULL,
      attempts {int} NOT NULL DEFAULT 0,
      last_error {text},
      lease_owner {key},
      lease_until {ms},
      created_at {ms} NOT NULL,
      done_at {ms}
    ) {table}`,
    `CREATE INDEX deliveries_due ON deliveries (state, due_at)`,
    `CREATE INDEX deliveries_inbox ON deliveries (inbox_id)`,
    // SIM money: the USSD code and the answer's pattern, the low threshold and what it does; the history.
    `ALTER TABLE sims ADD COLUMN balance_ussd {text}`,
    `ALTER TABLE sims ADD COLUMN balance_pattern {text}`,
    `ALTER TABLE sims ADD COLUMN balance_low {text}`,
    `ALTER TABLE sims ADD COLUMN balance_pause {bool} NOT NULL DEFAULT 0`,
    `ALTER TABLE sims ADD COLUMN balance_alerted {bool} NOT NULL DEFAULT 0`,
    `ALTER TABLE sims ADD COLUMN paused_reason {text}`,
    `CREATE TABLE balances (
      id {id},
      sim_id BIGINT NOT NULL,
      at {ms} NOT NULL,
      amount {text},
      currency {key},
      answer {text},
      error {text}
    ) {table}`,
    `CREATE INDEX balances_sim ON balances (sim_id, at)`,
    // Named message templates: user_id 0 is shared by everyone (admins manage those).
    `CREATE TABLE templates (
      id {id},
      user_id BIGINT NOT NULL DEFAULT 0,
      name {key} NOT NULL,
      body {text} NOT NULL,
      created_at {ms} NOT NULL,
      updated_at {ms} NOT NULL
    ) {table}`,
    `CREATE UNIQUE INDEX templates_name ON templates (user_id, name)`,
  ],
];

/** The statements of migration `index` for `dialect`. */
export function migrationSql(index: number, dialect: Dialect): string[] {
  const types = TYPES[dialect];
  return MIGRATIONS[index]!.map((sql) => sql.replace(/\{(\w+)\}/g, (_, name: string) => types[name] ?? `{${name}}`));
}
