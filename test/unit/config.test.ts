import { describe, expect, it } from '@jest/globals';

import { DEFAULTS, ENV_NAMES, requireApiKey, resolveConfig } from '../../src/config/config.js';
import { ConfigError } from '../../src/domain/errors.js';

describe('resolveConfig', () => {
  it('uses the documented defaults when nothing is set', () => {
    const c = resolveConfig({}, {}, {});
    expect(c).toMatchObject({
      baseUrl: DEFAULTS.baseUrl,
      redisUrl: 'redis://127.0.0.1:6379',
      queuePrefix: 'bulk-unassign',
      rateLimitMax: 1,
      rateLimitDurationMs: 1000,
      workerConcurrency: 4,
      maxAttempts: 5,
      requestTimeoutMs: 15_000,
      reportsDir: './reports',
    });
    expect(c.apiKey).toBeUndefined();
  });

  it('takes flag over environment over .env over default', () => {
    const env = { RATE_LIMIT_MAX: '7', WORKER_CONCURRENCY: '3' };
    const file = { RATE_LIMIT_MAX: '9', WORKER_CONCURRENCY: '2', MAX_ATTEMPTS: '8' };
    const c = resolveConfig({ rateLimitMax: 5 }, env, file);
    expect([c.rateLimitMax, c.workerConcurrency, c.maxAttempts, c.requestTimeoutMs]).toEqual([5, 3, 8, 15_000]);
  });

  it('uses the fixed environment variable names other tooling depends on', () => {
    expect(ENV_NAMES).toMatchObject({
      apiKey: 'DOUBLETICK_API_KEY', baseUrl: 'DOUBLETICK_BASE_URL', redisUrl: 'REDIS_URL', queuePrefix: 'QUEUE_PREFIX',
      rateLimitMax: 'RATE_LIMIT_MAX', rateLimitDurationMs: 'RATE_LIMIT_DURATION_MS', workerConcurrency: 'WORKER_CONCURRENCY',
      maxAttempts: 'MAX_ATTEMPTS', requestTimeoutMs: 'REQUEST_TIMEOUT_MS', reportsDir: 'REPORTS_DIR',
    });
  });

  it.each([
    [{ RATE_LIMIT_MAX: 'ten' }, /RATE_LIMIT_MAX\) to be an integer from 0/],
    [{ WORKER_CONCURRENCY: '0' }, /WORKER_CONCURRENCY\) to be an integer from 1/],
    [{ MAX_ATTEMPTS: '2.5' }, /MAX_ATTEMPTS/],
    [{ DOUBLETICK_BASE_URL: 'not a url' }, /DOUBLETICK_BASE_URL\) to be a URL/],
    [{ REDIS_URL: 'http://localhost:6379' }, /REDIS_URL\) to use redis:/],
    [{ QUEUE_PREFIX: 'has:colon' }, /QUEUE_PREFIX/],
    [{ DOUBLETICK_API_KEY: 'Bearer key_abc' }, /without "Bearer"/],
    [{ DEFAULT_COUNTRY: 'XX' }, /DEFAULT_COUNTRY\) to be an ISO country code/],
    [{ LOG_LEVEL: 'loud' }, /LOG_LEVEL\) to be one of/],
    [{ REDIS_CLUSTER: 'ture' }, /REDIS_CLUSTER\) to be true or false/],
    [{ LOCK_DURATION_MS: '500' }, /LOCK_DURATION_MS\) to be an integer from 1000/],
    [{ REQUEST_TIMEOUT_MS: '5000', LOCK_DURATION_MS: '5500' }, /LOCK_DURATION_MS\) to be at least REQUEST_TIMEOUT_MS \+ 1000 \(6000\)/],
  ])('rejects %j with a message naming the setting', (env, message) => {
    expect(() => resolveConfig({}, env, {})).toThrow(ConfigError);
    expect(() => resolveConfig({}, env, {})).toThrow(message);
  });

  it('REDIS_CLUSTER: off by default, true/false (1/0, yes/no) from the environment, a boolean from flags', () => {
    expect(resolveConfig({}, {}, {}).redisCluster).toBe(false);
    expect(resolveConfig({}, { REDIS_CLUSTER: 'true' }, {}).redisCluster).toBe(true);
    expect(resolveConfig({}, { REDIS_CLUSTER: 'Yes' }, {}).redisCluster).toBe(true);
    expect(resolveConfig({}, {}, { REDIS_CLUSTER: '0' }).redisCluster).toBe(false);
    expect(resolveConfig({ redisCluster: false }, { REDIS_CLUSTER: '1' }, {}).redisCluster).toBe(false);
  });

  it('leaves the lock duration to the worker unless LOCK_DURATION_MS is set, and then it must outlast the timeout', () => {
    expect(resolveConfig({}, {}, {}).lockDurationMs).toBeUndefined();
    expect(resolveConfig({}, { REQUEST_TIMEOUT_MS: '1000', LOCK_DURATION_MS: '2000' }, {}).lockDurationMs).toBe(2000);
  });

  it('normalises: trailing slash off the base URL, country upper-cased; requireApiKey explains itself', () => {
    const c = resolveConfig({}, { DOUBLETICK_BASE_URL: 'http://127.0.0.1:9/', DEFAULT_COUNTRY: 'in' }, {});
    expect(c.baseUrl).toBe('http://127.0.0.1:9');
    expect(c.defaultCountry).toBe('IN');
    expect(() => requireApiKey(c)).toThrow(/DOUBLETICK_API_KEY is not set/);
    expect(requireApiKey(resolveConfig({}, { DOUBLETICK_API_KEY: 'key_x' }, {}))).toBe('key_x');
  });
});
