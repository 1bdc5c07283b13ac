/**
 * The modem simulator: virtual multi-port GSM modems on real pseudo-terminals, for tests, benchmarks and the
 * gateway's demo mode. Production code never imports it except `smsgate simulate` and `serve --simulate`.
 *
 * Theory of operation. Each port is a pty made by socat (`PTY,rawer` bridged to our stdin and stdout) and linked as
 * `DIR/ttyUSB<n>`, so clients — our serial stack, real Gammu, minicom — open it exactly like a USB modem's port. The simulator keeps the slave side open itself: otherwise the master would see a hang-up each time a client
 * closes the port (Gammu opens and closes it for every command) and socat would exit. Ports listed in `atPorts`
 * answer AT through a SimModem session; the others stay silent, like the diagnostic ports of a real modem.
 *
 * Unplugging kills the port's socat and removes its link: clients see the device vanish (serialport emits `close`).
 * Replugging makes new ptys, under new names if asked. What the network receives goes to DIR/network.jsonl, one JSON
 * record per submitted part. Faults and events can be injected in-process or, for `smsgate simulate`, through
 * DIR/control.sock (one JSON request per line, one JSON answer per line).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { appendFileSync, closeSync, constants, existsSync, mkdirSync, openSync, readFileSync, readlinkSync, renameSync, symlinkSync, unlinkSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { type Fault, type Flavour, type NetworkRecord, SimModem, type SimIdentity, type SimPortSession } from './sim-modem.js';

export interface SimulatorOptions {
  dir: string;
  /** Number of modems (default 1). */
  modems?: number;
  /** Ports per modem (default 1). */
  ports?: number;
  /** Which ports of each modem answer AT, 0-based (default: the first). */
  atPorts?: number[];
  /** Milliseconds from PDU to `+CMGS` (default 2000, a real network's pace). */
  latencyMs?: number;
  /** Vendor behaviour, for all modems or one per modem. */
  flavour?: Flavour | Flavour[];
  /** Vendor status lines in the middle of answers. */
  noise?: boolean;
  /** Number of the first port name: ttyUSB<first> (default 0). */
  firstIndex?: number;
  /** Overrides of each modem's identity. */
  identities?: Partial<SimIdentity>[];
  /** Listen on DIR/control.sock. */
  control?: boolean;
}

export interface SimPortInfo {
  path: string;
  at: boolean;
}

export interface SimModemInfo {
  index: number;
  imei: string;
  imsi: string;
  iccid: string;
  number: string | null;
  flavour: Flavour;
  ports: SimPortInfo[];
}

/**
 * One pty made by socat, its slave side held open by us. The link DIR/ttyUSB<n> is ours, not socat's: socat removes
 * a `link=` path when it exits, and the socat of a simulator that was killed (kill -9) exits late and would remove
 * the link of the pty that replaced it. Ours is made atomically (a rename) and removed only while it still points to
 * our pty.
 */
class PtyPort {
  private holdFd: number | null = null;
  private constructor(
    readonly path: string,
    private readonly pts: string,
    private readonly socat: ChildProcess,
  ) {}

  static async create(path: string, onData: (text: string) => void): Promise<PtyPort> {
    const socat = spawn('socat', ['-d', '-d', 'PTY,rawer', 'STDIO'], { stdio: ['pipe', 'pipe', 'pipe'] });
    let log = '';
    socat.stdout!.on('data', (d: Buffer) => onData(d.toString('latin1')));
    socat.stdin!.on('error', () => undefined);
    const pts = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => {
        socat.kill('SIGKILL');
        reject(new Error(`socat made no pty for ${path} in 10 s: ${log.trim()}`));
      }, 10_000);
      socat.once('error', (e) => {
        clearTimeout(timer);
        reject(new Error(`cannot run socat (apt-get install socat): ${e.message}`));
      });
      socat.stderr!.on('data', (d: Buffer) => {
        log += d.toString();
        const m = /PTY is (\S+)/.exec(log);
        if (m) {
          clearTimeout(timer);
          resolve(m[1]!);
        }
      });
      socat.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`socat exited (${code}) before making a pty for ${path}: ${log.trim()}`));
      });
    });
    const temporary = `${path}.${process.pid}.${Math.random().toString(36).slice(2)}`;
    symlinkSync(pts, temporary);
    renameSync(temporary, path);
    const port = new PtyPort(path, pts, socat);
    port.holdFd = openSync(pts, constants.O_RDWR | constants.O_NOCTTY | constants.O_NONBLOCK);
    return port;
  }

  write(text: string): void {
    if (this.socat.stdin!.writable) this.socat.stdin!.write(Buffer.from(text, 'latin1'));
  }

  async destroy(): Promise<void> {
    const exited = this.socat.exitCode !== null ? Promise.resolve() : new Promise((r) => this.socat.once('exit', r));
    this.socat.kill('SIGTERM');
    await exited;
    if (this.holdFd !== null) closeSync(this.holdFd);
    this.holdFd = null;
    try {
      if (readlinkSync(this.path) === this.pts) unlinkSync(this.path);
    } catch {
      // already gone
    }
  }
}

interface SimModemState {
  modem: SimModem;
  ports: { info: SimPortInfo; pty: PtyPort; session: SimPortSession | null }[];
}

const FLAVOUR_IDENTITY: Record<Flavour, Pick<SimIdentity, 'manufacturer' | 'model' | 'revision'>> = {
  generic: { manufacturer: 'FakeCorp', model: 'FM100', revision: 'FM100_V1.0' },
  huawei: { manufacturer: 'huawei', model: 'E3372', revision: '22.200.09.01.161' },
  zte: { manufacturer: 'ZTE CORPORATION', model: 'MF823', revision: 'BD_MF823V1.0.0B06' },
  simcom: { manufacturer: 'SIMCOM INCORPORATED', model: 'SIMCOM_SIM7600E', revision: 'LE20B04SIM7600M22' },
  quectel: { manufacturer: 'Quectel', model: 'EC25', revision: 'EC25EFAR06A08M4G' },
};

/** The Luhn check digit (IMEI, ICCID). */
export function luhn(digits: string): string {
  let sum = 0;
  for (let i = 0; i < digits.length; i++) {
    let d = Number(digits[digits.length - 1 - i]);
    if (i % 2 === 0) d *= 2;
    sum += d > 9 ? d - 9 : d;
  }
  return String((10 - (sum % 10)) % 10);
}

/** A distinct, well-formed identity for modem `n`. */
export function defaultIdentity(n: number, flavour: Flavour): SimIdentity {
  const serial = String(100000 + n).padStart(6, '0');
  const imeiBody = `35693803${serial}`;
  const iccidBody = `897010200${String(1000000000 + n).slice(1)}`;
  return {
    ...FLAVOUR_IDENTITY[flavour],
    imei: imeiBody + luhn(imeiBody),
    imsi: `25002${String(1000000000 + n).slice(1).padStart(10, '0')}`,
    iccid: iccidBody + luhn(iccidBody),
    number: `+7916${String(1000000 + n).slice(1).padStart(7, '0')}`,
    operator: 'MegaFon',
    operatorCode: '25002',
    smsc: '+79168999100',
    rssi: 20,
    pin: null,
  };
}

export class Simulator {
  readonly dir: string;
  readonly networkFile: string;
  readonly controlSocket: string;
  private readonly state: SimModemState[] = [];
  private control: Server | null = null;
  private stopped = false;

  private constructor(private readonly options: SimulatorOptions) {
    this.dir = options.dir;
    this.networkFile = join(options.dir, 'network.jsonl');
    this.controlSocket = join(options.dir, 'control.sock');
  }

  /** Creates the modems and their ptys under `options.dir`. */
  static async start(options: SimulatorOptions): Promise<Simulator> {
    const sim = new Simulator(options);
    mkdirSync(options.dir, { recursive: true });
    try {
      await sim.create();
    } catch (error) {
      // Leave no pty or socat behind: a half-made simulator would keep the process alive.
      await sim.stop().catch(() => undefined);
      throw error;
    }
    return sim;
  }

  private async create(): Promise<void> {
    const { options } = this;
    const sim = this;
    const count = options.modems ?? 1;
    for (let m = 0; m < count; m++) {
      const flavour = (Array.isArray(options.flavour) ? options.flavour[m] : options.flavour) ?? 'generic';
      const identity = { ...defaultIdentity(m, flavour), ...(options.identities?.[m] ?? {}) };
      const modem = new SimModem({
        index: m,
        identity,
        flavour,
        latencyMs: options.latencyMs ?? 2000,
        noise: options.noise ?? false,
        record: (record) => sim.appendRecord(record),
      });
      sim.state.push({ modem, ports: [] });
      modem.onReset = () => {
        sim.reset(m).catch(() => undefined);
      };
      await sim.plug(m, (options.firstIndex ?? 0) + m * (options.ports ?? 1));
    }
    if (options.control) await sim.listen();
  }

  /** The modems, their identities and port paths. */
  info(): SimModemInfo[] {
    return this.state.map(({ modem, ports }) => ({
      index: modem.index,
      imei: modem.identity.imei,
      imsi: modem.identity.imsi,
      iccid: modem.identity.iccid,
      number: modem.identity.number,
      flavour: modem.flavour,
      ports: ports.map((p) => ({ ...p.info })),
    }));
  }

  /** The modems as probing would report them: IMEI, SIM identity and AT ports (what the channel pool takes). */
  modemsFound(): { imei: string; identity: { imsi: string; iccid: string; number: string | null; operator: string }; ports: string[] }[] {
    return this.info().map((m) => ({
      imei: m.imei,
      identity: { imsi: m.imsi, iccid: m.iccid, number: m.number, operator: this.modem(m.index).identity.operator },
      ports: m.ports.filter((p) => p.at).map((p) => p.path),
    }));
  }

  modem(index: number): SimModem {
    const state = this.state[index];
    if (!state) throw new Error(`no simulated modem ${index}`);
    return state.modem;
  }

  /** The AT port paths of modem `index`. */
  atPorts(index: number): string[] {
    return this.state[index]!.ports.filter((p) => p.info.at).map((p) => p.info.path);
  }

  fault(index: number, fault: Fault): void {
    this.modem(index).applyFault(fault);
  }

  /** Pulls modem `index` out: its ports vanish. */
  async unplug(index: number): Promise<void> {
    const state = this.state[index];
    if (!state) return;
    for (const port of state.ports) {
      if (port.session) state.modem.detach(port.session);
      await port.pty.destroy();
    }
    state.ports = [];
  }

  /** Plugs modem `index` back in, its ports named from ttyUSB<firstIndex> (default: the old names). */
  async replug(index: number, firstIndex?: number): Promise<SimModemInfo> {
    await this.unplug(index);
    await this.plug(index, firstIndex ?? (this.options.firstIndex ?? 0) + index * (this.options.ports ?? 1));
    await this.boot(index);
    return this.info()[index]!;
  }

  /** Where modem `index`'s ports come back after its next reset: ttyUSB<first>… (null: the same names). */
  private readonly resetNames = new Map<number, number>();
  /** How long a reset modem stays away (default 300 ms). */
  resetDelayMs = 300;
  /** Resets done (AT+CFUN=1,1), per modem. */
  readonly resets: number[] = [];

  /** After its next reset, modem `index` comes back under new names from ttyUSB<first> (as USB re-enumeration may do). */
  renameOnReset(index: number, first: number): void {
    this.resetNames.set(index, first);
  }

  /** AT+CFUN=1,1: the modem's ports vanish, its faults are gone with the reboot, and it comes back a moment later. */
  private async reset(index: number): Promise<void> {
    this.resets[index] = (this.resets[index] ?? 0) + 1;
    await this.unplug(index);
    this.modem(index).applyFault({ type: 'clear' });
    await new Promise((r) => setTimeout(r, this.resetDelayMs));
    if (this.stopped) return;
    const first = this.resetNames.get(index);
    this.resetNames.delete(index);
    await this.replug(index, first);
  }

  /** Every record of what the network received so far. */
  records(): NetworkRecord[] {
    if (!existsSync(this.networkFile)) return [];
    return readFileSync(this.networkFile, 'utf8')
      .split('\n')
      .filter((line) => line.trim() !== '')
      .map((line) => JSON.parse(line) as NetworkRecord);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await new Promise<void>((resolve) => (this.control ? this.control.close(() => resolve()) : resolve()));
    for (let m = 0; m < this.state.length; m++) await this.unplug(m);
  }

  private async plug(index: number, first: number): Promise<void> {
    const state = this.state[index]!;
    const atPorts = new Set(this.options.atPorts ?? [0]);
    const count = this.options.ports ?? 1;
    for (let k = 0; k < count; k++) {
      const path = join(this.dir, `ttyUSB${first + k}`);
      const entry: SimModemState['ports'][number] = { info: { path, at: atPorts.has(k) }, pty: null as unknown as PtyPort, session: null };
      entry.pty = await PtyPort.create(path, (text) => entry.session?.receive(text));
      if (entry.info.at) entry.session = state.modem.attach(path, (text) => entry.pty.write(text));
      state.ports.push(entry);
    }
  }

  /** Plugs modem `index` back in and lets it print its boot lines a moment later, as a real one does. */
  private async boot(index: number): Promise<void> {
    const modem = this.state[index]!.modem;
    const lines = modem.bootLines();
    if (lines.length > 0) setTimeout(() => modem.broadcast(lines.map((l) => `\r\n${l}\r\n`).join('')), 50);
  }

  private appendRecord(record: NetworkRecord): void {
    // A send that completes after stop() (a slow network) has nowhere to go: the simulated network is gone.
    if (this.stopped) return;
    appendFileSync(this.networkFile, `${JSON.stringify(record)}\n`);
  }

  private async listen(): Promise<void> {
    if (existsSync(this.controlSocket)) unlinkSync(this.controlSocket);
    this.control = createServer((socket) => {
      let buffer = '';
      socket.on('data', (chunk) => {
        buffer += chunk.toString();
        let nl: number;
        while ((nl = buffer.indexOf('\n')) >= 0) {
          const line = buffer.slice(0, nl).trim();
          buffer = buffer.slice(nl + 1);
          if (line === '') continue;
          this.handleControl(line).then(
            (answer) => socket.write(`${JSON.stringify({ ok: true, ...answer })}\n`),
            (error: Error) => socket.write(`${JSON.stringify({ ok: false, error: error.message })}\n`),
          );
        }
      });
      socket.on('error', () => undefined);
    });
    await new Promise<void>((resolve) => this.control!.listen(this.controlSocket, resolve));
  }

  /**
   * Control requests: {"op":"info"}, {"op":"fault","modem":0,"fault":{"type":"cms","code":500}},
   * {"op":"unplug","modem":0}, {"op":"replug","modem":0,"first":7}, {"op":"deliver","modem":0,"from":"+7…","text":"…"},
   * {"op":"report","modem":0,"mr":5,"to":"+7…","status":0}, {"op":"ussd","modem":0,"code":"*100#","answer":"…","status":1},
   * {"op":"latency","modem":0,"ms":50}, {"op":"store-reports","modem":0,"on":true},
   * {"op":"rename-on-reset","modem":0,"first":9}; "deliver" also takes "parts" ([2,1]: which parts arrive, in order)
   * and "reference" (to deliver the rest of one message later).
   */
  private async handleControl(line: string): Promise<Record<string, unknown>> {
    const request = JSON.parse(line) as Record<string, unknown>;
    const index = typeof request.modem === 'number' ? request.modem : 0;
    switch (request.op) {
      case 'info':
        return { modems: this.info() };
      case 'fault':
        this.fault(index, request.fault as Fault);
        return {};
      case 'unplug':
        await this.unplug(index);
        return {};
      case 'replug':
        return { modem: await this.replug(index, typeof request.first === 'number' ? request.first : undefined) };
      case 'deliver':
        return {
          parts: this.modem(index).deliver(String(request.from), String(request.text), {
            alphanumeric: request.alphanumeric === true,
            ...(Array.isArray(request.parts) ? { parts: request.parts.map(Number) } : {}),
            ...(typeof request.reference === 'number' ? { reference: request.reference } : {}),
          }),
        };
      case 'store-reports':
        this.modem(index).storeReports = request.on !== false;
        return {};
      case 'rename-on-reset':
        this.renameOnReset(index, Number(request.first));
        return {};
      case 'report':
        this.modem(index).statusReport(Number(request.mr), String(request.to), Number(request.status ?? 0));
        return {};
      case 'ussd':
        this.modem(index).ussd.set(String(request.code), typeof request.status === 'number' ? { text: String(request.answer), status: request.status } : String(request.answer));
        return {};
      case 'latency':
        this.modem(index).latencyMs = Number(request.ms);
        return {};
      default:
        throw new Error(`unknown op ${JSON.stringify(request.op)}`);
    }
  }
}
