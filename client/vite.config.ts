import { fileURLToPath } from 'node:url';

import { defineConfig } from 'vite';

const demo = (file: string) => fileURLToPath(new URL(`./demo/${file}`, import.meta.url));

// Builds the demo pages into demo-dist/, which the local stack (`make dev`) serves: the
// screenplay page (index.html) and the rich-text page (rich.html).
export default defineConfig({
  root: demo(''),
  // Relative asset URLs, so the pages work wherever the local stack mounts them.
  base: './',
  build: {
    outDir: fileURLToPath(new URL('./demo-dist', import.meta.url)),
    emptyOutDir: true,
    rolldownOptions: {
      input: { index: demo('index.html'), rich: demo('rich.html') },
    },
    // Pages with CodeMirror or ProseMirror and React in them; splitting would not help a demo.
    chunkSizeWarningLimit: 1_000,
  },
});
