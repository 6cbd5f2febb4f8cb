import { useCallback, type ReactNode } from 'react';

import { CollaborationStatusIndicator, useYjsCollaboration } from '../src/react/index.js';
import { fetchConfig, type DemoConfig } from './config.js';
import { ParticipantsList } from './ParticipantsList.js';
import { RoleBadges } from './RoleBadges.js';
import { ServerErrors } from './ServerErrors.js';
import { useAwarenessUser } from './useAwarenessUser.js';
import { useServerErrors } from './useServerErrors.js';

/** What both demo pages share: the connection, who we are, and whether we may write. */
export function useDemoSession(name: string, config: DemoConfig) {
  // Every (re)connect asks the local stack for a fresh token, as a real app would ask its auth.
  const getToken = useCallback(async () => (await fetchConfig(name, config.sceneId)).token, [name, config.sceneId]);
  const collaboration = useYjsCollaboration({ sceneId: config.sceneId, url: config.wsUrl, getToken });
  const { self, colors } = useAwarenessUser(collaboration.awareness, config.userName);
  const serverErrors = useServerErrors(collaboration.provider);
  // The server's word once connected; before that, what the stack granted.
  const role = collaboration.role ?? config.role;
  const readOnly = role !== 'owner' && role !== 'editor';
  return { ...collaboration, config, getToken, self, colors, serverErrors, role, readOnly };
}

export type DemoSession = ReturnType<typeof useDemoSession>;

interface DemoPageProps {
  title: string;
  session: DemoSession;
  layout: string;
  children: ReactNode;
  /** Below the participants (the screenplay page's history panel). */
  sidebar?: ReactNode;
}

/** The page around an editor: title, role and saved badges, status, errors, participants. */
export function DemoPage({ title, session, layout, children, sidebar }: DemoPageProps) {
  const { config, self, readOnly, role, saved, syncStatus, participants, reconnect, connectionError } = session;
  return (
    <div className="app">
      <header>
        <div>
          <h1>
            {title} {config.sceneId}
          </h1>
          <p className="whoami">
            {readOnly ? 'Reading' : 'Writing'} as <strong style={{ color: self?.color }}>{config.userName}</strong>{' '}
            <RoleBadges role={role} saved={saved} />
          </p>
        </div>
        <CollaborationStatusIndicator
          status={syncStatus}
          participantCount={participants.length}
          onReconnect={reconnect}
          error={connectionError}
        />
      </header>
      <ServerErrors errors={session.serverErrors} />
      <main className={layout}>
        {children}
        <aside className="sidebar">
          <ParticipantsList
            participants={participants}
            ownConnectionId={session.provider?.connectionId ?? null}
            colors={session.colors}
          />
          {sidebar}
        </aside>
      </main>
    </div>
  );
}
