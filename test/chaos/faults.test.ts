/**
 * Modem faults during a drain: the dispatcher (short retry and recheck times, the watchdog on) drains a queue of
 * one-part and multipart, GSM-7 and UCS-2 messages over four simulated modems on real ptys while a schedule, keyed
 * to the drain's progress, injects `+CMS ERROR`s of each retry class (21 permanent, 38 retry-other, 42 retry-same),
 * hangs, an unplug and replug of one modem, and a loss of registration and its return.
 *
 * Then the simulator's record of what the network received (one record per part) is held against the database:
 * - every message reaches a final state: `sent`, `failed` with its reason and error, or `unknown`; none is lost;
 * - a `sent` message reached the network complete, once, with its text, through the SIM the database names, under
 *   the references it stored; a `failed` one never reached it complete; an `unknown` one at most once;
 * - anything more on the network (a multipart message cut after some parts, then sent again) is recorded in the
 *   message's events (an attempt that failed after N parts, or one cut off) — no unrecorded duplicate;
 * - each fault did what its class says (21 failed at once, 38 and no service moved on to another SIM, 42 retried);
 * - each SIM's quota counter holds exactly the parts its events say went out, with nothing left reserved.
 * 150 messages and one round of faults in the short form, 600 messages and four rounds in the long one (mode.ts).
 */
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { countSegments } from '../../modem/pdu/index.js';
import type { NetworkRecord } from '../../modem/simulator/sim-modem.js';
import { probe } from '../../modem/probe.js';
import { ModemSender } from '../../modem/sender.js';
import { billingPeriod } from '../../scheduler/rules.js';
import type { WatchdogAction } from '../../scheduler/watchdog.js';
import type { NewMessage } from '../../sql/storage.js';
import { type TestGateway, startGateway } from '../helpers/gateway.js';
import { SCALE, allMessages, writeFigures } from './mode.js';

const MESSAGES = SCALE.faultMessages;
const ROUNDS = SCALE.faultRounds;
const MODEMS = 4;
const gateways: TestGateway[] = [];
afterAll(async () => {
  for (const g of gateways.splice(0)) await g.stop();
});

interface Event {
  kind: string;
  messageId: number | null;
  simId: number | null;
  channelId: number | null;
  detail: Record<string, unknown> | null;
}

/** The text of message `i`: mostly one GSM-7 part; every tenth a 2-part GSM-7 one, a 2-part UCS-2 one, a short UCS-2 one. */
function textOf(i: number): string {
  switch (i % 10) {
    case 7:
      return `chaos ${i} ${'long text with [brackets] and {braces} '.repeat(6)}`;
    case 8:
      return `хаос ${i} ${'длинное сообщение '.repeat(5)}`;
    case 9:
      return `хаос ${i} 😀`;
    default:
      return `chaos ${i}`;
  }
}

/** A message as the network received it: its parts grouped into sends (one concatenation reference on one SIM). */
interface Delivery {
  imsi: string;
  text: string;
  mrs: number[];
  complete: boolean;
}

function deliveriesOf(records: NetworkRecord[]): Delivery[] {
  const out: (Delivery & { ref: number | null; seqs: number[]; total: number; pieces: string[] })[] = [];
  for (const r of records) {
    const ref = r.concat?.ref ?? null;
    const seq = r.concat?.seq ?? 1;
    // A part joins the open send of the same SIM and reference that lacks its number; otherwise it opens one.
    let d = out.find((x) => x.ref !== null && x.ref === ref && x.imsi === r.imsi && !x.seqs.includes(seq) && x.seqs.length < x.total);
    if (!d || ref === null) {
      d = { imsi: r.imsi, text: '', mrs: [], complete: false, ref, seqs: [], total: r.concat?.total ?? 1, pieces: [] };
      out.push(d);
    }
    d.seqs.push(seq);
    d.pieces[seq - 1] = r.text ?? '';
    d.mrs[seq - 1] = r.mr;
    d.complete = d.seqs.length === d.total;
    d.text = d.pieces.join('');
  }
  return out.map(({ imsi, text, mrs, complete }) => ({ imsi, text, mrs, complete }));
}

describe('modem faults while draining', () => {
  it(`${MESSAGES} messages over ${MODEMS} modems through CMS errors of each class, hangs, an unplug and lost registration: none lost, no unrecorded duplicate`, async () => {
    const started = Date.now();
    const actions: WatchdogAction[] = [];
    let dir = '';
    let lockDir = '';
    const g = await startGateway(
      { modems: MODEMS, latencyMs: 40 },
      {
        sendTimeoutMs: 1_500,
        retryBaseMs: 150,
        recheckMs: 150,
        observer: { started: () => undefined, finished: () => undefined, watchdog: (a) => void actions.push(a) },
        watchdog: {
          reappearMs: 30_000,
          pollMs: 300,
          find: async (imei) => (await probe({ globs: [join(dir, 'ttyUSB*')], lockDir, tries: 2, atTimeoutMs: 300 })).modems.find((m) => m.imei === imei)?.ports ?? [],
          open: (port) => ModemSender.open(port, { lockDir, sendTimeoutMs: 1_500 }),
        },
      },
    );
    gateways.push(g);
    dir = g.sim.dir;
    lockDir = g.sim.lockDir;
    const sim = g.sim.sim;
    const imsiOfSim = new Map(g.sims.map((s) => [s.id, s.imsi]));

    const items: NewMessage[] = Array.from({ length: MESSAGES }, (_, i) => {
      const text = textOf(i);
      const count = countSegments(text);
      return { userId: g.userId, recipient: `+7916${String(i).padStart(7, '0')}`, text, encoding: count.encoding, parts: count.parts, maxAttempts: 6 };
    });
    await g.storage.enqueue(items);
    g.dispatcher.wake();

    // The fault schedule, each step when the drain has got this far (the share of messages in a final state). One
    // round in the short form; in the long form the round repeats over the drain, each time on other modems.
    const faults: string[] = [];
    const steps: { at: number; name: string; run: () => Promise<void> | void }[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      const m = (k: number) => (k + round) % MODEMS;
      const at = (share: number) => (round + share) / ROUNDS;
      steps.push(
        {
          at: at(0.05),
          name: `cms 21 (permanent) x2 on modem ${m(0)}, 38 (retry-other) x3 on modem ${m(1)}, 42 (retry-same) x3 on modem ${m(2)}`,
          run: () => {
            sim.fault(m(0), { type: 'cms', code: 21, times: 2 });
            sim.fault(m(1), { type: 'cms', code: 38, times: 3 });
            sim.fault(m(2), { type: 'cms', code: 42, times: 3 });
          },
        },
        { at: at(0.2), name: `modem ${m(3)} hangs (3 commands unanswered)`, run: () => sim.fault(m(3), { type: 'hang', times: 3 }) },
        { at: at(0.3), name: `modem ${m(1)} unplugged`, run: () => sim.unplug(m(1)) },
        { at: at(0.42), name: `modem ${m(1)} replugged`, run: async () => void (await sim.replug(m(1))) },
        { at: at(0.5), name: `modem ${m(2)} loses registration`, run: () => sim.fault(m(2), { type: 'unregister' }) },
        { at: at(0.62), name: `modem ${m(2)} registered again`, run: () => sim.fault(m(2), { type: 'register' }) },
        {
          at: at(0.7),
          name: `cms 21 x1 on modem ${m(3)}, 38 x2 on modem ${m(0)}, 42 x2 on modem ${m(1)}, modem ${m(0)} hangs (2 commands)`,
          run: () => {
            sim.fault(m(3), { type: 'cms', code: 21, times: 1 });
            sim.fault(m(0), { type: 'cms', code: 38, times: 2 });
            sim.fault(m(1), { type: 'cms', code: 42, times: 2 });
            sim.fault(m(0), { type: 'hang', times: 2 });
          },
        },
      );
    }

    const finalCount = async () => {
      const c = await g.storage.countByState();
      return { open: (c.queued ?? 0) + (c.sending ?? 0), done: MESSAGES - (c.queued ?? 0) - (c.sending ?? 0) };
    };
    const deadline = Date.now() + 60_000 + MESSAGES * 200;
    let lastCheck = 0;
    for (;;) {
      const { open, done } = await finalCount();
      while (steps.length > 0 && done / MESSAGES >= steps[0]!.at) {
        const step = steps.shift()!;
        faults.push(step.name);
        await step.run();
      }
      if (open === 0 && steps.length === 0) break;
      if (open === 0) {
        // Drained before the schedule ended (a fast machine): the rest of the faults find an empty queue — a failure.
        throw new Error(`the queue drained before these faults: ${steps.map((s) => s.name).join('; ')}`);
      }
      if (Date.now() > deadline) throw new Error(`not drained: ${JSON.stringify(await g.storage.countByState())}; faults so far: ${faults.join('; ')}`);
      // What the housekeeping tick does every 30 s in production: health checks of idle channels (hung, unplugged).
      if (Date.now() - lastCheck > 500) {
        lastCheck = Date.now();
        await g.dispatcher.checkChannels();
      }
      g.dispatcher.wake();
      await new Promise((r) => setTimeout(r, 50));
    }
    await g.dispatcher.idle();
    await new Promise((r) => setTimeout(r, 300)); // a send the network takes after its answer was cut off

    const messages = await allMessages(g.storage);
    const records = sim.records();
    const events = (await g.storage.db.all<Record<string, unknown>>('SELECT kind, message_id, sim_id, channel_id, detail FROM events ORDER BY id')).map<Event>((r) => ({
      kind: String(r.kind),
      messageId: r.message_id === null ? null : Number(r.message_id),
      simId: r.sim_id === null ? null : Number(r.sim_id),
      channelId: r.channel_id === null ? null : Number(r.channel_id),
      detail: r.detail === null ? null : (JSON.parse(String(r.detail)) as Record<string, unknown>),
    }));
    const byRecipient = new Map<string, NetworkRecord[]>();
    for (const r of records) byRecipient.set(r.to, [...(byRecipient.get(r.to) ?? []), r]);
    const eventsOf = new Map<number, Event[]>();
    for (const e of events) if (e.messageId !== null) eventsOf.set(e.messageId, [...(eventsOf.get(e.messageId) ?? []), e]);

    // ---- each message against the network
    const problems: string[] = [];
    let lost = MESSAGES - messages.length;
    let duplicates = 0;
    let unrecorded = 0;
    for (const m of messages) {
      const own = eventsOf.get(m.id) ?? [];
      const failedAttempts = own.filter((e) => e.kind === 'message.attempt-failed');
      const deliveries = deliveriesOf(byRecipient.get(m.recipient) ?? []);
      const complete = deliveries.filter((d) => d.complete);
      const partial = deliveries.filter((d) => !d.complete);
      // The sends the events account for: the attempt that succeeded (a `sent` message), attempts that failed after
      // some parts went out, and attempts cut off after a PDU (their fate unknown). Anything more is unrecorded.
      const explained = failedAttempts.filter((e) => Number(e.detail?.partsSent ?? 0) > 0 || e.detail?.retry === 'unknown').length + (m.state === 'sent' ? 1 : 0);
      duplicates += Math.max(0, (byRecipient.get(m.recipient)?.length ?? 0) - m.parts);
      if (deliveries.length > explained) {
        unrecorded += deliveries.length - explained;
        problems.push(`message ${m.id} (${m.state}): ${deliveries.length} sends on the network, ${explained} recorded`);
      }
      for (const d of complete) if (d.text !== m.text) problems.push(`message ${m.id}: the network got ${JSON.stringify(d.text)}, not ${JSON.stringify(m.text)}`);
      if (m.state === 'sent') {
        if (complete.length !== 1) {
          lost += complete.length === 0 ? 1 : 0;
          problems.push(`message ${m.id} is sent but reached the network complete ${complete.length} times`);
          continue;
        }
        const d = complete[0]!;
        if (d.imsi !== imsiOfSim.get(m.simId!)) problems.push(`message ${m.id}: sent through SIM ${m.simId}, but the network got it from ${d.imsi}`);
        if (JSON.stringify(d.mrs) !== JSON.stringify(m.partRefs)) problems.push(`message ${m.id}: part references ${JSON.stringify(m.partRefs)}, network ${JSON.stringify(d.mrs)}`);
        if (partial.length > 0 && m.parts === 1) problems.push(`message ${m.id}: a one-part message with a partial send`);
      } else if (m.state === 'failed') {
        if (complete.length > 0) problems.push(`message ${m.id} is failed but reached the network complete`);
        if (!m.errorCode || !/^(rejected: |gave up after \d+ attempt)/.test(m.reason ?? '')) problems.push(`message ${m.id} failed without a recorded reason: ${m.reason}`);
      } else if (m.state === 'unknown') {
        if (complete.length > 1) problems.push(`message ${m.id} is unknown but reached the network complete ${complete.length} times`);
        if (!failedAttempts.some((e) => e.detail?.retry === 'unknown')) problems.push(`message ${m.id} is unknown without an attempt recorded as cut off`);
      } else {
        lost++;
        problems.push(`message ${m.id} ended ${m.state}`);
      }
    }
    const recipients = new Set(messages.map((m) => m.recipient));
    const strays = records.filter((r) => !recipients.has(r.to)).length;

    // ---- each fault did what its class says
    const attempts = events.filter((e) => e.kind === 'message.attempt-failed');
    const withCode = (...codes: number[]) => attempts.filter((e) => codes.includes(Number(e.detail?.modemCode)));
    const stateOf = new Map(messages.map((m) => [m.id, m]));
    /** The SIM of the attempt after this failed one (the next failure, or the send that went through); null: none. */
    const nextSim = (e: Event): number | null => {
      const own = eventsOf.get(e.messageId!) ?? [];
      const after = own.slice(own.indexOf(e) + 1).find((x) => x.kind === 'message.attempt-failed' || x.kind === 'message.sent');
      return after?.simId ?? null;
    };
    const otherClass = attempts.filter((e) => e.detail?.retry === 'retry-other' && e.detail?.code === 'AT_CMS');
    const classes = {
      permanent: withCode(21).length,
      permanentFailedAtOnce: withCode(21).filter((e) => stateOf.get(e.messageId!)?.state === 'failed' && /^rejected: /.test(stateOf.get(e.messageId!)?.reason ?? '')).length,
      retryOther: withCode(38).length,
      noService: withCode(331).length,
      // After a retry-other error (38, 331), where the message's next attempt went. The dispatcher writes
      // "retrying on another SIM"; the rules fall back to the same SIM when no other SIM has an idle channel at
      // that moment (see the README's chaos section): counted, not failed on.
      retryOtherNextElsewhere: otherClass.filter((e) => nextSim(e) !== null && nextSim(e) !== e.simId).length,
      retryOtherNextSameSim: otherClass.filter((e) => nextSim(e) === e.simId).length,
      retrySame: withCode(42).length,
      retrySameThenSent: withCode(42).filter((e) => stateOf.get(e.messageId!)?.state === 'sent').length,
      timeouts: attempts.filter((e) => e.detail?.code === 'AT_TIMEOUT').length,
      unhealthy: events.filter((e) => e.kind === 'channel.unhealthy').length,
      recovered: events.filter((e) => e.kind === 'channel.recovered').length,
      resets: actions.filter((a) => a === 'reset').length,
      back: actions.filter((a) => a === 'back').length,
    };

    // ---- quotas: what each SIM's counter holds against what its events say went out
    const now = Date.now();
    const quota: string[] = [];
    for (const s of g.sims) {
      const usage = await g.storage.usage(s.id, billingPeriod(s.billingDay, now));
      const said =
        events.filter((e) => e.simId === s.id && e.kind === 'message.sent').reduce((a, e) => a + ((e.detail?.refs as number[] | undefined)?.length ?? 0), 0) +
        attempts.filter((e) => e.simId === s.id).reduce((a, e) => a + Number(e.detail?.partsSent ?? 0), 0);
      const onNetwork = records.filter((r) => r.imsi === s.imsi).length;
      if (usage.reserved !== 0 || usage.used !== said || onNetwork < said) quota.push(`SIM ${s.id}: used ${usage.used}, reserved ${usage.reserved}; events say ${said}; network ${onNetwork}`);
    }

    const count = (state: string) => messages.filter((m) => m.state === state).length;
    writeFigures('faults', {
      messages: MESSAGES,
      modems: MODEMS,
      parts: messages.reduce((a, m) => a + m.parts, 0),
      sent: count('sent'),
      failed: count('failed'),
      unknown: count('unknown'),
      lost,
      duplicates,
      unrecordedDuplicates: unrecorded,
      strays,
      problems: problems.length,
      quotaMismatches: quota.length,
      faultSteps: faults.length,
      ...classes,
      seconds: Math.round((Date.now() - started) / 100) / 10,
    });
    expect(problems).toEqual([]);
    expect(quota).toEqual([]);
    expect({ lost, unrecorded, strays }).toEqual({ lost: 0, unrecorded: 0, strays: 0 });
    expect(faults).toHaveLength(7 * ROUNDS);
    // Every fault class was met, and did what its class says.
    expect(classes.permanent).toBeGreaterThan(0);
    expect(classes.permanentFailedAtOnce).toBe(classes.permanent);
    expect(classes.retryOther).toBeGreaterThan(0);
    expect(classes.noService).toBeGreaterThan(0);
    expect(classes.retrySame).toBeGreaterThan(0);
    expect(classes.retrySameThenSent).toBeGreaterThan(0);
    expect(classes.unhealthy).toBeGreaterThan(0);
    expect(classes.recovered + classes.back).toBeGreaterThan(0);
    expect(classes.back).toBeGreaterThan(0);
    // Every modem comes back into service (a modem the watchdog restarted may still be on its way).
    const until = Date.now() + 30_000;
    while (g.dispatcher.channels.filter((c) => c.healthy && c.sender.isOpen).length < MODEMS && Date.now() < until) {
      await g.dispatcher.checkChannels();
      await new Promise((r) => setTimeout(r, 200));
    }
    expect(g.dispatcher.channels.filter((c) => c.healthy && c.sender.isOpen)).toHaveLength(MODEMS);
  }, 300_000);
});
