import { defineConfig } from 'vitest/config';

// Two projects: `unit` needs nothing but Node; `stack` starts the local stack (devstack)
// once, runs the provider against it from Node and the demo page in headless Chromium.
export default defineConfig({
  test: {
    reporters: ['default', './test/plainSummary.ts'],
    projects: [
      {
        test: {
          name: 'unit',
          include: ['test/unit/**/*.test.{ts,tsx}'],
          environment: 'node',
        },
      },
      {
        test: {
          name: 'stack',
          include: ['test/stack/**/*.test.ts'],
          environment: 'node',
          globalSetup: ['test/stack/globalSetup.ts'],
          // One stack for every file, so the files take turns instead of racing for it.
          fileParallelism: false,
          testTimeout: 60_000,
          hookTimeout: 120_000,
        },
      },
    ],
  },
});
