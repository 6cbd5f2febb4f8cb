/** Where and how to open the socket: the URL and, for the subprotocol variant, the protocols. */

import { SUBPROTOCOL } from './framing.js';

/**
 * How the JWT reaches the server: the `token` query parameter (docs/design.md §2's default), or the
 * second subprotocol next to `collab.v1`, which keeps the token out of URLs that proxies and
 * access logs record.
 */
export type TokenTransport = 'query' | 'subprotocol';

export interface ConnectTarget {
  url: string;
  protocols?: string[];
}

export function connectTarget(
  serverUrl: string,
  sceneId: string,
  token: string,
  params: Record<string, string>,
  transport: TokenTransport,
): ConnectTarget {
  const query = new URLSearchParams({ sceneId });
  if (transport === 'query') query.set('token', token);
  for (const [name, value] of Object.entries(params)) query.set(name, value);
  const url = `${serverUrl}${serverUrl.includes('?') ? '&' : '?'}${query.toString()}`;
  return transport === 'query' ? { url } : { url, protocols: [SUBPROTOCOL, token] };
}
