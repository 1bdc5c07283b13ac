/**
 * `smsgate box …`: remote boxes whose modems smsgate reaches over SSH, kept in the database `serve` uses.
 *
 *   box add NAME --host H [--port 22] --user U --key FILE [--fingerprint SHA256:… | --yes]
 *   box channel NAME --imsi IMSI -- COMMAND…      e.g. -- gammu -s 0   or   -- smsgate --port /dev/ttyUSB2
 *   box list
 *   box remove NAME
 *
 * `add` connects once and shows the host key's fingerprint; it is stored (pinned) only when it is accepted: typed
 * "yes" at the prompt, --yes, or equal to --fingerprint (for scripts that know it). Every later connection checks it.
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { ErrorCodes, SmsgateError } from '../modem/errors.js';
import { SshBox } from '../modem/remote.js';
import { type CliIo, DB_OPTIONS, UsageError, storageOf } from './cli-common.js';

export async function box(args: string[], io: CliIo): Promise<number> {
  const [verb, ...rest] = args;
  switch (verb) {
    case 'add':
      return add(rest, io);
    case 'channel':
      return channel(rest, io);
    case 'list':
      return list(rest, io);
    case 'remove':
      return remove(rest, io);
    default:
      throw new UsageError(verb ? `unknown box command "${verb}" (add, channel, list, remove)` : 'box needs add, channel, list or remove');
  }
}

async function add(args: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    strict: true,
    options: { ...DB_OPTIONS, host: { type: 'string' }, port: { type: 'string' }, user: { type: 'string' }, key: { type: 'string' }, fingerprint: { type: 'string' }, yes: { type: 'boolean' } },
  });
  const [name] = positionals;
  if (!name || positionals.length > 1) throw new UsageError('box add takes one NAME');
  if (!values.host || !values.user || !values.key) throw new UsageError('box add needs --host, --user and --key');
  const port = values.port === undefined ? 22 : Number(values.port);
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new UsageError(`--port takes a TCP port, got "${values.port}"`);
  const keyFile = resolve(values.key);
  let privateKey: string;
  try {
    privateKey = readFileSync(keyFile, 'utf8');
  } catch (error) {
    throw new SmsgateError(ErrorCodes.NotFound, `cannot read the key ${keyFile}: ${(error as Error).message}`, 'key');
  }
  const seen = await SshBox.fetchFingerprint({ host: values.host, port, username: values.user, privateKey });
  io.stdout(`box ${name} (${values.host}:${port}) presents the host key ${seen}`);
  if (values.fingerprint !== undefined && values.fingerprint !== seen) {
    throw new SmsgateError(ErrorCodes.PortLocked, `the host key is ${seen}, not the expected ${values.fingerprint}: refused`, 'fingerprint');
  }
  if (values.fingerprint === undefined && !values.yes) {
    io.stdout('Accept this host key? Type "yes" to pin it:');
    if (io.readStdin().trim().toLowerCase() !== 'yes') throw new SmsgateError(ErrorCodes.BadMessage, 'the host key was not accepted; nothing stored', 'fingerprint');
  }
  const storage = await storageOf(values);
  try {
    const stored = await storage.addBox({ name, host: values.host, port, username: values.user, keyRef: keyFile, hostKeyFingerprint: seen });
    io.stdout(`box ${stored.name} added (id ${stored.id}), host key ${seen} pinned`);
    return 0;
  } finally {
    await storage.close();
  }
}

async function channel(args: string[], io: CliIo): Promise<number> {
  const dash = args.indexOf('--');
  if (dash < 0 || dash === args.length - 1) throw new UsageError('box channel NAME --imsi IMSI -- COMMAND… (e.g. -- gammu -s 0)');
  const command = args.slice(dash + 1);
  const { values, positionals } = parseArgs({ args: args.slice(0, dash), allowPositionals: true, strict: true, options: { ...DB_OPTIONS, imsi: { type: 'string' } } });
  const [name] = positionals;
  if (!name) throw new UsageError('box channel needs the box NAME');
  if (!values.imsi || !/^\d{6,15}$/.test(values.imsi)) throw new UsageError('--imsi takes the remote SIM\'s IMSI (6 to 15 digits)');
  const storage = await storageOf(values);
  try {
    const found = (await storage.listBoxes()).find((b) => b.name === name);
    if (!found) throw new SmsgateError(ErrorCodes.NotFound, `no box named "${name}" (see smsgate box list)`);
    const sim = await storage.upsertSim({ imsi: values.imsi });
    // smsgate on the box takes --port after the message's arguments; Gammu takes everything before sendsms.
    const portAt = command.indexOf('--port');
    const spec = portAt > 0 ? { command: command.slice(0, portAt), extraArgs: command.slice(portAt) } : { command };
    const row = await storage.upsertChannel({ boxId: found.id, port: JSON.stringify(spec), simId: sim.id });
    io.stdout(`channel ${row.id} on box ${name}: ${command.join(' ')} (SIM ${sim.id}, IMSI ${values.imsi})`);
    return 0;
  } finally {
    await storage.close();
  }
}

async function list(args: string[], io: CliIo): Promise<number> {
  const { values } = parseArgs({ args, strict: true, options: { ...DB_OPTIONS, json: { type: 'boolean' } } });
  const storage = await storageOf(values);
  try {
    const boxes = await storage.listBoxes();
    const channels = await storage.listChannels();
    if (values.json) {
      io.stdout(JSON.stringify(boxes.map((b) => ({ ...b, channels: channels.filter((c) => c.boxId === b.id) }))));
      return 0;
    }
    if (boxes.length === 0) io.stdout('No remote box.');
    for (const b of boxes) {
      io.stdout(`${b.name}: ${b.username}@${b.host}:${b.port}, key ${b.keyRef}, host key ${b.hostKeyFingerprint}`);
      for (const c of channels.filter((x) => x.boxId === b.id)) io.stdout(`  channel ${c.id}: ${c.port} (SIM ${c.simId ?? '-'})${c.healthy ? '' : `, unhealthy: ${c.lastError}`}`);
    }
    return 0;
  } finally {
    await storage.close();
  }
}

async function remove(args: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseArgs({ args, allowPositionals: true, strict: true, options: DB_OPTIONS });
  const [name] = positionals;
  if (!name) throw new UsageError('box remove needs the box NAME');
  const storage = await storageOf(values);
  try {
    const found = (await storage.listBoxes()).find((b) => b.name === name);
    if (!found) throw new SmsgateError(ErrorCodes.NotFound, `no box named "${name}"`);
    await storage.removeBox(found.id);
    io.stdout(`box ${name} removed`);
    return 0;
  } finally {
    await storage.close();
  }
}
