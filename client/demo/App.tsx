import { useCallback, useEffect, useMemo } from 'react';

import { CollaborationStatusIndicator, useYjsCollaboration } from '../src/react/index.js';
import { fetchConfig, type DemoConfig } from './config.js';
import { colorFor, lightColor } from './identity.js';
import { ParticipantsList } from './ParticipantsList.js';
import { SceneEditor } from './SceneEditor.js';

interface AppProps {
  name: string;
  config: DemoConfig;
}

export function App({ name, config }: AppProps) {
  // Every (re)connect asks the local stack for a fresh token, as a real app would ask its auth.
  const getToken = useCallback(async () => (await fetchConfig(name)).token, [name]);
  const { doc, awareness, provider, syncStatus, connectionError, participants, reconnect } = useYjsCollaboration({
    sceneId: config.sceneId,
    url: config.wsUrl,
    getToken,
  });
  const userName = config.userName;

  useEffect(() => {
    const color = colorFor(userName);
    awareness?.setLocalStateField('user', { name: userName, color, colorLight: lightColor(color) });
  }, [awareness, userName]);

  const text = useMemo(() => doc?.getText('scene') ?? null, [doc]);

  return (
    <div className="app">
      <header>
        <div>
          <h1>Scene {config.sceneId}</h1>
          <p className="whoami">
            Writing as <strong style={{ color: colorFor(userName) }}>{userName}</strong>
          </p>
        </div>
        <CollaborationStatusIndicator
          status={syncStatus}
          participantCount={participants.length}
          onReconnect={reconnect}
          error={connectionError}
        />
      </header>
      <main>
        {text !== null && awareness !== null ? <SceneEditor text={text} awareness={awareness} /> : <p>Loading…</p>}
        <ParticipantsList participants={participants} ownConnectionId={provider?.connectionId ?? null} />
      </main>
    </div>
  );
}
