/**
 * The console's page: plain HTML, CSS and vanilla JS in src/console/public/, served as they are (no build
 * step). tsc does not copy non-TypeScript files, so the compiled server (dist/src/console/) reads them from the
 * source tree; under ts-jest the module runs from src/console/ itself. Both are checked, in that order.
 */
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

import type { FastifyInstance } from 'fastify';

const CANDIDATE_DIRS = [new URL('./public/', import.meta.url), new URL('../../../src/console/public/', import.meta.url)];

function publicDir(): URL {
  const found = CANDIDATE_DIRS.find((dir) => existsSync(new URL('index.html', dir)));
  if (!found) throw new Error(`console page files not found (looked in ${CANDIDATE_DIRS.map((d) => fileURLToPath(d)).join(', ')})`);
  return found;
}

/** Absolute path of one file of the page. */
export function publicFile(name: string): string {
  return fileURLToPath(new URL(name, publicDir()));
}

/** The only files served under /assets/ (a fixed list: no path from the request ever reaches the disk). */
const ASSETS: Readonly<Record<string, string>> = {
  'app.js': 'text/javascript; charset=utf-8',
  'charts.js': 'text/javascript; charset=utf-8',
  'app.css': 'text/css; charset=utf-8',
};

/**
 * Our pages load scripts and styles from this origin only, and set styles through the CSSOM (allowed) rather
 * than style attributes. Everything shown from a CSV goes in with textContent, and this policy is the backstop.
 */
export const PAGE_CSP =
  "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
  "form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'";

export function registerPage(app: FastifyInstance): void {
  // Read once at start: a handful of small files, and a missing one fails at start-up, not on first visit.
  const index = readFileSync(publicFile('index.html'), 'utf8');
  const assets = new Map(Object.entries(ASSETS).map(([name, type]) => [name, { type, body: readFileSync(publicFile(name)) }]));

  app.get('/', async (_request, reply) =>
    reply.header('content-security-policy', PAGE_CSP).header('cache-control', 'no-store').type('text/html; charset=utf-8').send(index),
  );
  app.get<{ Params: { name: string } }>('/assets/:name', async (request, reply) => {
    const asset = assets.get(request.params.name);
    if (!asset) return reply.code(404).send({ error: 'ERR_NOT_FOUND', message: 'no such asset' });
    return reply.header('cache-control', 'no-cache').type(asset.type).send(asset.body);
  });
}
