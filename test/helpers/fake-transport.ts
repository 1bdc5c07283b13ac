/**
 * An in-memory Transport for unit tests of the AT channel: the test plays the modem, pushing bytes (in as many
 * pieces as it likes) and answering what the channel writes. Integration tests use the simulator's real ptys.
 */
import type { Transport } from '../../modem/at/channel.js';

export class FakeTransport implements Transport {
  readonly path = '/dev/fake0';
  isOpen = true;
  readonly written: string[] = [];
  private dataListeners: ((chunk: Uint8Array) => void)[] = [];
  private closeListeners: ((error?: Error) => void)[] = [];
  /** Called on every write; answer with `push`. */
  onWrite: (data: string) => void = () => undefined;

  write(data: string): Promise<void> {
    if (!this.isOpen) return Promise.reject(new Error('closed'));
    this.written.push(data);
    queueMicrotask(() => this.onWrite(data));
    return Promise.resolve();
  }

  onData(listener: (chunk: Uint8Array) => void): void {
    this.dataListeners.push(listener);
  }

  onClose(listener: (error?: Error) => void): void {
    this.closeListeners.push(listener);
  }

  async close(): Promise<void> {
    this.unplug();
  }

  /** Bytes from the modem, one read each. */
  push(...chunks: string[]): void {
    for (const chunk of chunks) for (const l of this.dataListeners) l(Buffer.from(chunk, 'latin1'));
  }

  /** The device goes away: serialport emits only `close`. */
  unplug(): void {
    if (!this.isOpen) return;
    this.isOpen = false;
    for (const l of this.closeListeners) l(new Error('disconnected'));
  }
}
