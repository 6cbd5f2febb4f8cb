/**
 * The stage's HTTP API for a scene's versions (docs/http-api.md), from the browser: the
 * page is on another origin than the API, which allows it (CORS; devstack allows the demo
 * page's origin). Every call asks for a fresh token, as the WebSocket's reconnects do.
 */

import type { VersionInfo } from '../src/index.js';

/** A refusal of the API: its `{code, message}` (the function's) or `{message}` (API Gateway's). */
export class HttpApiError extends Error {
  override name = 'HttpApiError';

  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

export interface VersionsApi {
  /** Newest first, at most 100. */
  list(): Promise<VersionInfo[]>;
  save(label: string): Promise<VersionInfo>;
  /** The content of the Y.Text root `root` at that version; null when it had none. */
  text(versionId: string, root: string): Promise<string | null>;
  /** Returns the id of the version the server saved just before restoring. */
  restore(versionId: string): Promise<string>;
}

export function versionsApi(httpUrl: string, sceneId: string, getToken: () => Promise<string>): VersionsApi {
  const base = `${httpUrl.replace(/\/+$/, '')}/scenes/${encodeURIComponent(sceneId)}/versions`;

  async function call(path: string, init: RequestInit = {}): Promise<Response> {
    const headers = new Headers(init.headers);
    headers.set('Authorization', `Bearer ${await getToken()}`);
    const response = await fetch(`${base}${path}`, { ...init, headers, cache: 'no-store' });
    if (!response.ok) throw await refusal(response);
    return response;
  }

  return {
    async list() {
      const body = (await (await call('')).json()) as { versions?: unknown };
      return Array.isArray(body.versions) ? (body.versions as VersionInfo[]) : [];
    },
    async save(label) {
      const init = { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ label }) };
      return (await (await call('', init)).json()) as VersionInfo;
    },
    async text(versionId, root) {
      try {
        return await (await call(`/${encodeURIComponent(versionId)}?text=${encodeURIComponent(root)}`)).text();
      } catch (error) {
        // The version exists (it is listed) but has no such root: an empty scene then.
        if (error instanceof HttpApiError && error.code === 'not_found') return null;
        throw error;
      }
    },
    async restore(versionId) {
      const response = await call(`/${encodeURIComponent(versionId)}/restore`, { method: 'POST' });
      return String(((await response.json()) as { versionId?: unknown }).versionId ?? '');
    },
  };
}

async function refusal(response: Response): Promise<HttpApiError> {
  let body: { code?: unknown; message?: unknown } = {};
  try {
    body = (await response.json()) as typeof body;
  } catch {
    // Not JSON: the status says enough.
  }
  const code = typeof body.code === 'string' ? body.code : `http_${response.status}`;
  const message = typeof body.message === 'string' ? body.message : response.statusText;
  return new HttpApiError(response.status, code, message);
}
