/**
 * The AT channel against recorded modem replies (Gammu's test dumps and dialogues) and hand-made troubles: echo,
 * URCs in the middle of an answer, the prompt without a line end, CMS/CME errors, replies split over reads,
 * timeouts, a port that goes away, two callers at once.
 */
import { describe, expect, it } from 'vitest';
import { AtChannel, type Urc } from '../../modem/at/channel.js';
import type { SmsgateError } from '../../modem/errors.js';
import { FakeTransport } from '../helpers/fake-transport.js';
import { fixture, fixtureNames } from '../helpers/fixtures.js';

function setup(timeoutMs = 1_000) {
  const transport = new FakeTransport();
  const channel = new AtChannel(transport, { defaultTimeoutMs: timeoutMs });
  const urcs: Urc[] = [];
  channel.on('urc', (u) => urcs.push(u));
  return { transport, channel, urcs };
}

/** Splits text into pieces of 1..7 bytes, deterministically from a seed. */
function chunks(text: string, seed: number): string[] {
  const out: string[] = [];
  let s = seed;
  for (let i = 0; i < text.length; ) {
    s = (s * 1103515245 + 12345) % 2147483648;
    const n = 1 + (s % 7);
    out.push(text.slice(i, i + n));
    i += n;
  }
  return out;
}

async function failure(promise: Promise<unknown>): Promise<SmsgateError> {
  try {
    await promise;
  } catch (error) {
    return error as SmsgateError;
  }
  throw new Error('expected a failure');
}

describe("recorded replies of real modems (Gammu's at-* dumps), echo on, split over reads", () => {
  const dirs = ['at-cpms', 'at-cpms-sm', 'at-cpms-sr', 'at-cnmi', 'at-creg', 'at-creg-corner', 'at-model', 'at-smsc', 'at-sms'];
  for (const dir of dirs) {
    for (const name of fixtureNames(`gammu/${dir}`, '.dump')) {
      const dump = fixture('gammu', dir, name);
      const lines = dump.split(/\r?\n/).map((l) => l.replace(/\r$/, ''));
      const command = lines[0]!;
      if (!command.startsWith('AT')) continue;
      const body = lines.slice(1).filter((l) => l.trim() !== '');
      const finalIndex = body.findIndex((l) => /^(OK|ERROR|\+CM[ES] ERROR:.*)$/.test(l.trim()));
      if (finalIndex < 0) continue;
      const expected = body.slice(0, finalIndex).map((l) => l.trim());
      it(`${dir}/${name}: ${command}`, async () => {
        const { transport, channel } = setup();
        const reply = `${command}\r` + lines.slice(1).join('\r\n') + '\r\n';
        transport.onWrite = (data) => {
          if (data === `${command}\r`) transport.push(...chunks(reply, name.length * 31 + dir.length));
        };
        const final = body[finalIndex]!.trim();
        if (final === 'OK') {
          expect(await channel.run(command)).toEqual(expected);
        } else {
          expect((await failure(channel.run(command))).code).toMatch(/^AT_(ERROR|CME|CMS)$/);
        }
      });
    }
  }
});

describe("Gammu's recorded dialogues replayed through the channel", () => {
  for (const name of fixtureNames('dialogues', '.txt')) {
    it(name, async () => {
      // ">> command\r" then "   << reply" lines; PDUs after a prompt are part of the AT+CMGS exchange.
      const steps: { command: string; reply: string }[] = [];
      for (const raw of fixture('dialogues', name).split('\n')) {
        const unescape = (s: string) => s.replace(/\\r/g, '\r').replace(/\\n/g, '\n').replace(/\\x1b/g, '\x1b').replace(/\\x1a/g, '\x1a');
        if (raw.startsWith('>> ')) steps.push({ command: unescape(raw.slice(3)), reply: '' });
        else if (raw.trim().startsWith('<< ') && steps.length > 0) steps.at(-1)!.reply += unescape(raw.trim().slice(3));
      }
      const { transport, channel } = setup();
      let replies = 0;
      for (let i = 0; i < steps.length; i++) {
        const step = steps[i]!;
        if (!step.command.startsWith('AT') || step.command.startsWith('AT+CMGS')) continue; // CMGS: tested below
        transport.onWrite = (data) => {
          if (data === step.command) transport.push(...chunks(step.reply, i));
        };
        const command = step.command.replace(/\r$/, '');
        const outcome = await channel.run(command).then(
          () => 'OK',
          (e: SmsgateError) => e.code,
        );
        if (/\r\nOK\r\n$/.test(step.reply)) expect(outcome).toBe('OK');
        else expect(outcome).toMatch(/^AT_(ERROR|CME|CMS)$/);
        replies++;
      }
      expect(replies).toBeGreaterThan(3);
    });
  }
});

describe('AtChannel', () => {
  it('drops the echo and returns the intermediate lines', async () => {
    const { transport, channel } = setup();
    transport.onWrite = () => transport.push('AT+CSQ\r', '\r\n+CSQ: 20,99\r\n', '\r\nOK\r\n');
    expect(await channel.run('AT+CSQ')).toEqual(['+CSQ: 20,99']);
  });

  it('routes URCs arriving in the middle of an answer to listeners, never into the answer', async () => {
    const { transport, channel, urcs } = setup();
    transport.onWrite = () =>
      transport.push('\r\n+CPMS: 1,30', ',1,30\r\n\r\n^RSSI: 18\r\n\r\n+CMTI: "SM",3\r\n', '\r\n^BOOT:1234,0,0,0,75\r\n\r\nOK\r\n');
    expect(await channel.run('AT+CPMS="SM"')).toEqual(['+CPMS: 1,30,1,30']);
    expect(urcs.map((u) => u.line)).toEqual(['^RSSI: 18', '+CMTI: "SM",3', '^BOOT:1234,0,0,0,75']);
  });

  it('takes the PDU line that follows +CDS / +CMT with the URC', async () => {
    const { transport, urcs } = setup();
    transport.push('\r\n+CDS: 25\r\n07919761989901F006010B919700214365F7621142007161006211420071120000\r\n');
    transport.push('\r\n+CMT: ,29\r\n', '07919761989901F0040B919700214365F70000422011311120610BC8329BFD06DDDF723619\r\n', '\r\nRING\r\n');
    expect(urcs).toEqual([
      { line: '+CDS: 25', pdu: '07919761989901F006010B919700214365F7621142007161006211420071120000' },
      { line: '+CMT: ,29', pdu: '07919761989901F0040B919700214365F70000422011311120610BC8329BFD06DDDF723619' },
      { line: 'RING' },
    ]);
  });

  it("keeps a line with the command's own prefix in the answer (+CREG: for AT+CREG?) but routes it otherwise", async () => {
    const { transport, channel, urcs } = setup();
    transport.onWrite = () => transport.push('\r\n+CREG: 2,1,"0B14","5E51"\r\n\r\nOK\r\n');
    expect(await channel.run('AT+CREG?')).toEqual(['+CREG: 2,1,"0B14","5E51"']);
    transport.push('\r\n+CREG: 5\r\n');
    expect(urcs).toEqual([{ line: '+CREG: 5' }]);
  });

  it.each([
    ['\r\n+CMS ERROR: 38\r\n', 'AT_CMS', 38, 'retry-other', /\+CMS ERROR 38: network out of order/],
    ['\r\n+CMS ERROR: 500\r\n', 'AT_CMS', 500, 'retry-same', /unknown error/],
    ['\r\n+CMS ERROR: 1\r\n', 'AT_CMS', 1, 'permanent', /unassigned \(unallocated\) number/],
    ['\r\n+CME ERROR: 11\r\n', 'AT_CME', 11, 'retry-other', /SIM PIN required/],
    ['\r\n+CME ERROR: SIM PIN required\r\n', 'AT_CME', 11, 'retry-other', /\+CME ERROR 11: SIM PIN required/],
    ['\r\n+CME ERROR: 600\r\n', 'AT_CME', 600, 'retry-same', /manufacturer-specific/],
    ['\r\nERROR\r\n', 'AT_ERROR', undefined, undefined, /the modem answered ERROR/],
    ['\r\nNO CARRIER\r\n', 'AT_ERROR', undefined, undefined, /NO CARRIER/],
  ])('a %j final result is a typed error', async (reply, code, modemCode, retry, message) => {
    const { transport, channel } = setup();
    transport.onWrite = () => transport.push(reply);
    const error = await failure(channel.run('AT+CMGS=1'));
    expect(error.code).toBe(code);
    expect(error.modemCode).toBe(modemCode);
    expect(error.retry).toBe(retry);
    expect(error.message).toMatch(message);
  });

  it('sends the PDU at the "> " prompt that has no line end, and returns +CMGS', async () => {
    const { transport, channel } = setup();
    transport.onWrite = (data) => {
      if (data === 'AT+CMGS=13\r') transport.push('AT+CMGS=13\r', '\r\n> ');
      if (data.endsWith('\x1a')) transport.push('0011000B91\x1a', '\r\n+CMGS: 77\r\n\r\nOK\r\n');
    };
    const lines = await channel.hold((s) => s.submitPdu(13, '0011000B91'));
    expect(lines).toEqual(['+CMGS: 77']);
    expect(transport.written).toEqual(['AT+CMGS=13\r', '0011000B91\x1a']);
  });

  it('asks for the go-ahead once AT+CMGS is written, and holds the PDU back until it comes', async () => {
    const { transport, channel } = setup();
    transport.onWrite = (data) => {
      if (data === 'AT+CMGS=13\r') transport.push('\r\n> ');
      if (data.endsWith('\x1a')) transport.push('\r\n+CMGS: 12\r\n\r\nOK\r\n');
    };
    let writtenWhenAsked: string[] = [];
    let submitted = false;
    let go!: () => void;
    const sending = channel.hold((s) =>
      s.submitPdu(13, '0011000B91', {
        ready: () => {
          writtenWhenAsked = [...transport.written];
          return new Promise<void>((resolve) => (go = resolve));
        },
        onSubmitted: () => (submitted = true),
      }),
    );
    // The prompt has come; the PDU waits for the go-ahead.
    await new Promise((r) => setTimeout(r, 30));
    expect(writtenWhenAsked).toEqual(['AT+CMGS=13\r']);
    expect(transport.written).toEqual(['AT+CMGS=13\r']);
    expect(submitted).toBe(false);
    go();
    expect(await sending).toEqual(['+CMGS: 12']);
    expect(transport.written).toEqual(['AT+CMGS=13\r', '0011000B91\x1a']);
    expect(submitted).toBe(true);
  });

  it('calls the message off with ESC when the go-ahead is refused: nothing sent, the next command resynchronises', async () => {
    const { transport, channel } = setup();
    transport.onWrite = (data) => {
      if (data === 'AT+CMGS=13\r') transport.push('\r\n> ');
      if (data === '\x1b') transport.push('\r\nOK\r\n');
      if (data === 'AT\r') transport.push('\r\nOK\r\n');
      if (data === 'AT+CSQ\r') transport.push('\r\n+CSQ: 9,99\r\n\r\nOK\r\n');
    };
    const refused = new Error('no quota left');
    let submitted = false;
    const error = await failure(channel.hold((s) => s.submitPdu(13, '00', { ready: async () => Promise.reject(refused), onSubmitted: () => (submitted = true) })));
    expect(error).toBe(refused);
    expect(submitted).toBe(false);
    expect(transport.written).toEqual(['AT+CMGS=13\r', '\x1b']);
    // The modem's OK to the ESC is not taken for the next command's answer.
    expect(await channel.run('AT+CSQ')).toEqual(['+CSQ: 9,99']);
    expect(transport.written.filter((w) => !['\x1b', 'AT\r'].includes(w))).toEqual(['AT+CMGS=13\r', 'AT+CSQ\r']);
  });

  it('takes a final result while the PDU waits for its go-ahead as out of step: ESC, nothing sent, resynchronised', async () => {
    const { transport, channel } = setup();
    transport.onWrite = (data) => {
      if (data === 'AT+CMGS=13\r') transport.push('\r\n> ', '\r\nERROR\r\n');
      if (data === 'AT\r') transport.push('\r\nOK\r\n');
      if (data === 'AT+CSQ\r') transport.push('\r\n+CSQ: 9,99\r\n\r\nOK\r\n');
    };
    let go!: () => void;
    const sending = failure(channel.hold((s) => s.submitPdu(13, '00', { ready: () => new Promise<void>((resolve) => (go = resolve)) })));
    const error = await sending;
    go();
    expect(error).toMatchObject({ code: 'AT_BAD_ANSWER', retry: 'retry-same' });
    expect(error.message).toMatch(/nothing was sent/);
    expect(await channel.run('AT+CSQ')).toEqual(['+CSQ: 9,99']);
    expect(transport.written.filter((w) => w.endsWith('\x1a'))).toEqual([]);
    expect(transport.written.slice(0, 2)).toEqual(['AT+CMGS=13\r', '\x1b']);
  });

  it("counts a PDU whose write fails as maybe sent ('unknown'), not as retryable", async () => {
    const { transport, channel } = setup();
    transport.onWrite = (data) => {
      if (data === 'AT+CMGS=13\r') transport.push('\r\n> ');
    };
    const write = transport.write.bind(transport);
    transport.write = (data: string) => (data.endsWith('\x1a') ? Promise.reject(new Error('a write took over 5000 ms')) : write(data));
    const error = await failure(channel.hold((s) => s.submitPdu(13, '00')));
    expect(error).toMatchObject({ retry: 'unknown' });
    expect(error.message).toMatch(/may have reached the network/);
  });

  it("counts a port that closes while the PDU waits for its go-ahead as not sent (not 'unknown')", async () => {
    const { transport, channel } = setup();
    transport.onWrite = (data) => {
      if (data === 'AT+CMGS=13\r') {
        transport.push('\r\n> ');
        setTimeout(() => transport.unplug(), 10);
      }
    };
    const error = await failure(channel.hold((s) => s.submitPdu(13, '00', { ready: () => new Promise<void>(() => undefined) })));
    expect(error).toMatchObject({ code: 'PORT_CLOSED' });
    expect(error.retry).not.toBe('unknown');
    expect(transport.written).toEqual(['AT+CMGS=13\r']);
  });

  it('cancels with ESC when the prompt does not come, then resynchronises before the next command', async () => {
    const { transport, channel } = setup();
    transport.onWrite = (data) => {
      if (data === 'AT\r') transport.push('\r\nOK\r\n');
      if (data === 'AT+CSQ\r') transport.push('\r\n+CSQ: 9,99\r\n\r\nOK\r\n');
    };
    const error = await failure(channel.hold((s) => s.submitPdu(13, '00', { promptTimeoutMs: 50 })));
    expect(error).toMatchObject({ code: 'AT_TIMEOUT', retry: 'retry-same' });
    expect(error.message).toMatch(/no "> " prompt/);
    expect(transport.written).toEqual(['AT+CMGS=13\r', '\x1b']);
    expect(await channel.run('AT+CSQ')).toEqual(['+CSQ: 9,99']);
    expect(transport.written.slice(2)).toEqual(['\x1b', 'AT\r', 'AT+CSQ\r']);
  });

  it('does not take a late answer for the next command after a timeout (review finding 1)', async () => {
    const { transport, channel, urcs } = setup(100);
    transport.onWrite = (data) => {
      // AT+COPS=? answers only after 150 ms, when the channel has long given up on it.
      if (data === 'AT+COPS=?\r') setTimeout(() => transport.push('\r\n+COPS: (2,"MegaFon","MegaFon","25002",7)\r\n\r\nOK\r\n'), 150);
      if (data === 'AT\r') transport.push('\r\nOK\r\n');
      if (data === 'AT+CSQ\r') transport.push('\r\n+CSQ: 21,99\r\n\r\nOK\r\n');
      if (data === 'AT+CIMI\r') transport.push('\r\n250020000000001\r\n\r\nOK\r\n');
    };
    expect((await failure(channel.run('AT+COPS=?'))).code).toBe('AT_TIMEOUT');
    expect(await channel.run('AT+CSQ')).toEqual(['+CSQ: 21,99']);
    expect(await channel.run('AT+CIMI')).toEqual(['250020000000001']);
    expect(urcs).toEqual([]);
  });

  it('sends ESC when a prompt comes after its timeout, so the modem leaves PDU input (finding 2)', async () => {
    const { transport, channel } = setup();
    transport.onWrite = (data) => {
      if (data === 'AT+CMGS=13\r') setTimeout(() => transport.push('\r\n> '), 80);
      if (data === 'AT\r') transport.push('\r\nOK\r\n');
    };
    await failure(channel.hold((s) => s.submitPdu(13, '00', { promptTimeoutMs: 30 })));
    await new Promise((r) => setTimeout(r, 120));
    expect(transport.written.filter((w) => w === '\x1b').length).toBeGreaterThanOrEqual(2);
    expect(await channel.run('AT')).toEqual([]);
  });

  it("classes a send with no answer after the PDU as 'unknown', not as retryable (finding 3)", async () => {
    const { transport, channel } = setup();
    transport.onWrite = (data) => {
      if (data === 'AT+CMGS=13\r') transport.push('\r\n> ');
    };
    const error = await failure(channel.hold((s) => s.submitPdu(13, '00', { timeoutMs: 50 })));
    expect(error).toMatchObject({ code: 'AT_TIMEOUT', retry: 'unknown' });
    expect(error.message).toMatch(/may have reached the network/);
  });

  it("classes an unplug after the PDU as 'unknown' too", async () => {
    const { transport, channel } = setup();
    transport.onWrite = (data) => {
      if (data === 'AT+CMGS=13\r') transport.push('\r\n> ');
      if (data.endsWith('\x1a')) setTimeout(() => transport.unplug(), 10);
    };
    expect(await failure(channel.hold((s) => s.submitPdu(13, '00')))).toMatchObject({ code: 'PORT_CLOSED', retry: 'unknown' });
  });

  it('takes "> " followed by more data in the same read as the prompt (finding 10)', async () => {
    const { transport, channel, urcs } = setup();
    transport.onWrite = (data) => {
      if (data === 'AT+CMGS=13\r') transport.push('\r\n> \r\n^RSSI: 18\r\n');
      if (data.endsWith('\x1a')) transport.push('\r\n+CMGS: 5\r\n\r\nOK\r\n');
    };
    expect(await channel.hold((s) => s.submitPdu(13, '00'))).toEqual(['+CMGS: 5']);
    expect(urcs).toEqual([{ line: '^RSSI: 18' }]);
  });

  it('treats an OK where the prompt belongs as out of step: cancel and resynchronise', async () => {
    const { transport, channel } = setup();
    transport.onWrite = (data) => {
      if (data === 'AT+CMGS=13\r') transport.push('\r\nOK\r\n');
      if (data === 'AT\r') transport.push('\r\nOK\r\n');
    };
    expect(await failure(channel.hold((s) => s.submitPdu(13, '00')))).toMatchObject({ code: 'AT_BAD_ANSWER' });
    expect(await channel.run('AT')).toEqual([]);
  });

  it("ends a command on Huawei's TOO MANY PARAMETERS (finding 9)", async () => {
    const { transport, channel } = setup();
    transport.onWrite = () => transport.push('\r\nTOO MANY PARAMETERS\r\n');
    expect((await failure(channel.run('AT+CUSD=1,"*100#",15,1'))).code).toBe('AT_ERROR');
  });

  it('keeps a +CUSD text that goes on over several lines in one piece (finding 6)', async () => {
    const { transport, urcs } = setup();
    transport.push('\r\n+CUSD: 1,"Balance 5.00\r\n1 Top up\r\n2 Tariff",15\r\n');
    expect(urcs).toEqual([{ line: '+CUSD: 1,"Balance 5.00\n1 Top up\n2 Tariff",15' }]);
  });

  it('fails the command in flight and the queued ones at once when the port goes away', async () => {
    const { transport, channel } = setup(60_000);
    const first = channel.run('AT+COPS?');
    const second = channel.run('AT+CSQ');
    await new Promise((r) => setTimeout(r, 10));
    transport.unplug();
    expect((await failure(first)).code).toBe('PORT_CLOSED');
    expect((await failure(second)).code).toBe('PORT_CLOSED');
    expect((await failure(channel.run('AT'))).code).toBe('PORT_CLOSED');
  });

  it('runs one command at a time: the second is written only after the first has its answer', async () => {
    const { transport, channel } = setup();
    const order: string[] = [];
    transport.onWrite = (data) => {
      order.push(`write ${data.trim()}`);
      setTimeout(() => transport.push(`\r\n${data.trim()}-answer\r\n\r\nOK\r\n`), 20);
    };
    const [a, b] = await Promise.all([channel.run('AT+A'), channel.run('AT+B')]);
    expect([a, b]).toEqual([['AT+A-answer'], ['AT+B-answer']]);
    expect(order).toEqual(['write AT+A', 'write AT+B']);
  });

  it('keeps other callers out for the whole of a hold', async () => {
    const { transport, channel } = setup();
    transport.onWrite = () => setTimeout(() => transport.push('\r\nOK\r\n'), 5);
    const held = channel.hold(async (s) => {
      await s.run('AT+ONE');
      await new Promise((r) => setTimeout(r, 30));
      await s.run('AT+TWO');
    });
    const other = channel.run('AT+OTHER');
    await Promise.all([held, other]);
    expect(transport.written).toEqual(['AT+ONE\r', 'AT+TWO\r', 'AT+OTHER\r']);
  });

  it('releases the hold when its work throws', async () => {
    const { transport, channel } = setup();
    transport.onWrite = () => transport.push('\r\nOK\r\n');
    await expect(channel.hold(async () => Promise.reject(new Error('boom')))).rejects.toThrow('boom');
    expect(await channel.run('AT')).toEqual([]);
  });
});

describe('vendor status lines never become part of an answer', () => {
  it.each(['+ZUSIMR:2', '+ZDONR: "MegaFon",250,2,"CS_PS","ROAM_OFF"', '+CPIN: READY', '+CFUN: 1', 'SMS Ready', '+QUSIM: 1', '^SRVST:2', '+CGEV: ME PDN ACT 1', '*PSUTTZ: 2024,1,1,1,1,1,"+12",0'])(
    '%s before the answer of AT+CGMI',
    async (noise) => {
      const { transport, channel, urcs } = setup();
      transport.onWrite = () => transport.push(`\r\n${noise}\r\n\r\nZTE CORPORATION\r\n\r\nOK\r\n`);
      expect(await channel.run('AT+CGMI')).toEqual(['ZTE CORPORATION']);
      expect(urcs.map((u) => u.line)).toEqual([noise]);
    },
  );

  it('but +CPIN: READY is the answer of AT+CPIN?', async () => {
    const { transport, channel, urcs } = setup();
    transport.onWrite = () => transport.push('\r\n+CPIN: READY\r\n\r\nOK\r\n');
    expect(await channel.run('AT+CPIN?')).toEqual(['+CPIN: READY']);
    expect(urcs).toEqual([]);
  });
});
