/**
 * The data layout version: which shapes (codecs.ts), keys (keys.ts) and Lua steps (lua/) the data under a prefix
 * was written with. Stored once per prefix in `keys.layout`. A build refuses to start on data of another
 * version instead of misreading it; raise the version whenever a stored shape changes incompatibly.
 */
import type { Cluster, Redis } from 'ioredis';

import { DataLayoutError } from '../domain/errors.js';
import type { Keys } from './keys.js';

/** The layout this build reads and writes. */
export const DATA_LAYOUT_VERSION = 1;

const VERSION_TEXT = /^[1-9]\d*$/;

/**
 * Claims the prefix for this layout if nothing claimed it yet (SET NX), else checks that the stored version is
 * this build's. Throws a DataLayoutError naming both versions when they differ. Call it once on start-up, before
 * anything reads or writes under the prefix.
 */
export async function checkDataLayout(redis: Redis | Cluster, keys: Pick<Keys, 'layout'>): Promise<void> {
  const ours = String(DATA_LAYOUT_VERSION);
  // Two tries: the key could be deleted between a refused SET NX and the GET (e.g. a test wiping the prefix).
  for (let attempt = 0; attempt < 2; attempt += 1) {
    if ((await redis.set(keys.layout, ours, 'NX')) === 'OK') return;
    const stored = await redis.get(keys.layout);
    if (stored === null) continue;
    if (stored === ours) return;
    if (!VERSION_TEXT.test(stored)) {
      throw new DataLayoutError(
        `${keys.layout} holds ${JSON.stringify(stored.slice(0, 40))}, not a bulk-unassign data layout version: this build understands v${ours}`,
      );
    }
    const advice = Number(stored) > DATA_LAYOUT_VERSION ? 'upgrade bulk-unassign to a build that understands it' : 'its data must be migrated first';
    throw new DataLayoutError(
      `this Redis holds bulk-unassign data layout v${stored} (${keys.layout}), this build understands v${ours}: ${advice}, or set QUEUE_PREFIX to a prefix of its own`,
    );
  }
  throw new DataLayoutError(`${keys.layout} could not be set (it was deleted as often as it was written)`);
}
