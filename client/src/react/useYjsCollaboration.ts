import { useCallback, useEffect, useRef, useState } from 'react';
import type { Awareness } from 'y-protocols/awareness';
import * as Y from 'yjs';

import type { Participant, Role } from '../framing.js';
import {
  ApiGatewayProvider,
  type ApiGatewayProviderOptions,
  type ConnectionError,
  type ConnectionStatus,
} from '../provider.js';

export interface UseYjsCollaborationOptions {
  /** The scene to edit; nothing connects while it is empty. */
  sceneId: string | null | undefined;
  /** The WebSocket endpoint, e.g. `wss://abc.execute-api.eu-west-1.amazonaws.com/prod`. */
  url: string;
  /** A JWT; the latest value is used on every (re)connect. */
  authToken?: string | null;
  /** Preferred over `authToken`: called on every (re)connect for a fresh JWT. */
  getToken?: () => string | Promise<string>;
  /** Connect only while true (default true). The doc, and its local edits, survive a pause. */
  enabled?: boolean;
  onSyncStatusChange?: (status: ConnectionStatus) => void;
  onError?: (error: ConnectionError) => void;
  /** Further provider options (tokenTransport, resyncInterval, WebSocketPolyfill, ...). */
  providerOptions?: Omit<ApiGatewayProviderOptions, 'token' | 'getToken' | 'connect'>;
}

export interface UseYjsCollaborationResult {
  doc: Y.Doc | null;
  provider: ApiGatewayProvider | null;
  awareness: Awareness | null;
  /** The socket is open (status `connected` or `synced`). */
  isConnected: boolean;
  syncStatus: ConnectionStatus;
  /** The last connection error; cleared once synced again. */
  connectionError: ConnectionError | null;
  participants: readonly Participant[];
  /**
   * Every local edit is stored durably on the server (true with no edits; false while a
   * viewer holds local edits, which are never sent). Changes only between "all saved" and "not",
   * so typing does not re-render per keystroke; `provider.unsyncedChanges` has the count.
   */
  saved: boolean;
  /**
   * `owner`, `editor` or `viewer`, from the server's `connected` message; kept while the
   * provider is offline, null before its first connection. Until it is known, treat the
   * editor as read-only if a viewer's typing must not appear to work.
   */
  role: Role | null;
  /** Drop the connection and connect again now (also after a refusal). */
  reconnect: () => void;
}

interface SceneDoc {
  sceneId: string;
  doc: Y.Doc;
}

/** A ref that always holds the latest value, so callbacks need not restart the provider. */
function useLatest<T>(value: T) {
  const ref = useRef(value);
  useEffect(() => {
    ref.current = value;
  });
  return ref;
}

/**
 * One Y.Doc per scene, synced through an {@link ApiGatewayProvider} while `enabled`.
 * The doc lives as long as the scene id, the provider as long as scene, url and `enabled`:
 * a new token or new callbacks never reconnect, they are read when next needed.
 */
export function useYjsCollaboration(options: UseYjsCollaborationOptions): UseYjsCollaborationResult {
  const { sceneId, url, authToken, getToken, enabled = true } = options;
  const credentials = useLatest({ authToken, getToken });
  const callbacks = useLatest({ onSyncStatusChange: options.onSyncStatusChange, onError: options.onError });
  const providerOptions = useLatest(options.providerOptions);
  const hasCredentials = Boolean(authToken) || getToken !== undefined;

  const [sceneDoc, setSceneDoc] = useState<SceneDoc | null>(null);
  const [provider, setProvider] = useState<ApiGatewayProvider | null>(null);
  const providerRef = useRef<ApiGatewayProvider | null>(null);
  const [syncStatus, setSyncStatus] = useState<ConnectionStatus>('offline');
  const [connectionError, setConnectionError] = useState<ConnectionError | null>(null);
  const [participants, setParticipants] = useState<readonly Participant[]>([]);
  const [saved, setSaved] = useState(true);
  const [role, setRole] = useState<Role | null>(null);

  useEffect(() => {
    if (!sceneId) return undefined;
    const doc = new Y.Doc();
    setSceneDoc({ sceneId, doc });
    return () => {
      // The provider's own cleanup would run a render later (its deps change only once
      // sceneDoc does): end it now, while its doc is still alive.
      if (providerRef.current?.doc === doc) providerRef.current.destroy();
      setSceneDoc(null);
      doc.destroy();
    };
  }, [sceneId]);

  useEffect(() => {
    if (sceneDoc === null || !enabled || !hasCredentials) return undefined;
    const fetchToken = async (): Promise<string> => {
      const { getToken: latestGetToken, authToken: latestToken } = credentials.current;
      if (latestGetToken !== undefined) return latestGetToken();
      if (latestToken) return latestToken;
      throw new Error('no auth token');
    };
    const instance = new ApiGatewayProvider(url, sceneDoc.sceneId, sceneDoc.doc, {
      ...providerOptions.current,
      getToken: fetchToken,
      connect: false,
    });
    const onStatus = ({ status }: { status: ConnectionStatus }) => {
      setSyncStatus(status);
      if (status === 'synced') setConnectionError(null);
      callbacks.current.onSyncStatusChange?.(status);
    };
    const onConnectionError = (error: ConnectionError) => {
      setConnectionError(error);
      callbacks.current.onError?.(error);
    };
    const onParticipants = (list: readonly Participant[]) => setParticipants(list);
    const onSaved = (isSaved: boolean) => setSaved(isSaved);
    const onRole = (newRole: Role) => setRole(newRole);
    instance.on('status', onStatus);
    instance.on('connection-error', onConnectionError);
    instance.on('participants', onParticipants);
    instance.on('saved', onSaved);
    instance.on('role', onRole);
    // Edits made while no provider ran (a pause, a new url) are already in the doc.
    setSaved(instance.saved);
    providerRef.current = instance;
    setProvider(instance);
    instance.connect();
    return () => {
      if (providerRef.current === instance) providerRef.current = null;
      instance.destroy();
      setProvider(null);
      setSyncStatus('offline');
      setParticipants([]);
      setRole(null);
    };
  }, [sceneDoc, url, enabled, hasCredentials, credentials, callbacks, providerOptions]);

  const reconnect = useCallback(() => {
    if (provider === null) return;
    setConnectionError(null);
    provider.disconnect();
    provider.connect();
  }, [provider]);

  return {
    doc: sceneDoc?.doc ?? null,
    provider,
    awareness: provider?.awareness ?? null,
    isConnected: syncStatus === 'connected' || syncStatus === 'synced',
    syncStatus,
    connectionError,
    participants,
    saved,
    role,
    reconnect,
  };
}
