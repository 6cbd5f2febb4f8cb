/** HS256 tokens for the local stack, minted with node:crypto (no JWT library needed). */

import { createHmac } from 'node:crypto';

import type { StackInfo, StackUser } from './stackInfo.js';

function base64url(value: string | Buffer): string {
  return Buffer.from(value).toString('base64url');
}

export function mintToken(secret: string, user: StackUser, expiresInSeconds = 3_600): string {
  const now = Math.floor(Date.now() / 1000);
  const header = base64url(JSON.stringify({ alg: 'HS256', typ: 'JWT' }));
  const claims = base64url(JSON.stringify({ sub: user.sub, name: user.name, iat: now, exp: now + expiresInSeconds }));
  const signature = createHmac('sha256', secret).update(`${header}.${claims}`).digest('base64url');
  return `${header}.${claims}.${signature}`;
}

/** The user of the stack's own token: certainly granted on the demo scene. */
export function tokenUser(token: string): StackUser {
  const claims = JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString('utf8')) as Record<
    string,
    unknown
  >;
  const sub = String(claims['sub']);
  return { sub, name: typeof claims['name'] === 'string' ? claims['name'] : sub };
}

/**
 * Users the stack grants on the demo scene: those it lists (as strings or objects), else the
 * user of its token. Tokens are minted only for these, never for made-up users.
 */
export function grantedUsers(stack: StackInfo): StackUser[] {
  const listed = (stack.users ?? []).flatMap((entry): StackUser[] => {
    if (typeof entry === 'string') return [{ sub: entry, name: entry }];
    if (typeof entry !== 'object' || entry === null) return [];
    const record = entry as Record<string, unknown>;
    const sub = record['userId'] ?? record['sub'] ?? record['id'];
    const name = record['userName'] ?? record['name'] ?? sub;
    const role = record['role'];
    if (typeof sub !== 'string') return [];
    return [typeof role === 'string' ? { sub, name: String(name), role } : { sub, name: String(name) }];
  });
  return listed.length > 0 ? listed : [tokenUser(stack.token)];
}

/** Granted users who may edit (a listed role of viewer is left out). */
export function editors(stack: StackInfo): StackUser[] {
  const users = grantedUsers(stack).filter((user) => user.role !== 'viewer');
  return users.length > 0 ? users : [tokenUser(stack.token)];
}
