/** Reads the fixtures under test/fixtures (copied from Gammu's test suite; see test/fixtures/README.md). */
import { readFileSync, readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const FIXTURES = join(dirname(fileURLToPath(import.meta.url)), '..', 'fixtures');

export function fixture(...path: string[]): string {
  return readFileSync(join(FIXTURES, ...path), 'utf8');
}

export function fixtureJson<T>(...path: string[]): T {
  return JSON.parse(fixture(...path)) as T;
}

export function fixtureNames(dir: string, suffix: string): string[] {
  return readdirSync(join(FIXTURES, dir))
    .filter((name) => name.endsWith(suffix))
    .sort();
}

/** A Gammu `AT+CMGR` dump: the `+CMGR:` line's TPDU length and the PDU line after it (null when there is none). */
export function parseCmgrDump(text: string): { length: number; pdu: string | null } {
  const lines = text.split(/\r?\n/);
  const index = lines.findIndex((line) => line.startsWith('+CMGR:'));
  if (index < 0) throw new Error('no +CMGR line');
  const fields = lines[index]!.slice('+CMGR:'.length).split(',');
  const length = Number(fields.at(-1)!.trim());
  // A long PDU may be wrapped over several lines in the dump: everything up to the final OK is the PDU.
  let pdu = '';
  for (const line of lines.slice(index + 1)) {
    if (line.trim() === 'OK' || line.trim() === '') break;
    pdu += line.trim().replace(/"/g, ''); // 04.dump's PDU line ends in a stray quote, as Gammu's test reader allows
  }
  return { length, pdu: pdu === '' ? null : pdu };
}
