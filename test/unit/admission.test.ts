/**
 * The brake's decision (src/domain/admission.ts): which batches start at once and which wait for approval,
 * and the reason an operator reads.
 */
import { describe, expect, it } from '@jest/globals';

import { admission, type AdmissionLimits } from '../../src/domain/admission.js';

const held = (valid: number, limits: AdmissionLimits | undefined): string => {
  const verdict = admission(valid, limits);
  if (!verdict.held) throw new Error(`expected ${valid} chats to be held under ${JSON.stringify(limits)}`);
  return verdict.reason;
};

describe('admission', () => {
  it('--approve (no limits) starts any batch', () => {
    expect(admission(50_000_000, undefined)).toEqual({ held: false });
  });

  it.each([
    [10_000, 10_000, false],
    [10_001, 10_000, true],
    [1, 0, false],
    [50_000_000, 0, false],
    [2, 1, true],
  ])('%d chats against MAX_BATCH_CHATS %d → held %s', (valid, maxBatchChats, expected) => {
    expect(admission(valid, { maxBatchChats }).held).toBe(expected);
  });

  it('names the chats and MAX_BATCH_CHATS in the reason', () => {
    expect(held(12_400, { maxBatchChats: 10_000 })).toBe('held for approval: 12,400 chats, more than MAX_BATCH_CHATS (10000)');
  });

  it("a schedule's --max-chats holds below MAX_BATCH_CHATS, and says so", () => {
    expect(admission(500, { maxBatchChats: 10_000, maxChats: 500 }).held).toBe(false);
    expect(held(501, { maxBatchChats: 10_000, maxChats: 500 })).toBe("held for approval: 501 chats, more than the schedule's --max-chats (500)");
  });

  it('MAX_BATCH_CHATS still holds a schedule batch under its own --max-chats', () => {
    expect(held(20_000, { maxBatchChats: 10_000, maxChats: 50_000 })).toContain('MAX_BATCH_CHATS (10000)');
  });

  it('--max-share is a share of the chats the listing returned', () => {
    expect(admission(50, { maxBatchChats: 0, maxShare: 0.5, listed: 100 }).held).toBe(false);
    expect(held(51, { maxBatchChats: 0, maxShare: 0.5, listed: 100 })).toBe(
      "held for approval: 51 chats, 51% of the 100 chats listed, more than the schedule's --max-share (0.5)",
    );
    expect(held(13_000, { maxBatchChats: 0, maxShare: 0.2, listed: 13_000 })).toContain('100% of the 13,000 chats listed');
    expect(held(3, { maxBatchChats: 0, maxShare: 0.01, listed: 200 })).toContain('1.5% of the 200 chats listed');
  });

  it('--max-share 1 never holds, and a share without a listing (an inbox file) does not apply', () => {
    expect(admission(100, { maxBatchChats: 0, maxShare: 1, listed: 100 }).held).toBe(false);
    expect(admission(100, { maxBatchChats: 0, maxShare: 0.1 }).held).toBe(false);
    expect(admission(100, { maxBatchChats: 0, maxShare: 0.1, listed: 0 }).held).toBe(false);
  });
});
