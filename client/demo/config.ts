/**
 * The local stack's answer to GET /config.json?name=NAME&scene=SCENE: where to connect (the
 * WebSocket API, and the HTTP API for versions) and a token for that user. Fetched again
 * for every (re)connect and every HTTP API call, which is how the demo refreshes tokens.
 */

import type { Role } from '../src/index.js';

export interface DemoConfig {
  wsUrl: string;
  /** The stage's HTTP API (versions), if the stack names one. */
  httpUrl: string | null;
  sceneId: string;
  token: string;
  userName: string;
  /** What the stack granted; the server's `connected` message (provider.role) decides. */
  role: Role | null;
}

const ROLES: readonly string[] = ['owner', 'editor', 'viewer'];

export async function fetchConfig(name: string, scene?: string): Promise<DemoConfig> {
  const query = new URLSearchParams({ name });
  if (scene !== undefined) query.set('scene', scene);
  const response = await fetch(`/config.json?${query.toString()}`, { cache: 'no-store' });
  if (!response.ok) throw new Error(`/config.json answered ${response.status}`);
  const config = (await response.json()) as Partial<Record<keyof DemoConfig, unknown>>;
  for (const field of ['wsUrl', 'sceneId', 'token'] as const) {
    if (typeof config[field] !== 'string' || config[field] === '') {
      throw new Error(`/config.json has no '${field}'`);
    }
  }
  return {
    wsUrl: config.wsUrl as string,
    httpUrl: typeof config.httpUrl === 'string' && config.httpUrl !== '' ? config.httpUrl : null,
    sceneId: config.sceneId as string,
    token: config.token as string,
    userName: typeof config.userName === 'string' ? config.userName : name,
    role: typeof config.role === 'string' && ROLES.includes(config.role) ? (config.role as Role) : null,
  };
}
