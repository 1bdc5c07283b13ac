/**
 * Delivery reports end to end over the simulator's ptys: TP-SRR set when asked, each part's +CMGS reference kept,
 * `+CDS` reports matched by SIM, reference and recipient, and the parts rolled up into the message's state —
 * reports out of order, a failed part, a pending one, and references that wrap.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { Message } from '../../sql/storage.js';
import { type TestGateway, startGateway } from '../helpers/gateway.js';

const gateways: TestGateway[] = [];
afterEach(async () => {
  for (const g of gateways.splice(0)) await g.stop();
});

async function gateway(latencyMs = 20): Promise<TestGateway> {
  const g = await startGateway({ modems: 1, latencyMs });
  gateways.push(g);
  return g;
}

async function until(g: TestGateway, id: number, ok: (m: Message) => boolean, ms = 10_000): Promise<Message> {
  const end = Date.now() + ms;
  for (;;) {
    const m = (await g.storage.getMessage(id))!;
    if (ok(m)) return m;
    if (Date.now() > end) throw new Error(`message ${id} stayed ${m.state}: ${JSON.stringify(m.partStatus)}`);
    g.dispatcher.wake();
    await new Promise((r) => setTimeout(r, 25));
  }
}

const long = 'x'.repeat(400); // 3 GSM-7 parts

describe('delivery reports', () => {
  it('a one-part message with a report asked for becomes delivered when the network says so', async () => {
    const g = await gateway();
    const [id] = await g.enqueue(1, { report: true });
    const m = await until(g, id!, (x) => x.state === 'delivered');
    expect(g.sim.sim.records()[0]!.report).toBe(true);
    expect(m.partStatus).toEqual([{ status: 'delivered', code: 0, text: 'received by the recipient', at: expect.any(Number) }]);
    expect(m.deliveredAt).not.toBeNull();
    expect((await g.storage.listEvents({ messageId: id! })).map((e) => e.kind)).toContain('message.report');
  });

  it('without a report asked for, TP-SRR is not set and the message stays sent', async () => {
    const g = await gateway();
    const [id] = await g.enqueue(1);
    await until(g, id!, (x) => x.state === 'sent');
    await new Promise((r) => setTimeout(r, 200));
    expect((await g.storage.getMessage(id!))!.state).toBe('sent');
    expect(g.sim.sim.records()[0]!.report).toBe(false);
  });

  it('rolls three parts up whatever order their reports come in', async () => {
    const g = await gateway();
    g.sim.sim.fault(0, { type: 'reports', hold: true, times: 3 });
    const [id] = await g.enqueue(1, { report: true, text: long, parts: 3 });
    const sent = await until(g, id!, (x) => x.state === 'sent');
    const refs = sent.partRefs!;
    expect(refs).toHaveLength(3);
    const modem = g.sim.sim.modem(0);
    modem.statusReport(refs[1]!, sent.recipient, 0);
    await until(g, id!, (x) => x.partStatus?.[1]?.status === 'delivered');
    modem.statusReport(refs[2]!, sent.recipient, 0);
    await until(g, id!, (x) => x.partStatus?.[2]?.status === 'delivered');
    expect((await g.storage.getMessage(id!))!.state).toBe('sent');
    modem.statusReport(refs[0]!, sent.recipient, 0);
    const done = await until(g, id!, (x) => x.state === 'delivered');
    expect(done.partStatus!.map((p) => p!.status)).toEqual(['delivered', 'delivered', 'delivered']);
  });

  it("a part's report that comes while the later parts are still being sent is kept until the message is sent", async () => {
    // Each report comes a network latency after its part's +CMGS: part 1's while part 2 is on its way.
    const g = await gateway(150);
    const [id] = await g.enqueue(1, { report: true, text: long, parts: 3 });
    const done = await until(g, id!, (x) => x.state === 'delivered');
    expect(done.partStatus!.map((p) => p!.status)).toEqual(['delivered', 'delivered', 'delivered']);
  });

  it('one failed part makes the message undelivered, with the network reason', async () => {
    const g = await gateway();
    // 0x41: incompatible destination (a permanent error, 23.040 §9.2.3.15).
    g.sim.sim.fault(0, { type: 'reports', status: 0x41 });
    const [id] = await g.enqueue(1, { report: true });
    const m = await until(g, id!, (x) => x.state === 'undelivered');
    expect(m.errorCode).toBe('REPORT');
    expect(m.reason).toMatch(/could not deliver it: .+\(status 0x41\)/);
    expect(m.partStatus![0]).toMatchObject({ status: 'failed', code: 0x41 });
  });

  it('a pending report is recorded; the final one decides', async () => {
    const g = await gateway();
    g.sim.sim.fault(0, { type: 'reports', hold: true });
    const [id] = await g.enqueue(1, { report: true });
    const sent = await until(g, id!, (x) => x.state === 'sent');
    const modem = g.sim.sim.modem(0);
    // 0x20: congestion, the SC keeps trying.
    modem.statusReport(sent.partRefs![0]!, sent.recipient, 0x20);
    await until(g, id!, (x) => x.partStatus?.[0]?.status === 'pending');
    expect((await g.storage.getMessage(id!))!.state).toBe('sent');
    modem.statusReport(sent.partRefs![0]!, sent.recipient, 0);
    await until(g, id!, (x) => x.state === 'delivered');
  });

  it('references wrap: a report goes to the newest open message with that reference, the next to the older one', async () => {
    const g = await gateway();
    const modem = g.sim.sim.modem(0);
    g.sim.sim.fault(0, { type: 'reports', hold: true, times: 2 });
    modem.setNextReference(255);
    const [older] = await g.enqueue(1, { report: true, recipient: '+79161112233' });
    const a = await until(g, older!, (x) => x.state === 'sent');
    expect(a.partRefs).toEqual([255]);
    // 256 references later the network hands out 255 again.
    modem.setNextReference(255);
    const [newer] = await g.enqueue(1, { report: true, recipient: '+79161112233' });
    const b = await until(g, newer!, (x) => x.state === 'sent');
    expect(b.partRefs).toEqual([255]);
    // The report's number in national form still matches.
    modem.statusReport(255, '89161112233', 0);
    await until(g, newer!, (x) => x.state === 'delivered');
    expect((await g.storage.getMessage(older!))!.state).toBe('sent');
    modem.statusReport(255, '+79161112233', 0x41);
    await until(g, older!, (x) => x.state === 'undelivered');
    expect((await g.storage.getMessage(newer!))!.state).toBe('delivered');
  });

  it('a report that matches nothing changes nothing', async () => {
    const g = await gateway();
    const [id] = await g.enqueue(1, { report: true });
    await until(g, id!, (x) => x.state === 'delivered');
    const before = await g.storage.getMessage(id!);
    g.sim.sim.modem(0).statusReport(77, '+79990000000', 0x41);
    await new Promise((r) => setTimeout(r, 300));
    expect(await g.storage.getMessage(id!)).toEqual(before);
  });
});
