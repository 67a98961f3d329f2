/**
 * Integration project setup (jest.config.cjs `setupFilesAfterEnv`): real Redis, real HTTP and subprocesses take
 * longer than Jest's 5 s default. Set here because Jest ignores `testTimeout` inside a project's config.
 */
import { jest } from '@jest/globals';

jest.setTimeout(60_000);
