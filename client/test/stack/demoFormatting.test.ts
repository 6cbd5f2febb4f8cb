/**
 * The demo's pure parts, without a browser: the Fountain reader behind the screenplay
 * preview, and the cursor palette and slot choice behind "distinct colours for 20 people".
 * (Pure Node tests: they sit with the demo's other tests here, and need no stack.)
 */

import { readFileSync } from 'node:fs';

import { describe, expect, it } from 'vitest';

import { chooseSlot, colorForSlot, PALETTE } from '../../demo/colors.js';
import { parseEmphasis, parseFountain, type Block } from '../../demo/fountain.js';

const SAMPLE = readFileSync(new URL('../../demo/sample-scene.fountain', import.meta.url), 'utf8');

const types = (blocks: Block[]) => blocks.map((block) => block.type);

describe('the Fountain reader', () => {
  it('reads the sample scene as a screenplay', () => {
    const blocks = parseFountain(SAMPLE);
    expect(types(blocks)).toEqual([
      'scene-heading', 'action',
      'character', 'dialogue',
      'character', 'parenthetical', 'dialogue',
      'character', 'dialogue',
      'character', 'dialogue',
      'action',
      'character', 'dialogue',
      'transition',
      'scene-heading', 'action',
    ]);
    expect(blocks[0]?.text).toBe("INT. WRITERS' ROOM - NIGHT");
    expect(blocks[12]?.text).toBe("MAYA (CONT'D)");
  });

  it('needs a blank line before a heading or a cue, and text after a cue', () => {
    expect(types(parseFountain('Rain.\nINT. HOUSE - DAY'))).toEqual(['action']);
    expect(types(parseFountain('Rain.\n\nINT. HOUSE - DAY'))).toEqual(['action', 'scene-heading']);
    // An upper-case line with nothing after it is action, not a cue.
    expect(types(parseFountain('BANG\n\nThe door opens.'))).toEqual(['action', 'action']);
    expect(types(parseFountain('int. house - day'))).toEqual(['scene-heading']);
    expect(parseFountain('int. house - day #12#')[0]?.text).toBe('INT. HOUSE - DAY');
  });

  it('knows transitions, forced elements, centered text, sections, notes and page breaks', () => {
    expect(types(parseFountain('Exit.\n\nSMASH CUT TO:\n\nEXT. ROAD - DAY'))).toEqual([
      'action', 'transition', 'scene-heading',
    ]);
    // "TO:" makes a transition only as a paragraph of its own; nor is a line ending in
    // punctuation a cue, so this is action.
    expect(types(parseFountain('\nCUT TO:\nHello'))).toEqual(['action']);
    expect(parseFountain('.FLASHBACK')).toEqual([{ type: 'scene-heading', text: 'FLASHBACK' }]);
    expect(parseFountain('> FADE OUT.')).toEqual([{ type: 'transition', text: 'FADE OUT.' }]);
    expect(parseFountain('>THE END<')).toEqual([{ type: 'centered', text: 'THE END' }]);
    expect(parseFountain('@McCLANE\nYippee.')).toEqual([
      { type: 'character', text: 'McCLANE' },
      { type: 'dialogue', text: 'Yippee.' },
    ]);
    expect(parseFountain('!SHOUTS FROM BELOW.\nThey fade.')).toEqual([
      { type: 'action', text: 'SHOUTS FROM BELOW.\nThey fade.' },
    ]);
    expect(types(parseFountain('# Act one\n\n= They meet.\n\n===\n\nHi.'))).toEqual([
      'section', 'synopsis', 'page-break', 'action',
    ]);
    expect(parseFountain('She waits. [[cut this?]]\n/* old\nversion */')).toEqual([
      { type: 'action', text: 'She waits.' },
    ]);
    expect(parseFountain('\nBRICK ^\nMe too.')[0]).toEqual({ type: 'character', text: 'BRICK' });
  });

  it('reads emphasis inside a line, nested, with escapes', () => {
    expect(parseEmphasis('a **bold** and *italic* _under_ ***both***')).toEqual([
      { text: 'a ' },
      { text: 'bold', bold: true },
      { text: ' and ' },
      { text: 'italic', italic: true },
      { text: ' ' },
      { text: 'under', underline: true },
      { text: ' ' },
      { text: 'both', bold: true, italic: true },
    ]);
    expect(parseEmphasis('_**loud**_')).toEqual([{ text: 'loud', underline: true, bold: true }]);
    expect(parseEmphasis('2 * 3 * 4 and \\*not\\*')).toEqual([{ text: '2 * 3 * 4 and *not*' }]);
    expect(parseEmphasis('an *open mark')).toEqual([{ text: 'an *open mark' }]);
  });
});

/** CIE76 distance in CIELAB (D65), enough to tell whether two colours look alike. */
function lab(hex: string): [number, number, number] {
  const linear = [1, 3, 5].map((i) => {
    const c = parseInt(hex.slice(i, i + 2), 16) / 255;
    return c <= 0.04045 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
  }) as [number, number, number];
  const [r, g, b] = linear;
  const xyz = [
    (r * 0.4124 + g * 0.3576 + b * 0.1805) / 0.95047,
    r * 0.2126 + g * 0.7152 + b * 0.0722,
    (r * 0.0193 + g * 0.1192 + b * 0.9505) / 1.08883,
  ].map((t) => (t > 0.008856 ? Math.cbrt(t) : 7.787 * t + 16 / 116)) as [number, number, number];
  return [116 * xyz[1] - 16, 500 * (xyz[0] - xyz[1]), 200 * (xyz[1] - xyz[2])];
}

function contrastWithWhite(hex: string): number {
  const [l] = lab(hex);
  const y = l > 8 ? ((l + 16) / 116) ** 3 : l / 903.3;
  return 1.05 / (y + 0.05);
}

describe('cursor colours', () => {
  it('has 24 colours that look different from each other and carry white labels', () => {
    expect(new Set(PALETTE).size).toBe(24);
    let closest = Infinity;
    for (const [i, a] of PALETTE.entries()) {
      expect(contrastWithWhite(a)).toBeGreaterThanOrEqual(3.5);
      for (const b of PALETTE.slice(i + 1)) {
        const [p, q] = [lab(a), lab(b)];
        closest = Math.min(closest, Math.hypot(p[0] - q[0], p[1] - q[1], p[2] - q[2]));
      }
    }
    // ΔE 25 is "clearly another colour" (2-3 is the just noticeable difference).
    expect(closest).toBeGreaterThanOrEqual(25);
  });

  it('gives 20 people joining one after another 20 different colours', () => {
    const slots = new Map<number, number>();
    for (let id = 1; id <= 20; id++) slots.set(id * 7919, chooseSlot(id * 7919, null, new Map(slots)));
    expect(new Set([...slots.values()].map(colorForSlot)).size).toBe(20);
  });

  it('settles a clash in one round: the lower client id keeps the slot', () => {
    // Both joined at once and took slot 0; each then sees the other.
    expect(chooseSlot(10, 0, new Map([[99, 0]]))).toBe(0);
    expect(chooseSlot(99, 0, new Map([[10, 0]]))).toBe(1);
    // Settled: nobody moves again.
    expect(chooseSlot(10, 0, new Map([[99, 1]]))).toBe(0);
    expect(chooseSlot(99, 1, new Map([[10, 0]]))).toBe(1);
  });

  it('keeps a slot while nobody lower claims it, and shares the least used one past 24', () => {
    expect(chooseSlot(50, 5, new Map([[60, 5], [1, 0]]))).toBe(5);
    const full = new Map(PALETTE.map((_, slot) => [slot + 100, slot] as [number, number]));
    full.set(1000, 0);
    expect(chooseSlot(5000, null, full)).toBe(1);
  });
});
