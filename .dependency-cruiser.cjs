// dependency-cruiser 17 (CommonJS config). `npm run lint:deps` runs it over src, jobs, test and bench.
//
// src/ is layered, lowest first (a layer may import only layers below it, never above):
//   domain < config < store < runtime < {ingest, execution, report, schedule} < ops < app < {cli, console}
//   devtools: test/demo tooling beside the adapters; it may not import cli, console or app.
//   src/main.ts is the composition root: the one file in src/ that may import jobs/.
// Type-only imports count (tsPreCompilationDeps: true): a layer that needs a higher layer's types has the same problem.

const TIER4 = '(ingest|execution|report|schedule)';

/** A rule that lets files under `from` import only the listed src/ folders (npm packages and node builtins are not under src/). */
function onlyImports(name, from, allowed, comment) {
  return {
    name,
    severity: 'error',
    comment,
    from: { path: `^src/${from}/` },
    to: { path: '^src/', pathNot: `^src/(${allowed.join('|')})/` },
  };
}

/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    {
      name: 'no-circular',
      severity: 'error',
      comment: 'Modules in a cycle cannot be understood, tested or loaded one at a time. Break it with a lower module both can use.',
      from: {},
      to: { circular: true },
    },
    {
      name: 'src-not-to-jobs',
      severity: 'error',
      comment: 'Job handlers are registered by the composition root (src/main.ts) only; the rest of src/ never knows about jobs/.',
      from: { path: '^src/', pathNot: '^src/main\\.ts$' },
      to: { path: '^jobs/' },
    },
    {
      name: 'cli-not-to-console',
      severity: 'error',
      comment: 'The two adapters are independent: shared code belongs in app/ or lower.',
      from: { path: '^src/cli/' },
      to: { path: '^src/console/' },
    },
    {
      name: 'console-not-to-cli',
      severity: 'error',
      comment: 'The two adapters are independent: shared code belongs in app/ or lower.',
      from: { path: '^src/console/' },
      to: { path: '^src/cli/' },
    },

    // Layers: allow-lists for the lower layers (an unknown src/ folder is a violation until it gets a place here) ...
    onlyImports('layer-domain', 'domain', ['domain'], 'domain is the lowest layer: it imports nothing else from src/.'),
    onlyImports('layer-config', 'config', ['domain', 'config'], 'config may import only domain.'),
    onlyImports('layer-store', 'store', ['domain', 'config', 'store'], 'store may import only domain and config.'),
    onlyImports('layer-runtime', 'runtime', ['domain', 'config', 'store', 'runtime'], 'runtime may import only domain, config and store.'),
    onlyImports(
      'layer-tier4',
      TIER4,
      ['domain', 'config', 'store', 'runtime', 'ingest', 'execution', 'report', 'schedule'],
      'ingest, execution, report and schedule may import the layers below them and each other, never ops, app, the adapters or devtools.',
    ),
    // ... and deny-lists for the upper ones.
    {
      name: 'layer-ops',
      severity: 'error',
      comment: 'ops may not import app, the adapters (cli, console) or devtools.',
      from: { path: '^src/ops/' },
      to: { path: '^src/(app|cli|console|devtools)/' },
    },
    {
      name: 'layer-app',
      severity: 'error',
      comment: 'app may not import the adapters (cli, console) or devtools.',
      from: { path: '^src/app/' },
      to: { path: '^src/(cli|console|devtools)/' },
    },
    {
      name: 'layer-devtools',
      severity: 'error',
      comment: 'devtools may not import the adapters (cli, console) or app.',
      from: { path: '^src/devtools/' },
      to: { path: '^src/(cli|console|app)/' },
    },

    {
      name: 'jobs-not-to-adapters',
      severity: 'error',
      comment: 'Job handlers run in workers: they may not depend on the adapters, app or devtools.',
      from: { path: '^jobs/' },
      to: { path: '^src/(cli|console|app|devtools)/' },
    },
    {
      name: 'ingest-without-http-or-web',
      severity: 'error',
      comment:
        'An ingest (CLI run, console upload, scheduled batch) reads a file into Redis: it has no use for the HTTP client or the web server, and their module graphs cost its process memory before the first row (peak RSS of a big file). Shared constants belong in a module of their own.',
      from: { path: '^src/ingest/' },
      to: { path: '(^|/)node_modules/(got|fastify|@fastify|@bull-board)/', reachable: true },
    },
    {
      name: 'unit-tests-without-redis',
      severity: 'error',
      comment:
        'The unit tier runs without Redis: no ioredis client, no integration harness. BullMQ may be imported for what needs no connection (its error classes, its backoff formula).',
      from: { path: '^test/unit/' },
      to: { path: ['(^|/)node_modules/ioredis/', '^test/helpers/(harness|processes|console|cluster|schedule)\\.ts$'] },
    },
    {
      name: 'not-to-test-or-bench',
      severity: 'error',
      comment: 'Shipped code (src, jobs) never imports test or benchmark code.',
      from: { path: '^(src|jobs)/' },
      to: { path: '^(test|bench)/' },
    },
  ],
  options: {
    // Record imports of node_modules, dist/ and build/ (Jest's global setup imports the built dist/) but do not cruise into them.
    doNotFollow: { path: ['(^|/)node_modules/', '^(dist|build)/'] },
    // Count type-only imports too.
    tsPreCompilationDeps: true,
    // Includes src, jobs, test and bench; NodeNext `./x.js` specifiers resolve to `./x.ts`.
    tsConfig: { fileName: 'tsconfig.test.json' },
    enhancedResolveOptions: {
      exportsFields: ['exports'],
      conditionNames: ['import', 'require', 'node', 'default', 'types'],
      mainFields: ['module', 'main', 'types', 'typings'],
    },
    reporterOptions: {
      text: { highlightFocused: true },
    },
  },
};
