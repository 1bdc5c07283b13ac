/** Runs Gammu (python3-gammu under Debian's /usr/bin/python3) as an oracle; see test/oracle/gammu_oracle.py. */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const SCRIPT = join(dirname(fileURLToPath(import.meta.url)), '..', 'oracle', 'gammu_oracle.py');
const PYTHON = '/usr/bin/python3';

export interface GammuSms {
  error?: string;
  Type: string;
  Number: string;
  Text: string;
  Coding: string;
  Class: number;
  ReplaceMessage: number;
  Length: number;
  SMSC: { Validity: string; Number: string };
  UDH: { Type: string; Text: string; ID8bit: number; ID16bit: number; PartNumber: number; AllParts: number };
  /** The TPDU Gammu's EncodePDU writes for the message it decoded. */
  reencoded?: string;
  reencoded_error?: string;
}

export interface GammuPart {
  Coding: string;
  Length: number;
  Text: string;
  UDH: GammuSms['UDH'];
}

export interface OracleRequest {
  decode?: { pdu: string; report?: boolean }[];
  split?: { text: string; unicode?: boolean | null }[];
}

export interface OracleAnswer {
  version: string;
  decode: GammuSms[];
  split: GammuPart[][];
}

/** Fails with a clear message when python3-gammu is missing: the test set-up installs it, nothing is skipped. */
export function gammuOracle(request: OracleRequest): OracleAnswer {
  if (!existsSync(PYTHON)) throw new Error(`${PYTHON} is missing: run "npm test" as root, its set-up installs python3-gammu`);
  const run = spawnSync(PYTHON, [SCRIPT], { input: JSON.stringify(request), encoding: 'utf8', maxBuffer: 64 << 20 });
  if (run.status !== 0) {
    const hint = /No module named 'gammu'/.test(run.stderr) ? ' (python3-gammu is not installed: apt-get install python3-gammu)' : '';
    throw new Error(`the Gammu oracle failed${hint}: ${run.stderr.trim() || run.error?.message}`);
  }
  return JSON.parse(run.stdout) as OracleAnswer;
}
