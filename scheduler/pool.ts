/**
 * The local channel pool: the modems found on this box, registered in storage (SIMs by IMSI, channels by port) and
 * handed to the dispatcher as senders. A modem whose SIM cannot be read (no IMSI: PIN, no SIM) is reported, not used.
 */
import type { SmsgateError } from '../modem/errors.js';
import type { ModemOptions } from '../modem/modem.js';
import { ModemSender } from '../modem/sender.js';
import type { Storage } from '../sql/storage.js';
import type { Dispatcher } from './dispatcher.js';

export interface FoundModem {
  imei: string | null;
  identity: { imsi: string | null; iccid: string | null; number: string | null; operator: string | null };
  ports: string[];
}

export interface AttachReport {
  channels: { port: string; channelId: number; simId: number }[];
  problems: { port: string; error: string }[];
}

/** Registers each modem's SIM and AT ports and opens a sender for every port. */
export async function attachModems(storage: Storage, dispatcher: Dispatcher, modems: FoundModem[], options: ModemOptions = {}): Promise<AttachReport> {
  const report: AttachReport = { channels: [], problems: [] };
  for (const modem of modems) {
    const { imsi, iccid, number, operator } = modem.identity;
    if (!imsi) {
      for (const port of modem.ports) report.problems.push({ port, error: 'the SIM cannot be read (no IMSI): PIN, or no SIM?' });
      continue;
    }
    const sim = await storage.upsertSim({ imsi, iccid, number, operator });
    for (const port of modem.ports) {
      const channel = await storage.upsertChannel({ port, imei: modem.imei, simId: sim.id });
      try {
        const sender = await ModemSender.open(port, options);
        await storage.setChannelHealth(channel.id, true, null);
        dispatcher.addChannel(channel.id, sim.id, sender);
        report.channels.push({ port, channelId: channel.id, simId: sim.id });
      } catch (error) {
        await storage.setChannelHealth(channel.id, false, (error as SmsgateError).message);
        report.problems.push({ port, error: (error as Error).message });
      }
    }
  }
  return report;
}
