import { useCallback, useMemo } from 'react';

import { CollaborationStatusIndicator, useYjsCollaboration } from '../src/react/index.js';
import { fetchConfig, type DemoConfig } from './config.js';
import { ParticipantsList } from './ParticipantsList.js';
import { RoleBadges } from './RoleBadges.js';
import { SceneEditor } from './SceneEditor.js';
import { ScreenplayPreview } from './ScreenplayPreview.js';
import { ServerErrors } from './ServerErrors.js';
import { useAwarenessUser } from './useAwarenessUser.js';
import { useServerErrors } from './useServerErrors.js';

interface AppProps {
  name: string;
  config: DemoConfig;
}

/** The screenplay page: Fountain source on the left, the formatted scene beside it. */
export function App({ name, config }: AppProps) {
  // Every (re)connect asks the local stack for a fresh token, as a real app would ask its auth.
  const getToken = useCallback(async () => (await fetchConfig(name, config.sceneId)).token, [name, config.sceneId]);
  const { doc, awareness, provider, syncStatus, connectionError, participants, reconnect, saved, role } =
    useYjsCollaboration({ sceneId: config.sceneId, url: config.wsUrl, getToken });
  const userName = config.userName;
  const { self, colors } = useAwarenessUser(awareness, userName);
  const serverErrors = useServerErrors(provider);
  // The server's word once connected; before that, what the stack granted.
  const effectiveRole = role ?? config.role;
  const readOnly = effectiveRole !== 'owner' && effectiveRole !== 'editor';

  const text = useMemo(() => doc?.getText('scene') ?? null, [doc]);

  return (
    <div className="app">
      <header>
        <div>
          <h1>Scene {config.sceneId}</h1>
          <p className="whoami">
            {readOnly ? 'Reading' : 'Writing'} as <strong style={{ color: self?.color }}>{userName}</strong>{' '}
            <RoleBadges role={effectiveRole} saved={saved} />
          </p>
        </div>
        <CollaborationStatusIndicator
          status={syncStatus}
          participantCount={participants.length}
          onReconnect={reconnect}
          error={connectionError}
        />
      </header>
      <ServerErrors errors={serverErrors} />
      <main className="screenplay-layout">
        {text !== null && awareness !== null ? (
          <>
            <SceneEditor text={text} awareness={awareness} readOnly={readOnly} />
            <ScreenplayPreview text={text} />
          </>
        ) : (
          <p>Loading…</p>
        )}
        <ParticipantsList participants={participants} ownConnectionId={provider?.connectionId ?? null} colors={colors} />
      </main>
    </div>
  );
}
