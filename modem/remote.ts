/**
 * Modems on remote boxes, reached over SSH (ssh2).
 *
 * Theory of operation. One SSH connection per box, opened on first use and reused for every message; a dropped
 * connection is opened again on the next send. The box's host key is pinned: its SHA-256 fingerprint (as OpenSSH
 * prints it, "SHA256:…") was shown when the box was added and is checked on every connection; a different key is
 * refused before any command runs. Authentication is by key only.
 *
 * A message is sent by running the box's Gammu-compatible command, `gammu -s N sendsms TEXT <number> … -textutf8
 * <text>` or `smsgate sendsms …` with the same arguments. The remote shell parses that command line, so every
 * argument is wrapped in single quotes, inside which a shell expands nothing; a single quote in the text becomes
 * '"'"'. No text can leave its argument: `"; rm -rf / #` and `$(reboot)` arrive as written. The outcome is read from
 * the exit status and from the `message reference=N` lines Gammu and smsgate print per part; a failure is classified
 * by the modem's CMS/CME code in the output when there is one. A connection that drops after the command started
 * leaves the outcome unknown.
 */
import { createHash } from 'node:crypto';
import { Client, type ConnectConfig } from 'ssh2';
import { cmeInfo, cmsInfo } from './at/codes.js';
import { ErrorCodes, SmsgateError } from './errors.js';
import type { PartResult } from './modem.js';
import { chooseEncoding, countSegments } from './pdu/index.js';
import type { OutgoingSms, SendHooks, SmsSender } from './sender.js';

export interface BoxConfig {
  name: string;
  host: string;
  port: number;
  username: string;
  privateKey: string | Buffer;
  /** "SHA256:…", as `ssh-keygen -lf` and OpenSSH print it. */
  hostKeyFingerprint: string;
  /** Milliseconds to connect (default 10 s). */
  connectTimeoutMs?: number;
}

/** OpenSSH's fingerprint of a host key blob: "SHA256:" and the unpadded base64 of its SHA-256. */
export function fingerprint(key: Buffer): string {
  return `SHA256:${createHash('sha256').update(key).digest('base64').replace(/=+$/, '')}`;
}

/** Wraps one argument for a POSIX shell: single quotes, inside which nothing is expanded. */
export function shellQuote(arg: string): string {
  return `'${arg.replace(/'/g, `'"'"'`)}'`;
}

/** ssh2's options for a box: key authentication only, the host key judged by `verify`, keepalives. */
function connectConfig(config: Omit<BoxConfig, 'hostKeyFingerprint' | 'name'>, verify: (key: Buffer) => boolean): ConnectConfig {
  return {
    host: config.host,
    port: config.port,
    username: config.username,
    privateKey: config.privateKey,
    readyTimeout: config.connectTimeoutMs ?? 10_000,
    keepaliveInterval: 30_000,
    hostVerifier: verify,
  } as ConnectConfig;
}

export interface ExecResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** One reusable SSH connection to one box, with its host key pinned. */
export class SshBox {
  private client: Client | null = null;
  private connecting: Promise<Client> | null = null;

  constructor(readonly config: BoxConfig) {}

  /** Connects once to learn the box's host key fingerprint (to show before the box is added). */
  static async fetchFingerprint(config: Omit<BoxConfig, 'hostKeyFingerprint' | 'name'>): Promise<string> {
    let seen = '';
    const client = new Client();
    await new Promise<void>((resolve, reject) => {
      client.once('ready', () => resolve());
      client.once('error', (error) => (seen ? resolve() : reject(error)));
      client.connect(
        connectConfig(config, (key) => {
          seen = fingerprint(key);
          return true;
        }),
      );
    });
    client.end();
    if (!seen) throw new SmsgateError(ErrorCodes.PortOpen, `${config.host}: no host key was offered`);
    return seen;
  }

  private connect(): Promise<Client> {
    if (this.client) return Promise.resolve(this.client);
    if (this.connecting) return this.connecting;
    const { config } = this;
    this.connecting = new Promise<Client>((resolve, reject) => {
      const client = new Client();
      let offered = '';
      client.once('ready', () => {
        this.client = client;
        client.once('close', () => {
          if (this.client === client) this.client = null;
        });
        resolve(client);
      });
      client.once('error', (error: Error) => {
        const refused = offered !== '' && offered !== config.hostKeyFingerprint;
        reject(
          new SmsgateError(
            refused ? ErrorCodes.PortLocked : ErrorCodes.PortOpen,
            refused
              ? `box ${config.name} (${config.host}): host key ${offered} is not the pinned ${config.hostKeyFingerprint}; refused`
              : `box ${config.name} (${config.host}:${config.port}): cannot connect: ${error.message}`,
            { retry: 'retry-other' },
          ),
        );
      });
      client.connect(
        connectConfig(config, (key) => {
          offered = fingerprint(key);
          return offered === config.hostKeyFingerprint;
        }),
      );
    }).finally(() => {
      this.connecting = null;
    });
    return this.connecting;
  }

  /** Runs a command made of `argv`, each argument quoted; rejects only when the connection fails or drops. */
  async exec(argv: string[], timeoutMs = 120_000): Promise<ExecResult> {
    const client = await this.connect();
    const command = argv.map(shellQuote).join(' ');
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        reject(new SmsgateError(ErrorCodes.AtTimeout, `box ${this.config.name}: no end of "${argv[0]}" within ${timeoutMs} ms`, { retry: 'unknown' }));
        client.end();
      }, timeoutMs);
      client.exec(command, (error, stream) => {
        if (error) {
          clearTimeout(timer);
          reject(new SmsgateError(ErrorCodes.PortOpen, `box ${this.config.name}: cannot run a command: ${error.message}`, { retry: 'retry-other' }));
          return;
        }
        let stdout = '';
        let stderr = '';
        let code: number | null = null;
        stream.on('data', (d: Buffer) => (stdout += d.toString('utf8')));
        stream.stderr.on('data', (d: Buffer) => (stderr += d.toString('utf8')));
        stream.on('exit', (c: number | null) => (code = c));
        stream.on('close', () => {
          clearTimeout(timer);
          if (code === null) {
            reject(new SmsgateError(ErrorCodes.PortClosed, `box ${this.config.name}: the connection dropped while "${argv[0]}" ran`, { retry: 'unknown' }));
          } else {
            resolve({ code, stdout, stderr });
          }
        });
      });
    });
  }

  close(): void {
    this.client?.end();
    this.client = null;
  }
}

export interface RemoteChannelOptions {
  /** The command to run there: e.g. ["gammu", "-s", "0"] or ["smsgate"], followed by sendsms and its arguments. */
  command: string[];
  /** Arguments after the message's, e.g. ["--port", "/dev/ttyUSB2"] for smsgate. */
  extraArgs?: string[];
  timeoutMs?: number;
}

/** A channel whose modem is on a remote box. */
export class RemoteSender implements SmsSender {
  private open = true;

  constructor(
    private readonly box: SshBox,
    private readonly options: RemoteChannelOptions,
  ) {}

  get label(): string {
    return `${this.box.config.name}:${this.options.command.join(' ')}`;
  }

  get isOpen(): boolean {
    return this.open;
  }

  /** The Gammu-compatible sendsms command line for one message. */
  argv(sms: OutgoingSms): string[] {
    const encoding = chooseEncoding(sms.text, sms.encoding ?? 'auto');
    const parts = countSegments(sms.text, { encoding }).parts;
    const args = [...this.options.command, 'sendsms', 'TEXT', sms.to];
    if (encoding === 'ucs2') args.push('-unicode');
    args.push('-autolen', String(Math.max(parts, 1)));
    if (sms.flash) args.push('-flash');
    if (sms.replace !== undefined) args.push('-replacemessages', String(sms.replace));
    if (sms.report) args.push('-report');
    args.push('-textutf8', sms.text, ...(this.options.extraArgs ?? []));
    return args;
  }

  async send(sms: OutgoingSms, hooks: SendHooks = {}): Promise<PartResult[]> {
    const expected = countSegments(sms.text, { encoding: chooseEncoding(sms.text, sms.encoding ?? 'auto') }).parts;
    // The box's sendsms sends at once: the go-ahead comes first, and from then on the message is on its way.
    await hooks.ready?.();
    hooks.submitted?.();
    let result: ExecResult;
    try {
      result = await this.box.exec(this.argv(sms), this.options.timeoutMs);
    } catch (error) {
      return [{ status: 'failed', error: error as SmsgateError }];
    }
    const output = `${result.stdout}\n${result.stderr}`;
    const references = [...output.matchAll(/message reference=(\d+)/g)].map((m) => Number(m[1]));
    const results: PartResult[] = references.map((reference) => ({ status: 'sent', reference }));
    if (result.code === 0 && references.length > 0) return results;
    results.push({ status: 'failed', error: remoteError(this.box.config.name, result, output) });
    while (results.length < expected) results.push({ status: 'not-sent' });
    return results;
  }

  async recover(): Promise<void> {
    this.box.close();
    await this.box.exec(['true'], 15_000);
  }

  /** The box answers; its modem's radio is not read from here. */
  async check(): Promise<null> {
    await this.box.exec(['true'], 15_000);
    return null;
  }

  async close(): Promise<void> {
    this.open = false;
    this.box.close();
  }
}

/** The error of a remote sendsms that failed: the modem's CMS/CME code when the output names one. */
function remoteError(box: string, result: ExecResult, output: string): SmsgateError {
  const line = output.split('\n').map((l) => l.trim()).filter(Boolean).pop() ?? `exit status ${result.code}`;
  const cms = /CMS ERROR:?\s*(\d+)/i.exec(output);
  const cme = /CME ERROR:?\s*(\d+)/i.exec(output);
  if (cms) {
    const info = cmsInfo(Number(cms[1]));
    return new SmsgateError(ErrorCodes.AtCms, `box ${box}: +CMS ERROR ${cms[1]}: ${info.meaning}`, { modemCode: Number(cms[1]), retry: info.retry });
  }
  if (cme) {
    const info = cmeInfo(Number(cme[1]));
    return new SmsgateError(ErrorCodes.AtCme, `box ${box}: +CME ERROR ${cme[1]}: ${info.meaning}`, { modemCode: Number(cme[1]), retry: info.retry });
  }
  return new SmsgateError(ErrorCodes.AtError, `box ${box}: sendsms failed (exit ${result.code}): ${line}`, { retry: 'retry-other' });
}
