/**
 * What the configuration says to do with received messages: the delivery plan (webhooks, the command hook,
 * forwarding rules) that sql/inbox.ts writes with each message, and how a forward is queued.
 *
 * The rules' SIMs and users are looked up once at start-up (a rule naming a SIM or user that does not exist is
 * reported and left inactive). A message is forwarded when it shows (complete, or surfaced incomplete), and once more
 * when a late part completes it. It is never forwarded when its sender is the rule's own number or one of the
 * gateway's SIMs (national and international forms alike, the SIMs as they are when the forward runs) — two SIMs
 * forwarding to each other would otherwise loop for ever — nor when its PDU did not decode.
 */
import type { Delivery, DeliveryPlan, InboxMessage, NewDelivery } from '../sql/inbox.js';
import type { Sim, Storage, User } from '../sql/storage.js';
import type { Config, ForwardRule } from './config.js';
import type { LogFn } from './log.js';
import { findSim, parseRecipients, prepareSend } from './requests.js';

interface ActiveRule {
  index: number;
  to: string;
  simId: number | null;
  from: RegExp | null;
  user: User;
}

export interface InboundSetup {
  plan: DeliveryPlan;
  forward: (delivery: Delivery, message: InboxMessage, text: string) => Promise<void>;
  /** The rules in force (for the log and tests). */
  rules: ActiveRule[];
}

/** The last 10 digits: national and international forms of one number ("8916…", "+7916…") agree on them. */
const tail = (n: string) => n.replace(/\D/g, '').slice(-10);

export async function inboundSetup(config: Config, storage: Storage, log: LogFn): Promise<InboundSetup> {
  const sims = await storage.listSims();
  const users = await storage.listUsers();
  const rules: ActiveRule[] = [];
  config.inbound.forward.forEach((rule: ForwardRule, index) => {
    const where = `inbound.forward[${index}]`;
    try {
      const [to] = parseRecipients(rule.to, `${where}.to`, { ...config.send, maxRecipients: 1 });
      const simId = rule.sim === undefined ? null : findSim(sims, rule.sim, `${where}.sim`).id;
      const user = rule.user === undefined ? users.find((u) => u.role === 'admin' && !u.disabled) : users.find((u) => u.name === rule.user);
      if (!user) throw new Error(rule.user === undefined ? 'there is no admin to send it as (set user)' : `there is no user "${rule.user}"`);
      rules.push({ index, to: to!, simId, from: rule.from === undefined ? null : new RegExp(rule.from), user });
    } catch (error) {
      log(`${where} is not in force: ${(error as Error).message}`);
    }
  });
  const plan: DeliveryPlan = (message, event) => {
    const out: NewDelivery[] = [];
    for (const url of config.inbound.webhooks) out.push({ kind: 'webhook', target: url, payload: `inbox.${event}` });
    if (config.inbound.command.length > 0) out.push({ kind: 'command', target: config.inbound.command[0]!, payload: `inbox.${event}` });
    const forward = event === 'received' || (event === 'updated' && message.complete);
    if (forward && message.encoding !== 'pdu') {
      for (const rule of rules) {
        if (rule.simId !== null && rule.simId !== message.simId) continue;
        if (rule.from && !rule.from.test(message.sender)) continue;
        if (tail(message.sender) === tail(rule.to)) continue;
        out.push({ kind: 'forward', target: rule.to, payload: JSON.stringify({ rule: rule.index }) });
      }
    }
    return out;
  };
  const forward = async (delivery: Delivery, message: InboxMessage, text: string) => {
    const { rule: index } = JSON.parse(delivery.payload ?? '{}') as { rule?: number };
    const rule = rules.find((r) => r.index === index) ?? rules.find((r) => r.to === delivery.target);
    if (!rule) throw new Error(`the forwarding rule of delivery ${delivery.id} is no longer configured`);
    const ours = (await storage.listSims()).some((sim: Sim) => sim.number !== null && tail(sim.number) === tail(message.sender) && /\d{5}/.test(message.sender));
    if (ours) {
      log(`received message ${message.id} not forwarded to ${rule.to}: it came from one of the gateway's SIMs`, { inbox_id: message.id });
      return;
    }
    const cut = text.length > config.send.maxTextLength ? `${text.slice(0, config.send.maxTextLength - 1)}…` : text;
    // The msg_id makes a retry after a crash find the message queued the first time.
    const prepared = await prepareSend({ to: rule.to, text: cut, msgId: `forward-${delivery.id}` }, rule.user, 'forward', config.send, storage);
    await storage.enqueue(prepared.items, Date.now(), { requestHash: prepared.requestHash });
    log(`received message ${message.id} forwarded to ${rule.to}`, { inbox_id: message.id, to: rule.to });
  };
  return { plan, forward, rules };
}

/**
 * The alert sender: each alert goes to every alerts webhook (through the deliveries outbox: signed, retried,
 * persistent) and by SMS to every admin number (queued as the first admin).
 */
export function alertSender(config: Config, storage: Storage, log: LogFn, wake: () => void): (event: string, detail: Record<string, unknown>, text: string) => Promise<void> {
  return async (event, detail, text) => {
    const now = Date.now();
    const payload = JSON.stringify({ event, ...detail, time: new Date(now).toISOString() });
    await storage.inbox.addDeliveries(
      config.alerts.webhooks.map((url) => ({ kind: 'alert' as const, target: url, payload })),
      now,
    );
    if (config.alerts.smsTo.length > 0) {
      const admin = (await storage.listUsers()).find((u) => u.role === 'admin' && !u.disabled);
      if (!admin) log(`alert ${event} not sent by SMS: there is no admin to send it as`);
      else {
        const prepared = await prepareSend({ to: config.alerts.smsTo, text, priority: 50 }, admin, 'alert', config.send, storage);
        await storage.enqueue(prepared.items, now);
      }
    }
    log(`alert ${event}: ${text}`, { event });
    wake();
  };
}
