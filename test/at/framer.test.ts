/** AT framing: lines, the prompt without a line end, replies split over reads. */
import { describe, expect, it } from 'vitest';
import { AtFramer } from '../../modem/at/framer.js';

describe('AtFramer', () => {
  it('frames CR LF lines and drops the empty ones', () => {
    expect(new AtFramer().push('\r\n+CSQ: 20,99\r\n\r\nOK\r\n')).toEqual([
      { kind: 'line', text: '+CSQ: 20,99' },
      { kind: 'line', text: 'OK' },
    ]);
  });

  it('joins a reply split over several reads, at any byte', () => {
    const reply = '\r\n+CGMI: huawei\r\n\r\nOK\r\n';
    for (let cut = 1; cut < reply.length; cut++) {
      const framer = new AtFramer();
      const frames = [...framer.push(reply.slice(0, cut)), ...framer.push(reply.slice(cut))];
      expect(frames).toEqual([
        { kind: 'line', text: '+CGMI: huawei' },
        { kind: 'line', text: 'OK' },
      ]);
    }
  });

  it('emits the "> " prompt at once although no line end follows (27.005 §3.5.1)', () => {
    const framer = new AtFramer();
    expect(framer.push('\r\n> ')).toEqual([{ kind: 'prompt' }]);
    expect(new AtFramer().push('>')).toEqual([{ kind: 'prompt' }]);
    const split = new AtFramer();
    expect(split.push('\r\n')).toEqual([]);
    expect(split.push('> ')).toEqual([{ kind: 'prompt' }]);
  });

  it('takes a lone CR or LF as a line end, as some modems send', () => {
    expect(new AtFramer().push('AT\rOK\nERROR\r')).toEqual([
      { kind: 'line', text: 'AT' },
      { kind: 'line', text: 'OK' },
      { kind: 'line', text: 'ERROR' },
    ]);
  });

  it('strips Ctrl-Z and ESC from an echoed PDU', () => {
    expect(new AtFramer().push('0011000B91\x1a\r\n')).toEqual([{ kind: 'line', text: '0011000B91' }]);
  });
});
