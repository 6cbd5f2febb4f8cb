import { StrictMode, type ReactNode } from 'react';
import { createRoot } from 'react-dom/client';

import { fetchConfig, type DemoConfig } from './config.js';
import { nameFromLocation } from './identity.js';
import './style.css';

/** Renders a demo page for `scene` once the local stack said where to connect. */
export async function boot(scene: string, render: (name: string, config: DemoConfig) => ReactNode): Promise<void> {
  const root = document.getElementById('root');
  if (root === null) return;
  const name = nameFromLocation(window.location.search);
  const reactRoot = createRoot(root);
  try {
    const config = await fetchConfig(name, scene);
    reactRoot.render(<StrictMode>{render(name, config)}</StrictMode>);
  } catch (error) {
    reactRoot.render(
      <p role="alert">
        Could not load the demo configuration ({error instanceof Error ? error.message : String(error)}). Is{' '}
        <code>make dev</code> running?
      </p>,
    );
  }
}
