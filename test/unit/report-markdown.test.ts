/**
 * summary.md is opened in Markdown viewers that pass HTML through: a batch name, a source file name, a note or an
 * API message must come out as text, never as markup.
 */
import { describe, expect, it } from '@jest/globals';

import { escapeMarkdownText, renderMarkdown, type ReportSummary } from '../../src/report/report.js';

const summary = (overrides: Partial<ReportSummary>): ReportSummary => ({
  batchId: 'b1',
  name: 'night',
  kind: 'csv',
  source: 'chats.csv',
  sha256: '',
  parent: null,
  children: [],
  status: 'finished',
  reason: '',
  dryRun: false,
  createdAt: '2026-12-03T00:00:00.000Z',
  startedAt: null,
  finishedAt: null,
  durationMs: null,
  counts: { rows: 1, valid: 1, rejected: 0, duplicates: 0, succeeded: 0, failed: 1, cancelled: 0, skipped: 0 },
  action: 'unassign',
  captureAssignees: false,
  restorable: 0,
  failureReasons: [],
  failuresByClass: {},
  rateLimited: 0,
  attempts: { total: 1, retries: 0 },
  latencyMs: { p50: null, p95: null, p99: null },
  notes: [],
  files: {},
  createdBy: '',
  actions: [],
  ...overrides,
});

const SCRIPT = '<script>alert(1)</script>';

describe('summary.md', () => {
  it.each([
    ['a batch name', { name: SCRIPT }],
    ['a source file name', { source: `<img src=x onerror=alert(1)>.csv` }],
    ['a stop reason', { reason: SCRIPT }],
    ['a note', { notes: [`${SCRIPT}\n# not a heading`] }],
    ['a creator name (BULK_UNASSIGN_ACTOR is free text)', { createdBy: SCRIPT }],
    ['an actor in the actions', { actions: [{ at: '2026-12-03T00:00:00.000Z', actor: `${SCRIPT} | x`, action: 'pause' }] }],
    ['an API message as a failure reason', { failureReasons: [{ reason: `HTTP 422: ${SCRIPT} | pipe`, count: 1 }] }],
  ])('shows %s as text', (_what, overrides) => {
    const md = renderMarkdown(summary(overrides as Partial<ReportSummary>));
    expect(md).not.toMatch(/<script|<img/i);
    expect(md).toContain('&lt;');
    expect(md).not.toMatch(/^# not a heading/m);
  });

  it('keeps a failure reason inside its table cell', () => {
    const md = renderMarkdown(summary({ failureReasons: [{ reason: 'a | b\nc', count: 2 }] }));
    expect(md).toContain('| 2 | a \\| b c |');
  });

  it('escapes &, < and > and nothing else', () => {
    expect(escapeMarkdownText('a & <b> "c"')).toBe('a &amp; &lt;b&gt; "c"');
  });
});
