/**
 * CSV upload: the multipart body is streamed to a temporary file (never held in memory; the size limit is
 * MAX_FILE_MB, enforced while streaming), then read exactly as `bulk-unassign upload` reads a file
 * (`uploadCsv` of the application layer), so the console accepts, rejects and explains the same rows the CLI
 * does. The temp file carries the uploaded file's own name, so the batch's source and every error message
 * name the file the operator chose, not a temp path.
 */
import { createWriteStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { pipeline } from 'node:stream/promises';

import type { FastifyRequest } from 'fastify';

import type { BatchRecord } from '../store/batch-store.js';
import { completeDryRun } from '../app/dry-run.js';
import { uploadCsv } from '../app/upload.js';
import { consoleActor } from './actor.js';
import { Status } from '../domain/lifecycle.js';
import type { Context } from '../runtime/context.js';
import { InputError, UsageError } from '../domain/errors.js';

/** Form fields the upload understands, besides the file itself. */
export interface UploadFields {
  readonly name?: string;
  /** Business number for files without a wabaNumber column (the CLI's --waba). */
  readonly waba?: string;
  /** Country for numbers without a country code (the CLI's --default-country); checked by uploadCsv. */
  readonly defaultCountry?: string;
  /** Run content again that ran within DUPLICATE_WINDOW_HOURS (the CLI's --force). */
  readonly force?: boolean;
  readonly dryRun?: boolean;
  /** Start even above MAX_BATCH_CHATS (the CLI's --approve; audited). */
  readonly approve?: boolean;
  /** Read each chat's agent before its unassign call, so the batch can be restored (the CLI's --capture-assignees). */
  readonly captureAssignees?: boolean;
}

interface ReceivedFile {
  readonly path: string;
  readonly name: string;
  readonly fields: UploadFields;
  cleanup(): Promise<void>;
}

const MAX_NAME_CHARS = 120;

/** Longest batch name the console takes, from the upload form or a rerun; the list's name filter has the same bound. */
export const BATCH_NAME_MAX = 200;

/** The uploaded file's base name, made safe to use as a file name here. */
export function safeFileName(raw: string | undefined): string {
  const name = basename(String(raw ?? '').replace(/\\/g, '/'))
    .replace(/[^\w.\-() ]+/g, '_')
    .replace(/^\.+/, '')
    .slice(0, MAX_NAME_CHARS)
    .trim();
  return name === '' ? 'upload.csv' : name;
}

function flag(value: string | undefined): boolean {
  return value === 'true' || value === 'on' || value === '1';
}

/** Field names come from the request: a Map keeps `__proto__` or `constructor` a field name like any other. */
function toFields(raw: ReadonlyMap<string, string>): UploadFields {
  const name = raw.get('name')?.trim();
  const waba = raw.get('waba')?.trim();
  const defaultCountry = raw.get('defaultCountry')?.trim();
  return {
    ...(name ? { name: name.slice(0, BATCH_NAME_MAX) } : {}),
    ...(waba ? { waba } : {}),
    ...(defaultCountry ? { defaultCountry } : {}),
    force: flag(raw.get('force')),
    dryRun: flag(raw.get('dryRun')),
    approve: flag(raw.get('approve')),
    captureAssignees: flag(raw.get('captureAssignees')),
  };
}

/**
 * A multipart Content-Type names the boundary between parts; without one the body cannot be read at all. The
 * parser (busboy) would throw a plain Error, which reads as a server bug (500): say what is wrong instead.
 */
function requireBoundary(contentType: string | undefined): void {
  const boundary = /;\s*boundary\s*=\s*(?:"([^"]+)"|([^\s;]+))/i.exec(contentType ?? '');
  if (!boundary) {
    throw new UsageError(
      'the upload has no multipart boundary: send the CSV as multipart/form-data (Content-Type: multipart/form-data; boundary=…), as a browser form or curl -F does',
    );
  }
}

/**
 * Errors of the multipart parser are plain Errors (no `code`, no `statusCode`, no `syscall`): a body the client
 * got wrong ("Unexpected end of form", "Malformed part header"), so a 400 that says so. Our own errors, Fastify's
 * (limits → 413), file-system errors (ENOSPC …) and bugs (TypeError …) pass through unchanged.
 */
function asRequestError(error: unknown): unknown {
  if (!(error instanceof Error) || error.constructor !== Error) return error;
  const { statusCode, code, syscall } = error as { statusCode?: unknown; code?: unknown; syscall?: unknown };
  if (statusCode !== undefined || code !== undefined || syscall !== undefined) return error;
  return new UsageError(`the upload is not a well-formed multipart/form-data body: ${error.message}`);
}

/** Streams the request's one file part to a temp file; collects the text fields in any order. */
async function receive(request: FastifyRequest): Promise<ReceivedFile> {
  const dir = await mkdtemp(join(tmpdir(), 'bulk-unassign-upload-'));
  const cleanup = (): Promise<void> => rm(dir, { recursive: true, force: true });
  try {
    if (request.isMultipart()) requireBoundary(request.headers['content-type']);
    const raw = new Map<string, string>();
    let file: { path: string; name: string } | undefined;
    for await (const part of request.parts()) {
      if (part.type === 'field') {
        raw.set(part.fieldname, String(part.value));
        continue;
      }
      if (file) throw new UsageError('one CSV file per upload');
      const name = safeFileName(part.filename);
      const path = join(dir, name);
      // Throws FST_REQ_FILE_TOO_LARGE (→ 413) as soon as the stream passes the limit.
      await pipeline(part.file, createWriteStream(path));
      file = { path, name };
    }
    if (!file) throw new UsageError('no file in the upload: send the CSV as a multipart field named "file"');
    return { ...file, fields: toFields(raw), cleanup };
  } catch (error) {
    await cleanup();
    throw asRequestError(error);
  }
}

/** The same InputError, naming the uploaded file instead of its temp copy. */
function relocate(error: InputError, tempPath: string, name: string): InputError {
  const { line, column } = error.location;
  const where = [error.location.file, line, column].filter((p) => p !== undefined).join(':');
  const message = error.message.startsWith(`${where}: `) ? error.message.slice(where.length + 2) : error.message;
  return new InputError(
    { file: name, ...(line === undefined ? {} : { line }), ...(column === undefined ? {} : { column }) },
    message.replaceAll(tempPath, name),
    {
      cause: error,
    },
  );
}

/** Receives a CSV upload and makes a batch of it (enqueued, or a dry run with its report written). */
export async function ingestUpload(ctx: Context, request: FastifyRequest): Promise<BatchRecord> {
  const upload = await receive(request);
  try {
    const { fields } = upload;
    const batch = await uploadCsv(ctx, {
      actor: consoleActor(request),
      file: upload.path,
      displayName: upload.name,
      ...(fields.name ? { name: fields.name } : {}),
      ...(fields.waba ? { waba: fields.waba } : {}),
      ...(fields.defaultCountry ? { defaultCountry: fields.defaultCountry } : {}),
      force: fields.force === true,
      dryRun: fields.dryRun === true,
      approve: fields.approve === true,
      captureAssignees: fields.captureAssignees === true,
    }).catch((error: unknown) => {
      throw error instanceof InputError ? relocate(error, upload.path, upload.name) : error;
    });
    if (batch.status === Status.dryRun) await completeDryRun(ctx, batch);
    return batch;
  } finally {
    await upload.cleanup();
  }
}
