/**
 * The channel pool: the modems found on this box, registered in storage (SIMs by IMSI, channels by port), and the
 * channels of registered remote boxes, handed to the dispatcher as senders. A modem whose SIM cannot be read (no
 * IMSI: PIN, no SIM) is reported, not used.
 */
import { readFileSync } from 'node:fs';
import type { SmsgateError } from '../modem/errors.js';
import { RemoteSender, SshBox } from '../modem/remote.js';
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
        const radio = await sender.check().catch(() => null);
        if (radio) await storage.setChannelRadio(channel.id, radio);
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

/** How a remote channel's command is kept in its channel row (`port`): e.g. {"command":["gammu","-s","0"]}. */
export interface RemoteChannelSpec {
  command: string[];
  extraArgs?: string[];
}

/** Parses a remote channel's spec; null when the row is not a valid one. */
export function parseRemoteSpec(port: string): RemoteChannelSpec | null {
  try {
    const spec = JSON.parse(port) as RemoteChannelSpec;
    const strings = (v: unknown) => Array.isArray(v) && v.every((x) => typeof x === 'string');
    if (!strings(spec.command) || spec.command.length === 0) return null;
    if (spec.extraArgs !== undefined && !strings(spec.extraArgs)) return null;
    return spec;
  } catch {
    return null;
  }
}

/**
 * Hands the remote boxes' channels to the dispatcher: one SSH connection per box (its key read from the box's key
 * reference, a file path), one RemoteSender per channel row of that box that has a SIM.
 */
export async function attachRemoteChannels(storage: Storage, dispatcher: Dispatcher): Promise<AttachReport> {
  const report: AttachReport = { channels: [], problems: [] };
  const boxes = new Map((await storage.listBoxes()).map((b) => [b.id, b]));
  const connections = new Map<number, SshBox>();
  for (const channel of await storage.listChannels()) {
    if (channel.boxId === 0) continue;
    const box = boxes.get(channel.boxId);
    const spec = parseRemoteSpec(channel.port);
    if (!box || !spec || channel.simId === null) {
      report.problems.push({ port: channel.port, error: !box ? `box ${channel.boxId} is not registered` : !spec ? 'not a remote channel spec' : 'no SIM assigned' });
      continue;
    }
    let ssh = connections.get(box.id);
    if (!ssh) {
      let privateKey: string;
      try {
        privateKey = readFileSync(box.keyRef, 'utf8');
      } catch (error) {
        report.problems.push({ port: channel.port, error: `box ${box.name}: cannot read its key ${box.keyRef}: ${(error as Error).message}` });
        continue;
      }
      ssh = new SshBox({ name: box.name, host: box.host, port: box.port, username: box.username, privateKey, hostKeyFingerprint: box.hostKeyFingerprint });
      connections.set(box.id, ssh);
    }
    dispatcher.addChannel(channel.id, channel.simId, new RemoteSender(ssh, spec));
    report.channels.push({ port: `${box.name}:${channel.port}`, channelId: channel.id, simId: channel.simId });
  }
  return report;
}
