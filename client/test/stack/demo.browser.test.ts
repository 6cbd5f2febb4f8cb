/**
 * The demo page in headless Chromium (Debian's package, driven by playwright-core): two
 * pages type into the scene editor at once, end with the same text, and each shows the
 * other's cursor. Screenshots go to test-artifacts/.
 */

import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';

import { dropConnection, waitFor } from './clients.js';

const stack = inject('stack');
const ARTIFACTS = fileURLToPath(new URL('../../test-artifacts/', import.meta.url));
const CHROMIUM = process.env['CHROMIUM_PATH'] ?? '/usr/bin/chromium';

let profile: string;
let context: BrowserContext;
const pageErrors: string[] = [];

beforeAll(async () => {
  mkdirSync(ARTIFACTS, { recursive: true });
  profile = mkdtempSync(join(tmpdir(), 'collab-chromium-'));
  // A persistent context on a fresh profile directory: nothing from an earlier run leaks in.
  context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    viewport: { width: 1100, height: 700 },
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
});

afterAll(async () => {
  await context?.close();
  if (profile) rmSync(profile, { recursive: true, force: true });
});

async function openDemo(name: string): Promise<Page> {
  const page = await context.newPage();
  page.on('pageerror', (error) => pageErrors.push(`${name}: ${error.message}`));
  const url = new URL(stack.demoUrl);
  url.searchParams.set('name', name);
  await page.goto(url.toString());
  await page.locator('[role="status"][aria-label^="Collaboration status: Synced"]').waitFor({ timeout: 30_000 });
  return page;
}

/** The editor's text without the widgets y-codemirror puts in it (remote carets and their names). */
function editorText(page: Page): Promise<string> {
  return page.locator('.cm-content').evaluate((content) =>
    [...content.querySelectorAll('.cm-line')]
      .map((line) => {
        const copy = line.cloneNode(true) as Element;
        for (const widget of copy.querySelectorAll('.cm-ySelectionCaret, .cm-widgetBuffer')) widget.remove();
        return copy.textContent ?? '';
      })
      .join('\n'),
  );
}

async function typeAt(where: 'Home' | 'End', page: Page, text: string): Promise<void> {
  await page.locator('.cm-content').click();
  await page.keyboard.press(`ControlOrMeta+${where}`);
  await page.keyboard.type(text, { delay: 15 });
}

const typeAtEnd = (page: Page, text: string) => typeAt('End', page, text);

describe('the demo page', () => {
  it('lets two windows write the same scene and see each other', async () => {
    const alice = await openDemo('ALICE');
    const bob = await openDemo('BOB');
    const heading = "INT. RICK'S CAFE - NIGHT\n";
    const aliceLine = "ALICE: Here's looking at you, kid.\n";
    const bobLine = "BOB: We'll always have Paris.\n";

    await typeAtEnd(alice, heading);
    await expect.poll(() => editorText(bob)).toContain(heading.trim());
    // Both type at once, at the two ends of the scene. (Typed at the same spot, concurrent
    // keystrokes may interleave, as any CRDT lets them: both windows still agree.)
    await Promise.all([typeAtEnd(alice, aliceLine), typeAt('Home', bob, bobLine)]);

    const expected = `${bobLine}${heading}${aliceLine}`;
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
      await alice.screenshot({ path: join(ARTIFACTS, 'demo-alice-failed.png') });
      await bob.screenshot({ path: join(ARTIFACTS, 'demo-bob-failed.png') });
      throw new Error(`${String(error)}; ALICE sees ${JSON.stringify(texts[0])}, BOB sees ${JSON.stringify(texts[1])}`);
    }

    // y-codemirror draws a remote caret with the other's name in .cm-ySelectionInfo.
    await alice.locator('.cm-ySelectionInfo', { hasText: 'BOB' }).waitFor({ state: 'attached', timeout: 10_000 });
    await bob.locator('.cm-ySelectionInfo', { hasText: 'ALICE' }).waitFor({ state: 'attached', timeout: 10_000 });
    await expect.poll(() => alice.locator('.participants').innerText()).toContain('BOB');
    await expect.poll(() => bob.locator('.participants').innerText()).toContain('ALICE');

    // Hovering a caret shows its name label, which makes the screenshot tell the story.
    await alice.locator('.cm-ySelectionCaret').first().hover();
    await alice.waitForTimeout(500); // the label fades in
    await alice.screenshot({ path: join(ARTIFACTS, 'demo-alice.png') });
    await bob.screenshot({ path: join(ARTIFACTS, 'demo-bob.png') });
    expect(pageErrors).toEqual([]);
  });

  it('reconnects by itself when the server drops the connection, and keeps editing', async () => {
    const carol = await openDemo('CAROL');
    const own = carol.locator('.participants li:has(.you)');
    const first = await own.getAttribute('data-connection-id');
    if (first === null) throw new Error('the participants list does not mark this window');
    await dropConnection(stack, first);
    await expect
      .poll(async () => own.getAttribute('data-connection-id'), { timeout: 15_000 })
      .not.toBe(first);
    await carol.locator('[role="status"][aria-label^="Collaboration status: Synced"]').waitFor();
    await typeAtEnd(carol, 'CAROL: Play it again.\n');
    // A window opened afterwards loads the line from the server.
    const dave = await openDemo('DAVE');
    await expect.poll(() => editorText(dave), { timeout: 15_000 }).toContain('CAROL: Play it again.');
    expect(pageErrors).toEqual([]);
  });
});
