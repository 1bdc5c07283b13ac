/**
 * FAILS against the gateway as it is — a bug the faults test found (README, "Chaos and fuzz"; its figure
 * `retryOtherNextSameSim`). After a retry-other error (`+CMS ERROR 38`, network out of order) the dispatcher queues
 * the message again "retrying on another SIM: …" with that SIM to avoid, and the README promises "smsgate moves the
 * message to another SIM and retries". But `selectSim` (scheduler/rules.ts: `pool = choosable.length > 0 ?
 * choosable : ready`) falls back to the avoided SIM whenever no other SIM has an idle channel at that very moment —
 * under load, nearly always — so the message goes straight back to the SIM that just failed it, and with a SIM that
 * keeps failing it burns its attempts there while healthy SIMs are only busy.
 *
 * Deterministic: two modems; modem 1 answers slowly (busy 1.5 s with the second message); modem 0 refuses its next
 * send with 38. The first message fails on SIM 1 and must then go through SIM 2 once it is free.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { type TestGateway, startGateway } from '../helpers/gateway.js';

let g: TestGateway | undefined;
afterAll(async () => {
  await g?.stop();
});

describe('retry-other errors', () => {
  it('a message refused with +CMS ERROR 38 is not retried on that SIM while another healthy SIM is only busy', async () => {
    g = await startGateway({ modems: 2, latencyMs: 20 });
    g.sim.sim.modem(1).latencyMs = 1_500;
    g.sim.sim.fault(0, { type: 'cms', code: 38, times: 1 });
    const [first, second] = await g.enqueue(2);
    const sent = async (id: number) => (await g!.storage.getMessage(id))!.state === 'sent';
    await g.drainUntil(async () => (await sent(first!)) && (await sent(second!)), 20_000);
    const events = (await g.storage.listEvents({ messageId: first! })).reverse();
    // The set-up did what it says: the first message met the 38 on SIM 1 while SIM 2 was sending the second.
    expect(events.map((e) => [e.kind, e.simId])[0]).toEqual(['message.attempt-failed', g.sims[0]!.id]);
    expect((await g.storage.getMessage(second!))!.simId).toBe(g.sims[1]!.id);
    // The retry goes to the other SIM.
    expect((await g.storage.getMessage(first!))!.simId).toBe(g.sims[1]!.id);
  }, 30_000);
});
