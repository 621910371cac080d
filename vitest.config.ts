import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
    // Two cores: e2e tests spawn pools of their own, so keep test files from piling up.
    maxWorkers: 2,
    minWorkers: 1,
  },
});
