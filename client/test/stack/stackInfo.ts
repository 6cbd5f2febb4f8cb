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
  /** The HTTP API (versions); it allows the demo page's origin (CORS). */
  httpUrl: string;
  sceneId: string;
  token: string;
  demoUrl: string;
  /** HS256 secret of the local stack, so tests can mint their own tokens. */
  jwtSecret: string;
  /** Users the stack granted on the demo scene. */
  users: StackUser[];
}

declare module 'vitest' {
  export interface ProvidedContext {
    stack: StackInfo;
  }
}

const REQUIRED = ['wsUrl', 'managementUrl', 'httpUrl', 'sceneId', 'token', 'demoUrl', 'jwtSecret'] as const;

/** `WS_URL` → `wsUrl`: devstack prints KEY=VALUE names, and may keep them in its JSON. */
function camelCase(key: string): string {
  if (!/^[A-Z0-9_]+$/.test(key)) return key;
  return key.toLowerCase().replace(/_([a-z0-9])/g, (_match, letter: string) => letter.toUpperCase());
}

/** Users as a list of names or objects, or as devstack's "user:role,user:role". */
function parseUsers(value: unknown): StackUser[] {
  const entries = typeof value === 'string' ? value.split(',').filter(Boolean) : Array.isArray(value) ? value : [];
  return entries.flatMap((entry: unknown): StackUser[] => {
    if (typeof entry === 'string') {
      const [sub = '', role] = entry.split(':');
      return sub ? [role ? { sub, name: sub, role } : { sub, name: sub }] : [];
    }
    if (typeof entry !== 'object' || entry === null) return [];
    const record = entry as Record<string, unknown>;
    const sub = record['userId'] ?? record['sub'] ?? record['id'];
    if (typeof sub !== 'string') return [];
    const name = String(record['userName'] ?? record['name'] ?? sub);
    const role = record['role'];
    return [typeof role === 'string' ? { sub, name, role } : { sub, name }];
  });
}

export function parseStackInfo(line: string): StackInfo {
  const raw = JSON.parse(line) as Record<string, unknown>;
  const info: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(raw)) info[camelCase(key)] = value;
  const missing = REQUIRED.filter((field) => typeof info[field] !== 'string' || info[field] === '');
  if (missing.length > 0) throw new Error(`devstack --json printed no ${missing.join(', ')}: ${line}`);
  return { ...(info as unknown as StackInfo), users: parseUsers(info['users']) };
}
