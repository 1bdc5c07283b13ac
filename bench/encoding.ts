/**
 * Encoding: how many message parts smsgate's encoder uses, against Gammu's and against the 3GPP minimum, over a
 * corpus of texts (bench/corpus/texts.json: one-time codes, deliveries, bank and IoT alerts in Latin, accented
 * Latin, Cyrillic, mixed scripts, emoji, GSM-7 extension characters, long texts and texts cut at part boundaries).
 *
 * - smsgate: `encodeSubmit` with the default encoding (`auto`) and an 8-bit concatenation reference.
 * - Gammu: its own encoder through python3-gammu, the way `gammu sendsms TEXT -autolen` and gammu-smsd-inject cut a
 *   text: `EncodeSMS` with ConcatenatedAutoTextLong, so Gammu decides GSM-7 or UCS-2 itself. One python process
 *   (test/oracle/gammu_oracle.py, the one the tests use) does the whole corpus, JSON in and out.
 * - The minimum, computed here without the codec: GSM-7 when every character is in the default alphabet or its
 *   extension table (an extension character is 2 septets and never split across parts), 160 septets in a single
 *   part and 153 per concatenated part (8-bit reference UDH); otherwise UCS-2, 70 UTF-16 units single and 67 per
 *   part, a surrogate pair never split. Filling each part as far as it goes is optimal for a sequence of items that
 *   cannot be cut. National language shift tables are not used (neither smsgate nor Gammu send them).
 *
 * Each encoder's parts are also checked: every part within its capacity (counted here), and the parts joined give
 * back the text (nothing dropped or transliterated), so that fewer parts cannot come from overfilling.
 *
 * Prints the results as JSON, writes them to bench/results/encoding.json, then prints a table per category and
 * every text where an encoder uses more parts than the minimum (or smsgate more than Gammu). A text where smsgate
 * uses more parts than the minimum, or a part of smsgate's that fails the check, is a bug: the exit status is then
 * 1. Nothing here measures speed.
 *
 *   npm run bench:encoding -- [--corpus FILE]
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, platform } from 'node:os';
import { join, relative, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { encodeSubmit } from '../modem/pdu/index.js';
import { PROJECT_ROOT, VERSION } from '../server/version.js';

type Encoding = 'gsm7' | 'ucs2';

interface CorpusText {
  id: string;
  category: string;
  text: string;
  note?: string;
}

/** Parts and encoding of one text by one encoder (or the minimum). */
interface Cut {
  encoding: Encoding | string;
  parts: number;
}

interface TextResult {
  id: string;
  category: string;
  note?: string;
  /** Code points. */
  characters: number;
  /** Septets (GSM-7) or UTF-16 units (UCS-2) in the minimum's encoding. */
  units: number;
  smsgate: Cut;
  gammu: Cut;
  minimum: Cut;
  /** Parts over their capacity, or parts that do not give back the text (none expected). */
  problems?: { smsgate?: string[]; gammu?: string[] };
}

interface Totals {
  category: string;
  texts: number;
  partsSmsgate: number;
  partsGammu: number;
  partsMinimum: number;
  ratioSmsgate: number;
  ratioGammu: number;
  /** Texts where the encoder uses more parts than the minimum. */
  textsSmsgateAbove: number;
  textsGammuAbove: number;
}

const PYTHON = '/usr/bin/python3';
const ORACLE = join(PROJECT_ROOT, 'test', 'oracle', 'gammu_oracle.py');
const PACKAGES = 'Debian packages gammu and python3-gammu (apt-get install gammu python3-gammu)';

// ---- the 3GPP minimum, independent of modem/pdu

/** TS 23.038 §6.2.1 default alphabet (127 characters; 0x1B is the escape) and §6.2.1.1 extension table. */
const GSM7_BASIC = new Set([
  ...'@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !"#¤%&\'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà',
]);
const GSM7_EXTENSION = new Set([...'\f^{}\\[~]|€']);
if (GSM7_BASIC.size !== 127 || GSM7_EXTENSION.size !== 10) throw new Error('bench/encoding: the GSM-7 tables are wrong');

const SINGLE = { gsm7: 160, ucs2: 70 } as const;
const MULTI = { gsm7: 153, ucs2: 67 } as const;

/** The fewest parts a conforming encoder can use, and the units of the whole text. */
function minimum(text: string): Cut & { units: number } {
  const points = [...text];
  const encoding: Encoding = points.every((ch) => GSM7_BASIC.has(ch) || GSM7_EXTENSION.has(ch)) ? 'gsm7' : 'ucs2';
  // Each code point is an item that cannot be cut: 1 or 2 septets, or 1 or 2 UTF-16 units (a surrogate pair).
  const costs = points.map((ch) => (encoding === 'gsm7' ? (GSM7_EXTENSION.has(ch) ? 2 : 1) : ch.length));
  const units = costs.reduce((a, b) => a + b, 0);
  if (units <= SINGLE[encoding]) return { encoding, parts: 1, units };
  let parts = 1;
  let used = 0;
  for (const cost of costs) {
    if (used + cost > MULTI[encoding]) {
      parts++;
      used = 0;
    }
    used += cost;
  }
  return { encoding, parts, units };
}

/** Units of one part's text in the encoding its encoder chose (an escape pair is 2 septets, an emoji 2 units). */
function partUnits(text: string, encoding: string): number {
  return [...text].reduce((a, ch) => a + (encoding === 'gsm7' ? (GSM7_EXTENSION.has(ch) ? 2 : 1) : ch.length), 0);
}

/** What is wrong with an encoder's parts: a part over its capacity, or parts that do not join to the text. */
function partProblems(text: string, encoding: string, parts: string[]): string[] {
  const problems: string[] = [];
  if (parts.join('') !== text) problems.push(`the parts join to ${JSON.stringify(parts.join('').slice(0, 40))}..., not the text`);
  if (encoding !== 'gsm7' && encoding !== 'ucs2') return [...problems, `unexpected encoding ${encoding}`];
  const capacity = parts.length > 1 ? MULTI[encoding] : SINGLE[encoding];
  parts.forEach((part, i) => {
    const units = partUnits(part, encoding);
    if (units > capacity) problems.push(`part ${i + 1} holds ${units} units, more than ${capacity}`);
  });
  return problems;
}

// ---- Gammu

interface GammuPart {
  Coding: string;
  Text: string;
}

/** Gammu's `gammu --version` line, e.g. "1.42.0"; exits with the packages to install when Gammu is missing. */
function gammuVersion(): string {
  const run = spawnSync('gammu', ['--version'], { encoding: 'utf8' });
  if (run.error || run.status !== 0) {
    console.error(`bench/encoding: cannot run "gammu --version" (${run.error?.message ?? run.stderr.trim()}); install the ${PACKAGES}`);
    process.exit(1);
  }
  const match = /Gammu version ([\w.]+)/.exec(`${run.stdout}\n${run.stderr}`);
  return match?.[1] ?? run.stdout.trim().split('\n')[0] ?? 'unknown';
}

/** Gammu's parts for every text, cut by one python3-gammu process; and libGammu's version as python3-gammu has it. */
function gammuSplit(texts: string[]): { version: string; parts: GammuPart[][] } {
  if (!existsSync(PYTHON)) {
    console.error(`bench/encoding: ${PYTHON} is missing; install the ${PACKAGES}`);
    process.exit(1);
  }
  // unicode: null asks the oracle for ConcatenatedAutoTextLong: Gammu chooses GSM-7 or UCS-2, as -autolen does.
  const request = { split: texts.map((text) => ({ text, unicode: null })) };
  const run = spawnSync(PYTHON, [ORACLE], { input: JSON.stringify(request), encoding: 'utf8', maxBuffer: 64 << 20 });
  if (run.status !== 0) {
    const missing = /No module named 'gammu'/.test(run.stderr) ? `python3-gammu is not installed; install the ${PACKAGES}` : run.stderr.trim() || run.error?.message;
    console.error(`bench/encoding: Gammu's encoder failed: ${missing}`);
    process.exit(1);
  }
  const answer = JSON.parse(run.stdout) as { version: string; split: GammuPart[][] };
  if (answer.split.length !== texts.length) throw new Error(`Gammu answered ${answer.split.length} texts of ${texts.length}`);
  return { version: answer.version, parts: answer.split };
}

function gammuEncoding(coding: string | undefined): Encoding | string {
  if (coding === 'Default_No_Compression') return 'gsm7';
  if (coding === 'Unicode_No_Compression') return 'ucs2';
  return coding ?? 'none';
}

// ---- the run

function loadCorpus(file: string): CorpusText[] {
  const corpus = JSON.parse(readFileSync(file, 'utf8')) as { texts?: CorpusText[] };
  const texts = corpus.texts ?? [];
  const ids = new Set<string>();
  for (const t of texts) {
    if (typeof t.id !== 'string' || typeof t.category !== 'string' || typeof t.text !== 'string' || t.text === '') {
      throw new Error(`${file}: every text needs an id, a category and a non-empty text (${JSON.stringify(t).slice(0, 80)})`);
    }
    if (ids.has(t.id)) throw new Error(`${file}: id "${t.id}" is used twice`);
    ids.add(t.id);
    // smsgate composes (NFC) before counting; the minimum counts the text as given, so the two must be the same.
    if (t.text !== t.text.normalize('NFC')) throw new Error(`${file}: "${t.id}" is not in Unicode NFC`);
  }
  if (texts.length === 0) throw new Error(`${file}: no texts`);
  return texts;
}

const ratio = (a: number, b: number) => Number((a / b).toFixed(3));

function totals(category: string, rows: TextResult[]): Totals {
  const sum = (f: (r: TextResult) => number) => rows.reduce((a, r) => a + f(r), 0);
  const partsMinimum = sum((r) => r.minimum.parts);
  const partsSmsgate = sum((r) => r.smsgate.parts);
  const partsGammu = sum((r) => r.gammu.parts);
  return {
    category,
    texts: rows.length,
    partsSmsgate,
    partsGammu,
    partsMinimum,
    ratioSmsgate: ratio(partsSmsgate, partsMinimum),
    ratioGammu: ratio(partsGammu, partsMinimum),
    textsSmsgateAbove: rows.filter((r) => r.smsgate.parts > r.minimum.parts).length,
    textsGammuAbove: rows.filter((r) => r.gammu.parts > r.minimum.parts).length,
  };
}

const { values } = parseArgs({ options: { corpus: { type: 'string' } } });
const corpusFile = resolve(values.corpus ?? join(PROJECT_ROOT, 'bench', 'corpus', 'texts.json'));
const corpus = loadCorpus(corpusFile);
const gammuCli = gammuVersion();
const gammu = gammuSplit(corpus.map((t) => t.text));

const rows: TextResult[] = corpus.map((t, i) => {
  const ours = encodeSubmit({ to: '+491701234567', text: t.text });
  const theirs = gammu.parts[i]!;
  const min = minimum(t.text);
  const gammuCoding = gammuEncoding(theirs[0]?.Coding);
  const ourProblems = partProblems(t.text, ours.encoding, ours.parts.map((p) => p.text));
  const theirProblems = partProblems(t.text, gammuCoding, theirs.map((p) => p.Text));
  if (theirs.some((p) => p.Coding !== theirs[0]!.Coding)) theirProblems.push('parts in different codings');
  return {
    id: t.id,
    category: t.category,
    ...(t.note ? { note: t.note } : {}),
    characters: [...t.text].length,
    units: min.units,
    smsgate: { encoding: ours.encoding, parts: ours.parts.length },
    gammu: { encoding: gammuCoding, parts: theirs.length },
    minimum: { encoding: min.encoding, parts: min.parts },
    ...(ourProblems.length || theirProblems.length
      ? { problems: { ...(ourProblems.length ? { smsgate: ourProblems } : {}), ...(theirProblems.length ? { gammu: theirProblems } : {}) } }
      : {}),
  };
});

const categories = [...new Set(rows.map((r) => r.category))];
const byCategory = categories.map((c) => totals(c, rows.filter((r) => r.category === c)));
const total = totals('total', rows);
const textOf = new Map(corpus.map((t) => [t.id, t.text]));
const listed = (keep: (r: TextResult) => boolean) => rows.filter(keep).map((r) => ({ ...r, text: textOf.get(r.id)! }));
const findings = {
  /** A bug in smsgate's encoder if not empty. */
  smsgateAboveMinimum: listed((r) => r.smsgate.parts > r.minimum.parts),
  /** Would mean the minimum is computed wrongly (or an encoder overfills a part). */
  smsgateBelowMinimum: listed((r) => r.smsgate.parts < r.minimum.parts),
  smsgateAboveGammu: listed((r) => r.smsgate.parts > r.gammu.parts),
  gammuAboveMinimum: listed((r) => r.gammu.parts > r.minimum.parts),
  gammuBelowMinimum: listed((r) => r.gammu.parts < r.minimum.parts),
  /** Texts where smsgate and the minimum choose different alphabets. */
  smsgateEncodingDiffers: listed((r) => r.smsgate.encoding !== r.minimum.encoding),
  gammuEncodingDiffers: listed((r) => r.gammu.encoding !== r.minimum.encoding),
  /** A part over its capacity, or parts that do not give back the text: a bug in smsgate's encoder if not empty. */
  smsgatePartProblems: listed((r) => r.problems?.smsgate !== undefined),
  gammuPartProblems: listed((r) => r.problems?.gammu !== undefined),
};

const cpu = cpus();
const result = {
  bench: 'encoding',
  date: new Date().toISOString(),
  machine: { cpus: cpu.length, model: cpu[0]?.model, node: process.version, platform: platform() },
  versions: { smsgate: VERSION, gammu: gammuCli, pythonGammuLibgammu: gammu.version },
  corpus: { file: relative(PROJECT_ROOT, corpusFile), texts: rows.length },
  categories: byCategory,
  total,
  findings,
  texts: rows,
};
const out = join(PROJECT_ROOT, 'bench', 'results');
mkdirSync(out, { recursive: true });
writeFileSync(join(out, 'encoding.json'), `${JSON.stringify(result, null, 2)}\n`);
console.log(JSON.stringify(result));

console.log(`\nparts over ${rows.length} texts (smsgate ${VERSION}, Gammu ${gammuCli}, minimum: 3GPP, 8-bit reference)`);
console.log('category        texts  smsgate  Gammu  minimum  smsgate/min  Gammu/min  Gammu>min');
for (const t of [...byCategory, total]) {
  console.log(
    `${t.category.padEnd(14)}  ${String(t.texts).padStart(5)}  ${String(t.partsSmsgate).padStart(7)}  ${String(t.partsGammu).padStart(5)}  ${String(t.partsMinimum).padStart(7)}  ${t.ratioSmsgate.toFixed(3).padStart(11)}  ${t.ratioGammu.toFixed(3).padStart(9)}  ${String(t.textsGammuAbove).padStart(9)}`,
  );
}
const show = (title: string, list: ReturnType<typeof listed>) => {
  if (list.length === 0) return;
  console.log(`\n${title}:`);
  for (const r of list) {
    const text = r.text.length > 70 ? `${r.text.slice(0, 67)}...` : r.text;
    console.log(
      `  ${r.id} (${r.category}): smsgate ${r.smsgate.parts} ${r.smsgate.encoding}, Gammu ${r.gammu.parts} ${r.gammu.encoding}, minimum ${r.minimum.parts} ${r.minimum.encoding}: ${JSON.stringify(text)}`,
    );
  }
};
show('smsgate uses MORE parts than the minimum (a bug)', findings.smsgateAboveMinimum);
show('smsgate uses fewer parts than the minimum (the minimum or the encoder is wrong)', findings.smsgateBelowMinimum);
show('smsgate uses more parts than Gammu', findings.smsgateAboveGammu);
show('Gammu uses more parts than the minimum', findings.gammuAboveMinimum);
show('Gammu uses fewer parts than the minimum', findings.gammuBelowMinimum);
show('smsgate chooses another alphabet than the minimum', findings.smsgateEncodingDiffers);
show('Gammu chooses another alphabet than the minimum', findings.gammuEncodingDiffers);
show("smsgate's parts are over capacity or do not give back the text (a bug)", findings.smsgatePartProblems);
show("Gammu's parts are over capacity or do not give back the text", findings.gammuPartProblems);
for (const r of [...findings.smsgatePartProblems, ...findings.gammuPartProblems]) console.log(`  ${r.id}: ${JSON.stringify(r.problems)}`);
if (findings.smsgateAboveMinimum.length + findings.smsgateBelowMinimum.length + findings.smsgatePartProblems.length > 0) process.exitCode = 1;
else console.log('\nsmsgate: no text above the minimum; every part within its capacity and the parts give back each text');
