/**
 * TRUST_PROXY (src/config/config.ts): what the console hands Fastify as `trustProxy`. Off by default; `true`, a
 * number of proxy hops, or a list of proxy addresses/CIDRs; anything else is refused at start-up rather than
 * read as "trust everyone".
 */
import { describe, expect, it } from '@jest/globals';

import { resolveConfig } from '../../src/config/config.js';

const trust = (value: string | undefined): unknown => resolveConfig({}, value === undefined ? {} : { TRUST_PROXY: value }).trustProxy;

describe('TRUST_PROXY', () => {
  it.each([
    [undefined, false],
    ['', false],
    ['false', false],
    ['off', false],
    ['0', false],
    ['true', true],
    ['TRUE', true],
    ['yes', true],
    ['1', 1],
    [' 2 ', 2],
    ['10.0.0.1', ['10.0.0.1']],
    ['10.0.0.0/8, 192.168.1.0/255.255.255.0,::1', ['10.0.0.0/8', '192.168.1.0/255.255.255.0', '::1']],
    ['loopback,fd00::/8', ['loopback', 'fd00::/8']],
  ])('%p → %p', (value, expected) => {
    expect(trust(value)).toEqual(expected);
  });

  it.each(['ture', '11', '-1', '1.5', '10.0.0.0/33', '::1/129', 'proxy.internal', '10.0.0.1,nope', ',', '10.0.0.0/8/8'])('refuses %p', (value) => {
    expect(() => trust(value)).toThrow(/TRUST_PROXY/);
  });

  it('takes the option over the environment, as every setting does', () => {
    expect(resolveConfig({ trustProxy: ['127.0.0.1'] }, { TRUST_PROXY: 'true' }).trustProxy).toEqual(['127.0.0.1']);
  });
});
