/**
 * CONSOLE_TOKEN_FILE: the console token read from a file (a Docker secret, as docker-compose.yml mounts it), the
 * same way DOUBLETICK_API_KEY_FILE reads the API key (see the key-file tests in config.test.ts).
 */
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, describe, expect, it } from '@jest/globals';

import { ENV_NAMES, resolveConfig } from '../../src/config/config.js';
import { ConfigError } from '../../src/domain/errors.js';

function configError(fn: () => unknown): Error {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return error as Error;
  }
  throw new Error('expected a ConfigError');
}

describe('console token file (CONSOLE_TOKEN_FILE)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'bulk-unassign-console-token-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const secret = (name: string, text: string): string => {
    const path = join(dir, name);
    writeFileSync(path, text);
    return path;
  };
  const TOKEN = 'console_FILE_s3cr3t_0123456789';

  it('is read from the variable CONSOLE_TOKEN_FILE', () => {
    expect(ENV_NAMES.consoleTokenFile).toBe('CONSOLE_TOKEN_FILE');
  });

  it('reads the token from the file, without its trailing newline (LF, CRLF or none)', () => {
    expect(resolveConfig({}, { CONSOLE_TOKEN_FILE: secret('lf', `${TOKEN}\n`) }, {}).consoleToken).toBe(TOKEN);
    expect(resolveConfig({}, { CONSOLE_TOKEN_FILE: secret('crlf', `${TOKEN}\r\n`) }, {}).consoleToken).toBe(TOKEN);
    expect(resolveConfig({}, {}, { CONSOLE_TOKEN_FILE: secret('dotenv', TOKEN) }).consoleToken).toBe(TOKEN);
    expect(resolveConfig({ consoleTokenFile: secret('option', `${TOKEN}\n`) }, {}, {}).consoleToken).toBe(TOKEN);
  });

  it('the option overrides the variable, as every option does', () => {
    const c = resolveConfig(
      { consoleTokenFile: secret('option-wins', 'token-from-the-option-0001') },
      { CONSOLE_TOKEN_FILE: secret('env-loses', 'token-from-the-env-0002') },
      {},
    );
    expect(c.consoleToken).toBe('token-from-the-option-0001');
  });

  it('leaves the token unset when neither is set', () => {
    expect(resolveConfig({}, {}, {}).consoleToken).toBeUndefined();
  });

  it.each([
    [
      'CONSOLE_TOKEN and CONSOLE_TOKEN_FILE',
      {},
      { CONSOLE_TOKEN: TOKEN, CONSOLE_TOKEN_FILE: 'f' },
      {},
      /CONSOLE_TOKEN \(environment\) and by CONSOLE_TOKEN_FILE \(environment\)/,
    ],
    [
      'a token in .env and a token file in the environment',
      {},
      { CONSOLE_TOKEN_FILE: 'f' },
      { CONSOLE_TOKEN: TOKEN },
      /CONSOLE_TOKEN in \.env and by CONSOLE_TOKEN_FILE \(environment\)/,
    ],
    [
      'the consoleToken option and a token file in .env',
      { consoleToken: TOKEN },
      {},
      { CONSOLE_TOKEN_FILE: 'f' },
      /the `consoleToken` option and by CONSOLE_TOKEN_FILE in \.env/,
    ],
  ])('refuses %s, naming both sources and never the token', (_what, flags, env, file, message) => {
    const error = configError(() => resolveConfig(flags, env, file));
    expect(error.message).toMatch(/^The console token is set twice/);
    expect(error.message).toMatch(message);
    expect(error.message).toMatch(/set one of CONSOLE_TOKEN or CONSOLE_TOKEN_FILE/);
    expect(error.message).not.toContain(TOKEN);
  });

  it('an unreadable file is a ConfigError naming the path and errno code', () => {
    const missing = join(dir, 'no-such-file');
    expect(configError(() => resolveConfig({}, { CONSOLE_TOKEN_FILE: missing }, {})).message).toBe(
      `Cannot read the console token file \`${missing}\` (CONSOLE_TOKEN_FILE (environment)): ENOENT`,
    );
    expect(configError(() => resolveConfig({}, {}, { CONSOLE_TOKEN_FILE: dir })).message).toBe(
      `Cannot read the console token file \`${dir}\` (CONSOLE_TOKEN_FILE in .env): EISDIR`,
    );
    if (process.getuid?.() !== 0) {
      const locked = secret('locked', TOKEN);
      chmodSync(locked, 0o000);
      expect(configError(() => resolveConfig({}, { CONSOLE_TOKEN_FILE: locked }, {})).message).toMatch(
        /`.*locked` \(CONSOLE_TOKEN_FILE \(environment\)\): EACCES$/,
      );
    }
  });

  it('a file that holds no usable token is refused without printing what it holds', () => {
    const cases: [string, string, RegExp][] = [
      ['short', 's3cr3t\n', /the console token file `.*short` \(CONSOLE_TOKEN_FILE \(environment\)\) to be at least 16 characters without spaces/],
      ['two-words', `${TOKEN} ${TOKEN}\n`, /the console token file `.*two-words` .* to be at least 16 characters without spaces/],
      ['empty', '\n', /the console token file `.*empty` .* to be at least 16 characters/],
      ['big', `${TOKEN}\n`.repeat(200), /^Cannot read the console token file `.*big` \(CONSOLE_TOKEN_FILE \(environment\)\): larger than 4096 bytes/],
    ];
    for (const [name, text, message] of cases) {
      const error = configError(() => resolveConfig({}, { CONSOLE_TOKEN_FILE: secret(name, text) }, {}));
      expect(error.message).toMatch(message);
      expect(error.message).not.toContain('s3cr3t');
    }
  });

  it('does not change how the API key file is read or named', () => {
    const missing = join(dir, 'no-key-file');
    expect(configError(() => resolveConfig({}, { DOUBLETICK_API_KEY_FILE: missing }, {})).message).toBe(
      `Cannot read the API key file \`${missing}\` (DOUBLETICK_API_KEY_FILE (environment)): ENOENT`,
    );
  });
});
