/** Providers against the local stack from Node, with `ws` as the WebSocket, and waiting helpers. */

import { WebSocket } from 'ws';
import * as Y from 'yjs';

import { ApiGatewayProvider, type ApiGatewayProviderOptions } from '../../src/index.js';
import type { StackInfo } from './stackInfo.js';

export class Clients {
  private readonly providers: ApiGatewayProvider[] = [];

  constructor(private readonly stack: StackInfo) {}

  open(options: ApiGatewayProviderOptions = {}): ApiGatewayProvider {
    const provider = new ApiGatewayProvider(this.stack.wsUrl, this.stack.sceneId, new Y.Doc(), {
      WebSocketPolyfill: WebSocket,
      ...(options.getToken === undefined ? { token: this.stack.token } : {}),
      ...options,
    });
    this.providers.push(provider);
    return provider;
  }

  closeAll(): void {
    for (const provider of this.providers.splice(0)) {
      provider.destroy();
      provider.doc.destroy();
    }
  }
}

/** Polls `condition` (after `refresh`, for state that must be fetched, e.g. from a page). */
export async function waitFor(
  what: string,
  condition: () => boolean,
  timeoutMs = 20_000,
  refresh?: () => Promise<void>,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    await refresh?.();
    if (condition()) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

export async function synced(...providers: ApiGatewayProvider[]): Promise<void> {
  await waitFor('providers to sync', () => providers.every((p) => p.synced && p.connectionId !== null));
}

/** A text of its own per test: every test shares the demo scene, none sees another's text. */
export function textName(label: string): string {
  return `${label}-${Math.random().toString(36).slice(2, 8)}`;
}

export function sameText(name: string, ...providers: ApiGatewayProvider[]): boolean {
  const [first, ...rest] = providers.map((p) => p.doc.getText(name).toString());
  return rest.every((text) => text === first);
}

/** Drop a connection the way API Gateway does: DELETE @connections/{id} on the Management API. */
export async function dropConnection(stack: StackInfo, connectionId: string): Promise<void> {
  const base = stack.managementUrl.replace(/\/$/, '');
  const response = await fetch(`${base}/@connections/${encodeURIComponent(connectionId)}`, { method: 'DELETE' });
  if (response.status !== 204 && response.status !== 200) {
    throw new Error(`DELETE @connections/${connectionId} answered ${response.status}`);
  }
}
