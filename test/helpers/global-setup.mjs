/**
 * Jest global setup: use the Redis at REDIS_URL when it answers, otherwise start a private redis-server on a
 * free port (the tests must run where no Redis is running). Tests run in band, so process.env reaches them.
 * Plain ESM over the compiled dist/ (`npm test` builds first): Jest does not transform global setup files.
 */
import { redisAnswers } from '../../dist/src/store/redis.js';
import { findRedisServer, startPrivateRedis } from '../../dist/src/devtools/redis-server.js';

export default async function globalSetup() {
  const url = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
  if (await redisAnswers(url)) {
    process.env.REDIS_URL = url;
    return;
  }
  if (!findRedisServer()) {
    throw new Error(`no Redis at ${url} and no redis-server binary: install it (apt-get install redis-server) or run docker compose up -d redis`);
  }
  const server = await startPrivateRedis();
  globalThis.__privateRedis = server;
  process.env.REDIS_URL = server.url;
  console.log(`\nno Redis at ${url}: using a private redis-server at ${server.url}`);
}
