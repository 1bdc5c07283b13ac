import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/global-setup.ts'],
    reporters: ['default', './test/summary-reporter.ts'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    // expect.poll waits for something the gateway, a browser or a child process does: on a busy machine that takes
    // far more than vitest's default second.
    expect: { poll: { timeout: 15_000 } },
  },
});
