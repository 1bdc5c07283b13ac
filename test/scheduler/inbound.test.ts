/**
 * Received messages end to end over the simulator's ptys: +CMTI read at once, the periodic sweep for modems that
 * announce nothing, concatenated messages reassembled from parts out of order, across sweeps and across a restart
 * of the gateway, incomplete sets surfaced after the wait (and completed by a late part), identical texts kept
 * apart, a message stored but not deleted (crash) never stored twice, stored status reports (+CDSI), and the
 * deliveries each message calls for.
 */
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Dispatcher } from '../../scheduler/dispatcher.js';
import { attachModems } from '../../scheduler/pool.js';
import type { DeliveryPlan, InboxMessage } from '../../sql/inbox.js';
import { openStorage } from '../../sql/index.js';
import { type TestGateway, startGateway } from '../helpers/gateway.js';

const gateways: TestGateway[] = [];
afterEach(async () => {
  for (const g of gateways.splice(0)) await g.stop();
});

const webhookPlan: DeliveryPlan = (_m, event) => [{ kind: 'webhook', target: 'http://127.0.0.1:9/hook', payload: `inbox.${event}` }];

async function gateway(options: { sweepMs?: number; incompleteWaitMs?: number; clock?: () => number } = {}): Promise<TestGateway> {
  const g = await startGateway({ modems: 1, latencyMs: 20 }, { inbound: { plan: webhookPlan, sweepMs: options.sweepMs, incompleteWaitMs: options.incompleteWaitMs }, clock: options.clock });
  gateways.push(g);
  return g;
}

async function inboxOf(g: TestGateway, count: number, ms = 10_000): Promise<InboxMessage[]> {
  const end = Date.now() + ms;
  for (;;) {
    const rows = await g.storage.inbox.list();
    if (rows.length >= count) return rows.reverse();
    if (Date.now() > end) throw new Error(`the inbox has ${rows.length} message(s), not ${count}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

async function modemEmpty(g: TestGateway, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (g.sim.sim.modem(0).list('SM').length + g.sim.sim.modem(0).list('ME').length + g.sim.sim.modem(0).list('SR').length > 0) {
    if (Date.now() > end) throw new Error('the modem storage was not emptied');
    await new Promise((r) => setTimeout(r, 25));
  }
}

const long = 'Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor incididunt ut labore et dolore magna aliqua. Ut enim ad minim veniam, quis nostrud exercitation ullamco laboris nisi ut aliquip ex ea commodo consequat. Duis aute irure dolor in reprehenderit in voluptate velit esse cillum dolore eu fugiat nulla pariatur. Excepteur sint occaecat.';

describe('inbound messages', () => {
  it('reads a message announced with +CMTI at once, stores it with SIM, sender, text and times, and empties the modem', async () => {
    const g = await gateway({ sweepMs: 3_600_000 });
    g.sim.sim.modem(0).deliver('+79031234567', 'Привет, шлюз!', { timestamp: '2026-11-24T10:15:30+03:00' });
    const [m] = await inboxOf(g, 1);
    expect(m).toMatchObject({ sender: '+79031234567', text: 'Привет, шлюз!', encoding: 'ucs2', simId: g.sims[0]!.id, parts: 1, complete: true, sentAt: '2026-11-24T10:15:30+03:00' });
    expect(m!.receivedAt).toBeGreaterThan(Date.now() - 60_000);
    await modemEmpty(g);
    // The plan's delivery was written with the message.
    expect((await g.storage.inbox.deliveriesOf(m!.id)).map((d) => [d.kind, d.payload, d.state])).toEqual([['webhook', 'inbox.received', 'pending']]);
  });

  it('reassembles a concatenated message whose parts arrive out of order, in separate sweeps', async () => {
    const g = await gateway({ sweepMs: 3_600_000 });
    const modem = g.sim.sim.modem(0);
    const total = modem.deliver('+79031234567', long, { parts: [3], reference: 77 });
    expect(total).toBe(3);
    await modemEmpty(g);
    expect(await g.storage.inbox.list()).toEqual([]);
    modem.deliver('+79031234567', long, { parts: [1], reference: 77 });
    await modemEmpty(g);
    expect(await g.storage.inbox.list()).toEqual([]);
    expect((await g.storage.inbox.waitingParts()).map((p) => p.seq).sort()).toEqual([1, 3]);
    modem.deliver('+79031234567', long, { parts: [2], reference: 77 });
    const [m] = await inboxOf(g, 1);
    expect(m).toMatchObject({ text: long, parts: 3, partsReceived: 3, complete: true, concatRef: 77 });
    expect(await g.storage.inbox.waitingParts()).toEqual([]);
  });

  it('keeps identical texts from one sender apart (devices repeat alarms on purpose)', async () => {
    const g = await gateway({ sweepMs: 3_600_000 });
    const stamp = '2026-11-24T10:00:00+03:00';
    g.sim.sim.modem(0).deliver('+79031234567', 'ALARM door open', { timestamp: stamp });
    g.sim.sim.modem(0).deliver('+79031234567', 'ALARM door open', { timestamp: stamp });
    const rows = await inboxOf(g, 2);
    expect(rows.map((r) => r.text)).toEqual(['ALARM door open', 'ALARM door open']);
    await modemEmpty(g);
    await new Promise((r) => setTimeout(r, 200));
    expect(await g.storage.inbox.list()).toHaveLength(2);
  });

  it('finds messages the modem never announced in the periodic sweep (SIM and modem storage)', async () => {
    let now = Date.now();
    const g = await gateway({ sweepMs: 60_000, clock: () => now });
    const modem = g.sim.sim.modem(0);
    // Stored quietly, as modems without new-message indications do.
    const { encodeDeliver } = await import('../../modem/pdu/index.js');
    modem.store('SM', 0, encodeDeliver({ from: '+79031111111', text: 'quiet one', timestamp: '2026-11-24T09:00:00+03:00' }).parts[0]!.pdu);
    modem.store('ME', 1, encodeDeliver({ from: 'Bank', alphanumeric: true, text: 'quiet two, already read', timestamp: '2026-11-24T09:01:00+03:00' }).parts[0]!.pdu);
    await g.dispatcher.inbound.tick();
    expect(await g.storage.inbox.list()).toEqual([]); // swept at start, not due again yet
    now += 61_000;
    await g.dispatcher.inbound.tick();
    const rows = await inboxOf(g, 2);
    expect(rows.map((r) => [r.sender, r.text])).toEqual([
      ['+79031111111', 'quiet one'],
      ['Bank', 'quiet two, already read'],
    ]);
    await modemEmpty(g);
  });

  it('leaves stored outgoing messages (stat 2, 3) on the modem; an undecodable PDU is stored as it is and deleted', async () => {
    const g = await gateway({ sweepMs: 3_600_000 });
    const modem = g.sim.sim.modem(0);
    const { encodeSubmit } = await import('../../modem/pdu/index.js');
    await g.dispatcher.inbound.sweep(g.sims[0]!.id);
    modem.store('SM', 2, encodeSubmit({ to: '+79030000000', text: 'draft' }).parts[0]!.pdu);
    modem.store('SM', 0, '00040B91'); // an SMS-DELIVER cut short in its sender's address
    modem.deliver('+79031234567', 'real one');
    const rows = await inboxOf(g, 2);
    expect(rows.map((r) => [r.sender, r.encoding, r.text])).toEqual([
      ['(undecodable)', 'pdu', '00040B91'],
      ['+79031234567', 'gsm7', 'real one'],
    ]);
    await g.dispatcher.inbound.sweep(g.sims[0]!.id);
    expect(modem.list('SM').map((m) => m.stat)).toEqual([2]);
  });

  it('a part the network delivers again after its set completed is a duplicate, not a new message', async () => {
    const g = await gateway({ sweepMs: 3_600_000 });
    const modem = g.sim.sim.modem(0);
    const stamp = '2026-11-24T11:00:00+03:00';
    modem.deliver('+79031234567', long, { reference: 33, timestamp: stamp });
    await inboxOf(g, 1);
    await modemEmpty(g);
    modem.deliver('+79031234567', long, { parts: [2], reference: 33, timestamp: stamp });
    await modemEmpty(g);
    expect(await g.storage.inbox.waitingParts()).toEqual([]);
    expect(await g.storage.inbox.list()).toHaveLength(1);
  });

  it('a message stored but not deleted (a crash between) is deleted by the next sweep, not stored twice', async () => {
    const g = await gateway({ sweepMs: 3_600_000 });
    const modem = g.sim.sim.modem(0);
    const { encodeDeliver } = await import('../../modem/pdu/index.js');
    const pdu = encodeDeliver({ from: '+79031234567', text: 'once', timestamp: '2026-11-24T09:00:00+03:00' }).parts[0]!.pdu;
    await g.dispatcher.inbound.sweep(g.sims[0]!.id); // the start's sweep is over
    // What a crash after storing leaves: the row and the remembered slot, the PDU still on the modem.
    const index = modem.store('SM', 1, pdu)!;
    await g.storage.inbox.storePart(
      { simId: g.sims[0]!.id, channelId: null, slot: `SM:${index}`, pdu, sender: '+79031234567', text: 'once', encoding: 'gsm7', class: null, sentAt: null, concat: null },
      Date.now(),
      () => [],
    );
    const result = await g.dispatcher.inbound.sweep(g.sims[0]!.id);
    expect(result).toMatchObject({ duplicates: 1, messages: 0 });
    expect(modem.list('SM')).toEqual([]);
    expect(await g.storage.inbox.list()).toHaveLength(1);
    // And the same text arriving again afterwards, in the same slot, is a new message.
    modem.deliver('+79031234567', 'once', { timestamp: '2026-11-24T09:00:00+03:00' });
    await inboxOf(g, 2);
  });

  it('surfaces a set still incomplete after the wait, and a late part completes it', async () => {
    let now = Date.now();
    const g = await gateway({ sweepMs: 3_600_000, incompleteWaitMs: 600_000, clock: () => now });
    const modem = g.sim.sim.modem(0);
    modem.deliver('+79031234567', long, { parts: [1, 3], reference: 5 });
    await modemEmpty(g);
    await new Promise((r) => setTimeout(r, 100));
    now += 601_000;
    await g.dispatcher.inbound.tick();
    const [m] = await inboxOf(g, 1);
    expect(m).toMatchObject({ complete: false, parts: 3, partsReceived: 2 });
    expect(m!.text).toContain('[…]');
    modem.deliver('+79031234567', long, { parts: [2], reference: 5 });
    const end = Date.now() + 10_000;
    let after = (await g.storage.inbox.get(m!.id))!;
    while (!after.complete && Date.now() < end) {
      await new Promise((r) => setTimeout(r, 25));
      after = (await g.storage.inbox.get(m!.id))!;
    }
    expect(after).toMatchObject({ complete: true, partsReceived: 3, text: long });
    expect((await g.storage.inbox.deliveriesOf(m!.id)).map((d) => d.payload)).toEqual(['inbox.received', 'inbox.updated']);
    expect(await g.storage.inbox.list()).toHaveLength(1);
  });

  it('a reference used again for a new message while the old set waits: the old one surfaces, the new one is its own', async () => {
    const g = await gateway({ sweepMs: 3_600_000 });
    const modem = g.sim.sim.modem(0);
    modem.deliver('+79031234567', long, { parts: [1], reference: 9 });
    await modemEmpty(g);
    const other = long.replace('Lorem', 'Other');
    modem.deliver('+79031234567', other, { parts: [1, 2, 3], reference: 9 });
    const rows = await inboxOf(g, 2);
    expect(rows[0]).toMatchObject({ complete: false, partsReceived: 1 });
    expect(rows[1]).toMatchObject({ complete: true, text: other });
  });

  it('reads status reports the modem stores (+CDSI) and applies them', async () => {
    const g = await gateway({ sweepMs: 3_600_000 });
    g.sim.sim.modem(0).storeReports = true;
    const [id] = await g.enqueue(1, { report: true });
    await g.drainUntil(async () => (await g.storage.getMessage(id!))!.state === 'delivered');
    await modemEmpty(g);
  });

  it('reassembles a set across a restart of the gateway, from parts kept in the database', async () => {
    const g = await gateway({ sweepMs: 3_600_000 });
    g.sim.sim.modem(0).deliver('+79031234567', long, { parts: [2], reference: 200 });
    await modemEmpty(g);
    const dbPath = join(g.sim.dir, '..', 'gateway.db');
    // Stop the gateway (not the simulator), then start a new one on the same database.
    await g.dispatcher.stop();
    await g.storage.close();
    g.sim.sim.modem(0).deliver('+79031234567', long, { parts: [3, 1], reference: 200 });
    const storage = await openStorage(`sqlite:${dbPath}`);
    const dispatcher = new Dispatcher({ storage, cron: false, inbound: { plan: webhookPlan } });
    try {
      const attached = await attachModems(storage, dispatcher, g.sim.sim.modemsFound(), { lockDir: g.sim.lockDir });
      expect(attached.problems).toEqual([]);
      await dispatcher.start();
      const end = Date.now() + 10_000;
      let rows = await storage.inbox.list();
      while (rows.length === 0 && Date.now() < end) {
        await new Promise((r) => setTimeout(r, 25));
        rows = await storage.inbox.list();
      }
      expect(rows).toHaveLength(1);
      expect(rows[0]).toMatchObject({ text: long, complete: true, parts: 3 });
    } finally {
      await dispatcher.stop();
      await storage.close();
      // The helper's stop() closes these again: harmless.
      g.storage = await openStorage(`sqlite:${dbPath}`);
      g.dispatcher = new Dispatcher({ storage: g.storage, cron: false });
    }
  });
});
