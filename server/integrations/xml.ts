/**
 * A small, strict XML reader and writer for the short documents billing systems exchange with their modules
 * (BILLmanager's `<doc>…</doc>`): elements, attributes, text, CDATA, comments and processing instructions.
 *
 * Strict where it matters for safety: a DOCTYPE is refused (so no entity expansion, no external entities), only
 * the five predefined entities and numeric character references are read (anything else is an error), tags must
 * nest and close, there is one root element, and the input and its depth are bounded. Not a general XML parser:
 * no namespaces processing (a prefix is part of the name), no DTD, no encodings but UTF-8.
 *
 * The tree is plain data: an element has a name, its attributes in order, and its children (elements and text).
 * Serialising a parsed tree gives an equivalent document (CDATA comes back as escaped text, comments are dropped).
 */

export interface XmlElement {
  name: string;
  attributes: Record<string, string>;
  children: XmlNode[];
}

export type XmlNode = XmlElement | string;

export class XmlError extends Error {
  override readonly name = 'XmlError';
  constructor(
    message: string,
    readonly offset: number,
  ) {
    super(`${message} (at character ${offset})`);
  }
}

export interface ParseLimits {
  /** Characters of input (default 4 MiB). */
  maxLength?: number;
  /** Nesting depth (default 64). */
  maxDepth?: number;
}

const NAME = /[A-Za-z_:][-A-Za-z0-9_.:]*/y;
const SPACE = /[ \t\r\n]*/y;

/** Decodes the predefined entities and character references of a text or attribute value. */
export function decodeEntities(raw: string, offset = 0): string {
  return raw.replace(/&([^;&<]*);?/g, (whole, body: string, at: number) => {
    if (!whole.endsWith(';')) throw new XmlError(`an "&" that starts no entity: "${whole.slice(0, 12)}"`, offset + at);
    const named: Record<string, string> = { lt: '<', gt: '>', amp: '&', quot: '"', apos: "'" };
    if (body in named) return named[body]!;
    const m = /^#(?:x([0-9A-Fa-f]{1,6})|([0-9]{1,7}))$/.exec(body);
    if (m) {
      const code = m[1] !== undefined ? parseInt(m[1], 16) : Number(m[2]);
      const allowed = code === 0x9 || code === 0xa || code === 0xd || (code >= 0x20 && code <= 0xd7ff) || (code >= 0xe000 && code <= 0xfffd) || (code >= 0x10000 && code <= 0x10ffff);
      if (!allowed) throw new XmlError(`character reference &${body}; names no allowed character`, offset + at);
      return String.fromCodePoint(code);
    }
    throw new XmlError(`unknown entity &${body.slice(0, 20)}; (only &lt; &gt; &amp; &quot; &apos; and &#…; are read)`, offset + at);
  });
}

/** Parses a document; throws XmlError naming what is wrong and where. */
export function parseXml(input: string, limits: ParseLimits = {}): XmlElement {
  const maxLength = limits.maxLength ?? 4 * 1024 * 1024;
  const maxDepth = limits.maxDepth ?? 64;
  if (input.length > maxLength) throw new XmlError(`the document is longer than ${maxLength} characters`, maxLength);
  // eslint-disable-next-line no-control-regex
  const control = /[\u0000-\u0008\u000b\u000c\u000e-\u001f\ufffe\uffff]/.exec(input);
  if (control) throw new XmlError(`a character XML does not allow (U+${control[0].charCodeAt(0).toString(16).padStart(4, '0')})`, control.index);
  if (!input.isWellFormed()) throw new XmlError('a broken character (an unpaired UTF-16 surrogate)', 0);
  let pos = input.charCodeAt(0) === 0xfeff ? 1 : 0;
  const stack: XmlElement[] = [];
  let root: XmlElement | null = null;

  const skipSpace = () => {
    SPACE.lastIndex = pos;
    SPACE.exec(input);
    pos = SPACE.lastIndex;
  };
  const readName = (what: string): string => {
    NAME.lastIndex = pos;
    const m = NAME.exec(input);
    if (!m) throw new XmlError(`expected ${what}`, pos);
    pos = NAME.lastIndex;
    return m[0];
  };
  const expect = (text: string) => {
    if (!input.startsWith(text, pos)) throw new XmlError(`expected "${text}"`, pos);
    pos += text.length;
  };
  const addText = (text: string) => {
    const parent = stack[stack.length - 1];
    if (!parent) {
      if (text.trim() !== '') throw new XmlError('text outside the root element', pos);
      return;
    }
    const last = parent.children[parent.children.length - 1];
    if (typeof last === 'string') parent.children[parent.children.length - 1] = last + text;
    else parent.children.push(text);
  };

  while (pos < input.length) {
    const lt = input.indexOf('<', pos);
    if (lt < 0) {
      addText(decodeEntities(input.slice(pos), pos));
      pos = input.length;
      break;
    }
    if (lt > pos) {
      const raw = input.slice(pos, lt);
      if (raw.includes(']]>')) throw new XmlError('"]]>" in text', pos + raw.indexOf(']]>'));
      addText(decodeEntities(raw, pos));
      pos = lt;
    }
    if (input.startsWith('<!--', pos)) {
      const end = input.indexOf('-->', pos + 4);
      if (end < 0) throw new XmlError('unterminated comment', pos);
      if (input.slice(pos + 4, end).includes('--')) throw new XmlError('"--" inside a comment', pos);
      pos = end + 3;
    } else if (input.startsWith('<![CDATA[', pos)) {
      if (stack.length === 0) throw new XmlError('CDATA outside the root element', pos);
      const end = input.indexOf(']]>', pos + 9);
      if (end < 0) throw new XmlError('unterminated CDATA section', pos);
      addText(input.slice(pos + 9, end));
      pos = end + 3;
    } else if (input.startsWith('<!', pos)) {
      throw new XmlError('a DOCTYPE or other declaration is not accepted', pos);
    } else if (input.startsWith('<?', pos)) {
      const end = input.indexOf('?>', pos + 2);
      if (end < 0) throw new XmlError('unterminated processing instruction', pos);
      pos = end + 2;
    } else if (input.startsWith('</', pos)) {
      pos += 2;
      const name = readName('a closing tag name');
      skipSpace();
      expect('>');
      const open = stack.pop();
      if (!open) throw new XmlError(`closing tag </${name}> without an opening tag`, pos);
      if (open.name !== name) throw new XmlError(`closing tag </${name}> does not match <${open.name}>`, pos);
    } else {
      const start = pos;
      pos += 1;
      const name = readName('an element name');
      const element: XmlElement = { name, attributes: {}, children: [] };
      for (;;) {
        const before = pos;
        skipSpace();
        if (input.startsWith('/>', pos) || input.startsWith('>', pos)) break;
        if (pos === before) throw new XmlError(`expected a space, ">" or "/>" in <${name}>`, pos);
        const attr = readName('an attribute name');
        skipSpace();
        expect('=');
        skipSpace();
        const quote = input[pos];
        if (quote !== '"' && quote !== "'") throw new XmlError(`attribute ${attr} needs a quoted value`, pos);
        const end = input.indexOf(quote, pos + 1);
        if (end < 0) throw new XmlError(`unterminated value of attribute ${attr}`, pos);
        const raw = input.slice(pos + 1, end);
        if (raw.includes('<')) throw new XmlError(`"<" in the value of attribute ${attr}`, pos);
        if (Object.hasOwn(element.attributes, attr)) throw new XmlError(`attribute ${attr} given twice`, pos);
        element.attributes[attr] = decodeEntities(raw, pos + 1);
        pos = end + 1;
      }
      const parent = stack[stack.length - 1];
      if (parent) parent.children.push(element);
      else if (root) throw new XmlError('a second root element', start);
      else root = element;
      if (input.startsWith('/>', pos)) {
        pos += 2;
      } else {
        pos += 1;
        stack.push(element);
        if (stack.length > maxDepth) throw new XmlError(`elements nested deeper than ${maxDepth}`, start);
      }
    }
  }
  if (stack.length > 0) throw new XmlError(`<${stack[stack.length - 1]!.name}> is not closed`, input.length);
  if (!root) throw new XmlError('no root element', input.length);
  return root;
}

/** Escapes text for an element's content. */
export function escapeText(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/** Escapes text for a double-quoted attribute value (line ends kept as references, so they survive reading). */
export function escapeAttribute(text: string): string {
  return escapeText(text).replace(/"/g, '&quot;').replace(/\n/g, '&#10;').replace(/\r/g, '&#13;').replace(/\t/g, '&#9;');
}

function serialiseNode(node: XmlNode): string {
  if (typeof node === 'string') return escapeText(node);
  const attrs = Object.entries(node.attributes)
    .map(([k, v]) => ` ${k}="${escapeAttribute(v)}"`)
    .join('');
  if (node.children.length === 0) return `<${node.name}${attrs}/>`;
  return `<${node.name}${attrs}>${node.children.map(serialiseNode).join('')}</${node.name}>`;
}

/** A whole document: the XML declaration, the root element, a final line end. */
export function serialiseXml(root: XmlElement): string {
  return `<?xml version="1.0" encoding="UTF-8"?>\n${serialiseNode(root)}\n`;
}

/** Builds an element; strings among the children are text. */
export function el(name: string, attributes: Record<string, string> = {}, ...children: XmlNode[]): XmlElement {
  return { name, attributes, children };
}

/** The direct child elements named `name`. */
export function childrenNamed(parent: XmlElement, name: string): XmlElement[] {
  return parent.children.filter((c): c is XmlElement => typeof c !== 'string' && c.name === name);
}

/** The first direct child element named `name`, or null. */
export function childNamed(parent: XmlElement, name: string): XmlElement | null {
  return childrenNamed(parent, name)[0] ?? null;
}

/** The text directly inside an element (its text children joined). */
export function textOf(element: XmlElement): string {
  return element.children.filter((c): c is string => typeof c === 'string').join('');
}

/** The first element named `name` at any depth below (and including) `root`, depth first, or null. */
export function findElement(root: XmlElement, name: string): XmlElement | null {
  if (root.name === name) return root;
  for (const c of root.children) {
    if (typeof c === 'string') continue;
    const found = findElement(c, name);
    if (found) return found;
  }
  return null;
}

/** Every element named `name` at any depth below `root` (not `root` itself), in document order. */
export function findAll(root: XmlElement, name: string): XmlElement[] {
  const out: XmlElement[] = [];
  const walk = (e: XmlElement) => {
    for (const c of e.children) {
      if (typeof c === 'string') continue;
      if (c.name === name) out.push(c);
      walk(c);
    }
  };
  walk(root);
  return out;
}
