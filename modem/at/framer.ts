/**
 * AT framing: bytes from the modem -> lines and the `> ` prompt.
 *
 * Lines end in CR LF (V.250 §5.2.1), but modems also send a lone CR or LF, split a line over several reads, and
 * print the `> ` prompt of AT+CMGS (27.005 §3.5.1) with no line end at all — @serialport/parser-readline would
 * hold it until the next line end, which never comes. So a partial line that is just `>` (and spaces) is emitted as
 * a prompt at once. Empty lines are dropped; Ctrl-Z and ESC (echoed when the modem echoes a PDU) are stripped.
 */

export type Frame = { kind: 'line'; text: string } | { kind: 'prompt' };

export class AtFramer {
  private partial = '';

  /** Feeds a chunk (bytes are read as Latin-1: AT text is ASCII, anything else arrives hex-coded). */
  push(chunk: Uint8Array | string): Frame[] {
    this.partial += typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('latin1');
    const frames: Frame[] = [];
    for (;;) {
      const end = this.partial.search(/[\r\n]/);
      if (end < 0) break;
      const line = clean(this.partial.slice(0, end));
      this.partial = this.partial.slice(end + 1);
      // "> " followed by more data in the same read arrives as a line of its own.
      if (line === '>') frames.push({ kind: 'prompt' });
      else if (line !== '') frames.push({ kind: 'line', text: line });
    }
    if (/^\s*>\s*$/.test(this.partial)) {
      frames.push({ kind: 'prompt' });
      this.partial = '';
    }
    return frames;
  }

  /** Forgets a partial line (after a timeout, before resynchronising). */
  reset(): void {
    this.partial = '';
  }
}

function clean(line: string): string {
  // eslint-disable-next-line no-control-regex
  return line.replace(/[\x1a\x1b\x00]/g, '').trim();
}
