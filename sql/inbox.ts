/**
 * Received messages and what is pushed out about them.
 *
 * Theory of operation. The collector (scheduler/inbound.ts) hands each PDU it reads from a modem to `storePart`,
 * with the storage slot it came from ("SM:3"), and deletes it from the modem only after `storePart` returned; then
 * `forgetSlot`. In between, the slot and the PDU's hash stay in `modem_slots`, so a sweep after a crash (or after a
 * delete the modem refused) that finds the same PDU in the same slot deletes it without storing it twice — while
 * an identical text that arrives again (IoT devices repeat alarms on purpose) lands in a free slot, or in the same
 * slot after the first was deleted, and is stored as the new message it is.
 *
 * A single-part message becomes an `inbox` row at once. A part of a concatenated message waits in `inbox_parts`
 * under its set (SIM, sender, concatenation reference, total, reference width) until every part is in, in any
 * order, across sweeps and restarts; then the set becomes one row. A set still incomplete after the configured
 * wait surfaces as a row with `complete` false (the missing parts shown as "[…]"), and a part that comes later
 * still completes it. A new part whose number the waiting set already has, with another PDU, means the reference
 * was used again for a new message: the old set surfaces as it is, and the new one starts.
 *
 * Whenever a row becomes visible or changes, the deliveries its plan asks for (webhooks, the command hook,
 * forwarding) are written in the same transaction, so none is lost to a crash.
 */
import { createHash } from 'node:crypto';
import type { Db, Param } from './db.js';
import { type Row, forUpdate, marks, num, numOrNull, strOrNull } from './rows.js';

export interface InboxMessage {
  id: number;
  simId: number | null;
  channelId: number | null;
  sender: string;
  text: string;
  encoding: string;
  /** Message class 0..3 (0 = flash), null when the sender gave none. */
  class: number | null;
  /** Parts the message has, and how many came. */
  parts: number;
  partsReceived: number;
  complete: boolean;
  concatRef: number | null;
  /** The SMSC's time stamp (TP-SCTS), ISO 8601 with the sender's offset. */
  sentAt: string | null;
  /** When the gateway stored it (its first part), ms. */
  receivedAt: number;
  updatedAt: number;
}

/** One PDU read from a modem (or pushed by it), decoded. */
export interface ReceivedPart {
  simId: number;
  channelId: number | null;
  /** Where it is stored on the modem ("SM:3"); null when the modem pushed it (+CMT) and keeps no copy. */
  slot: string | null;
  pdu: string;
  sender: string;
  text: string;
  encoding: string;
  class: number | null;
  sentAt: string | null;
  concat: { ref: number; total: number; seq: number; bits: number } | null;
}

export type DeliveryKind = 'webhook' | 'command' | 'forward' | 'alert';

export interface NewDelivery {
  kind: DeliveryKind;
  /** The URL, the command's name, the number to forward to. */
  target: string;
  payload?: string | null;
}

export interface Delivery extends NewDelivery {
  id: number;
  inboxId: number | null;
  payload: string | null;
  state: 'pending' | 'done' | 'failed';
  dueAt: number;
  attempts: number;
  lastError: string | null;
  createdAt: number;
  doneAt: number | null;
}

/** What happened to a message: it became visible ('received'), or a late part changed it ('updated'). */
export type InboxEvent = 'received' | 'updated';

/** The deliveries a message's event calls for. */
export type DeliveryPlan = (message: InboxMessage, event: InboxEvent) => NewDelivery[];

export interface StoreResult {
  /** 'message': a row is visible or changed; 'part': a part waits for its set; 'duplicate': stored before. */
  outcome: 'message' | 'part' | 'duplicate';
  message: InboxMessage | null;
}

export interface InboxFilter {
  /** Only these SIMs (a user's own); undefined for all. */
  simIds?: number[];
  simId?: number;
  sender?: string;
  /** Rows with id below this (paging, newest first). */
  before?: number;
  since?: number;
  limit?: number;
}

/** How a missing part shows in the text of a message surfaced incomplete. */
export const MISSING_PART = '[…]';

function toInbox(r: Row): InboxMessage {
  return {
    id: num(r.id),
    simId: numOrNull(r.sim_id),
    channelId: numOrNull(r.channel_id),
    sender: String(r.sender),
    text: String(r.text),
    encoding: String(r.encoding),
    class: numOrNull(r.class),
    parts: num(r.parts),
    partsReceived: num(r.parts_received),
    complete: num(r.complete) === 1,
    concatRef: numOrNull(r.concat_ref),
    sentAt: strOrNull(r.sent_at),
    receivedAt: num(r.received_at),
    updatedAt: num(r.updated_at),
  };
}

function toDelivery(r: Row): Delivery {
  return {
    id: num(r.id),
    inboxId: numOrNull(r.inbox_id),
    kind: String(r.kind) as DeliveryKind,
    target: String(r.target),
    payload: strOrNull(r.payload),
    state: String(r.state) as Delivery['state'],
    dueAt: num(r.due_at),
    attempts: num(r.attempts),
    lastError: strOrNull(r.last_error),
    createdAt: num(r.created_at),
    doneAt: numOrNull(r.done_at),
  };
}

interface PartRow {
  id: number;
  seq: number;
  total: number;
  text: string;
  encoding: string;
  class: number | null;
  sentAt: string | null;
  pdu: string;
  inboxId: number | null;
  channelId?: number | null;
  receivedAt: number;
}

function toPart(r: Row): PartRow {
  return {
    id: num(r.id),
    seq: num(r.seq),
    total: num(r.total),
    text: String(r.text),
    encoding: String(r.encoding),
    class: numOrNull(r.class),
    sentAt: strOrNull(r.sent_at),
    pdu: String(r.pdu),
    inboxId: numOrNull(r.inbox_id),
    receivedAt: num(r.received_at),
  };
}

const hashOf = (pdu: string) => createHash('sha256').update(pdu.toUpperCase()).digest('hex');

/** The text of a set from the parts that came, in order, a gap marker for each one missing. */
function assemble(parts: PartRow[], total: number): { text: string; received: number; first: PartRow } {
  const bySeq = new Map(parts.map((p) => [p.seq, p]));
  let text = '';
  for (let seq = 1; seq <= total; seq++) text += bySeq.get(seq)?.text ?? MISSING_PART;
  const first = [...parts].sort((a, b) => a.seq - b.seq)[0]!;
  return { text, received: bySeq.size, first };
}

export class InboxStore {
  constructor(private readonly db: Db) {}

  /** Stores one received PDU (see the theory above); safe to call again with the same PDU and slot. */
  async storePart(part: ReceivedPart, now: number, plan: DeliveryPlan, options: { lateMs?: number } = {}): Promise<StoreResult> {
    return this.db.tx(async (tx) => {
      if (part.slot !== null) {
        const hash = hashOf(part.pdu);
        const [kept] = await tx.all<Row>(`SELECT pdu_hash FROM modem_slots WHERE sim_id = ? AND slot = ?${forUpdate(tx)}`, [part.simId, part.slot]);
        if (kept && String(kept.pdu_hash) === hash) return { outcome: 'duplicate', message: null };
        // A slot we remember with another PDU was emptied by someone else and filled anew.
        if (kept) await tx.run('DELETE FROM modem_slots WHERE sim_id = ? AND slot = ?', [part.simId, part.slot]);
        await tx.run('INSERT INTO modem_slots (sim_id, slot, pdu_hash, stored_at) VALUES (?, ?, ?, ?)', [part.simId, part.slot, hash, now]);
      }
      if (!part.concat || part.concat.total <= 1) {
        const message = await this.insertMessage(tx, part, { text: part.text, parts: 1, received: 1, complete: true }, now);
        await this.plan(tx, message, 'received', plan, now);
        return { outcome: 'message', message };
      }
      const { ref, total, seq, bits } = part.concat;
      const key = `${ref}:${total}:${bits}`;
      const all = (
        await tx.all<Row>(`SELECT * FROM inbox_parts WHERE sim_id = ? AND sender = ? AND concat_key = ? ORDER BY id${forUpdate(tx)}`, [part.simId, part.sender, key])
      ).map(toPart);
      // The network may deliver a part again (a lost acknowledgement), even after its set completed.
      if (all.some((p) => p.seq === seq && p.pdu.toUpperCase() === part.pdu.toUpperCase())) return { outcome: 'duplicate', message: null };
      let waiting = all.filter((p) => p.inboxId === null);
      const reused = waiting.some((p) => p.seq === seq);
      if (reused) {
        // The reference came round again for a new message: the old set goes out as it is.
        await this.surface(tx, part.simId, part.sender, key, waiting, now, plan);
        waiting = [];
      }
      if (waiting.length === 0 && !reused) {
        // A late part of a set that surfaced incomplete not long ago (newest first) completes it; an older one is
        // another message that happens to use the same reference.
        const late = await this.lateSet(tx, all, seq, now - (options.lateMs ?? 86_400_000));
        if (late !== null) {
          await this.insertPart(tx, part, key, late, now);
          const parts = [...all.filter((p) => p.inboxId === late), { ...toPartOf(part), inboxId: late }];
          const { text, received } = assemble(parts, total);
          await tx.run('UPDATE inbox SET text = ?, parts_received = ?, complete = ?, updated_at = ? WHERE id = ?', [text, received, received === total ? 1 : 0, now, late]);
          const message = await this.get(late, tx);
          await this.plan(tx, message!, 'updated', plan, now);
          return { outcome: 'message', message };
        }
      }
      const partId = await this.insertPart(tx, part, key, null, now);
      waiting.push({ ...toPartOf(part), id: partId, inboxId: null, receivedAt: now });
      if (new Set(waiting.map((p) => p.seq)).size < total) return { outcome: 'part', message: null };
      const message = await this.surface(tx, part.simId, part.sender, key, waiting, now, plan, part.channelId);
      return { outcome: 'message', message };
    });
  }

  /** The slot's message was deleted from the modem: nothing to remember. */
  async forgetSlot(simId: number, slot: string): Promise<void> {
    await this.db.run('DELETE FROM modem_slots WHERE sim_id = ? AND slot = ?', [simId, slot]);
  }

  /** Sets whose first part has waited longer than `waitMs` surface as incomplete messages; returns them. */
  async surfaceExpired(now: number, waitMs: number, plan: DeliveryPlan): Promise<InboxMessage[]> {
    const sets = await this.db.all<Row>(
      'SELECT sim_id, sender, concat_key FROM inbox_parts WHERE inbox_id IS NULL GROUP BY sim_id, sender, concat_key HAVING MIN(received_at) <= ?',
      [now - waitMs],
    );
    const out: InboxMessage[] = [];
    for (const set of sets) {
      const message = await this.db.tx(async (tx) => {
        const waiting = (
          await tx.all<Row>(`SELECT * FROM inbox_parts WHERE sim_id = ? AND sender = ? AND concat_key = ? AND inbox_id IS NULL ORDER BY id${forUpdate(tx)}`, [
            num(set.sim_id),
            String(set.sender),
            String(set.concat_key),
          ])
        ).map(toPart);
        if (waiting.length === 0) return null; // another process surfaced it meanwhile
        return this.surface(tx, num(set.sim_id), String(set.sender), String(set.concat_key), waiting, now, plan);
      });
      if (message) out.push(message);
    }
    return out;
  }

  /** Parts still waiting for their set, oldest first (the API's view of what is incomplete). */
  async waitingParts(): Promise<{ simId: number; sender: string; key: string; seq: number; total: number; receivedAt: number }[]> {
    const rows = await this.db.all<Row>('SELECT sim_id, sender, concat_key, seq, total, received_at FROM inbox_parts WHERE inbox_id IS NULL ORDER BY received_at, id');
    return rows.map((r) => ({ simId: num(r.sim_id), sender: String(r.sender), key: String(r.concat_key), seq: num(r.seq), total: num(r.total), receivedAt: num(r.received_at) }));
  }

  async get(id: number, db: Db = this.db): Promise<InboxMessage | null> {
    const [row] = await db.all<Row>('SELECT * FROM inbox WHERE id = ?', [id]);
    return row ? toInbox(row) : null;
  }

  /** Received messages, newest first. */
  async list(filter: InboxFilter = {}): Promise<InboxMessage[]> {
    const where: string[] = [];
    const params: Param[] = [];
    if (filter.simIds) {
      where.push(`sim_id IN (${marks(filter.simIds.length)})`);
      params.push(...(filter.simIds.length > 0 ? filter.simIds : [-1]));
    }
    if (filter.simId !== undefined) where.push('sim_id = ?'), params.push(filter.simId);
    if (filter.sender !== undefined) where.push('sender = ?'), params.push(filter.sender);
    if (filter.before !== undefined) where.push('id < ?'), params.push(filter.before);
    if (filter.since !== undefined) where.push('received_at >= ?'), params.push(filter.since);
    const limit = Math.max(1, Math.min(1000, Math.floor(filter.limit ?? 50)));
    const rows = await this.db.all<Row>(`SELECT * FROM inbox${where.length ? ` WHERE ${where.join(' AND ')}` : ''} ORDER BY id DESC LIMIT ${limit}`, params);
    return rows.map(toInbox);
  }

  /** Deletes received messages older than `before` (history retention) with their parts; those with deliveries still pending stay. */
  async purge(before: number): Promise<number> {
    return this.db.tx(async (tx) => {
      const ids = (
        await tx.all<Row>(`SELECT id FROM inbox WHERE received_at < ? AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.inbox_id = inbox.id AND d.state = 'pending') LIMIT 10000`, [before])
      ).map((r) => num(r.id));
      if (ids.length === 0) return 0;
      for (const table of ['deliveries', 'inbox_parts']) await tx.run(`DELETE FROM ${table} WHERE inbox_id IN (${marks(ids.length)})`, ids);
      return (await tx.run(`DELETE FROM inbox WHERE id IN (${marks(ids.length)})`, ids)).changes;
    });
  }

  // ---- the deliveries outbox

  /** Adds deliveries that belong to no message (alerts). */
  async addDeliveries(items: NewDelivery[], now: number, inboxId: number | null = null): Promise<void> {
    await this.db.tx((tx) => this.insertDeliveries(tx, inboxId, items, now));
  }

  /**
   * Takes up to `limit` due deliveries for `owner` until `now + leaseMs` (SKIP LOCKED on MariaDB: several processes
   * never take one twice); a delivery whose lease ran out (a crash mid-post) is due again.
   */
  async claimDeliveries(owner: string, now: number, leaseMs: number, limit: number): Promise<Delivery[]> {
    return this.db.tx(async (tx) => {
      const rows = await tx.all<Row>(
        `SELECT id FROM deliveries WHERE state = 'pending' AND due_at <= ? AND (lease_until IS NULL OR lease_until < ?)
         ORDER BY due_at, id LIMIT ${Math.max(1, Math.floor(limit))}${forUpdate(tx, true)}`,
        [now, now],
      );
      const ids = rows.map((r) => num(r.id));
      if (ids.length === 0) return [];
      await tx.run(`UPDATE deliveries SET lease_owner = ?, lease_until = ? WHERE id IN (${marks(ids.length)})`, [owner, now + leaseMs, ...ids]);
      return (await tx.all<Row>(`SELECT * FROM deliveries WHERE id IN (${marks(ids.length)}) ORDER BY due_at, id`, ids)).map(toDelivery);
    });
  }

  /** A delivery went through (or gave up: `error` with `retryAt` null), or is to be tried again at `retryAt`. */
  async finishDelivery(id: number, owner: string, outcome: { error: string | null; retryAt: number | null }, now: number): Promise<boolean> {
    const { error, retryAt } = outcome;
    const state = error === null ? 'done' : retryAt === null ? 'failed' : 'pending';
    const r = await this.db.run(
      `UPDATE deliveries SET state = ?, attempts = attempts + 1, last_error = ?, due_at = COALESCE(?, due_at), done_at = ?, lease_owner = NULL, lease_until = NULL
       WHERE id = ? AND lease_owner = ?`,
      [state, error, retryAt, state === 'pending' ? null : now, id, owner],
    );
    return r.changes === 1;
  }

  async deliveriesOf(inboxId: number): Promise<Delivery[]> {
    return (await this.db.all<Row>('SELECT * FROM deliveries WHERE inbox_id = ? ORDER BY id', [inboxId])).map(toDelivery);
  }

  async listDeliveries(filter: { state?: Delivery['state']; kind?: DeliveryKind; limit?: number } = {}): Promise<Delivery[]> {
    const where: string[] = [];
    const params: Param[] = [];
    if (filter.state) where.push('state = ?'), params.push(filter.state);
    if (filter.kind) where.push('kind = ?'), params.push(filter.kind);
    const limit = Math.max(1, Math.min(1000, Math.floor(filter.limit ?? 100)));
    return (await this.db.all<Row>(`SELECT * FROM deliveries${where.length ? ` WHERE ${where.join(' AND ')}` : ''} ORDER BY id DESC LIMIT ${limit}`, params)).map(toDelivery);
  }

  // ---- inside the transactions

  private async insertMessage(
    tx: Db,
    part: ReceivedPart,
    set: { text: string; parts: number; received: number; complete: boolean; first?: PartRow; receivedAt?: number },
    now: number,
  ): Promise<InboxMessage> {
    const first = set.first ?? { encoding: part.encoding, class: part.class, sentAt: part.sentAt };
    const r = await tx.run(
      `INSERT INTO inbox (sim_id, channel_id, sender, text, encoding, class, parts, parts_received, complete, concat_ref, sent_at, received_at, updated_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      [part.simId, part.channelId, part.sender, set.text, first.encoding, first.class, set.parts, set.received, set.complete ? 1 : 0, part.concat?.ref ?? null, first.sentAt, set.receivedAt ?? now, now],
    );
    return (await this.get(r.insertId, tx))!;
  }

  private async insertPart(tx: Db, part: ReceivedPart, key: string, inboxId: number | null, now: number): Promise<number> {
    const r = await tx.run(
      `INSERT INTO inbox_parts (sim_id, sender, concat_key, seq, total, text, encoding, class, sent_at, pdu, inbox_id, received_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      [part.simId, part.sender, key, part.concat!.seq, part.concat!.total, part.text, part.encoding, part.class, part.sentAt, part.pdu, inboxId, now],
    );
    return r.insertId;
  }

  /** Makes a waiting set one message (complete or not) and ties its parts to it. */
  private async surface(tx: Db, simId: number, sender: string, key: string, waiting: PartRow[], now: number, plan: DeliveryPlan, channelId: number | null = null): Promise<InboxMessage> {
    const [ref, total] = key.split(':').map(Number) as [number, number];
    const { text, received, first } = assemble(waiting, total);
    const receivedAt = Math.min(...waiting.map((p) => p.receivedAt));
    const stand: ReceivedPart = { simId, channelId, slot: null, pdu: '', sender, text, encoding: first.encoding, class: first.class, sentAt: first.sentAt, concat: { ref, total, seq: 0, bits: 8 } };
    const message = await this.insertMessage(tx, stand, { text, parts: total, received, complete: received === total, first, receivedAt }, now);
    await tx.run(`UPDATE inbox_parts SET inbox_id = ? WHERE id IN (${marks(waiting.length)})`, [message.id, ...waiting.map((p) => p.id)]);
    await this.plan(tx, message, 'received', plan, now);
    return message;
  }

  /** The incomplete message (newest first) among a set's surfaced parts received since `since` that lacks part `seq`. */
  private async lateSet(tx: Db, all: PartRow[], seq: number, since: number): Promise<number | null> {
    const ids = [...new Set(all.filter((p) => p.inboxId !== null && p.receivedAt >= since).map((p) => p.inboxId!))].sort((a, b) => b - a);
    for (const id of ids) {
      if (all.some((p) => p.inboxId === id && p.seq === seq)) continue;
      const [row] = await tx.all<Row>('SELECT complete FROM inbox WHERE id = ?', [id]);
      if (row && num(row.complete) === 0) return id;
    }
    return null;
  }

  private async plan(tx: Db, message: InboxMessage, event: InboxEvent, plan: DeliveryPlan, now: number): Promise<void> {
    await this.insertDeliveries(tx, message.id, plan(message, event), now);
  }

  private async insertDeliveries(tx: Db, inboxId: number | null, items: NewDelivery[], now: number): Promise<void> {
    for (const item of items) {
      await tx.run('INSERT INTO deliveries (inbox_id, kind, target, payload, state, due_at, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)', [
        inboxId,
        item.kind,
        item.target,
        item.payload ?? null,
        'pending',
        now,
        now,
      ]);
    }
  }
}

function toPartOf(part: ReceivedPart): PartRow {
  return { id: 0, seq: part.concat!.seq, total: part.concat!.total, text: part.text, encoding: part.encoding, class: part.class, sentAt: part.sentAt, pdu: part.pdu, inboxId: null, receivedAt: 0 };
}
