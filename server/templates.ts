/**
 * The message template language: a text with Python-style placeholders and one simple, safe conditional.
 *
 *   Hello %(name)s, your code is %(code)s.%(if note)s Note: %(note)s%(else)s Thanks!%(endif)s  50% off, 100%% sure.
 *
 * Theory of operation. `parseTemplate` reads a body once, left to right, into a small tree of text, placeholders
 * and conditionals, and refuses anything malformed (a bad name, an `else` or `endif` that belongs to no `if`, an
 * `if` never closed) with an error naming the field `body` and the character where it happened. Only two things
 * start with `%`: `%%` (a literal `%`) and a tag `%(…)s` — `%(name)s`, `%(if name)s`, `%(else)s`, `%(endif)s`.
 * Any other `%` is literal text ("50% off", even "%(x)" without the closing `s`). `renderTemplate` walks the tree
 * with the variables: a placeholder is replaced by its value, a conditional takes its first branch when the variable
 * is present and not the empty string, else its `%(else)s` branch (or nothing). Only the branch taken is rendered,
 * so a variable missing inside a branch not taken is no error; everywhere else a missing variable is, naming it.
 * No expressions, no loops, nothing evaluated: a template can only copy text and values.
 *
 * Values are strings or finite numbers (rendered with `String()`); anything else is refused. Variable lookups use
 * own properties only (`%(constructor)s` is a variable like any other, never something inherited).
 *
 * Pure: no Node APIs, no I/O; the API, the send path and the tests use it as it is.
 */
import { ErrorCodes, SmsgateError } from '../modem/errors.js';

/** A variable name: a letter or `_`, then up to 63 letters, digits, `_`, `.` or `-`. */
export const VARIABLE_NAME = /^[A-Za-z_][A-Za-z0-9_.-]{0,63}$/;
/** The words of the conditional; not variable names. */
const RESERVED = new Set(['if', 'else', 'endif']);
/** How deep conditionals may nest. */
export const MAX_NESTING = 20;
/** The most variables one `vars` object may carry. */
export const MAX_VARS = 200;

export type TemplateNode =
  | { kind: 'text'; text: string }
  | { kind: 'var'; name: string }
  | { kind: 'if'; name: string; then: TemplateNode[]; else: TemplateNode[] };

export interface ParsedTemplate {
  readonly body: string;
  readonly nodes: readonly TemplateNode[];
  /** Every variable the template uses, in the order they first appear (placeholders and conditions alike). */
  readonly variables: readonly string[];
}

/** Variables as the renderer reads them: own properties only. */
export type TemplateVars = Readonly<Record<string, unknown>>;

const templateError = (message: string, field: string) => new SmsgateError(ErrorCodes.BadMessage, message, field);

/** The 1-based character (code point) position of UTF-16 offset `index`, for error messages. */
function position(body: string, index: number): number {
  return [...body.slice(0, index)].length + 1;
}

const NAME_RULE = 'a variable name starts with a letter or _ and has at most 64 letters, digits, _ . or -';

/** A tag's inside (`name`, `if name`, `else`, `endif`) as what it is; throws on a bad name. */
function readTag(inside: string, at: string): { kind: 'var' | 'if'; name: string } | { kind: 'else' | 'endif' } {
  if (inside === 'else' || inside === 'endif') return { kind: inside };
  const cond = /^if(?:\s+(.*))?$/s.exec(inside);
  if (cond) {
    const name = cond[1] ?? '';
    if (name === '') throw templateError(`%(if)s ${at} needs a variable: %(if name)s`, 'body');
    if (!VARIABLE_NAME.test(name) || RESERVED.has(name)) {
      throw templateError(`bad variable name "${name.slice(0, 70)}" in %(if …)s ${at}: ${NAME_RULE}`, 'body');
    }
    return { kind: 'if', name };
  }
  if (!VARIABLE_NAME.test(inside) || RESERVED.has(inside)) {
    throw templateError(`bad placeholder "%(${inside.slice(0, 70)})s" ${at}: ${NAME_RULE}`, 'body');
  }
  return { kind: 'var', name: inside };
}

/** A tag at `index`: `%(` then anything but brackets and line breaks, then `)s`. */
const TAG = /%\(([^()\r\n]*)\)s/y;

/** Reads and checks a template body once; throws SmsgateError (field `body`) saying what is wrong and where. */
export function parseTemplate(body: string): ParsedTemplate {
  const root: TemplateNode[] = [];
  // The open conditionals, innermost last, each with the list that text goes into now.
  const open: { node: Extract<TemplateNode, { kind: 'if' }>; at: number; inElse: boolean; elseAt: number }[] = [];
  const variables: string[] = [];
  const use = (name: string) => {
    if (!variables.includes(name)) variables.push(name);
  };
  const target = (): TemplateNode[] => {
    const top = open.at(-1);
    return top ? (top.inElse ? top.node.else : top.node.then) : root;
  };
  const addText = (text: string) => {
    const list = target();
    const last = list.at(-1);
    if (last?.kind === 'text') last.text += text;
    else list.push({ kind: 'text', text });
  };
  let i = 0;
  while (i < body.length) {
    const percent = body.indexOf('%', i);
    if (percent < 0) {
      addText(body.slice(i));
      break;
    }
    if (percent > i) addText(body.slice(i, percent));
    if (body[percent + 1] === '%') {
      addText('%');
      i = percent + 2;
      continue;
    }
    TAG.lastIndex = percent;
    const match = TAG.exec(body);
    if (!match) {
      addText('%');
      i = percent + 1;
      continue;
    }
    const at = `at character ${position(body, percent)}`;
    const tag = readTag(match[1]!, at);
    if (tag.kind === 'var') {
      use(tag.name);
      target().push({ kind: 'var', name: tag.name });
    } else if (tag.kind === 'if') {
      if (open.length >= MAX_NESTING) throw templateError(`conditionals nest at most ${MAX_NESTING} deep (%(if ${tag.name})s ${at})`, 'body');
      use(tag.name);
      const node: Extract<TemplateNode, { kind: 'if' }> = { kind: 'if', name: tag.name, then: [], else: [] };
      target().push(node);
      open.push({ node, at: percent, inElse: false, elseAt: -1 });
    } else if (tag.kind === 'else') {
      const top = open.at(-1);
      if (!top) throw templateError(`%(else)s ${at} belongs to no %(if …)s`, 'body');
      if (top.inElse) {
        throw templateError(`a second %(else)s ${at} in the %(if ${top.node.name})s at character ${position(body, top.at)}`, 'body');
      }
      top.inElse = true;
      top.elseAt = percent;
    } else {
      if (!open.pop()) throw templateError(`%(endif)s ${at} closes no %(if …)s`, 'body');
    }
    i = percent + match[0].length;
  }
  const unclosed = open.at(-1);
  if (unclosed) {
    throw templateError(`%(if ${unclosed.node.name})s at character ${position(body, unclosed.at)} is never closed with %(endif)s`, 'body');
  }
  return { body, nodes: root, variables };
}

/** The variables a template uses, in the order they first appear. */
export function templateVariables(parsed: ParsedTemplate): string[] {
  return [...parsed.variables];
}

/** A value as a template shows it; throws for anything but a string or a finite number. */
function valueText(value: unknown, name: string, field: string): string {
  if (typeof value === 'string') return value;
  if (typeof value === 'number' && Number.isFinite(value)) return String(value);
  const what =
    value === null || value === undefined
      ? String(value)
      : Array.isArray(value)
        ? 'an array'
        : typeof value === 'number'
          ? String(value)
          : typeof value === 'object'
            ? 'an object'
            : `a ${typeof value}`;
  throw templateError(`variable "${name}" must be a string or a number, not ${what}`, field);
}

export interface RenderOptions {
  /** The request field a variable's error names; `vars.<name>` unless told. */
  field?: (name: string) => string;
}

/**
 * The text of a parsed template with these variables. A placeholder whose variable is missing is an error
 * (`missing variable "name"`, field `vars.name`), except in a branch not taken.
 */
export function renderTemplate(parsed: ParsedTemplate, vars: TemplateVars, options: RenderOptions = {}): string {
  const field = options.field ?? ((name: string) => `vars.${name}`);
  const lookup = (name: string): string | undefined => (Object.hasOwn(vars, name) ? valueText(vars[name], name, field(name)) : undefined);
  const out: string[] = [];
  const walk = (nodes: readonly TemplateNode[]) => {
    for (const node of nodes) {
      if (node.kind === 'text') out.push(node.text);
      else if (node.kind === 'var') {
        const value = lookup(node.name);
        if (value === undefined) throw templateError(`missing variable "${node.name}"`, field(node.name));
        out.push(value);
      } else {
        const value = lookup(node.name);
        walk(value !== undefined && value !== '' ? node.then : node.else);
      }
    }
  };
  walk(parsed.nodes);
  return out.join('');
}

/**
 * Reads a request's `vars` (absent, or a JSON object of strings and finite numbers) into variables the renderer
 * takes; names must be variable names. Errors name `field` or `field.<name>`.
 */
export function readVars(value: unknown, field: string): Record<string, string> {
  const out = Object.create(null) as Record<string, string>;
  if (value === undefined || value === null) return out;
  if (typeof value !== 'object' || Array.isArray(value)) throw templateError(`${field} must be an object of variables, e.g. {"name": "Ann"}`, field);
  const entries = Object.entries(value as Record<string, unknown>);
  if (entries.length > MAX_VARS) throw templateError(`${field} has ${entries.length} variables; at most ${MAX_VARS}`, field);
  for (const [name, v] of entries) {
    if (!VARIABLE_NAME.test(name) || RESERVED.has(name)) throw templateError(`"${name.slice(0, 70)}" in ${field} is not a variable name: ${NAME_RULE}`, `${field}.${name.slice(0, 64)}`);
    out[name] = valueText(v, name, `${field}.${name}`);
  }
  return out;
}
