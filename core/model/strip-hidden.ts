/**
 * Takes out of outside text (issues, pull requests, comments) what a person reading it on
 * GitHub does not see but a model would: HTML comments, zero-width and bidirectional control
 * characters, and HTML elements hidden by the `hidden` attribute or an inline
 * `display:none` / `visibility:hidden` style. Instructions smuggled that way never reach a
 * model, and what was taken out is reported so it can be recorded on the task.
 *
 * Pure, and linear in the text: every pattern stops at the next `<` or runs once to the end.
 * No HTML parser: the few shapes that hide text are matched directly, and erring towards
 * removal is safe because everything removed is reported. The same applies inside code
 * blocks: the model reads the raw text whatever GitHub would render.
 */
import type { RemovedContent } from '../bus/messages.js';

export interface StrippedText {
  text: string;
  removed: RemovedContent[];
}

/** U+200B–U+200D zero-width space/non-joiner/joiner, U+2060 word joiner, U+FEFF BOM, U+180E Mongolian vowel separator, U+00AD soft hyphen. */
const ZERO_WIDTH = /[\u200B-\u200D\u2060\uFEFF\u180E\u00AD]/g;
/** Embeddings and overrides U+202A–U+202E, isolates U+2066–U+2069, LRM/RLM U+200E/U+200F, Arabic letter mark U+061C. */
const BIDI_CONTROL = /[\u202A-\u202E\u2066-\u2069\u200E\u200F\u061C]/g;
/** Unicode tag characters U+E0000–U+E007F: invisible, yet each mirrors an ASCII letter a model may read as text. */
const TAG_CHARACTER = /[\u{E0000}-\u{E007F}]/gu;
/** An HTML comment; one left open hides everything after it, as a browser would. */
const HTML_COMMENT = /<!--[\s\S]*?(?:-->|$)/g;
/** An opening tag: name, then attributes up to `>` (never past another `<`, which keeps the scan linear). */
const OPEN_TAG = /<([a-z][a-z0-9-]*)([^<>]*)>/gi;
/** Elements with no content or closing tag: hiding one hides only the tag itself. */
const VOID_ELEMENTS = new Set(['area', 'base', 'br', 'col', 'embed', 'hr', 'img', 'input', 'link', 'meta', 'source', 'track', 'wbr']);
const SAMPLE_LENGTH = 80;

export function stripHidden(text: string): StrippedText {
  const removed: RemovedContent[] = [];
  const take = (kind: RemovedContent['kind'], pieces: string[]) => {
    if (pieces.length > 0) removed.push({ kind, count: pieces.length, sample: sampleOf(pieces) });
  };
  // Characters first, so none of them can break up a comment or a `hidden` attribute to slip past the patterns below.
  let rest = removeMatches(text, ZERO_WIDTH, (pieces) => take('zero-width', pieces));
  rest = removeMatches(rest, BIDI_CONTROL, (pieces) => take('bidi-control', pieces));
  rest = removeMatches(rest, TAG_CHARACTER, (pieces) => take('tag-character', pieces));
  rest = removeMatches(rest, HTML_COMMENT, (pieces) => take('html-comment', pieces));
  const elements = removeHiddenElements(rest);
  take('hidden-element', elements.pieces);
  return { text: elements.text, removed };
}

function removeMatches(text: string, pattern: RegExp, report: (pieces: string[]) => void): string {
  const pieces: string[] = [];
  const kept = text.replace(pattern, (match) => {
    pieces.push(match);
    return '';
  });
  report(pieces);
  return kept;
}

function removeHiddenElements(text: string): { text: string; pieces: string[] } {
  const pieces: string[] = [];
  const open = new RegExp(OPEN_TAG.source, OPEN_TAG.flags);
  let kept = '';
  let from = 0;
  for (let m = open.exec(text); m !== null; m = open.exec(text)) {
    const [tag, name = '', attributes = ''] = m;
    if (!isHiding(attributes)) continue;
    const afterTag = m.index + tag.length;
    const end = VOID_ELEMENTS.has(name.toLowerCase()) || tag.endsWith('/>') ? afterTag : closingTagEnd(text, name, afterTag);
    kept += text.slice(from, m.index);
    pieces.push(text.slice(m.index, end));
    from = end;
    open.lastIndex = end;
  }
  return { text: kept + text.slice(from), pieces };
}

/** True when the attributes hide the element: `hidden` (any value), or an inline style that does. */
function isHiding(attributes: string): boolean {
  const style = /(?:^|\s)style\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'>]+))/i.exec(attributes);
  const styleValue = style === null ? '' : (style[1] ?? style[2] ?? style[3] ?? '');
  if (/display\s*:\s*none|visibility\s*:\s*hidden/i.test(styleValue)) return true;
  // Quoted values blanked first, so `title="not hidden"` is not read as the attribute.
  const names = attributes.replace(/"[^"]*"|'[^']*'/g, '""');
  return /(?:^|\s)hidden(?=[\s=/]|$)/i.test(names);
}

/**
 * Where the element opened just before `from` ends. Same-name tags nest, so they are counted:
 * `<div hidden><div>a</div>b</div>` goes as a whole. Never closed: hidden to the end.
 */
function closingTagEnd(text: string, name: string, from: number): number {
  const tags = new RegExp(`<(/?)${name}(?![a-z0-9-])[^<>]*>`, 'gi');
  tags.lastIndex = from;
  let depth = 1;
  for (let m = tags.exec(text); m !== null; m = tags.exec(text)) {
    if (m[1] === '/') depth -= 1;
    else if (!m[0].endsWith('/>')) depth += 1;
    if (depth === 0) return m.index + m[0].length;
  }
  return text.length;
}

/** The removed text, whitespace runs as one space and invisible characters as `\u{…}`, cut at ~80 characters. */
function sampleOf(pieces: string[]): string {
  let sample = '';
  for (const char of pieces.join('').replace(/[\t\n\r ]+/g, ' ')) {
    const shown = isInvisible(char) ? `\\u{${char.codePointAt(0)?.toString(16).toUpperCase() ?? ''}}` : char;
    if (sample.length + shown.length > SAMPLE_LENGTH) return `${sample}…`;
    sample += shown;
  }
  return sample;
}

function isInvisible(char: string): boolean {
  return [ZERO_WIDTH, BIDI_CONTROL, TAG_CHARACTER].some((pattern) => new RegExp(pattern.source, pattern.flags.replace('g', '')).test(char));
}
