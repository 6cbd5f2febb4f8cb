/**
 * The screenplay page's History panel in headless Chromium against the real local stack:
 * the page calls the stage's HTTP API from its own origin (allowed by CORS, as devstack
 * configures it), and every page of the scene keeps its list current from the server's
 * `version` message, without a reload. Screenshots go to test-artifacts/.
 *
 * Every file shares the demo scene, and demo.browser.test.ts expects it to open on the
 * sample: the scene is saved as found before and restored after, through the HTTP API.
 */

import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';

import { DemoBrowser, editorText, screenshots, typeAtEnd, withScreenshots } from './demoBrowser.js';

const stack = inject('stack');
const POLL = { timeout: 15_000 };

let browser: DemoBrowser;
let asFound: string;

async function api(path: string, init: RequestInit = {}): Promise<Response> {
  const url = `${stack.httpUrl}/scenes/${stack.sceneId}/versions${path}`;
  const response = await fetch(url, { ...init, headers: { Authorization: `Bearer ${stack.token}`, ...init.headers } });
  if (!response.ok) throw new Error(`${init.method ?? 'GET'} ${url} answered ${response.status}: ${await response.text()}`);
  return response;
}

beforeAll(async () => {
  const saved = await api('', { method: 'POST', body: JSON.stringify({ label: 'before the history test' }) });
  asFound = ((await saved.json()) as { versionId: string }).versionId;
  browser = await DemoBrowser.launch(stack);
});

afterAll(async () => {
  await browser?.close();
  if (asFound) await api(`/${asFound}/restore`, { method: 'POST' });
});

const openDemo = (name: string) => browser.open('index.html', name);

/** The history row of the version labelled exactly `label` (an automatic one is marked "auto"). */
function row(page: Page, label: string) {
  const exactly = new RegExp(`^${label.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}( auto)?$`);
  return page.locator('.versions li', { has: page.locator('.version-label', { hasText: exactly }) });
}

function listedIds(page: Page): Promise<(string | null)[]> {
  return page.locator('.versions li').evaluateAll((items) => items.map((item) => item.getAttribute('data-version-id')));
}

async function savedEverything(page: Page): Promise<void> {
  await expect.poll(() => page.locator('.saved-indicator').innerText(), POLL).toBe('All changes saved');
}

describe("the screenplay page's history", () => {
  it('saves a version on one page, and both lists show it, newest first, without a reload', async () => {
    const alice = await openDemo('ALICE');
    const bob = await openDemo('BOB');
    const label = `draft ${Date.now()}`;
    await withScreenshots('history-save', [alice, bob], async () => {
      await typeAtEnd(alice, 'ALICE: Round up the usual suspects.\n');
      await savedEverything(alice);
      await alice.getByLabel('Version label').fill(label);
      await alice.getByRole('button', { name: 'Save version' }).click();

      for (const page of [alice, bob]) {
        await row(page, label).waitFor({ timeout: 15_000 });
        expect(await row(page, label).locator('.version-meta').innerText()).toContain('by alice');
        const ids = await listedIds(page);
        expect(ids).toEqual([...ids].sort().reverse());
      }
      expect(await alice.getByLabel('Version label').inputValue()).toBe('');
    });
    await screenshots('history-save', bob);
    expect(browser.pageErrors).toEqual([]);
    await Promise.all([alice.close(), bob.close()]);
  });

  it('previews a version read-only and restores it from the other page: both editors show its text', async () => {
    const alice = await openDemo('ALICE');
    const bob = await openDemo('BOB');
    const label = `take two ${Date.now()}`;
    await withScreenshots('history-restore', [alice, bob], async () => {
      await typeAtEnd(alice, 'RENAULT: I am shocked, shocked.\n');
      await savedEverything(alice);
      const versionText = await editorText(alice);
      await alice.getByLabel('Version label').fill(label);
      await alice.getByRole('button', { name: 'Save version' }).click();
      await row(bob, label).waitFor({ timeout: 15_000 });

      const later = 'RICK: This is the beginning of a beautiful friendship.\n';
      await typeAtEnd(alice, later);
      await expect.poll(() => editorText(bob), POLL).toContain(later.trim());
      await savedEverything(alice);

      // Bob previews it: the version's text, read-only, the editor unchanged.
      await row(bob, label).getByRole('button', { name: 'Preview' }).click();
      const dialog = bob.getByRole('dialog');
      await dialog.waitFor();
      expect(await dialog.getByRole('heading').innerText()).toBe(label);
      expect(await dialog.locator('.version-text').textContent()).toBe(versionText);
      expect(await dialog.locator('textarea, [contenteditable="true"], input').count()).toBe(0);
      await screenshots('history-preview', bob);
      await dialog.getByRole('button', { name: 'Close' }).click();
      await dialog.waitFor({ state: 'hidden' });
      expect(await editorText(bob)).toContain(later.trim());

      // Restore asks first; Cancel leaves everything as it is.
      await row(bob, label).getByRole('button', { name: 'Restore' }).click();
      await row(bob, label).getByRole('button', { name: 'Cancel' }).click();
      await row(bob, label).getByRole('button', { name: 'Restore' }).click();
      await row(bob, label).getByRole('button', { name: 'Yes, restore' }).click();

      await expect.poll(() => editorText(bob), POLL).toBe(versionText);
      await expect.poll(() => editorText(alice), POLL).toBe(versionText);
      // Both lists gain the version saved just before the restore (which holds the later
      // line), and both pages say what was restored.
      for (const page of [alice, bob]) {
        await row(page, `before restore of ${label}`).waitFor({ timeout: 15_000 });
        await expect.poll(() => page.locator('.history-notice').innerText(), POLL).toContain(`Restored “${label}”`);
      }
      await row(alice, `before restore of ${label}`).getByRole('button', { name: 'Preview' }).click();
      expect(await alice.getByRole('dialog').locator('.version-text').textContent()).toContain(later.trim());
      await alice.keyboard.press('Escape');
      await alice.getByRole('dialog').waitFor({ state: 'hidden' });

      // The restored scene is an ordinary one: the next edit merges on top, on both pages.
      await typeAtEnd(bob, 'SAM: Play it.\n');
      await expect.poll(() => editorText(alice), POLL).toBe(`${versionText}SAM: Play it.\n`);
    });
    await screenshots('history-restored', alice, bob);
    expect(browser.pageErrors).toEqual([]);
    await Promise.all([alice.close(), bob.close()]);
  });

  it('lets a viewer list and preview versions, not save or restore them', async () => {
    const critic = await openDemo('critic'); // the stack's seeded viewer
    await withScreenshots('history-viewer', [critic], async () => {
      await row(critic, 'before the history test').waitFor({ timeout: 15_000 });
      expect(await critic.getByRole('button', { name: 'Save version' }).count()).toBe(0);
      expect(await critic.getByLabel('Version label').count()).toBe(0);
      expect(await critic.locator('.versions').getByRole('button', { name: 'Restore' }).count()).toBe(0);
      await row(critic, 'before the history test').getByRole('button', { name: 'Preview' }).click();
      await critic.getByRole('dialog').locator('.version-text').waitFor();
      expect(await critic.locator('.history-error').count()).toBe(0);
    });
    expect(browser.pageErrors).toEqual([]);
    await critic.close();
  });
});
