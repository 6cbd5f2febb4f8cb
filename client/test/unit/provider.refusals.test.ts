import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';

import type { ConnectionError } from '../../src/provider.js';
import { sceneIdProblem } from '../../src/sceneId.js';
import { connected, Harness, settle } from './providerHarness.js';

let harness: Harness;

beforeEach(() => {
  vi.useFakeTimers();
  harness = new Harness();
});

afterEach(() => {
  harness.destroy();
  vi.unstubAllGlobals();
  vi.useRealTimers();
});

/** A JWT (unsigned: only its claims matter to the client) that expires at `exp` seconds. */
function jwt(exp: number): string {
  const part = (value: object) => Buffer.from(JSON.stringify(value)).toString('base64url');
  return `${part({ alg: 'HS256', typ: 'JWT' })}.${part({ sub: 'u-me', exp })}.signature`;
}

/** Refuse the current attempt, then wait out the longest backoff it may take. */
async function refuse(): Promise<void> {
  await settle(); // the token promise, then the socket
  harness.last().refuseUpgrade();
  await settle(10_000);
}

describe('ApiGatewayProvider: refusals', () => {
  it.each([
    ['', 'empty'],
    ['scene 42', '" "'],
    ['{scene}', '"{" "}"'],
    ['s'.repeat(129), '129 characters'],
  ])('refuses scene id %j before connecting', async (sceneId, reason) => {
    const { provider } = harness.start({}, undefined, sceneId);
    await settle(60_000);
    expect(harness.sockets).toHaveLength(0);
    expect(provider.status).toBe('error');
    expect(sceneIdProblem(sceneId)).toContain(reason);
  });

  it('accepts the ids the server accepts', () => {
    for (const id of ['scene-1', 'my_film.s01:e02', 'A'.repeat(128)]) expect(sceneIdProblem(id)).toBeNull();
  });

  it('reports a bad scene id to a listener that connects later', async () => {
    const { provider } = harness.start({ connect: false }, undefined, 'my film/1');
    const errors: ConnectionError[] = [];
    provider.on('connection-error', (error) => errors.push(error));
    provider.connect();
    expect(errors.map((e) => e.code)).toEqual(['invalid_scene_id']);
    expect(errors[0]?.message).toContain('"/"');
  });

  it('stops with unauthorized after 4 refused upgrades in a row, asking for a fresh token before each', async () => {
    let calls = 0;
    const getToken = vi.fn(async () => `jwt-${++calls}`);
    const probe = vi.fn(async () => true);
    const { provider, statuses } = harness.start({ getToken, probeServer: probe, unauthorizedRetryDelay: 0 });
    const errors: ConnectionError[] = [];
    provider.on('connection-error', (error) => errors.push(error));
    for (let i = 0; i < 3; i++) await refuse();
    expect(provider.status).toBe('connecting');
    expect(probe).not.toHaveBeenCalled();
    await refuse();
    expect(probe).toHaveBeenCalledWith('https://example.execute-api.eu-west-1.amazonaws.com/prod');
    expect(provider.status).toBe('unauthorized');
    expect(statuses.at(-1)).toBe('unauthorized');
    expect(errors.at(-1)?.code).toBe('unauthorized');
    expect(getToken).toHaveBeenCalledTimes(4);
    expect(harness.sockets.map((s) => new URL(s.url).searchParams.get('token'))).toEqual(['jwt-1', 'jwt-2', 'jwt-3', 'jwt-4']);
    await settle(120_000);
    expect(harness.sockets).toHaveLength(4);
    // connect() (the hook's reconnect) starts over, with a full allowance.
    provider.connect();
    await settle();
    expect(harness.sockets).toHaveLength(5);
    expect(provider.status).toBe('connecting');
  });

  it('says when the token it sent had expired', async () => {
    const expired = jwt(Math.floor(Date.now() / 1000) - 60);
    const { provider } = harness.start({ token: expired });
    const errors: ConnectionError[] = [];
    provider.on('connection-error', (error) => errors.push(error));
    for (let i = 0; i < 4; i++) await refuse();
    expect(provider.status).toBe('unauthorized');
    expect(errors.at(-1)?.message).toMatch(/the token expired at .*getToken must return a fresh one/);
  });

  it('keeps retrying while the server does not answer HTTP either (a network failure)', async () => {
    let reachable = false;
    const probe = vi.fn(async () => reachable);
    const { provider } = harness.start({ probeServer: probe, maxBackoffTime: 1_000 });
    for (let i = 0; i < 8; i++) await refuse();
    expect(provider.status).toBe('connecting');
    // On the 4th refusal; unreachable, so the count starts afresh: again on the 8th.
    expect(probe).toHaveBeenCalledTimes(2);
    reachable = true;
    for (let i = 0; i < 3; i++) await refuse();
    expect(provider.status).toBe('connecting'); // the failures of the outage do not count
    await refuse();
    expect(provider.status).toBe('unauthorized');
  });

  it('tries again a minute after unauthorized, so a short server outage does not stop it for good', async () => {
    let calls = 0;
    const getToken = vi.fn(async () => `jwt-${++calls}`);
    const { provider } = harness.start({ getToken, probeServer: async () => true });
    for (let i = 0; i < 4; i++) await refuse();
    expect(provider.status).toBe('unauthorized');
    await settle(40_000); // 50 s after the refusal (refuse() waited 10 s)
    expect(harness.sockets).toHaveLength(4); // nothing more within the minute
    await settle(15_000);
    await settle();
    expect(harness.sockets).toHaveLength(5); // a new round, with a fresh token
    expect(getToken).toHaveBeenCalledTimes(5);
    expect(provider.status).toBe('connecting');
    harness.last().open(); // the server is back: the upgrade succeeds
    harness.last().receive(connected());
    await settle();
    expect(provider.status).toBe('connected');
    expect(provider.refusedUpgrades).toBe(0);
  });

  it('does not count attempts while the browser says it is offline', async () => {
    vi.stubGlobal('navigator', { onLine: false });
    const { provider } = harness.start();
    for (let i = 0; i < 6; i++) await refuse();
    expect(provider.refusedUpgrades).toBe(0);
    expect(provider.status).toBe('connecting');
  });

  it('counts only refusals in a row: an upgrade that opened starts the count again', async () => {
    const { provider } = harness.start();
    for (let i = 0; i < 3; i++) await refuse();
    harness.last().open();
    harness.last().receive(connected());
    harness.last().serverClose(1001);
    await settle(10_000);
    for (let i = 0; i < 3; i++) await refuse();
    expect(provider.status).toBe('connecting');
    expect(provider.refusedUpgrades).toBe(3);
  });

  it('retries for ever with maxRefusedUpgrades 0', async () => {
    const { provider } = harness.start({ maxRefusedUpgrades: 0 });
    for (let i = 0; i < 10; i++) await refuse();
    expect(provider.status).toBe('connecting');
    expect(harness.sockets).toHaveLength(11);
  });
});
