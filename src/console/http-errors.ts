/**
 * The one place the console turns errors into HTTP answers. Deliberate errors (BulkUnassignError) keep their
 * stable code and message, the same ones the CLI prints; an input error also says where (file, line, column)
 * so the page can point at the row. Anything else is a bug: logged, answered 500 without details.
 */
import type { FastifyError, FastifyInstance } from 'fastify';

import { BulkUnassignError, DuplicateUploadError, InputError } from '../domain/errors.js';
import type { Logger } from '../config/logger.js';

export interface ErrorBody {
  readonly error: string;
  readonly message: string;
  readonly file?: string;
  readonly line?: number;
  readonly column?: number;
  readonly earlierBatchId?: string;
}

/** HTTP status for each deliberate error code (the CLI's exit-code table, for HTTP). A Map: only these keys. */
const STATUS_BY_CODE: ReadonlyMap<string, number> = new Map([
  ['ERR_CSV_INVALID', 400],
  ['ERR_USAGE', 400],
  ['ERR_CONFIG', 400],
  ['ERR_NO_VALID_ROWS', 422],
  ['ERR_DUPLICATE_UPLOAD', 409],
  ['ERR_BATCH_STATE', 409],
  ['ERR_REDIS_UNAVAILABLE', 503],
]);

export function httpError(error: unknown): { status: number; body: ErrorBody } {
  if (error instanceof BulkUnassignError) {
    const body: ErrorBody = {
      error: error.code,
      message: error.message,
      ...(error instanceof InputError ? { file: error.location.file, line: error.location.line, column: error.location.column } : {}),
      ...(error instanceof DuplicateUploadError ? { earlierBatchId: error.earlierBatchId } : {}),
    };
    return { status: STATUS_BY_CODE.get(error.code) ?? 400, body };
  }
  const fastifyError = error as Partial<FastifyError>;
  if (fastifyError.code === 'FST_REQ_FILE_TOO_LARGE') {
    return { status: 413, body: { error: 'ERR_CSV_INVALID', message: 'the file is over the upload limit (MAX_FILE_MB): split it or raise the limit' } };
  }
  const status = fastifyError.statusCode;
  if (typeof status === 'number' && status >= 400 && status < 500) {
    // Fastify's own request errors (bad JSON, schema validation, multipart limits): the message is about the request.
    return { status, body: { error: 'ERR_BAD_REQUEST', message: fastifyError.message ?? 'bad request' } };
  }
  return { status: 500, body: { error: 'ERR_INTERNAL', message: 'internal error (see the server log)' } };
}

export function registerErrorHandling(app: FastifyInstance, logger: Logger): void {
  app.setErrorHandler(async (error, request, reply) => {
    const { status, body } = httpError(error);
    if (status >= 500)
      logger.error(
        { err: error instanceof Error ? error.stack : String(error), method: request.method, route: request.routeOptions.url },
        'console request failed',
      );
    // A route may have set a download's headers before it failed (a report stream that errors before its first
    // byte): the answer is now this JSON error, not the file, and Fastify only serialises objects sent as JSON.
    reply.removeHeader('content-disposition');
    return reply.code(status).type('application/json; charset=utf-8').send(body);
  });
  app.setNotFoundHandler(async (_request, reply) => reply.code(404).send({ error: 'ERR_NOT_FOUND', message: 'no such route' }));
}
