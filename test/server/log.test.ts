/** The service log: JSON lines for journald, readable text on a terminal, fields on every send line. */
import { describe, expect, it } from 'vitest';
import { createLogger } from '../../server/log.js';

describe('the log', () => {
  it('writes JSON lines with the fields when not on a terminal', () => {
    const lines: string[] = [];
    const logger = createLogger({ write: (l) => lines.push(l), isTty: false });
    logger.log('message 12 sent: 2 part(s) in 840 ms', { message_id: 12, sim: 3, channel: '/dev/ttyUSB0' });
    logger.debug('hidden');
    const line = JSON.parse(lines[0]!);
    expect(line).toMatchObject({ level: 'info', msg: 'message 12 sent: 2 part(s) in 840 ms', message_id: 12, sim: 3, channel: '/dev/ttyUSB0' });
    expect(Date.parse(line.time)).not.toBeNaN();
    expect(lines).toHaveLength(1);
  });

  it('writes text with key=value fields on a terminal, and debug lines when asked', () => {
    const lines: string[] = [];
    const logger = createLogger({ write: (l) => lines.push(l), isTty: true, debug: true });
    logger.warn('channel unhealthy', { channel: '/dev/ttyUSB1', error: 'no answer' });
    logger.debug('AT >> AT+CSQ');
    expect(lines[0]).toMatch(/^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2} warn  channel unhealthy  channel=\/dev\/ttyUSB1 error=no answer$/);
    expect(lines[1]).toMatch(/debug AT >> AT\+CSQ$/);
  });
});
