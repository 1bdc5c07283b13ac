/**
 * The template language by itself: placeholders, `%%` and literal `%`, conditionals (nested, with and without
 * else), missing variables (and the branch not taken), malformed bodies refused with where and why, values that are
 * not strings or numbers refused, and `readVars` for request objects.
 */
import { describe, expect, it } from 'vitest';
import { SmsgateError } from '../../modem/errors.js';
import { MAX_NESTING, parseTemplate, readVars, renderTemplate, templateVariables } from '../../server/templates.js';

const render = (body: string, vars: Record<string, unknown> = {}) => renderTemplate(parseTemplate(body), vars);

/** The error a call throws (it must throw a SmsgateError). */
function errorOf(fn: () => unknown): SmsgateError {
  try {
    fn();
  } catch (error) {
    if (error instanceof SmsgateError) return error;
    throw error;
  }
  throw new Error('expected an error, got none');
}

describe('placeholders', () => {
  it('replaces %(name)s by its value, as often as it appears', () => {
    expect(render('Hello %(name)s! Bye %(name)s.', { name: 'Ann' })).toBe('Hello Ann! Bye Ann.');
    expect(render('%(a)s%(b)s', { a: 'x', b: 'y' })).toBe('xy');
  });

  it('takes names with digits, _, . and - after the first character, up to 64 characters', () => {
    const long = `a${'b'.repeat(63)}`;
    expect(render(`%(order.id)s %(first-name)s %(_x9)s %(${long})s`, { 'order.id': 42, 'first-name': 'Ann', _x9: 'z', [long]: 'L' })).toBe('42 Ann z L');
    expect(errorOf(() => parseTemplate(`%(a${'b'.repeat(64)})s`)).field).toBe('body');
  });

  it('renders numbers with String(), and leaves values as they are (no template inside a value)', () => {
    expect(render('%(n)s|%(f)s|%(neg)s|%(zero)s', { n: 7, f: 1.5, neg: -3, zero: 0 })).toBe('7|1.5|-3|0');
    expect(render('%(v)s', { v: '%(v)s 100%% <b>' })).toBe('%(v)s 100%% <b>');
  });

  it('keeps text with no tags exactly, Unicode and line breaks too', () => {
    const text = 'Привет 👋🏽\nline two\t(tab) and (brackets)s';
    expect(render(text)).toBe(text);
    expect(render('')).toBe('');
  });
});

describe('percent signs', () => {
  it('%% is one literal %', () => {
    expect(render('100%% sure, %%(name)s is not a placeholder', { name: 'x' })).toBe('100% sure, %(name)s is not a placeholder');
    expect(render('%%%%')).toBe('%%');
  });

  it('any other % is literal text', () => {
    expect(render('50% off')).toBe('50% off');
    expect(render('%')).toBe('%');
    expect(render('ends with %')).toBe('ends with %');
    expect(render('%s %d %(x) %(y)d %(z', {})).toBe('%s %d %(x) %(y)d %(z');
    expect(render('% (name)s and 50%(name)s', { name: 'A' })).toBe('% (name)s and 50A');
  });

  it('a tag never spans brackets or lines: those stay literal', () => {
    expect(render('%(a(b)s %(a\nb)s')).toBe('%(a(b)s %(a\nb)s');
  });
});

describe('conditionals', () => {
  it('takes the branch when the variable is present and not empty', () => {
    const body = 'Hi%(if name)s %(name)s%(endif)s!';
    expect(render(body, { name: 'Ann' })).toBe('Hi Ann!');
    expect(render(body, { name: '' })).toBe('Hi!');
    expect(render(body, {})).toBe('Hi!');
    // "0" and 0 are present and not empty: true.
    expect(render('%(if n)s[%(n)s]%(endif)s', { n: 0 })).toBe('[0]');
    expect(render('%(if n)s[%(n)s]%(endif)s', { n: '0' })).toBe('[0]');
    expect(render('%(if n)s[%(n)s]%(endif)s', { n: ' ' })).toBe('[ ]');
  });

  it('with an else, takes one branch or the other', () => {
    const body = '%(if vip)sDear %(name)s%(else)sHello%(endif)s, your order is ready.';
    expect(render(body, { vip: 'yes', name: 'Ann' })).toBe('Dear Ann, your order is ready.');
    expect(render(body, {})).toBe('Hello, your order is ready.');
    expect(render('%(if a)s%(else)s-%(endif)s', { a: 'x' })).toBe('');
  });

  it('nests, with and without else, to any mix', () => {
    const body = '%(if a)sA%(if b)sB%(else)s!B%(endif)s%(else)s!A%(if c)sC%(endif)s%(endif)s.';
    expect(render(body, { a: 1, b: 1 })).toBe('AB.');
    expect(render(body, { a: 1 })).toBe('A!B.');
    expect(render(body, { c: 'x' })).toBe('!AC.');
    expect(render(body, {})).toBe('!A.');
  });

  it('nests up to MAX_NESTING deep, and no deeper', () => {
    const deep = (n: number) => `${'%(if a)s'.repeat(n)}x${'%(endif)s'.repeat(n)}`;
    expect(render(deep(MAX_NESTING), { a: 1 })).toBe('x');
    const error = errorOf(() => parseTemplate(deep(MAX_NESTING + 1)));
    expect(error.field).toBe('body');
    expect(error.message).toMatch(/nest at most 20 deep/);
  });

  it('allows whitespace between if and the name, and names that start with "if"', () => {
    expect(render('%(if  a)sy%(endif)s%(iffy)s', { a: 1, iffy: '!' })).toBe('y!');
  });
});

describe('missing variables', () => {
  it('are an error naming the variable and the field vars.<name>', () => {
    const error = errorOf(() => render('Hello %(name)s, code %(code)s', { code: 1 }));
    expect(error.message).toBe('missing variable "name"');
    expect(error.field).toBe('vars.name');
    expect(error.code).toBe('BAD_MESSAGE');
  });

  it('are no error inside a branch not taken, and an error in the branch taken', () => {
    expect(render('%(if a)s%(b)s%(else)sno a%(endif)s', {})).toBe('no a');
    expect(render('%(if a)syes%(else)s%(b)s%(endif)s', { a: 'x' })).toBe('yes');
    expect(errorOf(() => render('%(if a)s%(b)s%(endif)s', { a: 'x' })).message).toBe('missing variable "b"');
    expect(errorOf(() => render('%(if a)syes%(else)s%(b)s%(endif)s', {})).field).toBe('vars.b');
  });

  it('are looked up as own properties only: nothing inherited stands in', () => {
    for (const name of ['constructor', 'toString', '__proto__', 'hasOwnProperty']) {
      expect(errorOf(() => render(`%(${name})s`, {})).message).toBe(`missing variable "${name}"`);
    }
    expect(render('%(if constructor)sy%(else)sn%(endif)s', {})).toBe('n');
    expect(render('%(constructor)s', { constructor: 'c' })).toBe('c');
  });

  it('name the field the caller says', () => {
    const error = errorOf(() => renderTemplate(parseTemplate('%(x)s'), {}, { field: (name) => `to[3].vars.${name}` }));
    expect(error.field).toBe('to[3].vars.x');
  });
});

describe('values', () => {
  it.each([
    ['a boolean', true, /not a boolean/],
    ['null', null, /not null/],
    ['an object', { a: 1 }, /not an object/],
    ['an array', ['a'], /not an array/],
    ['NaN', Number.NaN, /not NaN/],
    ['Infinity', Number.POSITIVE_INFINITY, /not Infinity/],
    ['a bigint', 1n, /not a bigint/],
    ['undefined', undefined, /not undefined/],
  ])('%s is refused, in a placeholder and in a condition', (_what, value, message) => {
    for (const body of ['%(v)s', '%(if v)sy%(endif)s']) {
      const error = errorOf(() => render(body, { v: value }));
      expect(error.message).toMatch(/^variable "v" must be a string or a number/);
      expect(error.message).toMatch(message);
      expect(error.field).toBe('vars.v');
    }
  });

  it('a bad value that the template does not use is not looked at by render', () => {
    expect(render('plain', { v: true })).toBe('plain');
  });
});

describe('malformed bodies', () => {
  it.each([
    ['a bad name', 'Hi %(1st)s', /^bad placeholder "%\(1st\)s" at character 4: a variable name starts with a letter/],
    ['spaces in a name', '%( name )s', /^bad placeholder "%\( name \)s" at character 1/],
    ['an empty name', 'x%()s', /^bad placeholder "%\(\)s" at character 2/],
    ['a reserved word as a name', '%(if)s', /^%\(if\)s at character 1 needs a variable: %\(if name\)s/],
    ['a bad name in a condition', '%(if 9a)sx%(endif)s', /^bad variable name "9a" in %\(if …\)s at character 1/],
    ['a reserved word in a condition', '%(if else)sx%(endif)s', /^bad variable name "else"/],
    ['an expression', '%(if a == 1)sx%(endif)s', /^bad variable name "a == 1"/],
    ['an else without if', 'a%(else)sb', /^%\(else\)s at character 2 belongs to no %\(if …\)s/],
    ['an endif without if', 'ab%(endif)s', /^%\(endif\)s at character 3 closes no %\(if …\)s/],
    ['an if never closed', 'x %(if a)s y', /^%\(if a\)s at character 3 is never closed with %\(endif\)s/],
    ['an inner if never closed', '%(if a)s%(if b)s%(endif)s', /^%\(if a\)s at character 1 is never closed/],
    ['two elses', '%(if a)s1%(else)s2%(else)s3%(endif)s', /^a second %\(else\)s at character 19 in the %\(if a\)s at character 1/],
    ['one endif too many', '%(if a)s1%(endif)s%(endif)s', /^%\(endif\)s at character 19 closes no/],
  ])('%s is refused with where and why, field body', (_what, body, message) => {
    const error = errorOf(() => parseTemplate(body));
    expect(error.field).toBe('body');
    expect(error.code).toBe('BAD_MESSAGE');
    expect(error.message).toMatch(message);
  });

  it('counts the position in characters, not UTF-16 units', () => {
    expect(errorOf(() => parseTemplate('😀😀%(endif)s')).message).toMatch(/at character 3/);
  });
});

describe('templateVariables', () => {
  it('lists every variable once, in the order it first appears, conditions included', () => {
    const parsed = parseTemplate('%(b)s %(if a)s%(c)s%(else)s%(b)s%(if d)s%(endif)s%(endif)s %(a)s 100%% %(e)s');
    expect(templateVariables(parsed)).toEqual(['b', 'a', 'c', 'd', 'e']);
    expect(templateVariables(parseTemplate('no variables, 50% off'))).toEqual([]);
  });

  it('returns a copy the caller may change', () => {
    const parsed = parseTemplate('%(a)s');
    templateVariables(parsed).push('x');
    expect(templateVariables(parsed)).toEqual(['a']);
  });
});

describe('readVars', () => {
  it('reads an object of strings and numbers; absent is none', () => {
    expect({ ...readVars({ name: 'Ann', n: 3, f: 0.5 }, 'vars') }).toEqual({ name: 'Ann', n: '3', f: '0.5' });
    expect({ ...readVars(undefined, 'vars') }).toEqual({});
    expect({ ...readVars(null, 'vars') }).toEqual({});
  });

  it('keeps a __proto__ key as a variable, and nothing is inherited', () => {
    const vars = readVars(JSON.parse('{"__proto__": "p", "a": "1"}'), 'vars');
    expect(Object.hasOwn(vars, '__proto__')).toBe(true);
    expect(renderTemplate(parseTemplate('%(__proto__)s%(a)s'), vars)).toBe('p1');
    expect(errorOf(() => renderTemplate(parseTemplate('%(toString)s'), vars)).message).toBe('missing variable "toString"');
  });

  it.each([
    ['an array', ['a'], 'vars', /must be an object of variables/],
    ['a string', 'name=Ann', 'vars', /must be an object/],
    ['a bad name', { 'first name': 'A' }, 'vars.first name', /"first name" in vars is not a variable name/],
    ['a reserved name', { endif: 'A' }, 'vars.endif', /not a variable name/],
    ['a boolean value', { a: false }, 'vars.a', /variable "a" must be a string or a number, not a boolean/],
    ['a nested object', { a: { b: 1 } }, 'vars.a', /not an object/],
    ['too many', Object.fromEntries(Array.from({ length: 201 }, (_, i) => [`v${i}`, i])), 'vars', /at most 200/],
  ])('refuses %s, naming the field', (_what, value, field, message) => {
    const error = errorOf(() => readVars(value, 'vars'));
    expect(error.field).toBe(field);
    expect(error.message).toMatch(message);
  });

  it('names the field it is told', () => {
    expect(errorOf(() => readVars({ a: null }, 'to[2].vars')).field).toBe('to[2].vars.a');
  });
});
