/**
 * The results table, as fixed-width text for the terminal and as Markdown for BENCHMARKS.md.
 */
import type { ResultRow } from './support.js';

function num(value: number, unit: string): string {
  if (!Number.isFinite(value)) return String(value);
  const digits = unit === 'MB' ? 1 : 0;
  return value.toLocaleString('en', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

function cells(row: ResultRow): string[] {
  return [
    row.scenario,
    `${num(row.ours, row.unit)} ${row.unit}`,
    row.baseline === null ? '—' : `${num(row.baseline, row.unit)} ${row.unit}`,
    row.ratio === null ? '—' : row.ratio.toFixed(2),
    row.target,
    row.pass === null ? '—' : row.pass ? 'PASS' : 'FAIL',
  ];
}

const HEADER = ['scenario', 'ours', 'baseline', 'ratio', 'target', 'pass'];

export function textTable(rows: readonly ResultRow[]): string {
  const body = rows.map(cells);
  const widths = HEADER.map((h, i) => Math.max(h.length, ...body.map((r) => (r[i] as string).length)));
  const line = (r: string[]): string => r.map((c, i) => (i === 0 || i === 4 ? c.padEnd(widths[i] as number) : c.padStart(widths[i] as number))).join('  ');
  const notes = rows.flatMap((r, i) => (r.note ? [`  [${i + 1}] ${r.note}`] : []));
  return [line(HEADER), widths.map((w) => '-'.repeat(w)).join('  '), ...body.map(line), ...(notes.length ? ['', 'notes:', ...notes] : [])].join('\n');
}

export function markdownTable(rows: readonly ResultRow[]): string {
  const escape = (s: string): string => s.replace(/\|/g, '\\|');
  const lines = [`| ${HEADER.join(' | ')} |`, '|---|---:|---:|---:|---|:---:|'];
  for (const row of rows) lines.push(`| ${cells(row).map(escape).join(' | ')} |`);
  const notes = rows.filter((r) => r.note).map((r) => `- ${escape(r.scenario)}: ${escape(r.note as string)}`);
  return [...lines, ...(notes.length ? ['', ...notes] : [])].join('\n');
}
