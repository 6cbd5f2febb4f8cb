import { useCallback, useEffect, useRef, useState } from 'react';
import type { Awareness } from 'y-protocols/awareness';
import * as Y from 'yjs';

import type { Participant } from '../framing.js';
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
    instance.on('status', onStatus);
    instance.on('connection-error', onConnectionError);
    instance.on('participants', onParticipants);
    providerRef.current = instance;
    setProvider(instance);
    instance.connect();
    return () => {
      if (providerRef.current === instance) providerRef.current = null;
      instance.destroy();
      setProvider(null);
      setSyncStatus('offline');
      setParticipants([]);
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
    reconnect,
  };
}
