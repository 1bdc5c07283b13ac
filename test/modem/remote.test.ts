/**
 * Remote boxes over SSH: a real sshd on 127.0.0.1 fronting a simulated modem, reached with ssh2. The box runs
 * `smsgate sendsms` (Gammu's syntax) on its port.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RemoteSender, SshBox, shellQuote } from '../../modem/remote.js';
import { BIN } from '../helpers/cli.js';
import { type TestSim, startSim } from '../helpers/sim.js';
import { type TestSshd, startSshd } from '../helpers/sshd.js';

let sshd: TestSshd;
let sim: TestSim;
beforeAll(async () => {
  sshd = await startSshd();
  sim = await startSim({ latencyMs: 5 });
});
afterAll(async () => {
  await sshd?.stop();
  await sim?.stop();
});

function box(fingerprint = sshd.fingerprint): SshBox {
  return new SshBox({ name: 'garage', host: sshd.host, port: sshd.port, username: sshd.username, privateKey: sshd.clientKey, hostKeyFingerprint: fingerprint });
}

function sender(b: SshBox): RemoteSender {
  return new RemoteSender(b, { command: [process.execPath, BIN], extraArgs: ['--port', sim.sim.atPorts(0)[0]!, '--lock-dir', sim.lockDir] });
}

describe('remote boxes over SSH', () => {
  it("reads the host key fingerprint as OpenSSH's ssh-keygen prints it", async () => {
    expect(await SshBox.fetchFingerprint({ host: sshd.host, port: sshd.port, username: sshd.username, privateKey: sshd.clientKey })).toBe(sshd.fingerprint);
  });

  it('delivers texts with shell syntax in them verbatim, over one reused connection', async () => {
    const logins = () => sshd.log().match(/Accepted publickey/g)?.length ?? 0;
    const before = logins();
    const b = box();
    const remote = sender(b);
    const texts = ['"; rm -rf / #', '$(reboot)', "it's `id` & ; | > /tmp/x\nnew line", 'Привет, $HOME! \\n 😀'];
    for (const text of texts) {
      const results = await remote.send({ to: '+79161234567', text });
      expect(results.every((r) => r.status === 'sent'), JSON.stringify(results)).toBe(true);
    }
    expect(sim.sim.records().map((r) => r.text)).toEqual(texts);
    expect(logins() - before).toBe(1);
    await remote.close();
  });

  it('refuses a box whose host key is not the pinned one, before running anything', async () => {
    const before = sim.sim.records().length;
    const remote = sender(box('SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA'));
    const [result] = await remote.send({ to: '+79161234567', text: 'must not go' });
    expect(result).toMatchObject({ status: 'failed', error: { code: 'PORT_LOCKED', retry: 'retry-other' } });
    expect((result as { error: Error }).error.message).toMatch(/is not the pinned SHA256:A+; refused/);
    expect(sim.sim.records()).toHaveLength(before);
  });

  it("classifies the remote modem's error by its CMS code", async () => {
    const remote = sender(box());
    sim.sim.fault(0, { type: 'cms', code: 38 });
    const [result] = await remote.send({ to: '+79161234567', text: 'congested network' });
    expect(result).toMatchObject({ status: 'failed', error: { code: 'AT_CMS', modemCode: 38, retry: 'retry-other' } });
    await remote.close();
  });

  it('passes flash, replace-ID, report and Unicode as Gammu options', () => {
    const remote = sender(box());
    expect(remote.argv({ to: '+7916', text: 'Тест', flash: true, replace: 3, report: true }).slice(2, 12)).toEqual([
      'sendsms', 'TEXT', '+7916', '-unicode', '-autolen', '1', '-flash', '-replacemessages', '3', '-report',
    ]);
    expect(shellQuote("it's")).toBe(`'it'"'"'s'`);
  });
});

describe('a remote box as a channel of the dispatcher', () => {
  it('drains a message through the box, its shell syntax intact, and marks it sent', async () => {
    const { mkdtempSync, writeFileSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    const { openStorage } = await import('../../sql/index.js');
    const { Dispatcher } = await import('../../scheduler/dispatcher.js');
    const { attachRemoteChannels } = await import('../../scheduler/pool.js');
    const dir = mkdtempSync(join(tmpdir(), 'smsgate-remote-'));
    const keyFile = join(dir, 'garage.key');
    writeFileSync(keyFile, sshd.clientKey, { mode: 0o600 });
    const storage = await openStorage(`sqlite:${join(dir, 'db.sqlite')}`);
    const admin = await storage.createUser({ name: 'ops', passwordHash: 'x', role: 'admin' });
    const box = await storage.addBox({ name: 'garage', host: sshd.host, port: sshd.port, username: sshd.username, keyRef: keyFile, hostKeyFingerprint: sshd.fingerprint });
    const simRow = await storage.upsertSim({ imsi: sim.sim.info()[0]!.imsi });
    const spec = { command: [process.execPath, BIN], extraArgs: ['--port', sim.sim.atPorts(0)[0]!, '--lock-dir', sim.lockDir] };
    await storage.upsertChannel({ boxId: box.id, port: JSON.stringify(spec), simId: simRow.id });
    const dispatcher = new Dispatcher({ storage, cron: false });
    const attached = await attachRemoteChannels(storage, dispatcher);
    expect(attached).toMatchObject({ problems: [], channels: [{ port: expect.stringMatching(/^garage:/), simId: simRow.id }] });
    await dispatcher.start();
    const text = 'Alarm "zone 3"; $(reboot) `id` \'quoted\' — Тревога';
    const { messages } = await storage.enqueue([{ userId: admin.id, recipient: '+79169999999', text, encoding: 'ucs2', parts: 1 }]);
    const id = messages[0]!.id;
    for (let i = 0; i < 200 && (await storage.getMessage(id))!.state !== 'sent'; i++) {
      dispatcher.wake();
      await dispatcher.idle();
      await new Promise((r) => setTimeout(r, 25));
    }
    expect(await storage.getMessage(id)).toMatchObject({ state: 'sent', simId: simRow.id, partRefs: [expect.any(Number)] });
    expect(sim.sim.records().at(-1)).toMatchObject({ to: '+79169999999', text });
    await dispatcher.stop();
    await storage.close();
  });
});

describe('smsgate box', () => {
  it('adds a box after showing its host key, refuses a wrong expected key, registers a channel, lists and removes', async () => {
    const { mkdtempSync, writeFileSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    const { runCli } = await import('../helpers/cli.js');
    const dir = mkdtempSync(join(tmpdir(), 'smsgate-box-'));
    const key = join(dir, 'key');
    writeFileSync(key, sshd.clientKey, { mode: 0o600 });
    const common = ['--host', sshd.host, '--port', String(sshd.port), '--user', sshd.username, '--key', key, '--data', dir];

    const wrong = runCli(['box', 'add', 'garage', ...common, '--fingerprint', 'SHA256:nope']);
    expect(wrong.status).toBe(1);
    expect(wrong.stderr).toMatch(/not the expected SHA256:nope: refused/);

    const declined = runCli(['box', 'add', 'garage', ...common], 'no\n');
    expect(declined.status).toBe(1);
    expect(declined.stdout).toContain(`presents the host key ${sshd.fingerprint}`);
    expect(declined.stderr).toMatch(/not accepted; nothing stored/);

    const added = runCli(['box', 'add', 'garage', ...common], 'yes\n');
    expect(added.status).toBe(0);
    expect(added.stdout).toContain(`host key ${sshd.fingerprint} pinned`);

    const channel = runCli(['box', 'channel', 'garage', '--imsi', '250020000000077', '--data', dir, '--', 'gammu', '-s', '0']);
    expect(channel).toMatchObject({ status: 0 });
    const listed = JSON.parse(runCli(['box', 'list', '--json', '--data', dir]).stdout) as { name: string; hostKeyFingerprint: string; channels: { port: string }[] }[];
    expect(listed).toEqual([expect.objectContaining({ name: 'garage', hostKeyFingerprint: sshd.fingerprint, channels: [expect.objectContaining({ port: '{"command":["gammu","-s","0"]}' })] })]);
    expect(runCli(['box', 'remove', 'garage', '--data', dir])).toMatchObject({ status: 0 });
    expect(runCli(['box', 'list', '--data', dir]).stdout).toBe('No remote box.\n');
  });
});
