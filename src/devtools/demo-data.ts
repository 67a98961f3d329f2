/**
 * The demo's fixed scenario: which numbers of fixtures/demo.csv the stand-in server fails on purpose.
 * `demoPhone(i)` is the i-th customer number of that file (fixtures/make-demo-csv.mjs writes it the same way).
 */
import type { MockFaults } from './mock-api.js';

/** Stand-in server's limit (per second); the demo runs the tool at 90 % of it. */
export const DEMO_RATE = 50;

export function demoPhone(i: number): string {
  return `9198${String(10_000_000 + ((i * 7919) % 89_999_999)).padStart(8, '0')}`;
}

export const DEMO_FAULTS: MockFaults = {
  rejectNumbers: [10, 40, 80, 120, 160, 200].map(demoPhone), // 422: not a member of the team
  notFoundNumbers: [250].map(demoPhone), // 404
  flaky: Object.fromEntries([15, 55, 95, 135, 175].map((i) => [demoPhone(i), 2])), // 503 twice, then fine
  timeoutNumbers: Object.fromEntries([33, 66].map((i) => [demoPhone(i), 1])), // no answer once, then fine
};
