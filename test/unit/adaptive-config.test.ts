/**
 * RATE_LIMIT_MAX=auto in the configuration, and the adaptive state's stored form (no Redis).
 */
import { describe, expect, it } from '@jest/globals';

import { resolveConfig } from '../../src/config/config.js';
import { ConfigError } from '../../src/domain/errors.js';
import { decodeState, encodeState, rateFingerprint } from '../../src/execution/adaptive-limiter.js';
import { initialState } from '../../src/execution/adaptive-rate.js';

describe('RATE_LIMIT_MAX=auto settings', () => {
  it('a number keeps the fixed limit exactly as before', () => {
    const config = resolveConfig({}, { RATE_LIMIT_MAX: '7' });
    expect(config.rateLimitMax).toBe(7);
    expect(config.rateLimitAuto).toBe(false);
    expect(resolveConfig({}, {}).rateLimitMax).toBe(1);
  });

  it('auto (any case, flag or env) turns the adaptive limit on, with the ceiling as the outer cap', () => {
    const config = resolveConfig({}, { RATE_LIMIT_MAX: 'AUTO', RATE_LIMIT_START: '2', RATE_LIMIT_CEILING: '50', RATE_LIMIT_MEMORY_HOURS: '0.5' });
    expect(config).toMatchObject({ rateLimitAuto: true, rateLimitMax: 50, rateLimitStart: 2, rateLimitCeiling: 50, rateLimitMemoryHours: 0.5 });
    expect(resolveConfig({ rateLimitMax: 'auto' }, {})).toMatchObject({ rateLimitAuto: true, rateLimitMax: 100, rateLimitStart: 1, rateLimitMemoryHours: 24 });
  });

  it('refuses what cannot work, saying what to do', () => {
    expect(() => resolveConfig({}, { RATE_LIMIT_MAX: 'fast' })).toThrow(ConfigError);
    expect(() => resolveConfig({}, { RATE_LIMIT_MAX: 'fast' })).toThrow(/or `auto`/);
    expect(() => resolveConfig({}, { RATE_LIMIT_MAX: 'auto', RATE_LIMIT_START: '20', RATE_LIMIT_CEILING: '10' })).toThrow(
      /lower the start or raise the ceiling/,
    );
    expect(() => resolveConfig({}, { RATE_LIMIT_CEILING: '0' })).toThrow(/RATE_LIMIT_CEILING/);
    expect(() => resolveConfig({}, { RATE_LIMIT_MEMORY_HOURS: '-1' })).toThrow(/RATE_LIMIT_MEMORY_HOURS/);
    expect(() => resolveConfig({}, { RATE_LIMIT_MEMORY_HOURS: 'soon' })).toThrow(/RATE_LIMIT_MEMORY_HOURS/);
  });
});

describe('the adaptive state as stored', () => {
  it('round-trips, and anything unreadable starts over instead of pacing by garbage', () => {
    const state = { ...initialState({ start: 3, ceiling: 10, windowMs: 1000, memoryMs: 1000 }, 123), learned: 9, ok: 5 };
    expect(decodeState(encodeState(state))).toEqual(state);
    expect(decodeState({})).toBeUndefined();
    expect(decodeState({ ...encodeState(state), phase: 'warp' })).toBeUndefined();
    expect(decodeState({ ...encodeState(state), rate: 'NaN' })).toBeUndefined();
    const missing: Record<string, string> = { ...encodeState(state) };
    delete missing['learned'];
    expect(decodeState(missing)).toBeUndefined();
  });

  it('is keyed by a fingerprint of the base URL and key that never contains the key', () => {
    const key = 'key_live_0123456789abcdef';
    const fp = rateFingerprint('https://public.doubletick.io', key);
    expect(fp).toMatch(/^[0-9a-f]{16}$/);
    expect(fp).not.toContain(key.slice(0, 8));
    expect(rateFingerprint('https://public.doubletick.io/', key)).toBe(fp);
    expect(rateFingerprint('https://other.example', key)).not.toBe(fp);
    expect(rateFingerprint('https://public.doubletick.io', `${key}x`)).not.toBe(fp);
  });
});
