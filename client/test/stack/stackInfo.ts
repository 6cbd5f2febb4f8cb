/** What `python -m devstack --json` prints on its first line (the contract with devstack/). */

export interface StackUser {
  sub: string;
  name: string;
  /** The role the stack says it granted, when it says. */
  role?: string;
}

export interface StackInfo {
  wsUrl: string;
  managementUrl: string;
  sceneId: string;
  token: string;
  demoUrl: string;
  /** HS256 secret of the local stack, so tests can mint their own tokens. */
  jwtSecret: string;
  /** Users the stack grants access to the demo scene, when it lists them. */
  users?: unknown[];
}

declare module 'vitest' {
  export interface ProvidedContext {
    stack: StackInfo;
  }
}

const REQUIRED = ['wsUrl', 'managementUrl', 'sceneId', 'token', 'demoUrl', 'jwtSecret'] as const;

export function parseStackInfo(line: string): StackInfo {
  const info = JSON.parse(line) as Record<string, unknown>;
  const missing = REQUIRED.filter((field) => typeof info[field] !== 'string' || info[field] === '');
  if (missing.length > 0) throw new Error(`devstack --json printed no ${missing.join(', ')}: ${line}`);
  return info as unknown as StackInfo;
}
