/**
 * The lifecycle state diagram in docs/architecture.md is the transition table drawn: every edge is a move of
 * TRANSITIONS (from, to, name) and every move is an edge. A transition added to src/domain/lifecycle.ts without
 * its arrow in the diagram, or an arrow left behind, fails here.
 */
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { describe, expect, it } from '@jest/globals';

import { BATCH_STATUSES, TRANSITIONS } from '../../src/domain/lifecycle.js';

const DOC = join(dirname(fileURLToPath(import.meta.url)), '../../docs/architecture.md');

/** The first `stateDiagram-v2` block of the document, as "from --name--> to" lines. */
function diagramEdges(markdown: string): { edges: string[]; states: Set<string> } {
  const block = /```mermaid\n\s*stateDiagram-v2\n([\s\S]*?)```/.exec(markdown)?.[1];
  if (block === undefined) throw new Error('no stateDiagram-v2 block in docs/architecture.md');
  const alias = new Map([...block.matchAll(/^\s*state "([^"]+)" as (\w+)\s*$/gm)].map((m) => [m[2]!, m[1]!]));
  const name = (s: string): string => alias.get(s) ?? s;
  const edges: string[] = [];
  const states = new Set<string>();
  for (const m of block.matchAll(/^\s*(\S+) --> (\S+)(?: : (.+))?$/gm)) {
    const [from, to] = [m[1]!, m[2]!];
    if (from === '[*]' || to === '[*]') continue;
    states.add(name(from)).add(name(to));
    for (const label of (m[3] ?? '').split('/').map((l) => l.trim())) edges.push(`${name(from)} --${label}--> ${name(to)}`);
  }
  return { edges: edges.sort(), states };
}

describe('the lifecycle diagram in docs/architecture.md', () => {
  const { edges, states } = diagramEdges(readFileSync(DOC, 'utf8'));

  it('has exactly the moves of TRANSITIONS', () => {
    const table = Object.entries(TRANSITIONS)
      .flatMap(([label, t]) => t.from.map((from) => `${from} --${label}--> ${t.to}`))
      .sort();
    expect(edges).toEqual(table);
  });

  it('draws every status, and only statuses', () => {
    expect([...states].sort()).toEqual([...BATCH_STATUSES].sort());
  });
});
