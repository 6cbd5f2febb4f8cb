/**
 * Headless Chromium (Debian's package, driven by playwright-core) for the demo pages of
 * the local stack: a fresh profile per file, pages opened as a named visitor, and every
 * uncaught page error collected so a test can require none.
 */

import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { chromium, type BrowserContext, type Page } from 'playwright-core';

import type { StackInfo } from './stackInfo.js';

export const ARTIFACTS = fileURLToPath(new URL('../../test-artifacts/', import.meta.url));
const CHROMIUM = process.env['CHROMIUM_PATH'] ?? '/usr/bin/chromium';

export const SYNCED = '[role="status"][aria-label^="Collaboration status: Synced"]';

export class DemoBrowser {
  readonly pageErrors: string[] = [];

  private constructor(
    private readonly stack: StackInfo,
    private readonly context: BrowserContext,
    private readonly profile: string,
  ) {}

  static async launch(stack: StackInfo): Promise<DemoBrowser> {
    mkdirSync(ARTIFACTS, { recursive: true });
    const profile = mkdtempSync(join(tmpdir(), 'collab-chromium-'));
    // A persistent context on a fresh profile directory: nothing from an earlier run leaks in.
    const context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      viewport: { width: 1280, height: 760 },
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
    return new DemoBrowser(stack, context, profile);
  }

  /** `page` (index.html, rich.html) as `name`, once its status says Synced. */
  async open(page: string, name: string): Promise<Page> {
    const tab = await this.context.newPage();
    tab.on('pageerror', (error) => this.pageErrors.push(`${name}: ${error.message}`));
    const url = new URL(page, this.stack.demoUrl);
    url.searchParams.set('name', name);
    await tab.goto(url.toString());
    await tab.locator(SYNCED).waitFor({ timeout: 30_000 });
    return tab;
  }

  async close(): Promise<void> {
    await this.context.close();
    rmSync(this.profile, { recursive: true, force: true });
  }
}

/** Screenshots of `pages` into test-artifacts/, named `<label>-<i>.png`. */
export async function screenshots(label: string, ...pages: Page[]): Promise<void> {
  await Promise.all(pages.map((page, i) => page.screenshot({ path: join(ARTIFACTS, `${label}-${i}.png`) })));
}

/** Runs `check`; on failure, screenshots every page first (then rethrows). */
export async function withScreenshots<T>(label: string, pages: Page[], check: () => Promise<T>): Promise<T> {
  try {
    return await check();
  } catch (error) {
    await screenshots(`${label}-failed`, ...pages).catch(() => undefined);
    throw error;
  }
}

/** The screenplay editor's text without the widgets y-codemirror puts in it (remote carets and their names). */
export function editorText(page: Page): Promise<string> {
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

/** Types `text` at the start or the end of the screenplay editor, as a writer would. */
export async function typeAt(where: 'Home' | 'End', page: Page, text: string): Promise<void> {
  await page.locator('.cm-content').click();
  await page.keyboard.press(`ControlOrMeta+${where}`);
  await page.keyboard.type(text, { delay: 15 });
}

export const typeAtEnd = (page: Page, text: string) => typeAt('End', page, text);
