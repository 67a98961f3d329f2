/** The actor of actions a test takes through the library (the audit trail records it). */
import type { Actor } from '../../src/domain/actor.js';

export const TEST_ACTOR: Actor = { name: 'test-operator', via: 'cli', from: 'test-host' };
