/**
 * The channel watchdog over the simulator's ptys: a modem that hangs is re-initialised, then restarted with
 * AT+CFUN=1,1, comes back under another ttyUSB name, is found again by its IMEI and sends the message that waited;
 * a port that vanishes by itself is waited for the same way; a modem that never comes back is marked unhealthy
 * with the reason, the loss is reported, and traffic goes around it.
 */
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { probe } from '../../modem/probe.js';
import { ModemSender } from '../../modem/sender.js';
import type { WatchdogAction, WatchdogOptions } from '../../scheduler/watchdog.js';
import { type TestGateway, startGateway } from '../helpers/gateway.js';

const gateways: TestGateway[] = [];
afterEach(async () => {
  for (const g of gateways.splice(0)) await g.stop();
});

async function gateway(modems: number, watchdog: Partial<WatchdogOptions> = {}): Promise<{ g: TestGateway; actions: WatchdogAction[]; lost: string[] }> {
  const actions: WatchdogAction[] = [];
  const lost: string[] = [];
  let dir = '';
  let lockDir = '';
  const g = await startGateway(
    { modems, latencyMs: 20 },
    {
      sendTimeoutMs: 1_500,
      observer: { started: () => undefined, finished: () => undefined, watchdog: (a) => void actions.push(a) },
      watchdog: {
        reappearMs: 20_000,
        pollMs: 300,
        find: async (imei) => (await probe({ globs: [join(dir, 'ttyUSB*')], lockDir, tries: 2, atTimeoutMs: 300 })).modems.find((m) => m.imei === imei)?.ports ?? [],
        open: (port) => ModemSender.open(port, { lockDir, sendTimeoutMs: 1_500 }),
        onLost: (imei, _ports, reason) => void lost.push(`${imei}: ${reason}`),
        ...watchdog,
      },
    },
  );
  dir = g.sim.dir;
  lockDir = g.sim.lockDir;
  gateways.push(g);
  return { g, actions, lost };
}

async function eventually<T>(fn: () => Promise<T>, ok: (v: T) => boolean, ms = 40_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (ok(v)) return v;
    if (Date.now() > end) throw new Error(`not reached in time: ${JSON.stringify(v)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('the channel watchdog', () => {
  it('restarts a modem that hangs, finds it again by IMEI under a new ttyUSB name, and sends the message that waited', async () => {
    const { g, actions } = await gateway(1);
    const [channel] = await g.storage.listChannels();
    const oldPort = channel!.port;
    const newPort = join(g.sim.dir, 'ttyUSB900');
    g.sim.sim.renameOnReset(0, 900);
    // It stops answering anything — but its firmware still obeys a reset.
    g.sim.sim.fault(0, { type: 'hang', times: 10_000, resettable: true });
    // The send gets no prompt: the channel is unhealthy at once, re-init finds no answer, the modem is restarted.
    const [id] = await g.enqueue(1);
    await eventually(
      async () => {
        g.dispatcher.wake();
        await g.dispatcher.checkChannels();
        return (await g.storage.listChannels())[0]!;
      },
      (c) => c.port === newPort && c.healthy,
    );
    expect(g.sim.sim.resets[0]).toBe(1);
    const moved = (await g.storage.listChannels())[0]!;
    expect(moved.id).toBe(channel!.id);
    expect(moved.port).not.toBe(oldPort);
    // The message that waited goes out through the modem's new port.
    await g.drainUntil(async () => (await g.storage.getMessage(id!))!.state === 'sent', 20_000);
    const last = g.sim.sim.records().at(-1)!;
    expect(last.port).toBe(newPort);
    const kinds = (await g.storage.listEvents({ limit: 100 })).map((e) => e.kind);
    expect(kinds).toEqual(expect.arrayContaining(['channel.unhealthy', 'channel.reset', 'channel.back']));
    expect(actions).toEqual(expect.arrayContaining(['reinit', 'reset', 'back']));
  }, 90_000);

  it('waits for a port that vanished by itself, and takes it back under its new name', async () => {
    const { g, actions } = await gateway(1);
    const [channel] = await g.storage.listChannels();
    await g.sim.sim.unplug(0);
    // The health check finds the port gone (if the close was not noticed before).
    await eventually(
      async () => {
        await g.dispatcher.checkChannels();
        return g.dispatcher.channels.length;
      },
      (n) => n === 0,
      15_000,
    );
    expect((await g.storage.listChannels())[0]!.healthy).toBe(false);
    await g.sim.sim.replug(0, 950);
    const back = await eventually(
      async () => (await g.storage.listChannels())[0]!,
      (c) => c.healthy && c.port.endsWith('ttyUSB950'),
    );
    expect(back.id).toBe(channel!.id);
    const [id] = await g.enqueue(1);
    await g.drainUntil(async () => (await g.storage.getMessage(id!))!.state === 'sent');
    expect(actions).toContain('back');
    expect(actions).not.toContain('reset');
  }, 60_000);

  it('a modem that never comes back: unhealthy with the reason, reported, and traffic goes through the other SIM', async () => {
    const { g, actions, lost } = await gateway(2, { reappearMs: 1_500 });
    await g.sim.sim.unplug(0);
    await eventually(
      async () => {
        await g.dispatcher.checkChannels();
        return g.dispatcher.channels.length;
      },
      (n) => n === 1,
      15_000,
    );
    await eventually(async () => lost, (l) => l.length === 1, 15_000);
    expect(lost[0]).toMatch(/did not come back within 2 s|did not come back within 1 s/);
    const channels = await g.storage.listChannels();
    const dead = channels.find((c) => c.simId === g.sims[0]!.id)!;
    expect(dead).toMatchObject({ healthy: false, lastError: expect.stringMatching(/did not come back/) });
    expect(actions).toContain('lost');
    // A message for either SIM's user goes out through the SIM that is still there.
    const [id] = await g.enqueue(1);
    await g.drainUntil(async () => (await g.storage.getMessage(id!))!.state === 'sent');
    expect((await g.storage.getMessage(id!))!.simId).toBe(g.sims[1]!.id);
  }, 60_000);
});
