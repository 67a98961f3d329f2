/**
 * The console's JSON API over schedules: list, one, create or replace, preview (a dry run of the form's
 * definition, saved or not), run now, remove. Each route calls the use case `bulk-unassign schedule …` calls
 * (src/app/schedules.ts), so a definition is checked and refused with the same messages; http-errors.ts maps
 * their errors (UsageError → 400, BatchStateError → 409).
 *
 * Relative inbox folders are resolved against the console process's working directory, as `schedule set`
 * resolves them against the shell's.
 */
import type { FastifyInstance, FastifyReply } from 'fastify';

import { previewSchedule, removeSchedule, runScheduleNow, scheduleDetails, type ScheduleInput, scheduleStoreOf, setSchedule } from '../app/schedules.js';
import { batchView } from '../app/views.js';
import { checkScheduleName } from '../schedule/definition.js';
import { maskPhone } from '../domain/phone.js';
import { CHAT_STATUSES } from '../schedule/rule.js';
import type { Context } from '../runtime/context.js';
import { consoleActor } from './actor.js';
import { UsageError } from '../domain/errors.js';

/** The fields of `schedule set` a form sends, as the flags' text; '' (an empty form field) means "not given". */
const INPUT_FIELDS = ['cron', 'tz', 'overlap', 'inbox', 'chatStatus', 'idleHours', 'tag', 'agent', 'waba', 'maxChats', 'maxShare', 'captureAssignees'] as const;
type InputBody = Partial<Record<(typeof INPUT_FIELDS)[number], string>>;

const inputProperties = Object.fromEntries(INPUT_FIELDS.map((f) => [f, { type: 'string', maxLength: f === 'inbox' ? 1024 : 300 }]));
const inputSchema = { type: 'object', properties: inputProperties, additionalProperties: false } as const;
const previewSchema = {
  type: 'object',
  required: ['name'],
  properties: { ...inputProperties, name: { type: 'string', maxLength: 100 } },
  additionalProperties: false,
} as const;

/** Own properties of the validated body only, blanks dropped: what `schedule set` would have been given. */
function inputOf(body: InputBody | null | undefined): ScheduleInput {
  const input: Record<string, string> = {};
  for (const field of INPUT_FIELDS) {
    const value = body && Object.hasOwn(body, field) ? body[field] : undefined;
    if (typeof value === 'string' && value.trim() !== '') input[field] = value;
  }
  // --capture-assignees is a flag: the form sends 'true' for it, or nothing.
  const { captureAssignees, ...flags } = input;
  if (captureAssignees !== undefined && captureAssignees !== 'true' && captureAssignees !== 'false') {
    throw new UsageError(`Expected \`captureAssignees\` to be true or false, got \`${captureAssignees.slice(0, 40)}\``);
  }
  return captureAssignees === 'true' ? { ...flags, captureAssignees: true } : flags;
}

type NameParams = { Params: { name: string } };

function notFound(reply: FastifyReply, name: string): FastifyReply {
  return reply.code(404).send({ error: 'ERR_NOT_FOUND', message: `no schedule named "${name}"` });
}

export function registerScheduleRoutes(app: FastifyInstance, ctx: Context): void {
  const schedules = scheduleStoreOf(ctx);
  /** The definition, or undefined when there is none; a malformed name is a UsageError (400) with set's message. */
  const find = async (name: string) => schedules.get(checkScheduleName(name));

  app.get('/api/schedules', async () => {
    const out = [];
    for (const def of await schedules.list()) out.push(await scheduleDetails(schedules, def, 10));
    // The page's chat-status choices come from the rule's own list, not a copy of it.
    return { schedules: out, chatStatuses: CHAT_STATUSES };
  });

  app.get<NameParams>('/api/schedules/:name', async (request, reply) => {
    const def = await find(request.params.name);
    return def ? scheduleDetails(schedules, def, 20) : notFound(reply, request.params.name);
  });

  app.put<NameParams & { Body: InputBody }>('/api/schedules/:name', { schema: { body: inputSchema } }, async (request, reply) => {
    const { definition, created } = await setSchedule(
      ctx,
      schedules,
      request.params.name,
      inputOf(request.body),
      { cwd: process.cwd() },
      consoleActor(request),
    );
    return reply.code(created ? 201 : 200).send({ created, schedule: await scheduleDetails(schedules, definition, 10) });
  });

  app.post<{ Body: InputBody & { name: string } }>('/api/schedules/preview', { schema: { body: previewSchema } }, async (request) => {
    const preview = await previewSchedule(ctx, schedules, request.body.name, inputOf(request.body), { cwd: process.cwd() }, consoleActor(request));
    return {
      ...preview,
      // Chats as the logs show them: a preview is a count and a shape, not a list of customers.
      batches: preview.batches.map((b) => ({ ...b, wouldSend: b.wouldSend.map((s) => ({ line: s.line, chat: maskedBody(s.body) })) })),
    };
  });

  app.post<NameParams & { Body: { dryRun?: boolean } | null }>(
    '/api/schedules/:name/run',
    { schema: { body: { type: ['object', 'null'], properties: { dryRun: { type: 'boolean' } }, additionalProperties: false } } },
    async (request, reply) => {
      if (!(await find(request.params.name))) return notFound(reply, request.params.name);
      const result = await runScheduleNow(ctx, schedules, request.params.name, { actor: consoleActor(request), dryRun: request.body?.dryRun === true });
      return reply.code(result.skipped ? 200 : 201).send({ run: result.run, skipped: result.skipped, batches: result.batches.map((b) => batchView(b)) });
    },
  );

  app.delete<NameParams>('/api/schedules/:name', async (request, reply) => {
    if (!(await find(request.params.name))) return notFound(reply, request.params.name);
    return { removed: await removeSchedule(ctx, schedules, request.params.name, consoleActor(request)) };
  });
}

/** `{ customerPhoneNumber, wabaNumber }` or `{ groupId }` as one chat, masked as maskChatKey (logger.ts) masks it. */
function maskedBody(body: Record<string, string>): string {
  const phone = body.customerPhoneNumber;
  return phone === undefined ? `g:${body.groupId ?? ''}` : `p:${maskPhone(phone)}@${body.wabaNumber ?? ''}`;
}
