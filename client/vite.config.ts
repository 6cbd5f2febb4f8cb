import { fileURLToPath } from 'node:url';

import { defineConfig } from 'vite';

// Builds the demo page into demo-dist/, which the local stack (`make dev`) serves.
export default defineConfig({
  root: fileURLToPath(new URL('./demo', import.meta.url)),
  // Relative asset URLs, so the page works wherever the local stack mounts it.
  base: './',
  build: {
    outDir: fileURLToPath(new URL('./demo-dist', import.meta.url)),
    emptyOutDir: true,
    // One page with CodeMirror and React in it; splitting it would not help a demo.
    chunkSizeWarningLimit: 1_000,
  },
});
