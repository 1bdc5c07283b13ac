/**
 * The small XML reader and writer the billing modules use: what BILLmanager-style documents hold (declarations,
 * attributes, entities, character references, CDATA, comments), round trips, and every way a document is refused
 * (DOCTYPE and its entities, unknown entities, mismatched or unclosed tags, two roots, text outside the root,
 * characters XML forbids, depth and size limits).
 */
import { describe, expect, it } from 'vitest';
import { XmlError, childNamed, childrenNamed, el, findAll, findElement, parseXml, serialiseXml, textOf } from '../../server/integrations/xml.js';

describe('parseXml', () => {
  it('reads a BILLmanager-style document with a declaration, attributes, comments and nested elements', () => {
    const doc = parseXml(`<?xml version="1.0" encoding="UTF-8"?>
<!-- a comment before the root -->
<doc lang='ru' func="gateway.edit">
  <gateway id="3"><smsgate_url>http://127.0.0.1:8080</smsgate_url><smsgate_sim/></gateway>
  <message><id>17</id><phone>+79161234567</phone></message>
  <message><id>18</id></message>
</doc>
`);
    expect(doc.name).toBe('doc');
    expect(doc.attributes).toEqual({ lang: 'ru', func: 'gateway.edit' });
    expect(textOf(findElement(doc, 'smsgate_url')!)).toBe('http://127.0.0.1:8080');
    expect(findElement(doc, 'smsgate_sim')!.children).toEqual([]);
    expect(childrenNamed(doc, 'message').map((m) => textOf(childNamed(m, 'id')!))).toEqual(['17', '18']);
    expect(findAll(doc, 'id')).toHaveLength(2);
    expect(findElement(doc, 'nothing')).toBeNull();
  });

  it('decodes the predefined entities and character references in text and attributes', () => {
    const doc = parseXml('<t a="&lt;&amp;&gt;&quot;&apos;&#10;&#x41;">Tom &amp; Jerry &lt;3 &#1055;&#x440;&#x438;&#1074;&#1077;&#1090; &#x1F600;</t>');
    expect(doc.attributes.a).toBe('<&>"\'\nA');
    expect(textOf(doc)).toBe('Tom & Jerry <3 Привет 😀');
  });

  it('keeps CDATA verbatim, markup and entities included, joined with the text around it', () => {
    const doc = parseXml('<text>a <![CDATA[<b>&amp; "x" ]] > </b>]]> z</text>');
    expect(textOf(doc)).toBe('a <b>&amp; "x" ]] > </b> z');
  });

  it('reads UTF-8 text as is, and a byte order mark before the declaration', () => {
    expect(textOf(parseXml('\ufeff<?xml version="1.0"?><m>Ваш баланс: 10 ₽</m>'))).toBe('Ваш баланс: 10 ₽');
  });

  it.each([
    ['a DOCTYPE (no entity expansion, no external entities)', '<!DOCTYPE doc [<!ENTITY x "boom">]><doc>&x;</doc>', /DOCTYPE/],
    ['an unknown entity', '<doc>&nbsp;</doc>', /unknown entity &nbsp;/],
    ['an "&" that starts no entity', '<doc>Tom & Jerry</doc>', /starts no entity/],
    ['a reference to a forbidden character', '<doc>&#0;</doc>', /names no allowed character/],
    ['a forbidden control character', '<doc>a\u0001b</doc>', /does not allow \(U\+0001\)/],
    ['mismatched tags', '<doc><a></b></doc>', /<\/b> does not match <a>/],
    ['an unclosed element', '<doc><a></a>', /<doc> is not closed/],
    ['a closing tag alone', '</doc>', /without an opening tag/],
    ['two root elements', '<a/><b/>', /second root/],
    ['text outside the root', '<a/>junk', /outside the root/],
    ['an empty document', '  ', /no root element/],
    ['an attribute without quotes', '<a x=1/>', /quoted value/],
    ['an attribute given twice', '<a x="1" x="2"/>', /given twice/],
    ['"<" in an attribute', '<a x="<"/>', /"<" in the value/],
    ['an unterminated CDATA section', '<a><![CDATA[x</a>', /unterminated CDATA/],
    ['an unterminated comment', '<a><!-- x</a>', /unterminated comment/],
    ['"]]>" in text', '<a>x]]>y</a>', /"\]\]>" in text/],
    ['no space between attributes', '<a x="1"y="2"/>', /expected a space/],
  ])('refuses %s', (_what, input, message) => {
    expect(() => parseXml(input)).toThrow(XmlError);
    expect(() => parseXml(input)).toThrow(message);
  });

  it('bounds the depth and the length', () => {
    const deep = '<a>'.repeat(70) + '</a>'.repeat(70);
    expect(() => parseXml(deep)).toThrow(/nested deeper than 64/);
    expect(parseXml(deep, { maxDepth: 100 }).name).toBe('a');
    expect(() => parseXml(`<a>${'x'.repeat(100)}</a>`, { maxLength: 50 })).toThrow(/longer than 50/);
  });
});

describe('serialiseXml', () => {
  it('escapes what must be escaped, and a parsed document reads back the same', () => {
    const doc = el('doc', { note: 'a "quoted" <value>\n& more' }, el('text', {}, 'x < y & z > w ]]>'), el('empty'));
    const xml = serialiseXml(doc);
    expect(xml).toBe(
      '<?xml version="1.0" encoding="UTF-8"?>\n<doc note="a &quot;quoted&quot; &lt;value&gt;&#10;&amp; more"><text>x &lt; y &amp; z &gt; w ]]&gt;</text><empty/></doc>\n',
    );
    expect(parseXml(xml)).toEqual(doc);
  });

  it('round-trips a document with CDATA and entities to an equivalent one', () => {
    const input = '<doc a="&amp;"><m><![CDATA[<&>]]> &#x41;</m><!-- gone --></doc>';
    const once = parseXml(input);
    expect(serialiseXml(once)).toContain('<m>&lt;&amp;&gt; A</m>');
    expect(parseXml(serialiseXml(once))).toEqual(once);
  });
});
