/**
 * A small Fountain (https://fountain.io) reader for the preview: scene headings, action,
 * character cues, parentheticals, dialogue, transitions, centered text, sections,
 * synopses, page breaks, and *italic*, **bold** and _underline_ inside a line. Notes
 * ([[...]]) and boneyard (/* ... *\/) are left out, as they are in print. Title pages and
 * dual dialogue are not laid out (a dual cue's caret is dropped).
 *
 * Ours rather than fountain-js: that returns HTML strings to inject, and in a shared
 * document anybody's text would become markup; this returns data that React renders as
 * text. It reads the whole scene on every change, which is instant at screenplay sizes.
 */

export type BlockType =
  | 'scene-heading'
  | 'action'
  | 'character'
  | 'parenthetical'
  | 'dialogue'
  | 'transition'
  | 'centered'
  | 'section'
  | 'synopsis'
  | 'page-break';

export interface Block {
  type: BlockType;
  /** The text as printed (forcing marks removed); action keeps its line breaks. */
  text: string;
}

export interface Span {
  text: string;
  bold?: true;
  italic?: true;
  underline?: true;
}

const SCENE_HEADING = /^(?:INT|EXT|EST|INT\.?\/EXT|I\/E)[. ]/i;
const PAGE_BREAK = /^={3,}$/;
const PARENTHETICAL = /^\(.*\)$/;

function isUpperCase(text: string): boolean {
  return /\p{Lu}/u.test(text) && text === text.toUpperCase();
}

/** Without a trailing extension such as (V.O.) or (CONT'D), or a dual-dialogue caret. */
function cueName(line: string): string {
  return line.replace(/\^$/, '').replace(/\([^)]*\)\s*$/, '').trim();
}

function isCharacterCue(line: string): boolean {
  if (line.startsWith('@')) return line.length > 1;
  const name = cueName(line);
  return name.length > 0 && isUpperCase(name) && !/[.:!?]$/.test(name);
}

function stripNonPrinting(source: string): string[] {
  return source
    .replace(/\r\n?/g, '\n')
    .replace(/\/\*[\s\S]*?\*\//g, '')
    .replace(/\[\[[\s\S]*?\]\]/g, '')
    .split('\n')
    .map((line) => line.replace(/\t/g, '    ').trimEnd());
}

export function parseFountain(source: string): Block[] {
  const lines = stripNonPrinting(source);
  const blocks: Block[] = [];
  const blank = (index: number) => index < 0 || index >= lines.length || lines[index]?.trim() === '';
  let i = 0;
  while (i < lines.length) {
    const raw = lines[i] ?? '';
    const line = raw.trim();
    const afterBlank = blank(i - 1);
    if (line === '') {
      i++;
      continue;
    }
    if (PAGE_BREAK.test(line)) {
      blocks.push({ type: 'page-break', text: '' });
    } else if (line.startsWith('#')) {
      blocks.push({ type: 'section', text: line.replace(/^#+\s*/, '') });
    } else if (line.startsWith('=')) {
      blocks.push({ type: 'synopsis', text: line.replace(/^=\s*/, '') });
    } else if (line.startsWith('>') && line.endsWith('<')) {
      blocks.push({ type: 'centered', text: line.slice(1, -1).trim() });
    } else if (line.startsWith('>')) {
      blocks.push({ type: 'transition', text: line.slice(1).trim() });
    } else if (line.startsWith('.') && !line.startsWith('..')) {
      blocks.push({ type: 'scene-heading', text: withoutSceneNumber(line.slice(1)) });
    } else if (afterBlank && SCENE_HEADING.test(line)) {
      blocks.push({ type: 'scene-heading', text: withoutSceneNumber(line).toUpperCase() });
    } else if (afterBlank && blank(i + 1) && isUpperCase(line) && line.endsWith('TO:')) {
      blocks.push({ type: 'transition', text: line });
    } else if (!line.startsWith('!') && afterBlank && !blank(i + 1) && isCharacterCue(line)) {
      blocks.push({ type: 'character', text: line.replace(/^@/, '').replace(/\s*\^$/, '') });
      i++;
      // The dialogue runs to the next blank line.
      while (!blank(i)) {
        const spoken = (lines[i] ?? '').trim();
        blocks.push({ type: PARENTHETICAL.test(spoken) ? 'parenthetical' : 'dialogue', text: spoken });
        i++;
      }
      continue;
    } else {
      // Action runs to the next blank line and keeps its line breaks (and indentation).
      const paragraph: string[] = [];
      while (!blank(i)) {
        const text = lines[i] ?? '';
        paragraph.push(paragraph.length === 0 ? text.trimStart().replace(/^!/, '') : text);
        i++;
      }
      blocks.push({ type: 'action', text: paragraph.join('\n') });
      continue;
    }
    i++;
  }
  return blocks;
}

function withoutSceneNumber(heading: string): string {
  return heading.replace(/\s*#[\w.-]+#\s*$/, '').trim();
}

const MARKS: ReadonlyArray<readonly [string, ReadonlyArray<'bold' | 'italic' | 'underline'>]> = [
  ['***', ['bold', 'italic']],
  ['**', ['bold']],
  ['*', ['italic']],
  ['_', ['underline']],
];

/** *italic*, **bold**, ***both***, _underline_, nested; `\*` and `\_` are literal. */
export function parseEmphasis(text: string, inherited: Omit<Span, 'text'> = {}): Span[] {
  const spans: Span[] = [];
  let plain = '';
  const flush = () => {
    if (plain !== '') spans.push({ ...inherited, text: plain });
    plain = '';
  };
  let i = 0;
  outer: while (i < text.length) {
    const char = text[i] ?? '';
    if (char === '\\' && (text[i + 1] === '*' || text[i + 1] === '_')) {
      plain += text[i + 1];
      i += 2;
      continue;
    }
    for (const [mark, styles] of MARKS) {
      if (!text.startsWith(mark, i)) continue;
      const close = findClosing(text, mark, i + mark.length);
      if (close === -1) continue;
      flush();
      const style: Omit<Span, 'text'> = { ...inherited };
      for (const name of styles) style[name] = true;
      spans.push(...parseEmphasis(text.slice(i + mark.length, close), style));
      i = close + mark.length;
      continue outer;
    }
    plain += char;
    i++;
  }
  flush();
  return spans;
}

/** The next unescaped `mark` after at least one character, not touching a space inside. */
function findClosing(text: string, mark: string, from: number): number {
  if (from >= text.length || text[from] === ' ') return -1;
  for (let i = from + 1; i <= text.length - mark.length; i++) {
    if (text[i - 1] === '\\') continue;
    if (text.startsWith(mark, i) && text[i - 1] !== ' ') {
      // `**` is not a closing `*` followed by an opening one.
      if (mark === '*' && text[i + 1] === '*') {
        i++;
        continue;
      }
      return i;
    }
  }
  return -1;
}
