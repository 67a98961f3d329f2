/**
 * A schedule's selection rule over DoubleTick's inbox (GET /chats, docs/doubletick-api.md): which chats a nightly run
 * unassigns. Pure: the rule → the list query, and the rule → a test for one listed chat.
 *
 * Every filter the API applies is checked again on each chat we get back. If the API ever ignored a query
 * parameter (a renamed field, a typo on its side), the selection would silently widen to "every chat"; the
 * second check keeps a nightly job from unassigning a whole inbox because of that.
 */
import type { ListChatsQuery } from '../execution/api-client.js';
import { HOUR } from '../config/config.js';

/** The `status` values GET /chats accepts. */
export const CHAT_STATUSES = ['all', 'unread', 'unresolved', 'done', 'waiting_for_response', 'open', 'open_cart'] as const;
export type ChatStatus = (typeof CHAT_STATUSES)[number];

/** What to select. Only chats that still have an agent are ever selected, whatever the rule. */
export interface ChatRule {
  /** GET /chats `status` filter (`--chat-status`). */
  readonly chatStatus?: ChatStatus;
  /** Any of these tags (`--tag vip,sales`). */
  readonly tags?: readonly string[];
  /** Assigned to this agent, digits (`--agent`). */
  readonly agent?: string;
  /** On one of these business numbers, digits (`--waba`). */
  readonly wabaNumbers?: readonly string[];
  /** No message for at least this many hours (`--idle-hours`; fractions allowed). */
  readonly idleHours?: number;
}

/** One chat as GET /chats lists it (the fields the rule and the batch use; the API sends more). */
export interface ListedChat {
  readonly id?: string;
  readonly chatType?: string;
  readonly phoneNumber?: string | null;
  readonly groupId?: string | null;
  readonly wabaNumber?: string | null;
  readonly assignedUserNumber?: string | null;
  readonly isDone?: boolean;
  readonly unreadCount?: number;
  readonly chatUpdatedTime?: number;
  readonly lastMessageTime?: number | null;
  readonly tagNames?: readonly string[];
}

/** GET /chats page size: the API's maximum, fewest calls under the rate limit. */
export const PAGE_SIZE = 100;

/** The server-side part of the rule, as GET /chats query parameters. */
export function ruleToQuery(rule: ChatRule, limit = PAGE_SIZE): ListChatsQuery {
  return {
    limit,
    ...(rule.chatStatus ? { status: rule.chatStatus } : {}),
    ...(rule.tags?.length ? { tags: rule.tags.join(',') } : {}),
    ...(rule.agent ? { assignedUserPhone: rule.agent } : {}),
    ...(rule.wabaNumbers?.length ? { wabaNumbers: rule.wabaNumbers.join(',') } : {}),
  };
}

/** Status filters we can check on a listed chat; the rest (all, waiting_for_response, open_cart) are the API's word. */
const STATUS_CHECKS: Partial<Record<ChatStatus, (c: ListedChat) => boolean>> = {
  done: (c) => c.isDone === true,
  open: (c) => c.isDone === false,
  unresolved: (c) => c.isDone === false,
  unread: (c) => (c.unreadCount ?? 0) > 0,
};

const digits = (value: string | null | undefined): string => (value ?? '').replace(/^\+/, '');

/** When the chat last had a message (falls back to its update time); undefined if the API gave neither. */
export function lastActivity(chat: ListedChat): number | undefined {
  const t = chat.lastMessageTime ?? chat.chatUpdatedTime;
  return typeof t === 'number' && Number.isFinite(t) ? t : undefined;
}

/** Does the rule select this chat at `now`? */
export function matchesRule(chat: ListedChat, rule: ChatRule, now: number): boolean {
  const agent = digits(chat.assignedUserNumber);
  if (agent === '') return false;
  if (rule.agent && agent !== rule.agent) return false;
  const statusCheck = rule.chatStatus ? STATUS_CHECKS[rule.chatStatus] : undefined;
  if (statusCheck && !statusCheck(chat)) return false;
  if (rule.tags?.length && !(chat.tagNames ?? []).some((t) => rule.tags?.includes(t))) return false;
  if (rule.wabaNumbers?.length && !rule.wabaNumbers.includes(digits(chat.wabaNumber))) return false;
  if (rule.idleHours !== undefined) {
    const last = lastActivity(chat);
    // A chat with no known activity time is not provably idle: leave it alone.
    if (last === undefined || last > now - rule.idleHours * HOUR) return false;
  }
  return true;
}

/** True when the rule selects anything beyond "every assigned chat" (a schedule must say what it wants). */
export function hasFilters(rule: ChatRule): boolean {
  return Boolean(rule.chatStatus || rule.tags?.length || rule.agent || rule.wabaNumbers?.length || rule.idleHours !== undefined);
}

/** One line for batch sources, notes and `schedule show`. */
export function describeRule(rule: ChatRule): string {
  const parts = [
    rule.chatStatus ? `status=${rule.chatStatus}` : '',
    rule.idleHours !== undefined ? `idle≥${rule.idleHours}h` : '',
    rule.wabaNumbers?.length ? `waba=${rule.wabaNumbers.join(',')}` : '',
    rule.tags?.length ? `tags=${rule.tags.join(',')}` : '',
    rule.agent ? `agent=${rule.agent}` : '',
  ].filter(Boolean);
  return `GET /chats ${[...parts, 'assigned'].join(' ')}`;
}
