import { useCallback, useMemo } from 'react';

import { CollaborationStatusIndicator, useYjsCollaboration } from '../src/react/index.js';
import { fetchConfig, type DemoConfig } from './config.js';
import { ParticipantsList } from './ParticipantsList.js';
import { RichEditor } from './RichEditor.js';
import { RoleBadges } from './RoleBadges.js';
import { ServerErrors } from './ServerErrors.js';
import { useAwarenessUser } from './useAwarenessUser.js';
import { useServerErrors } from './useServerErrors.js';

interface RichAppProps {
  name: string;
  config: DemoConfig;
}

/** The rich-text page: the same provider and hook, a Y.XmlFragment instead of a Y.Text. */
export function RichApp({ name, config }: RichAppProps) {
  const getToken = useCallback(async () => (await fetchConfig(name, config.sceneId)).token, [name, config.sceneId]);
  const { doc, awareness, provider, syncStatus, connectionError, participants, reconnect, saved, role } =
    useYjsCollaboration({ sceneId: config.sceneId, url: config.wsUrl, getToken });
  const { self, colors } = useAwarenessUser(awareness, config.userName);
  const serverErrors = useServerErrors(provider);
  const effectiveRole = role ?? config.role;
  const readOnly = effectiveRole !== 'owner' && effectiveRole !== 'editor';

  const fragment = useMemo(() => doc?.getXmlFragment('rich') ?? null, [doc]);

  return (
    <div className="app">
      <header>
        <div>
          <h1>Notes {config.sceneId}</h1>
          <p className="whoami">
            {readOnly ? 'Reading' : 'Writing'} as <strong style={{ color: self?.color }}>{config.userName}</strong>{' '}
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
      <main className="rich-layout">
        {fragment !== null && awareness !== null ? (
          <RichEditor fragment={fragment} awareness={awareness} readOnly={readOnly} />
        ) : (
          <p>Loading…</p>
        )}
        <ParticipantsList participants={participants} ownConnectionId={provider?.connectionId ?? null} colors={colors} />
      </main>
    </div>
  );
}
