/**
 * The console's JSON API over batches: upload, list, one batch, its timeline, its report files, and the
 * operator's actions (pause, resume, cancel, approve, reject, rerun). Thin: each route calls the library function the CLI
 * command calls, so both behave the same; http-errors.ts maps their errors to statuses.
 */
import { type FileHandle, open } from 'node:fs/promises';
import { join } from 'node:path';

import type { FastifyInstance, FastifyReply } from 'fastify';

import { cancelBatch, pauseBatch, resumeBatch } from '../ops/batch-control.js';
import { approveBatch, rejectBatch } from '../ops/approval.js';
import { consoleActor } from './actor.js';
import type { BatchRecord } from '../store/batch-store.js';
import type { Context } from '../runtime/context.js';
import { writeReport } from '../report/report.js';
import { rerunBatch } from '../ops/rerun.js';
import { restoreBatch } from '../ops/restore.js';
import { makeTimelineCache } from './timeline.js';
import { BATCH_NAME_MAX, ingestUpload } from './upload.js';
import { completeDryRun } from '../app/dry-run.js';
import { apiPauseOf, batchView, readApiRate } from '../app/views.js';
import { pausedUntil } from '../execution/pacer.js';
import { BATCH_KINDS, BATCH_STATUSES, listBatches } from '../app/batch-list.js';
import { FAILURE_CLASS_FILTERS, type FailureClassFilter, type FailureFilter, failurePage, revealFailure } from '../app/failures.js';
import { type BatchStatus, Status } from '../domain/lifecycle.js';
import type { BatchKind } from '../store/batch-store.js';
import { integerParam, refuseUnsafe } from './query.js';

/**
 * Report files a client may download, with their content types. A Map, not an object literal: the file name
 * comes from the URL, and `constructor` or `__proto__` must be "no such file", not a property of Object.
 */
const REPORT_FILES: ReadonlyMap<string, string> = new Map([
  ['failed.csv', 'text/csv; charset=utf-8'],
  ['rejected.csv', 'text/csv; charset=utf-8'],
  ['summary.md', 'text/markdown; charset=utf-8'],
  ['summary.json', 'application/json; charset=utf-8'],
]);

/** Batch ids are `YYYYMMDD-HHMMSS-hex` (batch-store.ts): anything else never reaches Redis keys or the disk. */
export const BATCH_ID = /^[0-9]{8}-[0-9]{6}-[0-9a-f]{6}$/;

const CONTROLS = { pause: pauseBatch, resume: resumeBatch, cancel: cancelBatch } as const;
const APPROVALS = { approve: approveBatch, reject: rejectBatch } as const;

type IdParams = { Params: { id: string } };

const LIST_LIMIT = { min: 1, max: 1000 };
const FAILURE_LIMIT = { min: 1, max: 500 };
/** Offsets and line numbers: far above any batch (MAX_ROWS), far below what Redis ranges accept. */
const OFFSET = { min: 0, max: 100_000_000 };
const LINE = { min: 0, max: 1_000_000_000 };

type FailureQuery = { offset?: number; limit?: number; reason?: string; class?: FailureClassFilter };

function failureQuerySchema(reveal: boolean): Record<string, unknown> {
  return {
    type: 'object',
    properties: {
      offset: integerParam(OFFSET),
      ...(reveal ? { line: integerParam(LINE) } : { limit: integerParam(FAILURE_LIMIT) }),
      // The rerun API's limit for onlyReason: a filter the rerun form can pass on as it is.
      reason: { type: 'string', maxLength: 300 },
      class: { type: 'string', enum: [...FAILURE_CLASS_FILTERS] },
    },
    ...(reveal ? { required: ['line'] } : {}),
    additionalProperties: false,
  };
}

function failureFilterOf(query: FailureQuery): FailureFilter {
  return { ...(query.reason ? { reason: query.reason } : {}), failureClass: query.class ?? 'all' };
}

function notFound(reply: FastifyReply, id: string): FastifyReply {
  return reply.code(404).send({ error: 'ERR_NOT_FOUND', message: `no batch with id ${id}` });
}

/** The file opened for reading, or undefined when it is not there (any other error is a real failure). */
async function openIfThere(path: string): Promise<FileHandle | undefined> {
  try {
    return await open(path, 'r');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
}

/** What a rerun and a restore both take, as the CLI's child-batch commands do (--name, --dry-run). */
const CHILD_BATCH_PROPERTIES = {
  // The child's own name; blank keeps the default ("<parent name> (rerun)" / "(restore)").
  name: { type: 'string', maxLength: BATCH_NAME_MAX },
  // The child is made and previewed, nothing is enqueued (status dry-run).
  dryRun: { type: 'boolean' },
} as const;

export function registerBatchRoutes(app: FastifyInstance, ctx: Context): void {
  const timelines = makeTimelineCache(ctx);
  const find = async (id: string): Promise<BatchRecord | undefined> => (BATCH_ID.test(id) ? ctx.batches.get(id) : undefined);
  /** A new child batch (rerun, restore) as the page shows it; a dry run's report is written first, as an uploaded one's. */
  const sendChild = async (reply: FastifyReply, child: BatchRecord): Promise<FastifyReply> => {
    if (child.status === Status.dryRun) await completeDryRun(ctx, child);
    return reply.code(201).send(batchView(child));
  };

  app.post('/api/batches', async (request, reply) => {
    const batch = await ingestUpload(ctx, request);
    return reply.code(201).send(batchView(batch));
  });

  app.get<{ Querystring: { limit?: number; offset?: number; status?: BatchStatus; kind?: BatchKind; name?: string } }>(
    '/api/batches',
    {
      schema: {
        querystring: {
          type: 'object',
          properties: {
            limit: integerParam(LIST_LIMIT),
            offset: integerParam(OFFSET),
            status: { type: 'string', enum: [...BATCH_STATUSES] },
            kind: { type: 'string', enum: [...BATCH_KINDS] },
            name: { type: 'string', maxLength: BATCH_NAME_MAX },
          },
          additionalProperties: false,
        },
      },
    },
    async (request, reply) => {
      const { limit = 50, offset = 0, status, kind, name } = request.query;
      const refused = refuseUnsafe(reply, { limit: { value: limit, bounds: LIST_LIMIT }, offset: { value: offset, bounds: OFFSET } });
      if (refused) return refused;
      const page = await listBatches(ctx, { ...(status ? { status } : {}), ...(kind ? { kind } : {}), ...(name ? { name } : {}) }, offset, limit);
      return { ...page, batches: page.batches.map((b) => batchView(b)), filters: { statuses: BATCH_STATUSES, kinds: BATCH_KINDS } };
    },
  );

  app.get<IdParams & { Querystring: FailureQuery }>(
    '/api/batches/:id/failures',
    { schema: { querystring: failureQuerySchema(false) } },
    async (request, reply) => {
      const { offset = 0, limit = 50 } = request.query;
      const refused = refuseUnsafe(reply, { offset: { value: offset, bounds: OFFSET }, limit: { value: limit, bounds: FAILURE_LIMIT } });
      if (refused) return refused;
      const batch = await find(request.params.id);
      if (!batch) return notFound(reply, request.params.id);
      return failurePage(ctx, batch.id, failureFilterOf(request.query), offset, limit);
    },
  );

  app.get<IdParams & { Querystring: FailureQuery & { line: number } }>(
    '/api/batches/:id/failures/reveal',
    { schema: { querystring: failureQuerySchema(true) } },
    async (request, reply) => {
      const { offset = 0, line } = request.query;
      const refused = refuseUnsafe(reply, { offset: { value: offset, bounds: OFFSET }, line: { value: line, bounds: LINE } });
      if (refused) return refused;
      const batch = await find(request.params.id);
      if (!batch) return notFound(reply, request.params.id);
      const row = await revealFailure(ctx, batch.id, failureFilterOf(request.query), offset, line);
      if (!row) return reply.code(409).send({ error: 'ERR_BATCH_STATE', message: 'that row is no longer there under this filter: reload the page' });
      return reply.header('cache-control', 'no-store').send(row);
    },
  );

  app.get<IdParams>('/api/batches/:id', async (request, reply) => {
    const batch = await find(request.params.id);
    if (!batch) return notFound(reply, request.params.id);
    // With the global pause, as `status` and the progress stream (events.ts) show it.
    return {
      ...batchView(batch),
      pausedByApiUntil: apiPauseOf(batch, Date.now(), await pausedUntil(ctx.redis, ctx.keys)),
      apiRate: await readApiRate(ctx.redis, ctx.keys, ctx.config),
    };
  });

  app.get<IdParams>('/api/batches/:id/timeline', async (request, reply) => {
    const batch = await find(request.params.id);
    if (!batch) return notFound(reply, request.params.id);
    return timelines.get(batch);
  });

  app.get<{ Params: { id: string; file: string } }>('/api/batches/:id/reports/:file', async (request, reply) => {
    const { id, file } = request.params;
    const type = REPORT_FILES.get(file);
    if (type === undefined || !BATCH_ID.test(id)) return reply.code(404).send({ error: 'ERR_NOT_FOUND', message: 'no such report file' });
    const path = join(ctx.config.reportsDir, id, file);
    // Opened before anything is sent, so a missing file is an answer (404/409), never a stream that fails later.
    let handle = await openIfThere(path);
    if (!handle) {
      // Workers on other hosts write reports to their own disks: rebuild it here from Redis, as `report` does.
      const batch = await find(id);
      if (!batch) return notFound(reply, id);
      if (!batchView(batch).reportReady) {
        return reply.code(409).send({ error: 'ERR_BATCH_STATE', message: `batch ${id} is ${batch.status}: its report is written when it finishes` });
      }
      await writeReport(ctx, batch, ctx.config.reportsDir);
      handle = await openIfThere(path);
      if (!handle) return reply.code(404).send({ error: 'ERR_NOT_FOUND', message: 'no such report file' });
    }
    const stream = handle.createReadStream();
    // Our own listener, so a read error is never an unhandled 'error' event (which would end the process), even
    // if the stream were left unsent. Before the headers are out, Fastify answers it through the error handler
    // (500); after, no error answer is possible: cut the response short, so the client sees an incomplete download.
    stream.on('error', (error) => {
      ctx.logger.error({ err: error.message, file }, 'report download failed');
      if (reply.raw.headersSent && !reply.raw.destroyed) reply.raw.destroy();
    });
    return reply.type(type).header('content-disposition', `attachment; filename="${id}-${file}"`).header('cache-control', 'no-store').send(stream);
  });

  // Approve and reject a batch held for approval (the brake): one compare-and-set each, audited with the operator.
  for (const [action, run] of Object.entries(APPROVALS)) {
    app.post<IdParams>(`/api/batches/:id/${action}`, async (request, reply) => {
      const batch = await find(request.params.id);
      if (!batch) return notFound(reply, request.params.id);
      const chats = await run(ctx, batch.id, consoleActor(request));
      return { batchId: batch.id, action, chats, batch: batchView(await ctx.batches.require(batch.id)) };
    });
  }

  for (const [action, run] of Object.entries(CONTROLS)) {
    app.post<IdParams>(`/api/batches/:id/${action}`, async (request, reply) => {
      const batch = await find(request.params.id);
      if (!batch) return notFound(reply, request.params.id);
      const chats = await run(ctx, batch.id, consoleActor(request));
      return { batchId: batch.id, action, chats, batch: batchView(await ctx.batches.require(batch.id)) };
    });
  }

  app.post<IdParams & { Body: { includePermanent?: boolean; onlyReason?: string; name?: string; dryRun?: boolean } | null }>(
    '/api/batches/:id/rerun',
    {
      schema: {
        body: {
          type: ['object', 'null'],
          properties: {
            includePermanent: { type: 'boolean' },
            onlyReason: { type: 'string', maxLength: 300 },
            ...CHILD_BATCH_PROPERTIES,
          },
          additionalProperties: false,
        },
      },
    },
    async (request, reply) => {
      const parent = await find(request.params.id);
      if (!parent) return notFound(reply, request.params.id);
      const body = request.body ?? {};
      const onlyReason = body.onlyReason?.trim();
      const name = body.name?.trim();
      const child = await rerunBatch(ctx, parent.id, consoleActor(request), {
        includePermanent: body.includePermanent === true,
        ...(onlyReason ? { onlyReason } : {}),
        ...(name ? { name } : {}),
        dryRun: body.dryRun === true,
      });
      return sendChild(reply, child);
    },
  );

  // Undo (`bulk-unassign restore`): a new batch giving the parent's unassigned chats back to their previous agent.
  // Two clicks at once make one batch: the restore slot is claimed atomically with creating it.
  app.post<IdParams & { Body: { force?: boolean; name?: string; dryRun?: boolean } | null }>(
    '/api/batches/:id/restore',
    {
      schema: {
        body: {
          type: ['object', 'null'],
          properties: {
            // The CLI's --force: restore a batch that was restored before.
            force: { type: 'boolean' },
            ...CHILD_BATCH_PROPERTIES,
          },
          additionalProperties: false,
        },
      },
    },
    async (request, reply) => {
      const parent = await find(request.params.id);
      if (!parent) return notFound(reply, request.params.id);
      const body = request.body ?? {};
      const name = body.name?.trim();
      const child = await restoreBatch(ctx, parent.id, {
        actor: consoleActor(request),
        force: body.force === true,
        ...(name ? { name } : {}),
        dryRun: body.dryRun === true,
      });
      return sendChild(reply, child);
    },
  );
}
