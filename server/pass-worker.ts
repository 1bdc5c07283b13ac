/**
 * A worker that runs passes over an outbox: a once-a-second node-cron tick (no overlap), `wake()` for "now", one
 * pass at a time (a wake during a pass returns that pass), and a stop that lets the pass in progress finish. A
 * failed pass (the database away) is logged, never thrown: the next tick tries again. The callbacks and the
 * deliveries of received messages are such workers.
 */
import cron, { type ScheduledTask } from 'node-cron';
import type { LogFn } from './log.js';

export interface PassWorkerOptions {
  /** Start the once-a-second tick (default true; tests drive runOnce). */
  cron?: boolean;
  clock?: () => number;
  log?: LogFn;
}

export abstract class PassWorker {
  private task: ScheduledTask | null = null;
  private running: Promise<void> | null = null;
  protected stopped = false;
  protected readonly clock: () => number;
  protected readonly log: LogFn;

  constructor(
    private readonly name: string,
    private readonly base: PassWorkerOptions,
  ) {
    this.clock = base.clock ?? Date.now;
    this.log = base.log ?? (() => undefined);
  }

  /** One pass over what is due now. */
  abstract runOnce(): Promise<void>;

  start(): void {
    if (this.base.cron === false) return;
    this.task = cron.schedule('* * * * * *', () => this.wake(), { noOverlap: true, name: this.name });
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.task?.stop();
    await this.running;
  }

  /** Runs a pass now (one at a time; a call during a pass returns that pass). Never rejects. */
  wake(): Promise<void> {
    if (this.stopped) return Promise.resolve();
    this.running ??= this.runOnce()
      .catch((error: unknown) => this.log(`${this.name}: a pass failed: ${(error as Error).message}`))
      .finally(() => {
        this.running = null;
      });
    return this.running;
  }
}
