/**
 * `schedule set` flags → a validated schedule definition. Pure (the inbox folder's existence is checked by the
 * command): every message names the flag, what it expects and what it got.
 */
import { isAbsolute, resolve } from 'node:path';

import { CHAT_STATUSES, type ChatRule, type ChatStatus } from './rule.js';
import { UsageError } from '../domain/errors.js';
import { isCountryCode, normalisePhone } from '../domain/phone.js';
import type { OverlapRule, ScheduleDefinition } from './store.js';
import { isTimeZone } from './run.js';

export const DEFAULT_SCHEDULE = 'nightly';
const NAME = /^[A-Za-z0-9][A-Za-z0-9_-]{0,39}$/;
const OVERLAP_RULES: readonly OverlapRule[] = ['skip', 'wait'];
/** A year: an idle rule longer than that is a typo. */
const MAX_IDLE_HOURS = 24 * 366;

/** The flags `schedule set` reads, as typed. */
export interface ScheduleInput {
  readonly cron?: string | undefined;
  readonly tz?: string | undefined;
  readonly overlap?: string | undefined;
  readonly inbox?: string | undefined;
  readonly chatStatus?: string | undefined;
  readonly idleHours?: string | undefined;
  readonly tag?: string | undefined;
  readonly agent?: string | undefined;
  readonly waba?: string | undefined;
  readonly maxChats?: string | undefined;
  readonly maxShare?: string | undefined;
  /** --capture-assignees: the inbox's batches read each chat's agent before unassigning it (a rule's listing already has it). */
  readonly captureAssignees?: boolean | undefined;
}

export interface DefinitionContext {
  /** Relative --inbox paths are resolved against this. */
  readonly cwd: string;
  readonly now: number;
  /** --tz default: this machine's zone. */
  readonly defaultTz: string;
  /** For --agent / --waba written without a country code. */
  readonly defaultCountry?: string | undefined;
  /** The definition being replaced, if any (keeps its createdAt). */
  readonly existing?: ScheduleDefinition | undefined;
}

const got = (value: string): string => `got \`${value}\``;

export function checkScheduleName(name: string): string {
  if (!NAME.test(name))
    throw new UsageError(`Expected the schedule name to be 1-40 letters, digits, '_' or '-' (starting with a letter or digit), ${got(name)}`);
  return name;
}

function cronOf(raw: string | undefined): string {
  if (raw === undefined) throw new UsageError('`schedule set` needs --cron, e.g. --cron "0 2 * * *" (02:00 every day in --tz)');
  const cron = raw.trim().replace(/\s+/g, ' ');
  const fields = cron.split(' ').length;
  if (fields !== 5 && fields !== 6)
    throw new UsageError(`Expected \`--cron\` to have 5 fields (minute hour day month weekday), or 6 with seconds first, ${got(raw)}`);
  return cron;
}

function phoneList(flag: string, raw: string | undefined, country: string | undefined): string[] | undefined {
  if (raw === undefined) return undefined;
  const items = raw
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  if (items.length === 0) throw new UsageError(`Expected \`--${flag}\` to be a phone number (or a comma-separated list), ${got(raw)}`);
  return items.map((item) => {
    const phone = normalisePhone(item, country && isCountryCode(country) ? country : undefined);
    if (!phone.ok) throw new UsageError(`\`--${flag}\` ${JSON.stringify(item)}: ${phone.reason}`);
    return phone.digits;
  });
}

function ruleOf(input: ScheduleInput, country: string | undefined): ChatRule {
  const rule: { -readonly [K in keyof ChatRule]: ChatRule[K] } = {};
  if (input.chatStatus !== undefined) {
    if (!(CHAT_STATUSES as readonly string[]).includes(input.chatStatus))
      throw new UsageError(`Expected \`--chat-status\` to be one of ${CHAT_STATUSES.join(', ')}, ${got(input.chatStatus)}`);
    rule.chatStatus = input.chatStatus as ChatStatus;
  }
  if (input.idleHours !== undefined) {
    const hours = Number(input.idleHours);
    if (input.idleHours.trim() === '' || !Number.isFinite(hours) || hours <= 0 || hours > MAX_IDLE_HOURS) {
      throw new UsageError(`Expected \`--idle-hours\` to be a number of hours above 0 and at most ${MAX_IDLE_HOURS}, ${got(input.idleHours)}`);
    }
    rule.idleHours = hours;
  }
  if (input.tag !== undefined) {
    const tags = input.tag
      .split(',')
      .map((t) => t.trim())
      .filter(Boolean);
    if (tags.length === 0) throw new UsageError(`Expected \`--tag\` to be a tag name or a comma-separated list, ${got(input.tag)}`);
    rule.tags = tags;
  }
  const agents = phoneList('agent', input.agent, country);
  if (agents && agents.length > 1) throw new UsageError('`--agent` takes one agent number (GET /chats filters by one); make one schedule per agent');
  if (agents?.[0]) rule.agent = agents[0];
  const wabas = phoneList('waba', input.waba, country);
  if (wabas) rule.wabaNumbers = wabas;
  return rule;
}

/** The most --max-chats may be: MAX_BATCH_CHATS's own upper bound. */
const MAX_CHATS_LIMIT = 100_000_000;

/** --max-chats and --max-share: the brake's limits for the schedule's batches (undefined: not set). */
export function limitsOf(input: Pick<ScheduleInput, 'maxChats' | 'maxShare'>): { maxChats?: number; maxShare?: number } {
  const out: { maxChats?: number; maxShare?: number } = {};
  if (input.maxChats !== undefined && input.maxChats.trim() !== '') {
    const n = Number(input.maxChats);
    if (!/^\s*\d+\s*$/.test(input.maxChats) || !Number.isSafeInteger(n) || n < 1 || n > MAX_CHATS_LIMIT) {
      throw new UsageError(
        `Expected \`--max-chats\` to be a whole number of chats from 1 to ${MAX_CHATS_LIMIT} (a run's batch above it waits for approval), ${got(input.maxChats)}`,
      );
    }
    out.maxChats = n;
  }
  if (input.maxShare !== undefined && input.maxShare.trim() !== '') {
    const share = Number(input.maxShare);
    if (!Number.isFinite(share) || share <= 0 || share > 1) {
      throw new UsageError(
        `Expected \`--max-share\` to be a fraction above 0 and at most 1 (e.g. 0.2: hold a batch that selects more than 20% of the chats listed), ${got(input.maxShare)}`,
      );
    }
    out.maxShare = share;
  }
  return out;
}

/**
 * Builds the definition. A chat query is part of the schedule when any of --chat-status, --idle-hours, --tag
 * or --agent is given (--waba alone is not enough: "every assigned chat on the number" must be asked for
 * explicitly, e.g. with --chat-status all). --waba also serves as the inbox files' business number.
 */
export function buildDefinition(name: string, input: ScheduleInput, ctx: DefinitionContext): ScheduleDefinition {
  checkScheduleName(name);
  const cron = cronOf(input.cron);
  const tz = (input.tz ?? ctx.defaultTz).trim();
  if (!isTimeZone(tz)) throw new UsageError(`Expected \`--tz\` to be an IANA time zone such as Asia/Kolkata or UTC, ${got(tz)}`);
  const overlap = (input.overlap ?? 'skip') as OverlapRule;
  if (!OVERLAP_RULES.includes(overlap)) throw new UsageError(`Expected \`--overlap\` to be skip or wait, ${got(String(input.overlap))}`);

  const rule = ruleOf(input, ctx.defaultCountry);
  const wantsQuery = input.chatStatus !== undefined || input.idleHours !== undefined || input.tag !== undefined || input.agent !== undefined;
  let inbox: ScheduleDefinition['inbox'];
  if (input.inbox !== undefined) {
    if (input.inbox.trim() === '') throw new UsageError('Expected `--inbox` to be a folder path, got an empty string');
    if (rule.wabaNumbers && rule.wabaNumbers.length > 1 && !wantsQuery)
      throw new UsageError('`--waba` for an inbox is the one business number of files without a wabaNumber column: give one');
    const dir = isAbsolute(input.inbox) ? input.inbox : resolve(ctx.cwd, input.inbox);
    inbox = { dir, ...(rule.wabaNumbers?.length === 1 ? { defaultWaba: rule.wabaNumbers[0] as string } : {}) };
  }
  if (!wantsQuery && !inbox) {
    throw new UsageError(
      'a schedule needs a source: a chat rule (--chat-status, --idle-hours, --tag, --agent; e.g. --chat-status done --idle-hours 12) and/or --inbox <dir>',
    );
  }
  return {
    name,
    cron,
    tz,
    overlap,
    ...(wantsQuery ? { query: rule } : {}),
    ...(inbox ? { inbox } : {}),
    ...limitsOf(input),
    ...(input.captureAssignees === true ? { captureAssignees: true } : {}),
    createdAt: ctx.existing?.createdAt ?? ctx.now,
    updatedAt: ctx.now,
  };
}
