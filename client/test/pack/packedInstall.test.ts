/**
 * `npm pack` gives a tarball another app can install and use: it is installed into a fresh
 * app in a temp dir outside the repository (its dependencies from the npm registry or
 * cache), which type-checks and builds an import of both entry points, and runs them in
 * Node. The app uses this package's own tsc and vite, so no tool is fetched.
 */

import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { APP_FILES } from './app.js';

const run = promisify(execFile);
const CLIENT = fileURLToPath(new URL('../../', import.meta.url));
const manifest = JSON.parse(readFileSync(join(CLIENT, 'package.json'), 'utf8')) as {
  name: string;
  devDependencies: Record<string, string>;
};
const TSC = join(CLIENT, 'node_modules/typescript/bin/tsc');
const VITE = join(CLIENT, 'node_modules/vite/bin/vite.js');

let work: string;
let app: string;
let packed: { filename: string; files: { path: string }[] };

async function sh(command: string, args: string[], cwd: string): Promise<string> {
  try {
    const { stdout } = await run(command, args, { cwd, maxBuffer: 32 * 1024 * 1024, env: { ...process.env, NO_UPDATE_NOTIFIER: '1' } });
    return stdout;
  } catch (error) {
    const { stdout = '', stderr = '' } = error as { stdout?: string; stderr?: string };
    throw new Error(`${command} ${args.join(' ')} failed in ${cwd}:\n${stdout}\n${stderr}`);
  }
}

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'y-apigateway-pack-'));
  // `npm pack` runs prepack (a clean build of dist/) and prints what it packed.
  const [entry] = JSON.parse(await sh('npm', ['pack', '--json', '--pack-destination', work], CLIENT)) as (typeof packed)[];
  packed = entry!;
  app = join(work, 'app');
  for (const [path, text] of Object.entries(APP_FILES)) {
    mkdirSync(dirname(join(app, path)), { recursive: true });
    writeFileSync(join(app, path), text);
  }
  // The versions this package is developed and tested with.
  const pinned = ['yjs', 'react', 'react-dom', '@types/react', '@types/react-dom', 'ws'].map(
    (name) => `${name}@${manifest.devDependencies[name]}`,
  );
  await sh('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', join(work, packed.filename), ...pinned], app);
});

afterAll(() => {
  if (work !== undefined && process.env['KEEP_PACK_APP'] === undefined) rmSync(work, { recursive: true, force: true });
});

describe('the packed tarball', () => {
  it('holds the built entry points with their declarations, and no tests or demo', () => {
    const files = packed.files.map((file) => file.path);
    for (const path of ['dist/index.js', 'dist/index.d.ts', 'dist/react/index.js', 'dist/react/index.d.ts', 'package.json', 'README.md']) {
      expect(files).toContain(path);
    }
    expect(files.filter((path) => /^(test|demo|demo-dist|node_modules)\//.test(path))).toEqual([]);
    expect(packed.filename).toBe(`${manifest.name}-${JSON.parse(readFileSync(join(CLIENT, 'package.json'), 'utf8')).version}.tgz`);
  });

  it('type-checks an app that imports both entry points, with Bundler and NodeNext resolution', async () => {
    await Promise.all([
      sh(process.execPath, [TSC, '-p', 'tsconfig.json'], app),
      sh(process.execPath, [TSC, '-p', 'tsconfig.nodenext.json'], app),
    ]);
  });

  it('builds that app with Vite', async () => {
    await sh(process.execPath, [VITE, 'build', '--logLevel', 'warn'], app);
    const assets = join(app, 'dist/assets');
    const bundle = readdirSync(assets)
      .filter((name) => name.endsWith('.js'))
      .map((name) => readFileSync(join(assets, name), 'utf8'))
      .join('\n');
    expect(bundle).toContain('collab.v1'); // the provider
    expect(bundle).toContain('Collaboration status'); // the React entry point
  });

  it('runs both entry points in Node straight from node_modules', async () => {
    const result = JSON.parse(await sh(process.execPath, ['run.mjs'], app)) as Record<string, unknown>;
    expect(result).toMatchObject({ status: 'error', saved: false, unsynced: 1 });
    expect(result['html']).toContain('Collaboration status: Connection error');
  });
});
