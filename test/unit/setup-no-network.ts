/**
 * The unit tier's promise, enforced: no Redis, no HTTP, no network of any kind. Every socket connection and
 * every server listen in a unit test process throws, so a test that reaches for the network (a Redis client, the
 * stand-in API, got) fails at once with this message instead of passing where Redis happens to run.
 */
import net from 'node:net';

const refuse = (what: string) =>
  function refused(): never {
    throw new Error(`unit tests use no network (${what}): this belongs in test/integration`);
  };

net.Socket.prototype.connect = refuse('a socket connection') as typeof net.Socket.prototype.connect;
net.Server.prototype.listen = refuse('a server listening') as typeof net.Server.prototype.listen;
