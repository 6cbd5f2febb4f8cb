import { useMemo } from 'react';

import type { DemoConfig } from './config.js';
import { DemoPage, useDemoSession } from './DemoPage.js';
import { HistoryPanel } from './HistoryPanel.js';
import { SceneEditor } from './SceneEditor.js';
import { ScreenplayPreview } from './ScreenplayPreview.js';

interface AppProps {
  name: string;
  config: DemoConfig;
}

// The Y.Text the page binds (devstack/demo.py seeds the same name).
const TEXT_ROOT = 'scene';

/** The screenplay page: Fountain source on the left, the formatted scene beside it, its history aside. */
export function App({ name, config }: AppProps) {
  const session = useDemoSession(name, config);
  const { doc, awareness, readOnly } = session;
  const text = useMemo(() => doc?.getText(TEXT_ROOT) ?? null, [doc]);
  const history = (
    <HistoryPanel
      httpUrl={config.httpUrl}
      sceneId={config.sceneId}
      getToken={session.getToken}
      provider={session.provider}
      textRoot={TEXT_ROOT}
      readOnly={readOnly}
    />
  );
  return (
    <DemoPage title="Scene" session={session} layout="screenplay-layout" sidebar={history}>
      {text !== null && awareness !== null ? (
        <>
          <SceneEditor text={text} awareness={awareness} readOnly={readOnly} />
          <ScreenplayPreview text={text} />
        </>
      ) : (
        <p>Loading…</p>
      )}
    </DemoPage>
  );
}
