/**
 * HS256 tokens for the local stack, minted with node:crypto. They copy the claims of the
 * stack's own token (whatever scene, issuer or audience claims it carries) and change only
 * the user and the lifetime, and only for users the stack says it granted.
 */

import { createHmac } from 'node:crypto';

import type { StackInfo, StackUser } from './stackInfo.js';

type Claims = Record<string, unknown>;

function base64url(value: string): string {
  return Buffer.from(value).toString('base64url');
}

export function decodeClaims(token: string): Claims {
  return JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString('utf8')) as Claims;
}

export function signToken(secret: string, claims: Claims): string {
  const header = base64url(JSON.stringify({ alg: 'HS256', typ: 'JWT' }));
  const body = base64url(JSON.stringify(claims));
  const signature = createHmac('sha256', secret).update(`${header}.${body}`).digest('base64url');
  return `${header}.${body}.${signature}`;
}

export interface MintOptions {
  /** Seconds until expiry; negative for a token that expired that long ago. */
  expiresIn?: number;
  /** Drop these claims of the template (e.g. the one that ties the token to a scene). */
  without?: string[];
}

export function mintToken(stack: StackInfo, user: StackUser, options: MintOptions = {}): string {
  const { expiresIn = 3_600, without = [] } = options;
  const now = Math.floor(Date.now() / 1000);
  const claims: Claims = { ...decodeClaims(stack.token), sub: user.sub, name: user.name, iat: now, exp: now + expiresIn };
  for (const claim of without) delete claims[claim];
  return signToken(stack.jwtSecret, claims);
}

/** The user of the stack's own token: certainly granted on the demo scene. */
export function tokenUser(stack: StackInfo): StackUser {
  const claims = decodeClaims(stack.token);
  const sub = String(claims['sub']);
  return { sub, name: typeof claims['name'] === 'string' ? claims['name'] : sub };
}

/** A user who may edit the demo scene: the token's own user unless the stack says it is a viewer. */
export function editor(stack: StackInfo): StackUser {
  const own = tokenUser(stack);
  const listed = stack.users.find((user) => user.sub === own.sub);
  if (listed?.role !== 'viewer') return own;
  return stack.users.find((user) => user.role === 'owner' || user.role === 'editor') ?? own;
}

export function viewer(stack: StackInfo): StackUser | undefined {
  return stack.users.find((user) => user.role === 'viewer');
}
