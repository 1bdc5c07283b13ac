/**
 * Serial transport: one SerialPort per device path, bytes in and out, nothing of AT.
 *
 * Two facts of serialport on Linux shape it (seen on ptys and USB modems): when the device goes away the port emits
 * only `close` (with a "disconnected" error), no `error`; and a `write()` after that never calls back. So every write
 * checks `isOpen` and carries its own timeout.
 */
import { SerialPort } from 'serialport';
import { ErrorCodes, SmsgateError } from './errors.js';
import type { Transport } from './at/channel.js';

export interface SerialOptions {
  baudRate?: number;
  /** Milliseconds a write may take before the port counts as gone. */
  writeTimeoutMs?: number;
}

export class SerialTransport implements Transport {
  private constructor(
    private readonly port: SerialPort,
    private readonly writeTimeoutMs: number,
  ) {}

  /** Opens `path` (default 115200 baud, 8N1, no flow control). */
  static open(path: string, options: SerialOptions = {}): Promise<SerialTransport> {
    const port = new SerialPort({ path, baudRate: options.baudRate ?? 115200, autoOpen: false, hupcl: false });
    return new Promise((resolve, reject) => {
      port.open((error) => {
        if (error) {
          reject(new SmsgateError(ErrorCodes.PortOpen, `${path}: cannot open: ${error.message}`, { retry: 'retry-other' }));
          return;
        }
        resolve(new SerialTransport(port, options.writeTimeoutMs ?? 5_000));
      });
    });
  }

  get path(): string {
    return this.port.path;
  }

  get isOpen(): boolean {
    return this.port.isOpen;
  }

  write(data: string): Promise<void> {
    const { port } = this;
    if (!port.isOpen) return Promise.reject(closed(port.path));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(closed(port.path, `a write took over ${this.writeTimeoutMs} ms`)), this.writeTimeoutMs);
      port.write(Buffer.from(data, 'latin1'), (error) => {
        if (error) {
          clearTimeout(timer);
          reject(closed(port.path, error.message));
          return;
        }
        port.drain((drainError) => {
          clearTimeout(timer);
          if (drainError) reject(closed(port.path, drainError.message));
          else resolve();
        });
      });
    });
  }

  onData(listener: (chunk: Uint8Array) => void): void {
    this.port.on('data', listener);
  }

  onClose(listener: (error?: Error) => void): void {
    this.port.on('close', (error?: Error | null) => listener(error ?? undefined));
    // A read error on a vanished device comes as `error` on some kernels; treat it as the port going away.
    this.port.on('error', (error: Error) => {
      if (this.port.isOpen) this.port.close(() => undefined);
      else listener(error);
    });
  }

  close(): Promise<void> {
    if (!this.port.isOpen) return Promise.resolve();
    return new Promise((resolve) => this.port.close(() => resolve()));
  }
}

function closed(path: string, why?: string): SmsgateError {
  return new SmsgateError(ErrorCodes.PortClosed, `${path}: the port is closed${why ? ` (${why})` : ''}`, { retry: 'retry-other' });
}
