/**
 * Starts the real local stack once for the `stack` project: `python -m devstack --json
 * --port 0` from the repository root, whose first stdout line describes it. Its output is
 * kept in test-artifacts/devstack.log; it is stopped with SIGTERM at the end.
 */

import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, existsSync, mkdirSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

import type { TestProject } from 'vitest/node';

import { parseStackInfo, type StackInfo } from './stackInfo.js';

const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const ARTIFACTS = fileURLToPath(new URL('../../test-artifacts/', import.meta.url));
const PYTHON = `${REPO_ROOT}.venv/bin/python`;
const START_TIMEOUT_MS = 120_000;

function firstLine(child: ChildProcess): Promise<string> {
  return new Promise((resolve, reject) => {
    const stdout = child.stdout;
    if (stdout === null) return reject(new Error('devstack has no stdout'));
    const lines = createInterface({ input: stdout });
    const timer = setTimeout(
      () => reject(new Error(`devstack printed nothing within ${START_TIMEOUT_MS / 1000}s`)),
      START_TIMEOUT_MS,
    );
    lines.once('line', (line) => {
      clearTimeout(timer);
      resolve(line);
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`devstack exited (${signal ?? code}) before describing itself; see test-artifacts/devstack.log`));
    });
  });
}

function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const killer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    child.once('exit', () => {
      clearTimeout(killer);
      resolve();
    });
    child.kill('SIGTERM');
  });
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  if (!existsSync(PYTHON)) throw new Error(`${PYTHON} is missing: run \`make setup\` first`);
  mkdirSync(ARTIFACTS, { recursive: true });
  const log = createWriteStream(`${ARTIFACTS}devstack.log`);
  const child = spawn(PYTHON, ['-m', 'devstack', '--json', '--port', '0'], {
    cwd: REPO_ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stderr?.pipe(log);
  let stack: StackInfo;
  try {
    stack = parseStackInfo(await firstLine(child));
  } catch (error) {
    await stop(child);
    throw error;
  }
  // Everything after the first line is the stack's own log.
  child.stdout?.pipe(log);
  project.provide('stack', stack);
  return async () => {
    await stop(child);
    log.end();
  };
}
