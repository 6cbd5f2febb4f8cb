/**
 * The rich-text demo page (rich.html: Tiptap, y-tiptap, a Y.XmlFragment) in headless
 * Chromium against the real local stack: what ProseMirror bindings send (XmlElements,
 * XmlText with bold/italic formatting attributes) passes the server's strict update
 * validation (functions/collab/yjs_format.py), reaches the other page with its marks, and
 * is stored: a page opened afterwards loads it from the server.
 */

import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';

import { DemoBrowser, screenshots, withScreenshots } from './demoBrowser.js';

const stack = inject('stack');
const POLL = { timeout: 15_000 };

let browser: DemoBrowser;

beforeAll(async () => {
  browser = await DemoBrowser.launch(stack);
});

afterAll(async () => {
  await browser?.close();
});

const openRich = (name: string) => browser.open('rich.html', name);

/** The document as HTML, without the others' carets and selections drawn into it. */
function markup(page: Page): Promise<string> {
  return page.locator('.rich-content').evaluate((content) => {
    const copy = content.cloneNode(true) as Element;
    for (const widget of copy.querySelectorAll(
      '.collaboration-carets__caret, img.ProseMirror-separator, br.ProseMirror-trailingBreak',
    )) {
      widget.remove();
    }
    for (const selection of copy.querySelectorAll('.collaboration-carets__selection')) {
      selection.replaceWith(...selection.childNodes);
    }
    copy.normalize();
    return copy.innerHTML;
  });
}

async function typeStyled(page: Page, parts: ReadonlyArray<readonly [string, '' | 'b' | 'i']>): Promise<void> {
  for (const [text, mark] of parts) {
    if (mark) await page.keyboard.press(`ControlOrMeta+${mark}`);
    await page.keyboard.type(text, { delay: 15 });
    if (mark) await page.keyboard.press(`ControlOrMeta+${mark}`);
  }
}

describe('the rich-text demo page', () => {
  it('carries bold and italic to the other page, through the server, and stores them', async () => {
    const anna = await openRich('ANNA');
    const ben = await openRich('BEN');
    const pages = [anna, ben];
    await withScreenshots('demo-rich', pages, async () => {
      await anna.locator('.rich-content').click();
      await typeStyled(anna, [
        ['Plain, then ', ''],
        ['bold', 'b'],
        [', then ', ''],
        ['italic', 'i'],
        ['.', ''],
      ]);
      const annas = '<p>Plain, then <strong>bold</strong>, then <em>italic</em>.</p>';
      await expect.poll(() => markup(anna), POLL).toBe(annas);
      await expect.poll(() => markup(ben), POLL).toBe(annas);

      // And back: Ben adds a bold paragraph with the toolbar's button.
      await ben.locator('.rich-content').click();
      await ben.keyboard.press('ControlOrMeta+End');
      await ben.keyboard.press('Enter');
      await ben.getByRole('button', { name: 'B', exact: true }).click();
      await ben.keyboard.type('Ben agrees.', { delay: 15 });
      const both = `${annas}<p><strong>Ben agrees.</strong></p>`;
      await expect.poll(() => markup(ben), POLL).toBe(both);
      await expect.poll(() => markup(anna), POLL).toBe(both);

      // Each page shows the other's caret with a name on it.
      await anna.locator('.collaboration-carets__label', { hasText: 'BEN' }).waitFor({ timeout: 10_000 });
      await ben.locator('.collaboration-carets__label', { hasText: 'ANNA' }).waitFor({ timeout: 10_000 });

      // Stored, not only relayed: a page opened now loads it all from the server.
      const cara = await openRich('CARA');
      pages.push(cara);
      await expect.poll(() => markup(cara), POLL).toBe(both);
      // The server refused nothing, and both writers' edits are stored.
      for (const page of pages) expect(await page.locator('.server-errors').count()).toBe(0);
      for (const page of [anna, ben]) {
        await expect.poll(() => page.locator('.saved-indicator').innerText(), POLL).toBe('All changes saved');
      }
    });
    await screenshots('demo-rich', anna);
    expect(browser.pageErrors).toEqual([]);
    await Promise.all(pages.map((page) => page.close()));
  });
});
