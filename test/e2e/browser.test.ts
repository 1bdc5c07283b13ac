/**
 * The web pages in a real browser: Debian's headless Chromium, driven by playwright-core, against a real
 * `smsgate serve --simulate 2`. A person logs in, types two recipients and a Cyrillic text, reads the counter the
 * gateway's own codec computes, sends, and sees both messages reach `sent`; the simulator's record shows them. They
 * save a text as a template, fill in its variables, read the live preview, and send it.
 * Screenshots go to test-results/screenshots/.
 */
import type { ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Browser, type Page, chromium } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROOT, runCli, startServe } from '../helpers/cli.js';
import { simControl } from '../helpers/sim.js';

const CHROMIUM = '/usr/bin/chromium';
const SHOTS = join(ROOT, 'test-results', 'screenshots');

let dir: string;
let child: ChildProcess;
let url: string;
let browser: Browser;
let page: Page;
let password: string;

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: apt-get install chromium (test/prerequisites.sh does)`);
  mkdirSync(SHOTS, { recursive: true });
  dir = mkdtempSync(join(tmpdir(), 'smsgate-browser-'));
  mkdirSync(join(dir, 'lock'));
  const added = runCli(['user', 'add', 'alice', '--admin', '--data', dir]);
  expect(added.status, added.stderr).toBe(0);
  password = /password: (\S+)/.exec(added.stdout)![1]!;
  ({ child, url } = await startServe(['--simulate', '2', '--sim-latency', '50', '--data', dir, '--listen', '127.0.0.1:0', '--lock-dir', join(dir, 'lock')]));
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'] });
  page = await browser.newPage({ viewport: { width: 412, height: 915 } });
  page.on('pageerror', (error) => {
    throw error;
  });
}, 90_000);

afterAll(async () => {
  await browser?.close();
  child?.kill('SIGTERM');
  await new Promise((r) => (child?.exitCode === null ? child.once('exit', r) : r(null)));
  rmSync(dir, { recursive: true, force: true });
});

// 71 Cyrillic characters: one past what a single UCS-2 part holds.
const TEXT = 'Привет! Это проверка отправки длинного сообщения через smsgate сегодня.'.padEnd(71, '.');

describe('the web pages in Chromium', () => {
  it('refuses a wrong password without saying whether the user exists', async () => {
    await page.goto(url);
    await page.fill('#login-form input[name=login]', 'alice');
    await page.fill('#login-form input[name=password]', 'not-the-password');
    await page.click('#login-form button[type=submit]');
    await expect.poll(() => page.textContent('#login-error')).toBe('wrong login or password');
    await page.fill('#login-form input[name=login]', 'nobody');
    await page.click('#login-form button[type=submit]');
    await expect.poll(() => page.textContent('#login-error')).toBe('wrong login or password');
  });

  it('logs in, counts as the gateway counts, sends to two recipients and shows both sent', async () => {
    await page.fill('#login-form input[name=login]', 'alice');
    await page.fill('#login-form input[name=password]', password);
    await page.click('#login-form button[type=submit]');
    await page.waitForSelector('#page-send:not([hidden])');
    expect(await page.textContent('#whoami')).toContain('alice');

    await page.fill('#send-to', '+79161234501, +7 (916) 123-45-02');
    await page.fill('#send-text', TEXT.slice(0, 70));
    expect(await page.textContent('#counter')).toContain('UCS-2, 1 part');
    await page.type('#send-text', TEXT.slice(70));
    expect([...TEXT].length).toBe(71);
    const counter = await page.textContent('#counter');
    expect(counter).toContain('71 characters');
    expect(counter).toContain('UCS-2, 2 parts');
    await page.screenshot({ path: join(SHOTS, 'send-form.png'), fullPage: true });

    await page.click('#send-button');
    await page.waitForSelector('#sent-table:not([hidden])');
    await expect
      .poll(async () => page.$$eval('#sent-table tbody tr', (rows) => rows.map((r) => r.getAttribute('data-state'))), { timeout: 20_000 })
      .toEqual(['sent', 'sent']);
    const cells = await page.$$eval('#sent-table tbody tr td:nth-child(2)', (tds) => tds.map((td) => td.textContent));
    expect(cells.sort()).toEqual(['+79161234501', '+79161234502']);
    await page.screenshot({ path: join(SHOTS, 'sent.png'), fullPage: true });

    const record = readFileSync(join(dir, 'sim', 'network.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { to: string; text: string; encoding: string; concat: { seq: number; total: number } | null });
    for (const to of ['+79161234501', '+79161234502']) {
      const parts = record.filter((r) => r.to === to).sort((a, b) => a.concat!.seq - b.concat!.seq);
      expect(parts.map((p) => [p.encoding, p.concat?.seq, p.concat?.total])).toEqual([
        ['ucs2', 1, 2],
        ['ucs2', 2, 2],
      ]);
      expect(parts.map((p) => p.text).join('')).toBe(TEXT);
    }
  });

  it('saves the text as a template, previews it with variables as the gateway renders it, and sends it', async () => {
    await page.fill('#send-text', 'Hello %(name)s!%(if code)s Code: %(code)s%(endif)s');
    await page.fill('#template-name', 'greeting');
    await page.click('#template-save');
    await expect.poll(() => page.$eval('#send-template option:checked', (o) => o.textContent)).toBe('greeting');
    expect(await page.isVisible('#send-text')).toBe(false);
    expect(await page.isVisible('#template-form')).toBe(false);
    await expect.poll(() => page.textContent('#preview-error')).toBe('missing variable "name"');
    await page.fill('#template-var-inputs input[data-var=name]', 'Ирина');
    await expect.poll(() => page.textContent('#preview-text')).toBe('Hello Ирина!');
    expect(await page.textContent('#preview-count')).toContain('UCS-2, 1 part');
    expect(await page.isVisible('#preview-error')).toBe(false);
    await page.fill('#template-var-inputs input[data-var=code]', '4711');
    await expect.poll(() => page.textContent('#preview-text')).toBe('Hello Ирина! Code: 4711');
    await page.screenshot({ path: join(SHOTS, 'template.png'), fullPage: true });
    await page.fill('#send-to', '+79161234504');
    await page.click('#send-button');
    const row = '#sent-table tbody tr:first-child';
    await expect.poll(() => page.$eval(row, (r) => [r.children[1]?.textContent, r.getAttribute('data-state')]), { timeout: 20_000 }).toEqual(['+79161234504', 'sent']);
    const record = readFileSync(join(dir, 'sim', 'network.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { to: string; text: string });
    expect(record.filter((r) => r.to === '+79161234504').map((r) => r.text)).toEqual(['Hello Ирина! Code: 4711']);
    // Back to typing a text.
    await page.selectOption('#send-template', '');
    expect(await page.isVisible('#send-text')).toBe(true);
  });

  it('renders message text as text, never as HTML', async () => {
    const hostile = '<img src=x onerror="document.title=\'pwned\'"><script>document.title="pwned"</script>';
    await page.fill('#send-to', '+79161234503');
    await page.fill('#send-text', hostile);
    await page.click('#send-button');
    // Stored (the form lists it) before the history is asked for.
    await expect.poll(() => page.$eval('#sent-table tbody tr:first-child', (r) => r.children[1]?.textContent)).toBe('+79161234503');
    await page.goto(`${url}/#history`);
    await page.waitForSelector('#history-table tbody tr');
    const first = await page.$eval('#history-table tbody tr td.text', (td) => ({ text: td.textContent, children: td.children.length }));
    expect(first).toEqual({ text: hostile, children: 0 });
    expect(await page.title()).toBe('smsgate');
    await page.screenshot({ path: join(SHOTS, 'history.png'), fullPage: true });
  });

  it('shows the SIMs and modems, and lets an admin set a quota', async () => {
    await page.goto(`${url}/#sims`);
    await page.waitForSelector('#sims-list article.card');
    const cards = await page.$$eval('#sims-list article.card', (els) => els.map((e) => e.textContent ?? ''));
    expect(cards).toHaveLength(2);
    for (const card of cards) {
      expect(card).toMatch(/(^|[^n])healthy/);
      expect(card).toMatch(/-?\d+ dBm/);
      expect(card).toContain('MegaFon');
    }
    await page.goto(`${url}/#admin`);
    await page.waitForSelector('#sim-settings form');
    const form = page.locator('#sim-settings form').first();
    await form.locator('input[name=monthly_quota]').fill('500');
    await form.locator('button[type=submit]').click();
    await expect.poll(() => page.textContent('#flash')).toContain('saved');
    await page.goto(`${url}/#sims`);
    await page.waitForSelector('#sims-list progress');
    expect(await page.textContent('#sims-list')).toMatch(/of 500 parts used/);
    await page.screenshot({ path: join(SHOTS, 'sims.png'), fullPage: true });
  });

  it('shows received messages in the inbox (as text), and answers the USSD console', async () => {
    const control = join(dir, 'sim', 'control.sock');
    await simControl(control, { op: 'deliver', modem: 0, from: '+79031234567', text: 'Входящее <b>не жирное</b>' });
    await simControl(control, { op: 'ussd', modem: 1, code: '*100#', answer: 'Баланс: 42,00 р.' });
    await page.goto(`${url}/#inbox`);
    await expect.poll(async () => {
      await page.click('#inbox-form button[type=submit]');
      return page.$$eval('#inbox-table tbody tr[data-inbox]', (rows) => rows.length);
    }, { timeout: 15_000 }).toBe(1);
    const row = await page.$eval('#inbox-table tbody tr[data-inbox] td.text', (td) => ({ text: td.textContent, children: td.children.length }));
    expect(row).toEqual({ text: 'Входящее <b>не жирное</b>', children: 0 });
    await page.screenshot({ path: join(SHOTS, 'inbox.png'), fullPage: true });
    await page.goto(`${url}/#admin`);
    await page.waitForSelector('#ussd-sim option', { state: 'attached' });
    await page.selectOption('#ussd-sim', { index: 1 });
    await page.fill('#ussd-form input[name=code]', '*100#');
    await page.click('#ussd-form button[type=submit]');
    await expect.poll(() => page.textContent('#ussd-answer'), { timeout: 15_000 }).toContain('Баланс: 42,00 р.');
  });
});
