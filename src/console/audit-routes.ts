/**
 * The console's audit API: GET /api/audit?batch=&actor=&since=&limit= — the entries `bulk-unassign audit` prints,
 * with the same filters checked by the same code (app/audit.ts: a bad value is a UsageError, so a 400 that says
 * what would do). Entries hold names and addresses, never a token or a hash of one.
 */
import type { FastifyInstance } from 'fastify';

import { AUDIT_LIMIT, listAudit, SINCE_FORMS } from '../app/audit.js';
import { AUDIT_ACTIONS } from '../store/audit-store.js';
import type { Context } from '../runtime/context.js';
import { integerParam, refuseUnsafe } from './query.js';

type AuditQuerystring = { batch?: string; actor?: string; since?: string; limit?: number };

const LIMIT = { min: AUDIT_LIMIT.min, max: AUDIT_LIMIT.max };

export function registerAuditRoutes(app: FastifyInstance, ctx: Context): void {
  app.get<{ Querystring: AuditQuerystring }>(
    '/api/audit',
    {
      schema: {
        querystring: {
          type: 'object',
          properties: {
            batch: { type: 'string', maxLength: 40 },
            actor: { type: 'string', maxLength: 100 },
            since: { type: 'string', maxLength: 40 },
            limit: integerParam(LIMIT),
          },
          additionalProperties: false,
        },
      },
    },
    async (request, reply) => {
      const { batch, actor, since, limit } = request.query;
      const refused = refuseUnsafe(reply, { limit: { value: limit, bounds: LIMIT } });
      if (refused) return refused;
      const entries = await listAudit(ctx, { batch, actor, since, limit });
      // Newest first on the page; the filters' choices come from the store's own list.
      return reply.header('cache-control', 'no-store').send({ entries: entries.reverse(), actions: AUDIT_ACTIONS, sinceForms: SINCE_FORMS });
    },
  );
}
