#!/usr/bin/env node
/**
 * The `bulk-unassign` executable: the composition root. It registers the job processors of `jobs/` (the only
 * place under `src/` that imports them) and hands the process's streams and environment to the CLI.
 */
import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

import { jobTable } from '../jobs/index.js';
import { main } from './cli/cli.js';
import type { Io } from './cli/commands/common.js';

function invokedDirectly(): boolean {
  try {
    // npx and global installs call us through a symlink: compare real paths.
    return process.argv[1] !== undefined && realpathSync(process.argv[1]) === fileURLToPath(import.meta.url);
  } catch {
    return false;
  }
}

if (invokedDirectly()) {
  const io: Io = {
    out: (text) => process.stdout.write(`${text}\n`),
    err: (text) => process.stderr.write(`${text}\n`),
    env: process.env,
    cwd: process.cwd(),
    jobs: jobTable,
    // Loaded only by the commands that serve the console: fastify and Bull Board are most of the modules a
    // process would otherwise load before its first row (an upload, a run).
    startConsole: async (ctx, options) => (await import('./console/server.js')).startConsole(ctx, options),
  };
  const code = await main(process.argv.slice(2), io);
  // Let stdout drain, then exit even if a library left a handle open.
  process.stdout.write('', () => process.exit(code));
}
