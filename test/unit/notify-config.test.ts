/** NOTIFY_WEBHOOK_URL in resolveConfig: optional, http(s) only, and a bad value is refused without echoing a token. */
import { describe, expect, it } from '@jest/globals';

import { resolveConfig } from '../../src/config/config.js';
import { ConfigError } from '../../src/domain/errors.js';
import { webhookTarget } from '../../src/report/webhook.js';

describe('NOTIFY_WEBHOOK_URL', () => {
  it('is optional', () => {
    expect(resolveConfig({}, {}).notifyWebhookUrl).toBeUndefined();
  });
  it('takes an http(s) URL from the environment or .env', () => {
    expect(resolveConfig({}, { NOTIFY_WEBHOOK_URL: 'https://hooks.example.com/x?token=abc' }).notifyWebhookUrl).toBe('https://hooks.example.com/x?token=abc');
    expect(resolveConfig({}, {}, { NOTIFY_WEBHOOK_URL: 'http://10.0.0.5:8080/hook' }).notifyWebhookUrl).toBe('http://10.0.0.5:8080/hook');
  });
  it.each([['hooks.example.com/x'], ['ftp://example.com/x'], ['mailto:ops@example.com']])('refuses %s', (value) => {
    expect(() => resolveConfig({}, { NOTIFY_WEBHOOK_URL: value })).toThrow(ConfigError);
    expect(() => resolveConfig({}, { NOTIFY_WEBHOOK_URL: value })).toThrow(/Expected `notifyWebhookUrl` \(NOTIFY_WEBHOOK_URL\) to be an http\(s\) URL/);
  });
  it('never prints more than the start of a refused value (it may hold a token)', () => {
    expect(() => resolveConfig({}, { NOTIFY_WEBHOOK_URL: 'ftp://example.com/hook?token=supersecretvalue' })).toThrow(/got `ftp:\/\/exampl…`$/);
  });
  it('logs show scheme and host only', () => {
    expect(webhookTarget('https://user:pw@hooks.example.com:8443/x?token=abc')).toBe('https://hooks.example.com:8443');
  });
});
