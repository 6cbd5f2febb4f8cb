/**
 * The screenplay demo page (index.html) in headless Chromium against the real local stack:
 * it opens on the sample scene devstack/demo.py stored, formatted as a screenplay; two
 * writers type at once and converge, each seeing the other's named caret in its own
 * colour; the preview follows the text; the viewer cannot change it; a dropped connection
 * comes back by itself. Screenshots go to test-artifacts/.
 */

import { readFileSync } from 'node:fs';

import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';

import { dropConnection, waitFor } from './clients.js';
import { DemoBrowser, editorText, screenshots, SYNCED, typeAt, typeAtEnd, withScreenshots } from './demoBrowser.js';

const stack = inject('stack');
const SAMPLE = readFileSync(new URL('../../demo/sample-scene.fountain', import.meta.url), 'utf8');

let browser: DemoBrowser;
// expect.poll's default is 1 s; a loaded machine and the saved check's debounce need more.
const POLL = { timeout: 15_000 };

beforeAll(async () => {
  browser = await DemoBrowser.launch(stack);
});

afterAll(async () => {
  await browser?.close();
});

const openDemo = (name: string) => browser.open('index.html', name);

/** The formatted preview's blocks of one kind (data-fountain), in order. */
function preview(page: Page, type: string): Promise<string[]> {
  return page.locator(`.screenplay [data-fountain="${type}"]`).allInnerTexts();
}

async function leftEdge(page: Page, selector: string): Promise<number> {
  const box = await page.locator(selector).first().boundingBox();
  if (box === null) throw new Error(`${selector} is not laid out`);
  return box.x;
}

describe('the screenplay demo page', () => {
  it('is served on a free port, not the 8788 of make dev, when the stack was started with --port 0', () => {
    // globalSetup starts `python -m devstack --port 0`: a test run beside a developer's
    // `make dev` must not take (or be pushed off) the demo's usual port.
    expect(new URL(stack.demoUrl).port).not.toBe('8788');
  });

  it('opens on the sample scene, stored once by the stack, formatted as a screenplay', async () => {
    // Two windows at once: the scene was seeded before the page was served, so neither
    // inserts the sample and both show it exactly once.
    const [alice, bob] = await Promise.all([openDemo('ALICE'), openDemo('BOB')]);
    await withScreenshots('demo-sample', [alice, bob], async () => {
      expect(await editorText(alice)).toBe(SAMPLE);
      expect(await editorText(bob)).toBe(SAMPLE);
      await expect.poll(() => preview(bob, 'scene-heading'), POLL).toEqual([
        "INT. WRITERS' ROOM - NIGHT",
        'EXT. PARKING LOT - CONTINUOUS',
      ]);
      expect(await preview(bob, 'character')).toEqual(['MAYA', 'THEO', 'MAYA', 'THEO', "MAYA (CONT'D)"]);
      expect(await preview(bob, 'parenthetical')).toEqual(['(not looking up)']);
      expect(await preview(bob, 'dialogue')).toContain('Which server?');
      expect(await preview(bob, 'transition')).toEqual(['CUT TO:']);
      expect((await preview(bob, 'action')).length).toBe(3);
      // Laid out as a script page: cue right of the dialogue, dialogue right of the action.
      const action = await leftEdge(bob, '[data-fountain="action"]');
      const dialogue = await leftEdge(bob, '[data-fountain="dialogue"]');
      const cue = await leftEdge(bob, '[data-fountain="character"]');
      expect(dialogue).toBeGreaterThan(action);
      expect(cue).toBeGreaterThan(dialogue);
      await expect.poll(() => alice.locator('.saved-indicator').innerText(), POLL).toBe('All changes saved');
    });
    await screenshots('demo-sample', alice);
    await Promise.all([alice.close(), bob.close()]);
  });

  it('lets two writers write the same scene, and shows who is where, by name and colour', async () => {
    const alice = await openDemo('ALICE');
    const bob = await openDemo('BOB');
    const start = await editorText(alice);
    const heading = "INT. RICK'S CAFE - NIGHT\n";
    const aliceLine = "ALICE: Here's looking at you, kid.\n";
    const bobLine = "BOB: We'll always have Paris.\n";

    await typeAtEnd(alice, heading);
    await expect.poll(() => editorText(bob), POLL).toContain(heading.trim());
    // Both type at once, at the two ends of the scene. (Typed at the same spot, concurrent
    // keystrokes may interleave, as any CRDT lets them: both windows still agree.)
    await Promise.all([typeAtEnd(alice, aliceLine), typeAt('Home', bob, bobLine)]);

    const expected = `${bobLine}${start}${heading}${aliceLine}`;
    let texts: [string, string] = ['', ''];
    try {
      await waitFor(
        'both editors to show the same text with both lines',
        () => texts[0] === expected && texts[1] === expected,
        20_000,
        async () => {
          texts = [await editorText(alice), await editorText(bob)];
        },
      );
    } catch (error) {
      await screenshots('demo-converge-failed', alice, bob);
      throw new Error(`${String(error)}; ALICE sees ${JSON.stringify(texts[0])}, BOB sees ${JSON.stringify(texts[1])}`);
    }

    // y-codemirror draws a remote caret with the other's name in .cm-ySelectionInfo, which
    // the page keeps visible without a hover.
    const bobInAlice = alice.locator('.cm-ySelectionInfo', { hasText: 'BOB' });
    const aliceInBob = bob.locator('.cm-ySelectionInfo', { hasText: 'ALICE' });
    await bobInAlice.waitFor({ timeout: 10_000 });
    await aliceInBob.waitFor({ timeout: 10_000 });
    const opacity = (label: typeof bobInAlice) => label.evaluate((el) => getComputedStyle(el).opacity);
    expect(await opacity(bobInAlice)).toBe('1');
    expect(await opacity(aliceInBob)).toBe('1');
    const background = (label: typeof bobInAlice) => label.evaluate((el) => getComputedStyle(el).backgroundColor);
    expect(await background(bobInAlice)).not.toBe(await background(aliceInBob));
    await expect.poll(() => alice.locator('.participants').innerText(), POLL).toContain('BOB');
    await expect.poll(() => bob.locator('.participants').innerText(), POLL).toContain('ALICE');

    await screenshots('demo-writers', alice, bob);
    expect(browser.pageErrors).toEqual([]);
    await Promise.all([alice.close(), bob.close()]);
  });

  it('keeps the formatted preview in step with the text, in every window', async () => {
    const alice = await openDemo('ALICE');
    const bob = await openDemo('BOB');
    await typeAtEnd(alice, '\nINT. ROOFTOP - DAWN\n\nZELDA\n(whispering)\nIt **saved**.\n\nSMASH CUT TO:\n');
    await withScreenshots('demo-preview', [alice, bob], async () => {
      for (const page of [alice, bob]) {
        await expect.poll(() => preview(page, 'scene-heading'), POLL).toContain('INT. ROOFTOP - DAWN');
        await expect.poll(() => preview(page, 'transition'), POLL).toContain('SMASH CUT TO:');
        expect(await preview(page, 'character')).toContain('ZELDA');
        expect(await preview(page, 'parenthetical')).toContain('(whispering)');
        expect(await preview(page, 'dialogue')).toContain('It saved.');
        await page.locator('.fountain-dialogue .bold', { hasText: 'saved' }).waitFor();
      }
      // An edit in the other window re-formats too: the cue becomes a scene heading.
      await bob.locator('.cm-line', { hasText: /^ZELDA$/ }).click();
      await bob.keyboard.press('End');
      await bob.keyboard.press('Shift+Home');
      await bob.keyboard.type('EXT. STAIRWELL - DAWN', { delay: 15 });
      await expect.poll(() => preview(alice, 'scene-heading'), POLL).toContain('EXT. STAIRWELL - DAWN');
      expect(await preview(alice, 'character')).not.toContain('ZELDA');
    });
    expect(browser.pageErrors).toEqual([]);
    await Promise.all([alice.close(), bob.close()]);
  });

  it('gives a viewer a read-only editor with a "View only" badge, still live', async () => {
    const writer = await openDemo('WREN');
    const critic = await openDemo('critic'); // the stack's seeded viewer
    await withScreenshots('demo-viewer', [writer, critic], async () => {
      await expect(critic.getByRole('note').innerText()).resolves.toBe('View only');
      expect(await critic.locator('.saved-indicator').count()).toBe(0);
      expect(await critic.locator('.cm-content').getAttribute('contenteditable')).toBe('false');
      expect(await writer.locator('.cm-content').getAttribute('contenteditable')).toBe('true');
      await screenshots('demo-viewer', critic);

      await critic.locator('.cm-content').click();
      await critic.keyboard.press('ControlOrMeta+End');
      await critic.keyboard.type('VIEWER EDIT', { delay: 15 });
      await critic.keyboard.press('Enter');
      await critic.keyboard.press('ControlOrMeta+a');
      await critic.keyboard.press('Backspace');

      // The viewer still follows the scene: a writer's line arrives, and then both windows
      // hold the same text, without anything the viewer typed.
      await typeAtEnd(writer, 'WREN WAS HERE\n');
      await expect.poll(() => editorText(critic), POLL).toContain('WREN WAS HERE');
      const seen = await editorText(critic);
      expect(seen).toBe(await editorText(writer));
      expect(seen).not.toContain('VIEWER EDIT');
      expect(seen).toContain("INT. WRITERS' ROOM - NIGHT");
      // Nothing reached the server to be refused.
      expect(await critic.locator('.server-errors').count()).toBe(0);
      await expect.poll(() => writer.locator('.saved-indicator').innerText(), POLL).toBe('All changes saved');
    });
    expect(browser.pageErrors).toEqual([]);
    await Promise.all([writer.close(), critic.close()]);
  });

  it('reconnects by itself when the server drops the connection, and keeps editing', async () => {
    const carol = await openDemo('CAROL');
    const own = carol.locator('.participants li:has(.you)');
    const first = await own.getAttribute('data-connection-id');
    if (first === null) throw new Error('the participants list does not mark this window');
    await dropConnection(stack, first);
    await expect
      .poll(async () => own.getAttribute('data-connection-id'), POLL)
      .not.toBe(first);
    await carol.locator(SYNCED).waitFor();
    await typeAtEnd(carol, 'CAROL: Play it again.\n');
    // A window opened afterwards loads the line from the server.
    const dave = await openDemo('DAVE');
    await expect.poll(() => editorText(dave), POLL).toContain('CAROL: Play it again.');
    expect(browser.pageErrors).toEqual([]);
    await Promise.all([carol.close(), dave.close()]);
  });
});
