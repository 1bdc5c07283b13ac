/**
 * The BILLmanager gateway module (gwsmsgate) as BILLmanager runs it: the built executable as a child process,
 * `--command …` in its arguments, a sample XML document (test/fixtures/billmanager/) on stdin, XML read from stdout
 * and the exit status. `outgoing` and `check_connection` talk to a real gateway with simulated modems, and the
 * simulated network's record shows what went out. Also the error paths (wrong token, gateway down, something that
 * is not smsgate, a refused message, broken or hostile XML) and the module's XML description.
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SETTINGS } from '../../server/integrations/billmanager.js';
import { type XmlElement, childNamed, childrenNamed, findAll, findElement, parseXml, textOf } from '../../server/integrations/xml.js';
import type { User } from '../../sql/storage.js';
import { type RunningGateway, eventually, startRunningGateway } from '../helpers/running.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const MODULE = join(root, 'dist', 'server', 'integrations', 'billmanager.js');
const DESCRIPTION = join(root, 'server', 'integrations', 'billmgr_mod_gwsmsgate.xml');

let g: RunningGateway;
let user: User;
let token: string;

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
  doc: XmlElement;
}

/** Runs the module as BILLmanager does; `input` (when given) is written to stdin, which is then closed. */
function runModule(args: string[], input?: string): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [MODULE, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`the module did not finish: ${stderr}`));
    }, 25_000);
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString('utf8')));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString('utf8')));
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      try {
        resolve({ code, stdout, stderr, doc: parseXml(stdout) });
      } catch (error) {
        reject(new Error(`stdout is not XML (${(error as Error).message}): ${stdout}\nstderr: ${stderr}`));
      }
    });
    if (input !== undefined) child.stdin.end(input, 'utf8');
  });
}

function fixture(name: string, values: Record<string, string> = {}): string {
  let text = readFileSync(join(root, 'test', 'fixtures', 'billmanager', name), 'utf8');
  for (const [key, value] of Object.entries(values)) text = text.replaceAll(`{{${key}}}`, value);
  return text;
}

/** The error a document answers: type, object and the value's text. */
function errorOf(doc: XmlElement): { type?: string; object?: string; value: string } | null {
  const error = childNamed(doc, 'error');
  if (!error) return null;
  const value = childrenNamed(error, 'param').find((p) => p.attributes.name === 'value');
  return { type: error.attributes.type, object: error.attributes.object, value: value ? textOf(value) : '' };
}

/** A port on 127.0.0.1 where nothing listens. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as { port: number };
  await new Promise<void>((r) => server.close(() => r()));
  return port;
}

async function messageCount(): Promise<number> {
  return Object.values(await g.storage.countByState()).reduce((a, b) => a + (b ?? 0), 0);
}

beforeAll(async () => {
  g = await startRunningGateway();
  user = await g.addUser('billmanager', 'billmanager-password-1');
  token = await g.addToken(user);
  await g.storage.updateSim((await g.storage.listSims())[0]!.id, { label: 'office' });
}, 60_000);

afterAll(async () => {
  await g?.stop();
});

describe('features', () => {
  it('says what the module does, for SMS, without reading stdin (left open here)', async () => {
    const r = await runModule(['--command', 'features']);
    expect(r.code).toBe(0);
    expect(r.stdout.startsWith('<?xml version="1.0" encoding="UTF-8"?>\n<doc>')).toBe(true);
    const feature = childNamed(r.doc, 'feature')!;
    expect(feature.children.map((c) => (typeof c === 'string' ? c : [c.name, textOf(c)]))).toEqual([
      ['check_connection', 'on'],
      ['formtune', 'on'],
      ['outgoing', 'on'],
    ]);
    expect(textOf(childNamed(r.doc, 'notify_module')!)).toBe('ntsms');
  });

  it('is an executable with a shebang, and the package names it smsgate-billmanager', () => {
    expect(readFileSync(MODULE, 'utf8').split('\n')[0]).toBe('#!/usr/bin/env node');
    const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { bin: Record<string, string>; scripts: Record<string, string> };
    expect(pkg.bin['smsgate-billmanager']).toBe('dist/server/integrations/billmanager.js');
    expect(pkg.scripts.build).toContain('chmod +x dist/server/smsgate.js dist/server/integrations/billmanager.js');
  });

  it('answers an unknown or missing command with an error and exit status 1', async () => {
    for (const args of [['--command', 'incoming'], []]) {
      const r = await runModule(args);
      expect(r.code).toBe(1);
      expect(errorOf(r.doc)).toMatchObject({ type: 'command', object: 'command' });
      expect(r.stderr).toMatch(/^gwsmsgate: command/);
    }
  });
});

describe('formtune', () => {
  it('writes the form back whole, with the local URL where none is set; entities and Cyrillic survive', async () => {
    const input = fixture('formtune.xml');
    const r = await runModule(['--command', 'formtune'], input);
    expect(r.code).toBe(0);
    const expected = parseXml(input);
    findElement(expected, 'smsgate_url')!.children = ['http://127.0.0.1:8080'];
    expect(r.doc).toEqual(expected);
    expect(textOf(childNamed(r.doc, 'name')!)).toBe('smsgate — офис');
  });

  it('keeps a URL that is set', async () => {
    const input = fixture('formtune.xml').replace('<smsgate_url></smsgate_url>', '<smsgate_url>https://sms.example.net</smsgate_url>');
    const r = await runModule(['--command=formtune'], input);
    expect(textOf(findElement(r.doc, 'smsgate_url')!)).toBe('https://sms.example.net');
  });
});

describe('check_connection', () => {
  it('answers <doc/> for a token smsgate accepts, with no SIM or with a SIM of the user (label or id)', async () => {
    const sims = await g.storage.listSims();
    for (const sim of ['', 'office', String(sims[1]!.id)]) {
      const r = await runModule(['--command', 'check_connection'], fixture('check_connection.xml', { URL: g.base, TOKEN: token, SIM: sim }));
      expect(r.code, r.stdout).toBe(0);
      expect(r.stdout).toBe('<?xml version="1.0" encoding="UTF-8"?>\n<doc/>\n');
    }
  });

  it('a SIM the user may not use is an error naming smsgate_sim', async () => {
    const r = await runModule(['--command', 'check_connection'], fixture('check_connection.xml', { URL: g.base, TOKEN: token, SIM: 'nonexistent' }));
    expect(r.code).toBe(1);
    expect(errorOf(r.doc)).toMatchObject({ type: 'smsgate_sim', object: 'smsgate_sim' });
    expect(errorOf(r.doc)!.value).toContain('"nonexistent"');
  });

  it('a wrong token is smsgate_auth', async () => {
    const r = await runModule(['--command', 'check_connection'], fixture('check_connection.xml', { URL: g.base, TOKEN: 'sg_wrong', SIM: '' }));
    expect(r.code).toBe(1);
    expect(errorOf(r.doc)).toMatchObject({ type: 'smsgate_auth', object: 'smsgate_token' });
    expect(childNamed(r.doc, 'error')!.children[0]).toEqual({ name: 'param', attributes: { name: 'object', type: 'msg', msg: 'smsgate_token' }, children: ['smsgate_token'] });
  });

  it('a gateway that is down is smsgate_unreachable', async () => {
    const url = `http://127.0.0.1:${await closedPort()}`;
    const r = await runModule(['--command', 'check_connection'], fixture('check_connection.xml', { URL: url, TOKEN: token, SIM: '' }));
    expect(r.code).toBe(1);
    expect(errorOf(r.doc)).toMatchObject({ type: 'smsgate_unreachable', object: 'smsgate_url' });
    expect(errorOf(r.doc)!.value).toContain('ECONNREFUSED');
  });

  it('a web server that is not smsgate is smsgate_answer', async () => {
    const server = createServer((_req, res) => res.writeHead(200, { 'content-type': 'text/html' }).end('<html>hello</html>'));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      const url = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
      const r = await runModule(['--command', 'check_connection'], fixture('check_connection.xml', { URL: url, TOKEN: token, SIM: '' }));
      expect(r.code).toBe(1);
      expect(errorOf(r.doc)).toMatchObject({ type: 'smsgate_answer', object: 'smsgate_url' });
    } finally {
      await new Promise<void>((r) => server.close(() => r()));
    }
  });

  it('a missing token or a URL that is no URL is a value error naming the setting', async () => {
    const noToken = await runModule(['--command', 'check_connection'], fixture('check_connection.xml', { URL: g.base, TOKEN: '', SIM: '' }));
    expect(errorOf(noToken.doc)).toMatchObject({ type: 'value', object: 'smsgate_token' });
    const badUrl = await runModule(['--command', 'check_connection'], fixture('check_connection.xml', { URL: 'ftp://x', TOKEN: token, SIM: '' }));
    expect(errorOf(badUrl.doc)).toMatchObject({ type: 'value', object: 'smsgate_url' });
    expect(badUrl.code).toBe(1);
  });
});

describe('outgoing', () => {
  const first = 'Счёт №9001 на 1\u00a0500 ₽ & <услуга> "VDS-1" — оплатите до 01.12 <https://my.example.net/?a=1&b=2>';

  it('sends each message through the API and answers each one; the text arrives as BILLmanager wrote it', async () => {
    const r = await runModule(['--command', 'outgoing'], fixture('outgoing.xml', { URL: g.base, TOKEN: token, ID1: '9001', ID2: '9002' }));
    expect(r.code, r.stdout + r.stderr).toBe(0);
    const answers = childrenNamed(r.doc, 'message');
    expect(answers.map((m) => [m.attributes.id, textOf(childNamed(m, 'result')!)])).toEqual([
      ['9001', 'ok'],
      ['9002', 'ok'],
    ]);
    const ids = answers.map((m) => Number(textOf(childNamed(m, 'smsgate_id')!)));
    for (const [i, id] of ids.entries()) {
      const stored = (await g.storage.getMessage(id))!;
      expect(stored).toMatchObject({ clientMsgId: `billmanager-${9001 + i}`, source: 'api', userId: user.id });
    }
    // The first text is 94 UCS-2 characters: two parts to +7 916 555-00-01; the second number had no "+".
    const parts = await eventually(
      () => g.network().filter((n) => n.to === '+79165550001'),
      (l) => l.length === 2,
    );
    expect(parts.sort((a, b) => a.concat!.seq - b.concat!.seq).map((p) => p.text).join('')).toBe(first);
    await eventually(
      () => g.received('Код подтверждения: 4711'),
      (l) => l.length === 1 && l[0]!.to === '+79165550002',
    );
  });

  it('the same run again (BILLmanager retrying) sends nothing twice', async () => {
    const before = g.network().length;
    const r = await runModule(['--command', 'outgoing'], fixture('outgoing.xml', { URL: g.base, TOKEN: token, ID1: '9001', ID2: '9002' }));
    expect(r.code).toBe(0);
    expect(childrenNamed(r.doc, 'message').map((m) => textOf(childNamed(m, 'duplicate')!))).toEqual(['on', 'on']);
    await new Promise((res) => setTimeout(res, 1_500));
    expect(g.network().length).toBe(before);
  });

  it('a message smsgate refuses, or one without text, fails alone: the others go, and the exit status says so', async () => {
    const r = await runModule(['--command', 'outgoing'], fixture('outgoing-refused.xml', { URL: g.base, TOKEN: token, ID1: '9101', ID2: '9102', ID3: '9103' }));
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('2 message(s) refused');
    const [refused, sent, empty] = childrenNamed(r.doc, 'message');
    expect(textOf(childNamed(refused!, 'result')!)).toBe('error');
    expect(errorOf(refused!)).toMatchObject({ type: 'smsgate_refused', object: 'phone' });
    expect(errorOf(refused!)!.value).toContain('HTTP 400');
    expect(textOf(childNamed(sent!, 'result')!)).toBe('ok');
    expect(errorOf(empty!)).toMatchObject({ type: 'value', object: 'text' });
    await eventually(
      () => g.received('Sent although the one before was refused'),
      (l) => l.length === 1,
    );
  });

  it('a wrong token or a gateway that is down fails the whole run, and nothing is stored', async () => {
    const stored = await messageCount();
    const wrong = await runModule(['--command', 'outgoing'], fixture('outgoing.xml', { URL: g.base, TOKEN: 'sg_wrong', ID1: '9201', ID2: '9202' }));
    expect(wrong.code).toBe(1);
    expect(errorOf(wrong.doc)).toMatchObject({ type: 'smsgate_auth', object: 'smsgate_token' });
    expect(childrenNamed(wrong.doc, 'message')).toEqual([]);
    const down = await runModule(['--command', 'outgoing'], fixture('outgoing.xml', { URL: `http://127.0.0.1:${await closedPort()}`, TOKEN: token, ID1: '9203', ID2: '9204' }));
    expect(down.code).toBe(1);
    expect(errorOf(down.doc)).toMatchObject({ type: 'smsgate_unreachable', object: 'smsgate_url' });
    expect(await messageCount()).toBe(stored);
  });

  it('broken XML and a DOCTYPE (entity expansion) are refused as xml errors, and nothing is sent', async () => {
    const stored = await messageCount();
    const broken = await runModule(['--command', 'outgoing'], fixture('broken.xml'));
    expect(broken.code).toBe(1);
    expect(errorOf(broken.doc)).toMatchObject({ type: 'xml' });
    expect(errorOf(broken.doc)!.value).toContain('does not match <message>');
    const doctype = await runModule(['--command', 'outgoing'], fixture('doctype.xml'));
    expect(errorOf(doctype.doc)).toMatchObject({ type: 'xml' });
    expect(errorOf(doctype.doc)!.value).toContain('DOCTYPE');
    expect(await messageCount()).toBe(stored);
  });
});

describe('billmgr_mod_gwsmsgate.xml', () => {
  const description = parseXml(readFileSync(DESCRIPTION, 'utf8'));
  const source = readFileSync(join(root, 'server', 'integrations', 'billmanager.ts'), 'utf8');

  it('names the module, and its form has exactly the settings the module reads', () => {
    expect(childNamed(description, 'plugin')!.attributes.name).toBe('gwsmsgate');
    const form = childrenNamed(description, 'metadata').find((m) => m.attributes.name === 'gateway.edit.gwsmsgate')!;
    expect(form.attributes.type).toBe('form');
    expect(findAll(form, 'field').map((f) => f.attributes.name)).toEqual(Object.values(SETTINGS));
    const token = findAll(form, 'input').find((i) => i.attributes.name === SETTINGS.token)!;
    expect(token.attributes).toMatchObject({ type: 'password', private: 'yes', required: 'yes' });
  });

  it('labels every field and every error type the module answers, in English and Russian', () => {
    const types = [...source.matchAll(/new ModuleError\('([a-z_]+)'/g)].map((m) => m[1]!).filter((t) => t !== 'value');
    expect(new Set(types)).toEqual(new Set(['smsgate_unreachable', 'smsgate_auth', 'smsgate_answer', 'smsgate_sim', 'smsgate_error', 'smsgate_refused', 'xml', 'command']));
    for (const lang of ['en', 'ru']) {
      const messages = childrenNamed(description, 'lang').find((l) => l.attributes.name === lang)!;
      const names = (group: string) => findAll(childrenNamed(messages, 'messages').find((m) => m.attributes.name === group)!, 'msg').map((m) => m.attributes.name);
      for (const field of Object.values(SETTINGS)) expect(names('gateway.edit.gwsmsgate')).toEqual(expect.arrayContaining([field, `hint_${field}`]));
      expect(new Set(names('msgerror'))).toEqual(new Set(types.map((t) => `msg_error_${t}`)));
      expect(names('label_gateway')).toEqual(['gwsmsgate', 'module_gwsmsgate']);
    }
  });
});
