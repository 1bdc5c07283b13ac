/**
 * The service's log: one line per event on stdout, JSON when stdout is not a terminal (journald, containers: every
 * field searchable, e.g. `journalctl -u smsgate -o cat | jq 'select(.message_id == 42)'`), readable text on a
 * terminal. Lines about a send carry message_id, sim and channel.
 */
export type Level = 'debug' | 'info' | 'warn' | 'error';
export type LogFn = (line: string, fields?: Record<string, unknown>) => void;

export interface Logger {
  log: LogFn;
  debug: LogFn;
  warn: LogFn;
  error: LogFn;
}

export interface LoggerOptions {
  /** json, text, or auto (json unless stdout is a terminal). */
  format?: 'json' | 'text' | 'auto';
  debug?: boolean;
  write?: (line: string) => void;
  isTty?: boolean;
}

export function createLogger(options: LoggerOptions = {}): Logger {
  const write = options.write ?? ((line: string) => process.stdout.write(`${line}\n`));
  const json = options.format === 'json' || (options.format !== 'text' && !(options.isTty ?? process.stdout.isTTY));
  const emit = (level: Level) => (line: string, fields: Record<string, unknown> = {}) => {
    if (level === 'debug' && !options.debug) return;
    if (json) {
      write(JSON.stringify({ ...fields, time: new Date().toISOString(), level, msg: line }));
      return;
    }
    const extra = Object.entries(fields)
      .filter(([, v]) => v !== undefined && v !== null)
      .map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`)
      .join(' ');
    const stamp = new Date().toISOString().replace('T', ' ').replace(/\.\d+Z$/, '');
    write(`${stamp} ${level.padEnd(5)} ${line}${extra ? `  ${extra}` : ''}`);
  };
  return { log: emit('info'), debug: emit('debug'), warn: emit('warn'), error: emit('error') };
}
