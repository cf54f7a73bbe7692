import { defineConfig } from 'vitest/config';

// Tests live beside the code (src/**/*.test.ts, tools/**/*.test.ts) and under test/ (integration,
// fuzz, architecture).
export default defineConfig({
  test: {
    include: ['src/**/*.test.ts', 'tools/**/*.test.ts', 'test/**/*.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    pool: 'forks',
    // Long soaks run only when asked for (SOAK=1 npm test).
    exclude: ['**/node_modules/**', '**/dist/**', '**/build/**'],
  },
});
