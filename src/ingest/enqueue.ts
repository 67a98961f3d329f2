/**
 * Ingest: rows in → batch record, staged chats, one job per chat. Two phases so that a broken file leaves
 * nothing enqueued: (1) stream every row into Redis staging (de-duplicated by HSETNX, memory flat in Node),
 * and only when the whole source read cleanly (2) enqueue the staged chats with `addBulk` in chunks.
 */
import type { Queue } from 'bullmq';

import type { BatchRecord, BatchStore, NewBatch } from '../store/batch-store.js';
import type { IngestRow } from './csv-source.js';
import { BatchStateError, DuplicateUploadError, NoValidRowsError } from '../domain/errors.js';
import type { Keys } from '../store/keys.js';
import { JOB_UNASSIGN, type JobPolicy, type QueueJobData, unassignJobOptions } from '../store/queue.js';
import { claimSource, releaseClaim, type ScriptedRedis, type StagedRow, stageRows } from '../store/scripts.js';
import type { RejectedRow } from '../domain/chat.js';
import { decodeRejectedRow } from '../store/codecs.js';
import { admit, afterAdmission, type IngestBrake } from './hold.js';
import { agentColumnOf, agentOfCell } from './csv-headers.js';

/** Rows per Redis round trip when staging. */
export const CHUNK_SIZE = 1000;
/**
 * Jobs per `addBulk`, and `addBulk` calls in flight at once. Small calls overlap Redis (running BullMQ's
 * Lua) with this process (building the next jobs) while only ~500 jobs wait in memory. Larger settings are
 * faster but cost peak RSS over the ingest memory target: BENCHMARKS.md, "Enqueue chunk sizes".
 */
export const ENQUEUE_CHUNK_SIZE = 125;
export const CHUNKS_IN_FLIGHT = 4;

export interface IngestDeps {
  readonly redis: ScriptedRedis;
  readonly keys: Keys;
  readonly batches: BatchStore;
  readonly queue: Queue<QueueJobData>;
  readonly policy: JobPolicy;
}

/** Where rows come from: a CSV file, a rerun of failed chats, a nightly query. */
export interface RowSource {
  readonly header: readonly string[];
  rows(): AsyncIterable<IngestRow>;
  /** Content hash, known once rows() is consumed ('' when there is no file). */
  sha256(): string;
}

export interface IngestOptions {
  readonly batch: NewBatch;
  readonly dryRun?: boolean;
  /** Skip the "same file ran recently" check. */
  readonly force?: boolean;
  /** Hours within which the same content needs --force (0 = never). */
  readonly duplicateWindowHours: number;
  readonly onProgress?: (p: IngestProgress) => void;
  /** The brake (hold.ts): limits over which the batch waits for approval instead of starting. None: never held. */
  readonly brake?: IngestBrake;
}

export interface IngestProgress {
  readonly phase: 'reading' | 'enqueueing';
  readonly rows: number;
  readonly valid: number;
  readonly rejected: number;
  readonly duplicates: number;
  readonly enqueued: number;
}

interface Tally {
  rows: number;
  valid: number;
  rejected: number;
  duplicates: number;
  enqueued: number;
}

/**
 * Staging writes in flight while the next rows are read: parsing (CPU here) and staging (CPU in Redis) overlap
 * instead of taking turns. They go out on one connection in call order, so file order and first-wins
 * de-duplication are exactly as if each write were awaited.
 */
export const STAGE_WRITES_IN_FLIGHT = 4;

/**
 * Reads every row into staging. Returns the tally; throws whatever the source throws. A source with an agent
 * column (csv-headers.ts: a CSV's, GET /chats' `assignedUserNumber`, a restore's) has each staged chat's agent
 * kept in the batch's agents hash, for a restore; a duplicate row's agent is not (the first row wins).
 */
async function stage(deps: IngestDeps, batchId: string, source: RowSource, onChunk: (t: Tally) => void): Promise<Tally> {
  const k = deps.keys.batch(batchId);
  const tally: Tally = { rows: 0, valid: 0, rejected: 0, duplicates: 0, enqueued: 0 };
  const agentColumn = agentColumnOf(source.header);
  let valid: StagedRow[] = [];
  let agents: (string | undefined)[] = [];
  let rejected: string[] = [];
  const inFlight = new Set<Promise<void>>();
  const flush = async (): Promise<void> => {
    // Both commands are issued before either is awaited: they reach Redis in file order.
    const staged = stageRows(deps.redis, k, valid);
    const pushed = rejected.length > 0 ? deps.redis.rpush(k.rejected, ...rejected) : Promise.resolve(0);
    const [chunk, chunkAgents] = [valid, agents];
    valid = [];
    agents = [];
    rejected = [];
    const write = Promise.all([staged, pushed]).then(async ([flags]) => {
      const kept: string[] = [];
      flags.forEach((flag, i) => {
        if (flag === 'staged') tally.valid += 1;
        else tally.duplicates += 1;
        const agent = chunkAgents[i];
        if (flag === 'staged' && agent !== undefined) kept.push((chunk[i] as StagedRow).chatKey, agent);
      });
      if (kept.length > 0) await deps.redis.hset(k.agents, ...kept);
      onChunk(tally);
    });
    inFlight.add(write);
    write.then(
      () => inFlight.delete(write),
      () => undefined,
    ); // a failure surfaces through the race / allSettled below
    if (inFlight.size >= STAGE_WRITES_IN_FLIGHT) await Promise.race(inFlight);
  };
  let readFailure: { readonly error: unknown } | undefined;
  try {
    for await (const item of source.rows()) {
      tally.rows += 1;
      if (item.kind === 'valid') {
        valid.push({ chatKey: item.row.key, input: JSON.stringify({ line: item.row.line, cells: item.row.cells }) });
        if (agentColumn !== undefined) agents.push(agentOfCell(item.row.cells[agentColumn]));
      } else {
        tally.rejected += 1;
        rejected.push(JSON.stringify(item.row satisfies RejectedRow));
      }
      if (valid.length >= CHUNK_SIZE || rejected.length >= CHUNK_SIZE) await flush();
    }
    await flush();
  } catch (error) {
    readFailure = { error };
  }
  // Never leave writes running behind a failure: the caller deletes the batch next, and must come after them.
  const settled = await Promise.allSettled(inFlight);
  const failed = settled.find((r) => r.status === 'rejected');
  if (failed) throw failed.reason;
  if (readFailure) throw readFailure.error;
  return tally;
}

/**
 * How often one claim may find the content held by a batch that is gone and try to take it over. Each retry
 * means another upload of the same content claimed it meanwhile; a few in a row is not a race but a loop.
 */
const MAX_CLAIM_TAKEOVERS = 5;

function duplicateOf(earlier: string, opts: IngestOptions): DuplicateUploadError {
  return new DuplicateUploadError(
    earlier,
    `this file's content was already run as batch ${earlier} within the last ${opts.duplicateWindowHours} h ` +
      '(DUPLICATE_WINDOW_HOURS); pass --force to run it again',
  );
}

/**
 * The duplicate-upload guard, as one atomic claim: the content hash's key is set to this batch unless another
 * batch that still exists holds it (claimSource). Checking first and setting later would let uploads of the same
 * file that arrive together all pass the check. Returns the claimed key (release it if the ingest fails), or
 * undefined when the guard does not apply (--force, dry run, DUPLICATE_WINDOW_HOURS=0, a source without a file).
 */
async function claimContent(deps: IngestDeps, batchId: string, sha256: string, opts: IngestOptions): Promise<string | undefined> {
  if (opts.force || opts.dryRun || opts.duplicateWindowHours === 0 || sha256 === '') return undefined;
  const key = deps.keys.sourceHash(sha256);
  let gone = '';
  for (let attempt = 0; attempt < MAX_CLAIM_TAKEOVERS; attempt += 1) {
    const reply = await claimSource(deps.redis, key, { batchId, ttlSeconds: Math.ceil(opts.duplicateWindowHours * 3600), goneHolder: gone });
    if (reply.claimed) return key;
    // Its record expired or was removed (a failed ingest): the content may run again, and this batch takes it over.
    const holder = await deps.batches.get(reply.holder);
    if (holder?.id === reply.holder) throw duplicateOf(reply.holder, opts);
    gone = reply.holder;
  }
  throw duplicateOf(gone, opts);
}

function noValidRowsMessage(tally: Tally, firstRejected: RejectedRow[]): string {
  const examples = firstRejected.map((r) => `  line ${r.line}: ${r.reason}${r.raw ? ` (${JSON.stringify(r.raw)})` : ''}`);
  return [`no valid rows: ${tally.rows} row(s) read, ${tally.rejected} rejected, ${tally.duplicates} duplicate(s)`, ...examples].join('\n');
}

/**
 * Phase 2: staged chat keys → jobs, in file order (position = fairness priority). Safe to repeat.
 *
 * CHUNKS_IN_FLIGHT loops each take the next chunk once their last one is added. Chunks are taken, not scheduled
 * up front: a pending task per chunk (promise, closure, queue entry; thousands for a big file) is live heap for
 * most of the phase, and V8 lets the heap grow to a multiple of what is live, so it showed in peak RSS. After a
 * failure no loop takes another chunk, and the error is thrown once the chunks already sent are answered.
 */
export async function enqueueStaged(deps: IngestDeps, batchId: string, onChunk?: (enqueued: number) => void): Promise<number> {
  const k = deps.keys.batch(batchId);
  const total = await deps.redis.llen(k.order);
  let next = 0;
  let enqueued = 0;
  let failed = false;
  const addChunks = async (): Promise<void> => {
    try {
      while (!failed && next < total) {
        const start = next;
        next += ENQUEUE_CHUNK_SIZE;
        const chatKeys = await deps.redis.lrange(k.order, start, start + ENQUEUE_CHUNK_SIZE - 1);
        await deps.queue.addBulk(
          chatKeys.map((chatKey, i) => ({
            name: JOB_UNASSIGN,
            data: { b: batchId, k: chatKey },
            opts: unassignJobOptions(batchId, chatKey, start + i, deps.policy),
          })),
        );
        enqueued += chatKeys.length;
        onChunk?.(enqueued);
      }
    } catch (error) {
      failed = true;
      throw error;
    }
  };
  const settled = await Promise.allSettled(Array.from({ length: CHUNKS_IN_FLIGHT }, addChunks));
  const failure = settled.find((r) => r.status === 'rejected');
  if (failure) throw failure.reason;
  await deps.redis.del(k.order);
  return enqueued;
}

/**
 * Creates a batch from a row source. On any error until the batch starts (broken file, duplicate content, no
 * valid rows, Redis failing) the batch is deleted again and its claim on the content released: nothing is left
 * enqueued or staged, and the same content may be uploaded again at once.
 */
export async function ingest(deps: IngestDeps, source: RowSource, opts: IngestOptions): Promise<BatchRecord> {
  const batch = await deps.batches.create({ ...opts.batch, dryRun: opts.dryRun ?? false });
  const k = deps.keys.batch(batch.id);
  const progress = (t: Tally, phase: IngestProgress['phase']): void => opts.onProgress?.({ phase, ...t });
  let tally: Tally;
  let sha256: string;
  let claimed: string | undefined;
  let admitted: { readonly hold: boolean; readonly reason: string };
  try {
    tally = await stage(deps, batch.id, source, (t) => progress(t, 'reading'));
    sha256 = source.sha256();
    claimed = await claimContent(deps, batch.id, sha256, opts);
    if (tally.valid === 0) {
      const first = (await deps.redis.lrange(k.rejected, 0, 2)).map((s, i) => decodeRejectedRow(s, `${k.rejected}[${i}]`));
      throw new NoValidRowsError(noValidRowsMessage(tally, first));
    }
    await deps.batches.update(batch.id, {
      sha256,
      header: JSON.stringify(source.header),
      rows: tally.rows,
      valid: tally.valid,
      rejected: tally.rejected,
      duplicates: tally.duplicates,
      startedAt: Date.now(),
    });
    // A compare-and-set like every move: only an `ingesting` batch starts (or is held). It refuses only when the
    // record vanished meanwhile, and then nothing may be enqueued for it.
    admitted = opts.dryRun ? { hold: false, reason: '' } : admit(opts.brake, tally.valid);
    const move = opts.dryRun ? 'preview' : admitted.hold ? 'hold' : 'start';
    if ((await deps.batches.apply(batch.id, move, admitted.hold ? admitted.reason : undefined)) === undefined) {
      throw new BatchStateError(`batch ${batch.id} was removed while its source was read: nothing was enqueued`);
    }
  } catch (error) {
    await deps.batches.remove(batch.id);
    if (claimed !== undefined) await releaseClaim(deps.redis, claimed, batch.id);
    throw error;
  }
  // A dry run keeps its staged order (the preview reads samples from it); retention expires it like any batch.
  if (opts.dryRun) return deps.batches.require(batch.id);
  // --force ran the content regardless of the guard: from now on the guard names this batch.
  if (opts.force && sha256 !== '' && opts.duplicateWindowHours > 0) {
    await deps.redis.set(deps.keys.sourceHash(sha256), batch.id, 'EX', Math.ceil(opts.duplicateWindowHours * 3600));
  }
  // Held: nothing is enqueued; approving it enqueues every chat (ops/approval.ts).
  if (await afterAdmission(deps, batch.id, opts.brake, admitted)) return deps.batches.require(batch.id);
  await enqueueStaged(deps, batch.id, (enqueued) => progress({ ...tally, enqueued }, 'enqueueing'));
  return deps.batches.require(batch.id);
}
