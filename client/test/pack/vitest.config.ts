import { defineConfig } from 'vitest/config';

// The packed-tarball test alone (`npm run test:pack`): it runs npm, tsc and vite in a
// throwaway app, so it stays out of the unit project's quick run.
export default defineConfig({
  test: {
    root: new URL('.', import.meta.url).pathname,
    include: ['*.test.ts'],
    environment: 'node',
    testTimeout: 180_000,
    hookTimeout: 180_000,
  },
});
