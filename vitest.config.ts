import { defineConfig } from 'vitest/config';

// Integration tests start real rank processes on a 2-core machine: run test files two
// at a time and give them room; each test sets its own tighter deadline where timing
// is the point.
export default defineConfig({
  // src/*.cts (CommonJS for the self-launch path, see bin/preamble.js) are TypeScript too.
  oxc: { include: /\.(m?ts|cts|[jt]sx)$/ },
  test: {
    include: ['test/**/*.test.ts'],
    // The test programs that run as rank processes (test/fixtures) are built on demand.
    globalSetup: ['test/helpers/build-fixtures.ts'],
    pool: 'forks',
    maxWorkers: 2,
    testTimeout: 120_000,
    hookTimeout: 300_000,
    reporters: ['default'],
  },
});
