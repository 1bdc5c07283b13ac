/**
 * The channel interface the dispatcher sends through: one AT port of a local modem here, a remote box's modem over
 * SSH later. The dispatcher treats every implementation alike.
 */
import type { SmsgateError } from './errors.js';
import { Modem, type ModemOptions, type PartResult, type PduPart } from './modem.js';

export interface SmsSender {
  /** A name for logs and the API: the port path, or box:port. */
  readonly label: string;
  /** True while the port is open (an unplugged modem's sender is closed for good). */
  readonly isOpen: boolean;
  /** Sends the parts of one message, in order; one result per part. */
  send(parts: PduPart[]): Promise<PartResult[]>;
  /** Brings the modem back to a known state after failures (re-init); throws when it cannot. */
  recover(): Promise<void>;
  close(): Promise<void>;
}

/** A local modem's AT port. */
export class ModemSender implements SmsSender {
  private constructor(private readonly modem: Modem) {}

  /** Opens and initialises the port (under its lock). */
  static async open(port: string, options: ModemOptions = {}): Promise<ModemSender> {
    const modem = await Modem.open(port, options);
    try {
      await modem.init();
    } catch (error) {
      await modem.close();
      throw error as SmsgateError;
    }
    return new ModemSender(modem);
  }

  get label(): string {
    return this.modem.path;
  }

  get isOpen(): boolean {
    return this.modem.channel.isOpen;
  }

  get underlying(): Modem {
    return this.modem;
  }

  send(parts: PduPart[]): Promise<PartResult[]> {
    return this.modem.send(parts);
  }

  recover(): Promise<void> {
    return this.modem.init();
  }

  close(): Promise<void> {
    return this.modem.close();
  }
}
