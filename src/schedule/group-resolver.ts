/**
 * Finds the `groupId` of a group chat that GET /chats listed. The unassign call wants a group's `groupId`, but a
 * listed chat carries only its `name` and `wabaNumber` (docs/doubletick-api.md). The group listing
 * (GET /whatsapp/wa-group/list, one WABA number at a time, cursor paging) gives each group's `groupId` and
 * `subject`; a chat is resolved when exactly one group of its WABA number has its name as subject.
 *
 * Never a guess: a name that two groups share, or that no group has, is a rejected row with that reason, and
 * the chat is left assigned. Each WABA number is listed at most once per resolver; a resolver lives for one run
 * of a schedule (openChatQuerySource makes it), so a group renamed or created between runs is seen the next night.
 *
 * The pages are fetched by the caller's page loop (chat-source.ts fetchPage), so they share the GET /chats
 * pages' rate limit, retries and stops.
 */
import type { ApiOutcome } from '../execution/classify.js';
import type { DoubleTickApi, ListGroupsQuery } from '../execution/api-client.js';
import { ChatListError } from '../domain/errors.js';

/** One group as the listing gives it (the fields the resolver reads; the API sends more). */
export interface ListedGroup {
  readonly groupId?: string;
  readonly subject?: string;
  readonly status?: string;
  readonly groupCreatedAt?: string;
}

export interface GroupPage {
  readonly groups: readonly ListedGroup[];
  readonly next?: { readonly lastGroupId: string; readonly olderThanTimestamp: string };
}

/** What the resolver needs of a page loop: call, classify, retry as for GET /chats; `refused` builds the error for a 4xx. */
export type PageFetcher = <T>(request: {
  readonly what: string;
  readonly call: () => Promise<ApiOutcome>;
  readonly parse: (body: unknown) => T;
  readonly refused: (reason: string) => Error;
}) => Promise<T>;

export type GroupResolution = { readonly kind: 'found'; readonly groupId: string } | { readonly kind: 'rejected'; readonly reason: string };

export interface GroupResolverStats {
  /** WABA numbers listed. */
  listings: number;
  /** Group pages fetched. */
  pages: number;
}

export interface GroupResolver {
  /** The chat's group, by its listed name on its WABA number. Throws ChatListError when the listing must stop the run. */
  resolve(name: string | null | undefined, wabaNumber: string): Promise<GroupResolution>;
  stats(): GroupResolverStats;
}

export interface GroupResolverOptions {
  readonly api: Pick<DoubleTickApi, 'listGroups'>;
  readonly fetchPage: PageFetcher;
}

const LIST = 'GET /whatsapp/wa-group/list';
const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * The body of a 200: `{groups, hasMore, lastGroupId, olderThanTimestamp}` as the group API's spec gives it (the
 * same wrapped in `{data: ...}` is accepted, as for GET /chats). No `groups` list is an error, never "no groups":
 * read as empty, it would reject every group chat as unknown.
 */
export function parseGroupPage(body: unknown): GroupPage {
  const root = isObject(body) && isObject(body.data) ? body.data : body;
  if (!isObject(root) || !Array.isArray(root.groups))
    throw new ChatListError(`${LIST} answered 200 without a \`groups\` list: the API may have changed; nothing was enqueued`);
  const { hasMore, lastGroupId, olderThanTimestamp } = root;
  const more = hasMore === true && typeof lastGroupId === 'string' && lastGroupId !== '' && typeof olderThanTimestamp === 'string' && olderThanTimestamp !== '';
  return { groups: root.groups.filter(isObject) as ListedGroup[], ...(more ? { next: { lastGroupId, olderThanTimestamp } } : {}) };
}

/** Subjects compare as people see them: Unicode-normalised, outer spaces ignored, case kept. */
const subjectKey = (s: string): string => s.normalize('NFC').trim();

/** A group listing refused for one WABA number (400 "no integration found" and the like): its group chats are rejected, the run goes on. */
class GroupListRefused extends Error {}

type Listing = { readonly kind: 'listed'; readonly bySubject: ReadonlyMap<string, readonly string[]> } | { readonly kind: 'refused'; readonly reason: string };

export function makeGroupResolver(opts: GroupResolverOptions): GroupResolver {
  const stats: GroupResolverStats = { listings: 0, pages: 0 };
  const listings = new Map<string, Promise<Listing>>();

  const list = async (wabaNumber: string): Promise<Listing> => {
    stats.listings += 1;
    const bySubject = new Map<string, string[]>();
    let cursor: GroupPage['next'];
    try {
      do {
        const query: ListGroupsQuery = { wabaNumber, ...cursor };
        const page = await opts.fetchPage({
          what: LIST,
          call: () => opts.api.listGroups(query),
          parse: parseGroupPage,
          refused: (reason) => new GroupListRefused(reason),
        });
        stats.pages += 1;
        if (page.next && cursor && page.next.lastGroupId === cursor.lastGroupId && page.next.olderThanTimestamp === cursor.olderThanTimestamp) {
          throw new ChatListError(`${LIST} returned the same cursor twice for WABA ${wabaNumber}: paging does not advance`);
        }
        cursor = page.next;
        for (const group of page.groups) {
          if (typeof group.groupId !== 'string' || group.groupId === '' || typeof group.subject !== 'string') continue;
          const key = subjectKey(group.subject);
          bySubject.set(key, [...(bySubject.get(key) ?? []), group.groupId]);
        }
      } while (cursor);
    } catch (error) {
      if (error instanceof GroupListRefused) return { kind: 'refused', reason: error.message };
      throw error;
    }
    return { kind: 'listed', bySubject };
  };

  return {
    stats: () => ({ ...stats }),
    async resolve(name, wabaNumber) {
      if (typeof name !== 'string' || subjectKey(name) === '')
        return { kind: 'rejected', reason: 'group chat listed without a name: its groupId cannot be looked up' };
      let listing = listings.get(wabaNumber);
      if (!listing) {
        listing = list(wabaNumber);
        listings.set(wabaNumber, listing);
      }
      const found = await listing;
      if (found.kind === 'refused')
        return { kind: 'rejected', reason: `${LIST} refused WABA ${wabaNumber} (${found.reason}): group "${name}" cannot be looked up` };
      const ids = [...new Set(found.bySubject.get(subjectKey(name)) ?? [])];
      if (ids.length === 1) return { kind: 'found', groupId: ids[0]! };
      if (ids.length === 0) return { kind: 'rejected', reason: `no group named "${name}" on WABA ${wabaNumber}` };
      return { kind: 'rejected', reason: `group name "${name}" matches ${ids.length} groups of ${wabaNumber}: cannot tell which` };
    },
  };
}
