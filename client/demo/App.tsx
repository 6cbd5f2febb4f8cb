import { useMemo } from 'react';

import type { DemoConfig } from './config.js';
import { DemoPage, useDemoSession } from './DemoPage.js';
import { SceneEditor } from './SceneEditor.js';
import { ScreenplayPreview } from './ScreenplayPreview.js';

interface AppProps {
  name: string;
  config: DemoConfig;
}

/** The screenplay page: Fountain source on the left, the formatted scene beside it. */
export function App({ name, config }: AppProps) {
  const session = useDemoSession(name, config);
  const { doc, awareness, readOnly } = session;
  const text = useMemo(() => doc?.getText('scene') ?? null, [doc]);
  return (
    <DemoPage title="Scene" session={session} layout="screenplay-layout">
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
