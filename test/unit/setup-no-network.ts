/**
 * The unit tier's promise, enforced: no Redis, no HTTP, no network of any kind. While a unit test file runs,
 * every socket connection and every server listen throws, so a test that reaches for the network (a Redis client,
 * the stand-in API, got) fails at once with this message instead of passing where Redis happens to run.
 *
 * `node:net` is one module for the whole Jest process, shared by every test file: `npm test` runs the unit and
 * the integration files in one process, so the guard is put back after each unit file.
 */
import net from 'node:net';

import { afterAll, beforeAll } from '@jest/globals';

const refuse = (what: string) =>
  function refused(): never {
    throw new Error(`unit tests use no network (${what}): this belongs in test/integration`);
  };

const { connect } = net.Socket.prototype;
const { listen } = net.Server.prototype;

beforeAll(() => {
  net.Socket.prototype.connect = refuse('a socket connection') as typeof net.Socket.prototype.connect;
  net.Server.prototype.listen = refuse('a server listening') as typeof net.Server.prototype.listen;
});

afterAll(() => {
  net.Socket.prototype.connect = connect;
  net.Server.prototype.listen = listen;
});
