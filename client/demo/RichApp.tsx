import { useMemo } from 'react';

import type { DemoConfig } from './config.js';
import { DemoPage, useDemoSession } from './DemoPage.js';
import { RichEditor } from './RichEditor.js';

interface RichAppProps {
  name: string;
  config: DemoConfig;
}

/** The rich-text page: the same provider and hook, a Y.XmlFragment instead of a Y.Text. */
export function RichApp({ name, config }: RichAppProps) {
  const session = useDemoSession(name, config);
  const { doc, awareness, readOnly } = session;
  const fragment = useMemo(() => doc?.getXmlFragment('rich') ?? null, [doc]);
  return (
    <DemoPage title="Notes" session={session} layout="rich-layout">
      {fragment !== null && awareness !== null ? (
        <RichEditor fragment={fragment} awareness={awareness} readOnly={readOnly} />
      ) : (
        <p>Loading…</p>
      )}
    </DemoPage>
  );
}
