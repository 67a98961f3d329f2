/**
 * Bounds for numbers read from a query string. Fastify's schema coercion lets `1e999` through as Infinity (it is
 * within any "maximum"), which would reach Redis as a bad range: every route that takes a number from the
 * query checks it again here and answers 400 instead of a 500.
 */
import type { FastifyReply } from 'fastify';

export interface Bounds {
  readonly min: number;
  readonly max: number;
}

/** The JSON-schema part for one integer query parameter. */
export function integerParam(bounds: Bounds): { type: 'integer'; minimum: number; maximum: number } {
  return { type: 'integer', minimum: bounds.min, maximum: bounds.max };
}

/** Undefined when every named value is a whole number within its bounds; else the 400 reply, sent. */
export function refuseUnsafe(reply: FastifyReply, values: Readonly<Record<string, { value: number | undefined; bounds: Bounds }>>): FastifyReply | undefined {
  for (const [name, { value, bounds }] of Object.entries(values)) {
    if (value !== undefined && !(Number.isSafeInteger(value) && value >= bounds.min && value <= bounds.max)) {
      return reply.code(400).send({ error: 'ERR_BAD_REQUEST', message: `querystring/${name} must be a whole number from ${bounds.min} to ${bounds.max}` });
    }
  }
  return undefined;
}
