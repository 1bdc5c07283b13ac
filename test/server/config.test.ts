/** The config file: its documented example is the defaults, environment overrides, and errors that name the key. */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { defaultConfig, exampleConfig, loadConfig, parseListen } from '../../server/config.js';
import { errorOf } from '../helpers/errors.js';
import { runCli } from '../helpers/cli.js';

const dir = mkdtempSync(join(tmpdir(), 'smsgate-config-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function file(text: string): string {
  const path = join(dir, `c${Math.random().toString(36).slice(2)}.toml`);
  writeFileSync(path, text);
  return path;
}

describe('the config file', () => {
  it('the printed example parses back to the defaults, and documents every key', () => {
    const example = exampleConfig();
    expect(loadConfig({ file: file(example), env: {} })).toEqual(defaultConfig());
    for (const key of ['listen', 'default_country_code', 'max_recipients', 'max_failures', 'on_unknown', 'secret', 'globs', 'latency_ms']) {
      expect(example).toMatch(new RegExp(`^# .+\\n(# .+\\n)*${key} = `, 'm'));
    }
  });

  it('reads sections and keys, and the environment wins over the file', () => {
    const path = file('listen = "127.0.0.1:9000"\n[send]\ndefault_country_code = "7"\nmax_recipients = 50\n[modems]\nglobs = ["/dev/ttyUSB*"]\n');
    const c = loadConfig({ file: path, env: { SMSGATE_SEND_MAX_RECIPIENTS: '70', SMSGATE_TRUST_PROXY: 'loopback', SMSGATE_MODEMS_GLOBS: '/dev/a*, /dev/b*' } });
    expect(c.listen).toBe('127.0.0.1:9000');
    expect(c.send).toMatchObject({ defaultCountryCode: '7', maxRecipients: 70 });
    expect(c.trustProxy).toBe('loopback');
    expect(c.modems.globs).toEqual(['/dev/a*', '/dev/b*']);
  });

  it.each([
    ['an unknown key', 'lisen = "x"', 'lisen', /unknown key "lisen"/],
    ['an unknown section key', '[send]\nmax_recipient = 5', 'send.max_recipient', /unknown key "send.max_recipient"/],
    ['an unknown section', '[sned]\nx = 1', 'sned', /unknown key "sned"/],
    ['a wrong type', '[send]\nmax_recipients = "many"', 'send.max_recipients', /must be a whole number/],
    ['out of range', '[auth]\nbcrypt_cost = 99', 'auth.bcrypt_cost', /between 4 and 15/],
    ['not one of the choices', '[dispatch]\non_unknown = "drop"', 'dispatch.on_unknown', /one of hold, resend/],
    ['not TOML', 'listen = ', 'config', /line 1/],
    ['a webhook that is no http URL', '[inbound]\nwebhooks = ["ftp://x/"]', 'inbound.webhooks', /not an http\(s\) URL/],
    ['a bad cron schedule', '[balance]\nschedule = "every day"', 'balance.schedule', /not a cron expression/],
    ['a bad balance pattern', '[balance]\npattern = "(unclosed"', 'balance.pattern', /not a regular expression/],
    ['a forwarding rule without a number', '[[inbound.forward]]\nsim = "1"', 'inbound.forward[0].to', /needs to/],
    ['a forwarding rule with an unknown key', '[[inbound.forward]]\nto = "+7916"\nnumber = "x"', 'inbound.forward[0].number', /unknown key/],
    ['a forwarding rule with a bad pattern', '[[inbound.forward]]\nto = "+7916"\nfrom = "[+"', 'inbound.forward[0].from', /not a regular expression/],
  ])('refuses %s, naming it', (_what, text, field, message) => {
    const error = errorOf(() => loadConfig({ file: file(text), env: {} }));
    expect(error).toMatchObject({ code: 'BAD_MESSAGE', field });
    expect(error.message).toMatch(message);
  });

  it('reads forwarding rules as [[inbound.forward]] tables, and from the environment as JSON', () => {
    const c = loadConfig({ file: file('[inbound]\nwebhooks = ["https://hooks.example/sms"]\ncommand = ["/usr/local/bin/on-sms", "--quiet"]\n[[inbound.forward]]\nto = "+79161234567"\nsim = "office"\n[[inbound.forward]]\nto = "+79160000000"\nfrom = "^Bank"\n'), env: {} });
    expect(c.inbound).toMatchObject({
      webhooks: ['https://hooks.example/sms'],
      command: ['/usr/local/bin/on-sms', '--quiet'],
      forward: [{ to: '+79161234567', sim: 'office' }, { to: '+79160000000', from: '^Bank' }],
    });
    const e = loadConfig({ env: { SMSGATE_INBOUND_FORWARD: '[{"to":"+79161234567"}]' } });
    expect(e.inbound.forward).toEqual([{ to: '+79161234567' }]);
    expect(errorOf(() => loadConfig({ env: { SMSGATE_INBOUND_FORWARD: 'to=+7916' } }))).toMatchObject({ field: 'inbound.forward' });
  });

  it('refuses a bad environment value, naming the variable', () => {
    const error = errorOf(() => loadConfig({ env: { SMSGATE_SEND_MAX_RECIPIENTS: 'lots' } }));
    expect(error.message).toMatch(/environment SMSGATE_SEND_MAX_RECIPIENTS: send.max_recipients must be a whole number/);
  });

  it('parses listen addresses', () => {
    expect(parseListen('0.0.0.0:8080')).toEqual({ host: '0.0.0.0', port: 8080 });
    expect(parseListen('[::1]:80')).toEqual({ host: '::1', port: 80 });
    expect(parseListen('8080')).toEqual({ host: '0.0.0.0', port: 8080 });
    expect(errorOf(() => parseListen('localhost')).field).toBe('listen');
  });

  it('smsgate config check and serve report a bad file in one line, exit 1', () => {
    const bad = file('[send]\nmax_recipient = 5\n');
    const check = runCli(['config', 'check', '--config', bad]);
    expect(check.status).toBe(1);
    expect(check.stderr.trim().split('\n')).toHaveLength(1);
    expect(check.stderr).toMatch(/unknown key "send.max_recipient"/);
    const serve = runCli(['serve', '--config', bad, '--listen', '127.0.0.1:0']);
    expect(serve.status).toBe(1);
    expect(serve.stderr).toMatch(/unknown key "send.max_recipient"/);
    expect(runCli(['config', 'check', '--config', file(exampleConfig())])).toMatchObject({ status: 0 });
  });
});
