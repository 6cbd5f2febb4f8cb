import { useCallback, useEffect, useRef, useState } from 'react';

import type { ApiGatewayProvider, VersionEvent, VersionInfo } from '../src/index.js';
import type { VersionsApi } from './versionsApi.js';

// The HTTP API lists at most this many.
const LIST_LIMIT = 100;

/**
 * The scene's versions, newest first: listed through the HTTP API when the page connects
 * (and on every reconnect: versions saved meanwhile were announced to others), and kept
 * current by the provider's `version` event, which every member gets, whoever saved or
 * restored. `lastEvent` is the newest of those events.
 */
export function useVersions(api: VersionsApi | null, provider: ApiGatewayProvider | null) {
  const [versions, setVersions] = useState<readonly VersionInfo[]>([]);
  const [error, setError] = useState<string | null>(null);
  const [lastEvent, setLastEvent] = useState<VersionEvent | null>(null);
  // Announced entries, so a listing that left before one was saved does not drop it.
  const announced = useRef(new Map<string, VersionInfo>());
  const request = useRef(0);

  const refresh = useCallback(async () => {
    if (api === null) return;
    const mine = ++request.current;
    try {
      const listed = await api.list();
      if (mine !== request.current) return; // a later listing is on its way
      setVersions(merged(listed, announced.current.values()));
      setError(null);
    } catch (cause) {
      if (mine === request.current) setError(`Could not list versions: ${errorText(cause)}`);
    }
  }, [api]);

  useEffect(() => {
    if (provider === null) return undefined;
    const onVersion = (event: VersionEvent) => {
      announced.current.set(event.version.versionId, event.version);
      setVersions((previous) => merged(previous, [event.version]));
      setLastEvent(event);
    };
    const onSync = (synced: boolean) => {
      if (synced) void refresh();
    };
    provider.on('version', onVersion);
    provider.on('sync', onSync);
    if (provider.synced) void refresh();
    return () => {
      provider.off('version', onVersion);
      provider.off('sync', onSync);
    };
  }, [provider, refresh]);

  return { versions, error, lastEvent, refresh };
}

function merged(listed: Iterable<VersionInfo>, more: Iterable<VersionInfo>): VersionInfo[] {
  const byId = new Map<string, VersionInfo>();
  for (const version of [...listed, ...more]) byId.set(version.versionId, version);
  // Version ids start with their creation time in milliseconds: they sort by age.
  return [...byId.values()].sort((a, b) => (a.versionId < b.versionId ? 1 : -1)).slice(0, LIST_LIMIT);
}

export function errorText(cause: unknown): string {
  return cause instanceof Error ? cause.message : String(cause);
}
