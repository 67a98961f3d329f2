/**
 * ts-jest in ESM mode. Two projects, one pyramid:
 *
 *  - unit:        test/unit/**, from TypeScript source. No global setup: no Redis, no build (dist/ may be
 *                 absent), no network. `npm run test:unit`.
 *  - integration: test/integration/**, real Redis (the global setup finds or starts one; it imports dist/, so
 *                 build first), real HTTP, subprocesses. One shared Redis: always in band. `npm run test:integration`.
 *
 * `npm test` builds and runs both. Options that Jest reads only from the top level (maxWorkers, testTimeout …)
 * cannot be set per project: the integration project's 60 s timeout comes from its setup file instead.
 */
const shared = {
  testEnvironment: 'node',
  extensionsToTreatAsEsm: ['.ts'],
  moduleNameMapper: {
    '^(\\.{1,2}/.*)\\.js$': '$1',
    // Its ESM build imports JSON without an import attribute, which Jest's VM modules warn about on every import.
    '^libphonenumber-js$': '<rootDir>/node_modules/libphonenumber-js/index.cjs',
  },
  transform: {
    '^.+\\.ts$': ['ts-jest', { useESM: true, tsconfig: 'tsconfig.test.json' }],
  },
};

module.exports = {
  projects: [
    {
      ...shared,
      displayName: 'unit',
      testMatch: ['<rootDir>/test/unit/**/*.test.ts'],
      // Every socket connect and server listen throws in a unit test (the tier's "no network", enforced).
      setupFilesAfterEnv: ['<rootDir>/test/unit/setup-no-network.ts'],
    },
    {
      ...shared,
      displayName: 'integration',
      testMatch: ['<rootDir>/test/integration/**/*.test.ts'],
      globalSetup: '<rootDir>/test/helpers/global-setup.mjs',
      globalTeardown: '<rootDir>/test/helpers/global-teardown.mjs',
      // jest.setTimeout(60_000): a project-level `testTimeout` would be silently ignored.
      setupFilesAfterEnv: ['<rootDir>/test/integration/setup-timeout.ts'],
    },
  ],
  // Integration tests share one Redis and spawn processes: never run two test files at once. The unit tier is
  // fast enough in band too, and a single process spares the 2-core machines a worker pool.
  maxWorkers: 1,
};
