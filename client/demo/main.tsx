import { StrictMode } from 'react';
import { createRoot } from 'react-dom/client';

import { App } from './App.js';
import { fetchConfig } from './config.js';
import { nameFromLocation } from './identity.js';
import './style.css';

async function start(root: HTMLElement): Promise<void> {
  const name = nameFromLocation(window.location.search);
  const reactRoot = createRoot(root);
  try {
    const config = await fetchConfig(name);
    reactRoot.render(
      <StrictMode>
        <App name={name} config={config} />
      </StrictMode>,
    );
  } catch (error) {
    reactRoot.render(
      <p role="alert">
        Could not load the demo configuration ({error instanceof Error ? error.message : String(error)}). Is{' '}
        <code>make dev</code> running?
      </p>,
    );
  }
}

const root = document.getElementById('root');
if (root !== null) void start(root);
