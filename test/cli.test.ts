/** The `smsgate` command line: the pdu verbs' JSON contracts, errors, exit statuses, and `serve`. */
import { once } from 'node:events';
import { describe, expect, it } from 'vitest';
import { decodePdu } from '../modem/pdu/index.js';
import { runCli, runMain, startServe } from './helpers/cli.js';

describe('smsgate pdu encode', () => {
  it('prints the parts as JSON: the hex after the > prompt and the AT+CMGS length', async () => {
    const { status, stdout, stderr } = await runMain(['pdu', 'encode', '--to', '+46708251358', '--text', 'hellohello', '--validity', '5760']);
    expect({ status, stderr }).toEqual({ status: 0, stderr: '' });
    expect(JSON.parse(stdout)).toEqual({
      encoding: 'gsm7',
      reference: null,
      parts: [{ pdu: '0011000B916407281553F80000AA0AE8329BFD4697D9EC37', length: 23 }],
    });
  });

  it('honours every flag', async () => {
    const { stdout } = await runMain([
      'pdu', 'encode', '--to', '89161234567', '--text', 'Привет '.repeat(20), '--flash', '--report', '--ref', '4660', '--16bit', '--validity', '60',
    ]);
    const result = JSON.parse(stdout) as { encoding: string; reference: number; parts: { pdu: string; length: number }[] };
    expect(result.encoding).toBe('ucs2');
    expect(result.reference).toBe(4660);
    expect(result.parts).toHaveLength(3);
    for (const [i, part] of result.parts.entries()) {
      const decoded = decodePdu(part.pdu);
      expect(decoded).toMatchObject({ number: '89161234567', class: 0, reportRequested: true, validity: 60, length: part.length });
      expect(decoded.concat).toEqual({ ref: 4660, total: 3, seq: i + 1, bits: 16 });
    }
  });

  it('sets replace-ID, forces an alphabet, takes an SMSC, and reads the text from stdin with "-"', async () => {
    const replace = JSON.parse((await runMain(['pdu', 'encode', '--to', '+1234567', '--text', 'x', '--replace', '7'])).stdout);
    expect(decodePdu(replace.parts[0].pdu).replace).toBe(7);
    const unicode = JSON.parse((await runMain(['pdu', 'encode', '--to', '+1234567', '--text', 'abc', '--unicode'])).stdout);
    expect(unicode.encoding).toBe('ucs2');
    const gsm = JSON.parse((await runMain(['pdu', 'encode', '--to', '+1234567', '--text', 'Žluťoučký', '--gsm7'])).stdout);
    expect(decodePdu(gsm.parts[0].pdu).text).toBe('Zlutoucky');
    const smsc = JSON.parse((await runMain(['pdu', 'encode', '--to', '+1234567', '--text', 'x', '--smsc', '+79168999100'])).stdout);
    expect(decodePdu(smsc.parts[0].pdu).smsc).toBe('+79168999100');
    const stdin = JSON.parse((await runMain(['pdu', 'encode', '--to', '+1234567', '--text', '-'], 'from stdin\n')).stdout);
    expect(decodePdu(stdin.parts[0].pdu).text).toBe('from stdin');
    const noVp = JSON.parse((await runMain(['pdu', 'encode', '--to', '+1234567', '--text', 'x', '--validity', 'none'])).stdout);
    expect(decodePdu(noVp.parts[0].pdu).validity).toBeNull();
  });

  it('warns on stderr when replace-ID cannot apply to a multipart text', async () => {
    const { status, stderr } = await runMain(['pdu', 'encode', '--to', '+1234567', '--text', 'x'.repeat(200), '--replace', '2']);
    expect(status).toBe(0);
    expect(stderr).toBe('smsgate: pdu encode: warning: replace-ID 2 ignored: the text needs 2 parts');
  });

  it.each([
    [['--text', 'x'], 2, /--to is required/],
    [['--to', '+1234567'], 2, /--text is required/],
    [['--to', '+1234567', '--text', 'x', '--replace', '8'], 1, /replace-ID must be an integer 1\.\.7/],
    [['--to', '+1234567', '--text', 'x', '--replace', 'two'], 2, /--replace takes a whole number/],
    [['--to', '+1234567', '--text', 'x', '--validity', '700000'], 1, /exceeds the longest relative period/],
    [['--to', '+1234567', '--text', 'x'.repeat(200), '--ref', '300'], 1, /reference must be an integer 0\.\.255/],
    [['--to', 'Mum', '--text', 'x'], 1, /not a phone number/],
    [['--to', '+1234567', '--text', 'x', '--unicode', '--gsm7'], 2, /exclude each other/],
    [['--to', '+1234567', '--text', 'x', '--colour'], 2, /Unknown option '--colour'/],
    [['--to', '+1234567', '--text', ''], 1, /the text is empty/],
    [['--to', '+1234567', '--text', 'x', '--validity', '0x10'], 2, /--validity takes a number/],
    [['--to', 'a\nb', '--text', 'x'], 1, /"a\\nb" is not a phone number/],
  ])('refuses %j with status %i', async (args, status, message) => {
    const result = await runMain(['pdu', 'encode', ...args]);
    expect(result.status).toBe(status);
    expect(result.stdout).toBe('');
    expect(result.stderr).toMatch(message);
    expect(result.stderr).toMatch(/^smsgate: pdu encode: /);
    expect(result.stderr.split('\n')).toHaveLength(1);
  });
});

describe('smsgate pdu decode', () => {
  it('prints the contract fields of a status report', async () => {
    const { status, stdout } = await runMain(['pdu', 'decode', '07919761989901F006050B919761214365F7621142905100216211429051502146']);
    expect(status).toBe(0);
    expect(JSON.parse(stdout)).toMatchObject({
      type: 'status-report',
      number: '+79161234567',
      text: null,
      class: null,
      concat: null,
      timestamp: '2026-11-24T09:15:00+03:00',
      reference: 5,
      status: 'failed',
      statusCode: 0x46,
      statusText: 'validity period expired',
    });
  });

  it('prints a concatenated SMS-DELIVER with its header, sender and zone', async () => {
    const pdu = '0791448720003023440C91449703529096000850015132532240140500030E0201006F0063006B0020006E006F0077';
    const { stdout } = await runMain(['pdu', 'decode', pdu]);
    expect(JSON.parse(stdout)).toMatchObject({
      type: 'deliver',
      number: '+447930250969',
      encoding: 'ucs2',
      concat: { ref: 14, total: 2, seq: 1 },
      text: 'ock now',
      timestamp: '2005-10-15T23:35:22+01:00',
    });
  });

  it('accepts hex split over several arguments and the +CMGL length', async () => {
    const { stdout } = await runMain(['pdu', 'decode', '0011000B916407281553F8', '0000AA0AE8329BFD4697D9EC37', '--length', '23']);
    expect(JSON.parse(stdout)).toMatchObject({ type: 'submit', text: 'hellohello', number: '+46708251358' });
  });

  it('rejects a corrupt PDU with one line on stderr and status 1', async () => {
    const result = await runMain(['pdu', 'decode', '0011000B916407281553F80000AA0AE8329B']);
    expect(result).toEqual({
      status: 1,
      stdout: '',
      stderr: 'smsgate: pdu decode: the PDU ends inside the user data (needs 9 octets at offset 15, 3 left) [PDU_INVALID]',
    });
  });
});

describe('the smsgate command itself', () => {
  it('prints help with --help and exits 0', () => {
    const result = runCli(['--help']);
    expect(result.status).toBe(0);
    expect(result.stdout).toMatch(/^smsgate \d+\.\d+\.\d+/);
    expect(result.stdout).toContain('pdu encode --to NUMBER --text TEXT');
  });

  it('prints usage on stderr and exits 2 without a command, or with an unknown one', () => {
    expect(runCli([])).toMatchObject({ status: 2, stdout: '' });
    const unknown = runCli(['frobnicate']);
    expect(unknown).toMatchObject({ status: 2, stdout: '', stderr: 'smsgate: frobnicate: unknown command "frobnicate" (see smsgate --help)\n' });
  });

  it('runs pdu encode and decode as a child process, exit 0 and JSON on stdout', () => {
    const encoded = runCli(['pdu', 'encode', '--to', '+79161234567', '--text', 'Код 1234 😀']);
    expect(encoded.status).toBe(0);
    const { parts } = JSON.parse(encoded.stdout) as { parts: { pdu: string }[] };
    const decoded = runCli(['pdu', 'decode', parts[0]!.pdu]);
    expect(decoded.status).toBe(0);
    expect(JSON.parse(decoded.stdout)).toMatchObject({ text: 'Код 1234 😀', encoding: 'ucs2' });
    const bad = runCli(['pdu', 'decode', 'XYZ']);
    expect(bad).toMatchObject({ status: 1, stdout: '' });
    expect(bad.stderr).toBe('smsgate: pdu decode: the PDU has characters that are not hex digits [PDU_INVALID]\n');
  });
});

describe('smsgate serve', () => {
  it('answers /health and the segment counter, refuses bad input with 400, and stops cleanly on SIGTERM', async () => {
    const { child, url } = await startServe(['--listen', '127.0.0.1:0', '--data', `${process.env.TMPDIR ?? '/tmp'}/smsgate-test-${process.pid}`]);
    try {
      const health = await fetch(`${url}/health`);
      expect(health.status).toBe(200);
      expect(health.headers.get('content-type')).toMatch(/^application\/json/);
      expect(await health.json()).toMatchObject({ status: 'ok', version: expect.stringMatching(/^\d+\.\d+\.\d+$/) });

      const count = await fetch(`${url}/api/v1/segments?text=${encodeURIComponent('€'.repeat(81))}`);
      expect(await count.json()).toEqual({ encoding: 'gsm7', parts: 2, units: 162, perPart: 153, remaining: 143 });

      const bad = await fetch(`${url}/api/v1/segments?text=a&text=b`);
      expect(bad.status).toBe(400);
      expect(await bad.json()).toMatchObject({ error: 'BAD_MESSAGE', field: 'text' });

      const missing = await fetch(`${url}/nope`);
      expect(missing.status).toBe(404);
      expect(await missing.json()).toMatchObject({ error: 'NOT_FOUND' });
    } finally {
      child.kill('SIGTERM');
    }
    const [code] = await once(child, 'exit');
    expect(code).toBe(0);
  });

  it('refuses a malformed --listen with status 2', () => {
    expect(runCli(['serve', '--listen', 'localhost'])).toMatchObject({ status: 2 });
    expect(runCli(['serve', '--listen', '127.0.0.1:99999'])).toMatchObject({ status: 2 });
  });
});
