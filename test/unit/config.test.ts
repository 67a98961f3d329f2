import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, describe, expect, it } from '@jest/globals';

import { flagsToOptions, parseCommandLine } from '../../src/cli/args.js';
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
      apiKey: 'DOUBLETICK_API_KEY',
      baseUrl: 'DOUBLETICK_BASE_URL',
      redisUrl: 'REDIS_URL',
      queuePrefix: 'QUEUE_PREFIX',
      rateLimitMax: 'RATE_LIMIT_MAX',
      rateLimitDurationMs: 'RATE_LIMIT_DURATION_MS',
      workerConcurrency: 'WORKER_CONCURRENCY',
      maxAttempts: 'MAX_ATTEMPTS',
      requestTimeoutMs: 'REQUEST_TIMEOUT_MS',
      reportsDir: 'REPORTS_DIR',
      apiKeyFile: 'DOUBLETICK_API_KEY_FILE',
      logLevel: 'LOG_LEVEL',
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

/** The thrown ConfigError, for checks on its message. */
function configError(run: () => unknown): Error {
  try {
    run();
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return error as Error;
  }
  throw new Error('expected a ConfigError');
}

describe('API key file (--api-key-file, DOUBLETICK_API_KEY_FILE)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'bulk-unassign-config-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const secret = (name: string, text: string): string => {
    const path = join(dir, name);
    writeFileSync(path, text);
    return path;
  };
  const KEY = 'key_FILE_s3cr3t_0123456789';

  it('reads the key from the file the flag names, without its trailing newline', () => {
    const path = secret('flag-key', `${KEY}\n`);
    const c = resolveConfig(flagsToOptions(parseCommandLine(['run', 'x.csv', '--api-key-file', path]).flags), {}, {});
    expect(c.apiKey).toBe(KEY);
  });

  it('reads it from DOUBLETICK_API_KEY_FILE (environment or .env), CRLF and no newline alike', () => {
    expect(resolveConfig({}, { DOUBLETICK_API_KEY_FILE: secret('env-key', `${KEY}\r\n`) }, {}).apiKey).toBe(KEY);
    expect(resolveConfig({}, {}, { DOUBLETICK_API_KEY_FILE: secret('dotenv-key', KEY) }).apiKey).toBe(KEY);
    expect(requireApiKey(resolveConfig({}, { DOUBLETICK_API_KEY_FILE: secret('env-key', KEY) }, {}))).toBe(KEY);
  });

  it('--api-key-file overrides DOUBLETICK_API_KEY_FILE, as every flag overrides its variable', () => {
    const flagFile = secret('flag-wins', 'key_from_flag');
    const c = resolveConfig({ apiKeyFile: flagFile }, { DOUBLETICK_API_KEY_FILE: secret('env-loses', 'key_from_env') }, {});
    expect(c.apiKey).toBe('key_from_flag');
  });

  it.each([
    ['DOUBLETICK_API_KEY and --api-key-file', { apiKeyFile: 'f' }, { DOUBLETICK_API_KEY: KEY }, {}, /DOUBLETICK_API_KEY \(environment\) and by --api-key-file/],
    [
      'DOUBLETICK_API_KEY and DOUBLETICK_API_KEY_FILE',
      {},
      { DOUBLETICK_API_KEY: KEY, DOUBLETICK_API_KEY_FILE: 'f' },
      {},
      /DOUBLETICK_API_KEY \(environment\) and by DOUBLETICK_API_KEY_FILE \(environment\)/,
    ],
    [
      'a key in .env and a key file in the environment',
      {},
      { DOUBLETICK_API_KEY_FILE: 'f' },
      { DOUBLETICK_API_KEY: KEY },
      /DOUBLETICK_API_KEY in \.env and by DOUBLETICK_API_KEY_FILE \(environment\)/,
    ],
    [
      'the apiKey option and a key file in .env',
      { apiKey: KEY },
      {},
      { DOUBLETICK_API_KEY_FILE: 'f' },
      /the `apiKey` option and by DOUBLETICK_API_KEY_FILE in \.env/,
    ],
  ])('refuses %s, naming both sources and never the key', (_what, flags, env, file, message) => {
    const error = configError(() => resolveConfig(flags, env, file));
    expect(error.message).toMatch(message);
    expect(error.message).toMatch(/set one of DOUBLETICK_API_KEY or DOUBLETICK_API_KEY_FILE/);
    expect(error.message).not.toContain(KEY);
  });

  it('an unreadable file is a ConfigError naming the path and errno code', () => {
    const missing = join(dir, 'no-such-file');
    expect(configError(() => resolveConfig({ apiKeyFile: missing }, {}, {})).message).toBe(
      `Cannot read the API key file \`${missing}\` (--api-key-file): ENOENT`,
    );
    expect(configError(() => resolveConfig({}, { DOUBLETICK_API_KEY_FILE: dir }, {})).message).toBe(
      `Cannot read the API key file \`${dir}\` (DOUBLETICK_API_KEY_FILE (environment)): EISDIR`,
    );
    if (process.getuid?.() !== 0) {
      const locked = secret('locked', KEY);
      chmodSync(locked, 0o000);
      expect(configError(() => resolveConfig({ apiKeyFile: locked }, {}, {})).message).toMatch(/`.*locked` \(--api-key-file\): EACCES$/);
    }
  });

  it('a file that is not a key is refused without printing what it holds', () => {
    const cases: [string, string, RegExp][] = [
      ['bearer', `Bearer ${KEY}\n`, /the API key file `.*bearer` \(--api-key-file\) to be the raw key/],
      ['two-words', `${KEY} ${KEY}\n`, /to be a single token without spaces/],
      ['empty', '\n', /the API key file `.*empty` \(--api-key-file\) to hold the key, got nothing/],
      ['big', `${KEY}\n`.repeat(200), /`.*big` \(--api-key-file\): larger than 4096 bytes, not a key/],
    ];
    for (const [name, text, message] of cases) {
      const error = configError(() => resolveConfig({ apiKeyFile: secret(name, text) }, {}, {}));
      expect(error.message).toMatch(message);
      expect(error.message).not.toContain('s3cr3t');
    }
  });

  it('requireApiKey names the key file as the other way to set it', () => {
    expect(() => requireApiKey(resolveConfig({}, {}, {}))).toThrow(/DOUBLETICK_API_KEY_FILE \/ --api-key-file/);
  });
});

describe('command line: config flags', () => {
  it('has no --rows (it configured nothing)', () => {
    expect(() => parseCommandLine(['run', 'x.csv', '--rows', '5'])).toThrow(/--rows/);
  });
});

describe('LOG_LEVEL: set or defaulted', () => {
  it('defaults to info and says it was not set', () => {
    expect(resolveConfig({}, {}, {})).toMatchObject({ logLevel: 'info', logLevelExplicit: false });
    expect(resolveConfig({}, { LOG_LEVEL: '' }, {})).toMatchObject({ logLevel: 'info', logLevelExplicit: false });
  });

  it.each([
    ['the environment', {}, { LOG_LEVEL: 'info' }, {}],
    ['.env', {}, {}, { LOG_LEVEL: 'info' }],
    ['the logLevel option', { logLevel: 'info' }, {}, {}],
  ])('LOG_LEVEL=info from %s counts as set (the CLI must then log at info)', (_from, flags, env, file) => {
    expect(resolveConfig(flags, env, file)).toMatchObject({ logLevel: 'info', logLevelExplicit: true });
  });

  it('any other level set is explicit too', () => {
    expect(resolveConfig({}, { LOG_LEVEL: 'debug' }, {})).toMatchObject({ logLevel: 'debug', logLevelExplicit: true });
  });
});
