/**
 * A small gateway for scheduler tests: simulated modems on real ptys, SQLite storage in a temporary directory, a user
 * who owns every SIM, the SIMs and channels registered as the gateway registers them, and a dispatcher driven by
 * the test (no cron ticks) or by its own ticks.
 */
import { join } from 'node:path';
import { Dispatcher, type DispatcherOptions } from '../../scheduler/dispatcher.js';
import { attachModems } from '../../scheduler/pool.js';
import { openStorage, type Storage } from '../../sql/index.js';
import type { NewMessage, Sim } from '../../sql/storage.js';
import { type TestSim, startSim } from './sim.js';

export interface TestGateway {
  sim: TestSim;
  storage: Storage;
  dispatcher: Dispatcher;
  userId: number;
  /** The SIM row of each simulated modem, in modem order. */
  sims: Sim[];
  enqueue(count: number, over?: Partial<NewMessage>): Promise<number[]>;
  /** Wakes the dispatcher until `done()` holds (or fails after `ms`). */
  drainUntil(done: () => Promise<boolean>, ms?: number): Promise<void>;
  stop(): Promise<void>;
}

export async function startGateway(
  simOptions: Parameters<typeof startSim>[0],
  options: Partial<DispatcherOptions> & { sendTimeoutMs?: number } = {},
): Promise<TestGateway> {
  const sim = await startSim(simOptions);
  const storage = await openStorage(`sqlite:${join(sim.dir, '..', 'gateway.db')}`);
  const user = await storage.createUser({ name: 'ops', passwordHash: 'x' });
  const dispatcher = new Dispatcher({ storage, cron: false, recheckMs: 100, retryBaseMs: 100, ...options });
  const found = sim.sim.modemsFound();
  const attached = await attachModems(storage, dispatcher, found, { lockDir: sim.lockDir, sendTimeoutMs: options.sendTimeoutMs });
  if (attached.problems.length > 0) throw new Error(`channels failed: ${JSON.stringify(attached.problems)}`);
  const sims: Sim[] = [];
  for (const m of found) {
    const row = (await storage.upsertSim({ imsi: m.identity.imsi }))!;
    await storage.setSimOwners(row.id, [user.id]);
    sims.push(row);
  }
  await dispatcher.start();
  let n = 0;
  return {
    sim,
    storage,
    dispatcher,
    userId: user.id,
    sims,
    enqueue: async (count, over = {}) => {
      const items = Array.from({ length: count }, () => ({
        userId: user.id,
        recipient: `+7916${String(++n).padStart(7, '0')}`,
        text: `message ${n}`,
        encoding: 'gsm7',
        parts: 1,
        ...over,
      }));
      const { messages } = await storage.enqueue(items);
      dispatcher.wake();
      return messages.map((m) => m.id);
    },
    drainUntil: async (done, ms = 20_000) => {
      const until = Date.now() + ms;
      while (!(await done())) {
        if (Date.now() > until) throw new Error('the queue did not reach the expected state in time');
        dispatcher.wake();
        await dispatcher.idle();
        await new Promise((r) => setTimeout(r, 20));
      }
    },
    stop: async () => {
      await dispatcher.stop();
      await storage.close();
      await sim.stop();
    },
  };
}
