/**
 * Guard: batch statuses are spelled in one place, src/domain/lifecycle.ts. Everything else imports `Status`,
 * the transition table and the derived sets; Lua steps get the sets from `luaLifecyclePrelude()`.
 *
 * Scanned: every .ts and .lua file under src/ and jobs/, except src/domain/lifecycle.ts. TypeScript is read
 * with the TypeScript parser, so comments never count and a literal is a real literal (not text in a regex or
 * a comment). The rules:
 *
 *  (i)  Lua — a .lua file, or a Lua script held in a TypeScript string/template literal (one that calls
 *       `redis.call`/`redis.pcall`, starts a line with `local <name>`, or interpolates `luaLifecyclePrelude()`),
 *       must not contain any batch status (BATCH_STATUSES) as a quoted Lua string ('x' or "x"). Lua comments
 *       (`-- …`) are ignored. Nor may it name a status the table does not know: a `LIFECYCLE.<field>` the prelude
 *       does not define (it would read as nil: a silent "no"), or any quoted string written to or compared with
 *       the `status` field (`'status', 'queued'`, `status == 'queued'`): statuses reach Lua only from the prelude
 *       or as arguments.
 *  (ii) TypeScript — a string literal (quotes or a template without `${}`) whose whole value is one of the
 *       status-only words `ingesting awaiting-approval running paused stopped cancelling finalizing finished` is an offender.
 *       Words inside longer text ('batch is running', `still ${status}`) are prose, not statuses, and pass.
 *  (iii) TypeScript — 'cancelled' and 'dry-run' are also a chat result state, a schedule run outcome and a CLI
 *       flag, so they are flagged only where they are a status: compared with or assigned to something named
 *       `status`/`…Status` (`===`, `!==`, `==`, `!=`, `=`), as the value or type of a `status` property, or as a
 *       `case` of a `switch` on a status.
 *
 * A literal that is genuinely not a batch status (a BullMQ job state or queue event named 'paused', say) goes
 * in ALLOWED below, by file and literal, with the reason. Every offender is printed as file:line:column.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

import { describe, expect, it } from '@jest/globals';
import ts from 'typescript';

import { BATCH_STATUSES, luaLifecyclePrelude } from '../../src/domain/lifecycle.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '../..');
const SCANNED_DIRS = ['src', 'jobs'];
const LIFECYCLE = 'src/domain/lifecycle.ts';

/** Statuses whose word means nothing else in this code base: any exact literal of them is a status. */
const STATUS_ONLY = ['ingesting', 'awaiting-approval', 'running', 'paused', 'stopped', 'cancelling', 'finalizing', 'finished'] as const;
/** Statuses that are also other things (result state, run outcome, CLI flag): flagged only in a status context. */
const SHARED = ['cancelled', 'dry-run'] as const;

/**
 * Literals that look like a status but are not one. Keyed by file (relative, with /) and literal; say why.
 * Keep it short: prefer importing `Status` even where a literal would be harmless.
 */
const ALLOWED: readonly { readonly file: string; readonly literal: string; readonly why: string }[] = [
  // e.g. { file: 'src/execution/worker.ts', literal: 'paused', why: "BullMQ Worker event 'paused', not a batch status" },
];

export interface Offender {
  readonly file: string;
  readonly line: number;
  readonly column: number;
  readonly rule: 'lua' | 'lua-unknown' | 'status-literal' | 'status-compare';
  readonly text: string;
}

function filesUnder(dir: string): string[] {
  return readdirSync(join(ROOT, dir), { withFileTypes: true }).flatMap((entry) => {
    const path = `${dir}/${entry.name}`;
    if (entry.isDirectory()) return filesUnder(path);
    return /\.(ts|lua)$/.test(entry.name) && !entry.name.endsWith('.d.ts') ? [path] : [];
  });
}

const quotedStatus = new RegExp(`(['"])(${BATCH_STATUSES.map((s) => s.replace(/-/g, '\\-')).join('|')})\\1`, 'g');

/** Blanks a comment out, keeping its line breaks, so offsets and line numbers stay right. */
const blank = (comment: string): string => comment.replace(/[^\n]/g, ' ');

/** Quoted batch statuses in Lua source, with their offsets (comments `--[[ … ]]`, `--[==[ … ]==]` and `-- …` stripped). */
function luaStatusLiterals(lua: string): { offset: number; text: string }[] {
  const code = lua.replace(/--\[(=*)\[[\s\S]*?\]\1\]/g, blank).replace(/--[^\n]*/g, blank);
  return [...code.matchAll(quotedStatus)].map((m) => ({ offset: m.index ?? 0, text: m[0] }));
}

/** The fields the Lua prelude defines (`LIFECYCLE.park` …). */
const PRELUDE_FIELDS = new Set([...luaLifecyclePrelude().matchAll(/^ {2}(\w+) = /gm)].map((m) => m[1]!));

/** Status names a Lua script makes up: LIFECYCLE fields the prelude lacks, literals written to or compared with `status`. */
function luaUnknownStatuses(lua: string): { offset: number; text: string }[] {
  const code = lua.replace(/--\[(=*)\[[\s\S]*?\]\1\]/g, blank).replace(/--[^\n]*/g, blank);
  const quoted = `(['"])[^'"\\n]*\\{n}`;
  const patterns = [
    /\bLIFECYCLE\.(\w+)/g,
    new RegExp(`(['"])status\\1\\s*,\\s*${quoted.replace('{n}', '2')}`, 'g'),
    new RegExp(`\\bstatus\\s*[~=]=\\s*${quoted.replace('{n}', '1')}`, 'g'),
    new RegExp(`${quoted.replace('{n}', '1')}\\s*[~=]=\\s*status\\b`, 'g'),
    new RegExp(`(['"])status\\1\\s*\\)\\s*[~=]=\\s*${quoted.replace('{n}', '2')}`, 'g'),
  ];
  return patterns.flatMap((re, i) =>
    [...code.matchAll(re)].filter((m) => i !== 0 || !PRELUDE_FIELDS.has(m[1]!)).map((m) => ({ offset: m.index ?? 0, text: m[0] })),
  );
}

function looksLikeLua(text: string): boolean {
  return /\bredis\.p?call\s*\(/.test(text) || /^\s*local\s+[A-Za-z_]\w*/m.test(text);
}

/** The name an expression reads as, for "is this a status?": `status`, `batch.status`, `b['status']`, `prevStatus`. */
function nameOf(node: ts.Expression): string | undefined {
  if (ts.isIdentifier(node)) return node.text;
  if (ts.isPropertyAccessExpression(node)) return node.name.text;
  if (ts.isElementAccessExpression(node) && ts.isStringLiteralLike(node.argumentExpression)) return node.argumentExpression.text;
  if (ts.isParenthesizedExpression(node) || ts.isAsExpression(node) || ts.isNonNullExpression(node)) return nameOf(node.expression);
  return undefined;
}
const isStatusName = (name: string | undefined): boolean => name !== undefined && /^status$|Status$/.test(name);
const sharedLiteral = (node: ts.Node | undefined): node is ts.StringLiteralLike =>
  node !== undefined && ts.isStringLiteralLike(node) && (SHARED as readonly string[]).includes(node.text);

const COMPARE_OR_ASSIGN = new Set([
  ts.SyntaxKind.EqualsEqualsEqualsToken,
  ts.SyntaxKind.ExclamationEqualsEqualsToken,
  ts.SyntaxKind.EqualsEqualsToken,
  ts.SyntaxKind.ExclamationEqualsToken,
  ts.SyntaxKind.EqualsToken,
]);

function scanTypeScript(file: string, text: string): Offender[] {
  const source = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true, ts.ScriptKind.TS);
  const offenders: Offender[] = [];
  const at = (pos: number, rule: Offender['rule'], snippet: string): void => {
    const { line, character } = source.getLineAndCharacterOfPosition(pos);
    offenders.push({ file, line: line + 1, column: character + 1, rule, text: snippet });
  };
  const visit = (node: ts.Node): void => {
    // (i) Lua inside a string or template literal.
    if (ts.isStringLiteralLike(node) || ts.isTemplateExpression(node)) {
      const parts = ts.isTemplateExpression(node) ? [node.head.text, ...node.templateSpans.map((s) => s.literal.text)] : [node.text];
      const usesPrelude = ts.isTemplateExpression(node) && node.templateSpans.some((s) => /\bluaLifecyclePrelude\s*\(/.test(s.expression.getText(source)));
      const lua = parts.join(' ${} ');
      if (usesPrelude || looksLikeLua(lua)) {
        // Offsets in the cooked text do not map back exactly (escapes, `${}`): the n-th hit of a text is placed
        // at the n-th occurrence of that text in the raw source.
        const raw = node.getText(source);
        const seen = new Map<string, number>();
        for (const hit of luaStatusLiterals(lua)) {
          let rawAt = -1;
          for (let n = seen.get(hit.text) ?? 0; n >= 0; n -= 1) rawAt = raw.indexOf(hit.text, rawAt + 1);
          seen.set(hit.text, (seen.get(hit.text) ?? 0) + 1);
          at(node.getStart(source) + Math.max(0, rawAt), 'lua', hit.text);
        }
        for (const hit of luaUnknownStatuses(lua)) at(node.getStart(source) + Math.max(0, raw.indexOf(hit.text)), 'lua-unknown', hit.text);
      }
    }
    // (ii) an exact status-only literal.
    if (ts.isStringLiteralLike(node) && (STATUS_ONLY as readonly string[]).includes(node.text)) {
      at(node.getStart(source), 'status-literal', node.getText(source));
    }
    // (iii) 'cancelled' / 'dry-run' as a status.
    if (ts.isBinaryExpression(node) && COMPARE_OR_ASSIGN.has(node.operatorToken.kind)) {
      const literal = sharedLiteral(node.right) ? node.right : sharedLiteral(node.left) ? node.left : undefined;
      const other = literal === node.right ? node.left : node.right;
      if (literal && isStatusName(nameOf(other))) at(node.getStart(source), 'status-compare', node.getText(source));
    }
    if (
      (ts.isPropertyAssignment(node) || ts.isPropertySignature(node) || ts.isPropertyDeclaration(node)) &&
      node.name &&
      isStatusName(ts.isIdentifier(node.name) || ts.isStringLiteral(node.name) ? node.name.text : undefined)
    ) {
      const value = ts.isPropertyAssignment(node) ? node.initializer : node.type;
      const literals: ts.Node[] = [];
      const collect = (n: ts.Node): void => {
        if (sharedLiteral(n)) literals.push(n);
        else if (ts.isLiteralTypeNode(n) || ts.isUnionTypeNode(n) || ts.isParenthesizedTypeNode(n)) ts.forEachChild(n, collect);
      };
      if (value) collect(value);
      if (ts.isPropertyDeclaration(node) && node.initializer) collect(node.initializer);
      for (const l of literals) at(l.getStart(source), 'status-compare', node.getText(source));
    }
    if (ts.isCaseClause(node) && sharedLiteral(node.expression) && isStatusName(nameOf(node.parent.parent.expression))) {
      at(node.expression.getStart(source), 'status-compare', `case ${node.expression.getText(source)}`);
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
  return offenders;
}

function scanLua(file: string, text: string): Offender[] {
  const place = (hit: { offset: number; text: string }, rule: 'lua' | 'lua-unknown'): Offender => {
    const before = text.slice(0, hit.offset).split('\n');
    return { file, line: before.length, column: (before.at(-1)?.length ?? 0) + 1, rule, text: hit.text };
  };
  return [...luaStatusLiterals(text).map((hit) => place(hit, 'lua')), ...luaUnknownStatuses(text).map((hit) => place(hit, 'lua-unknown'))];
}

/** Every offender under src/ and jobs/ (after ALLOWED), sorted by file and line. */
export function findOffenders(files: readonly string[] = SCANNED_DIRS.flatMap(filesUnder)): Offender[] {
  return files
    .filter((file) => file !== LIFECYCLE)
    .flatMap((file) => {
      const text = readFileSync(join(ROOT, file), 'utf8');
      return file.endsWith('.lua') ? scanLua(file, text) : scanTypeScript(file, text);
    })
    .filter((o) => !ALLOWED.some((a) => a.file === o.file && o.text.includes(`'${a.literal}'`)))
    .sort((a, b) => a.file.localeCompare(b.file) || a.line - b.line || a.column - b.column);
}

const report = (offenders: readonly Offender[]): string =>
  offenders.map((o) => `  ${o.file}:${o.line}:${o.column}  [${o.rule}]  ${o.text.replace(/\s+/g, ' ').slice(0, 120)}`).join('\n');

describe('lifecycle spelling guard: the rules catch what they should and nothing else', () => {
  // Each case is a small TypeScript (or Lua) source; the rule it breaks, or none.
  const TS_CASES: readonly [string, string, Offender['rule'] | null][] = [
    ['status-only literal', "if (batch.status === 'running') go();", 'status-literal'],
    ['status-only literal in an array', "const done = ['finished', Status.cancelled];", 'status-literal'],
    ['status-only literal as a no-substitution template', 'const s = `paused`;', 'status-literal'],
    ['status-only literal in a type', "type Open = 'running' | 'paused';", 'status-literal'],
    ['the word inside prose', "throw new Error('batch is still running: wait');", null],
    ['the word inside a template with a value', 'log(`batch ${id} stopped by the key`);', null],
    ['the word in a comment', "// a 'running' batch\nconst x = 1;", null],
    ['the word in a block comment', "/* 'finished' */ const x = 1;", null],
    ['Status.running', 'if (batch.status === Status.running) go();', null],
    ["'cancelled' compared with a status", "if (batch.status === 'cancelled') x();", 'status-compare'],
    ["'dry-run' compared with a status, reversed", "if ('dry-run' !== status) x();", 'status-compare'],
    ["'cancelled' assigned to a status", "status = 'cancelled';", 'status-compare'],
    ["'dry-run' as a status property", "const b = { id, status: 'dry-run' };", 'status-compare'],
    ["'cancelled' in a status property type", "interface B { status: 'cancelled' | 'finished2' }", 'status-compare'],
    ["'cancelled' as a case of a switch on status", "switch (b.status) { case 'cancelled': break; }", 'status-compare'],
    ["'cancelled' compared with prevStatus", "if (prevStatus == 'cancelled') x();", 'status-compare'],
    ["'cancelled' as a chat result state", "record({ state: 'cancelled', reason: 'batch cancelled' });", null],
    ["'cancelled' compared with a result state", "if (result.state === 'cancelled') n += 1;", null],
    ["'dry-run' as a CLI flag", "if (!flags['dry-run']) requireApiKey(config);", null],
    ["'dry-run' as a schedule run outcome", "const outcome = req.dryRun ? 'dry-run' : 'started';", null],
    ["'cancelled' as a case of a switch on state", "switch (r.state) { case 'cancelled': break; }", null],
    [
      'Lua in a template with a quoted status',
      "const s = `\nlocal status = redis.call('HGET', KEYS[1], 'status')\nif status == 'cancelling' then return 1 end`;",
      'lua',
    ],
    ['Lua with the prelude and a double-quoted status', 'const s = `${luaLifecyclePrelude()}\nif x == "dry-run" then return 0 end`;', 'lua'],
    [
      'Lua taking statuses from the prelude',
      "const s = `${luaLifecyclePrelude()}\nlocal status = redis.call('HGET', KEYS[1], 'status')\nif LIFECYCLE.park[status] then return 'parked' end`;",
      null,
    ],
    ['Lua with a status word only in a Lua comment', "const s = `\nlocal n = redis.call('HLEN', KEYS[1]) -- 'finished' chats`;", null],
    ["Lua with a result state ('succeeded')", "const s = `\nif ARGV[3] == 'succeeded' then redis.call('HDEL', KEYS[3], ARGV[1]) end`;", null],
  ];

  it.each(TS_CASES.map(([name, code, rule]) => ({ name, code, rule: rule ?? 'no offender' })))('$name → $rule', ({ code, rule }) => {
    const found: string[] = scanTypeScript('case.ts', code).map((o) => o.rule);
    if (rule === 'no offender') expect(found).toEqual([]);
    else expect(found).toContain(rule);
    // A Lua hit is not also a TypeScript status-literal hit (the whole script is not the word).
    if (rule === 'lua') expect(found.every((r) => r === 'lua' || r === 'lua-unknown')).toBe(true);
  });

  it.each([
    ["redis.call('HSET', KEYS[1], 'status', 'queued')", 'lua-unknown'],
    ["local status = redis.call('HGET', KEYS[1], 'status')\nif status == 'queued' then return 1 end", 'lua-unknown'],
    ["if 'queued' ~= status then return 1 end", 'lua-unknown'],
    ["if redis.call('HGET', KEYS[1], 'status') == \"queued\" then return 1 end", 'lua-unknown'],
    ['if LIFECYCLE.parked[status] then return 1 end', 'lua-unknown'],
    ["redis.call('HSET', KEYS[1], 'status', LIFECYCLE.complete_to)", null],
    ["redis.call('HSET', KEYS[1], 'status', ARGV[1], 'reason', ARGV[2])", null],
    ["if redis.call('HGET', KEYS[1], 'status') == ARGV[6] then return 1 end", null],
    ['if LIFECYCLE.park[status] or LIFECYCLE.cancel[status] then return 1 end', null],
    ["-- status == 'queued' in a comment\nreturn 0", null],
  ] as const)('.lua file %j → %s', (code, rule) => {
    const found = scanLua('x.lua', code).map((o) => o.rule);
    if (rule === null) expect(found).toEqual([]);
    else expect(found).toContain(rule);
  });

  it.each([
    ["return redis.call('HGET', KEYS[1], 'status') == 'paused'", 1],
    ['-- a "finished" batch\nreturn 0', 0],
    ["--[[\n  ARGV[3] counter ('succeeded'|'failed'|'cancelled')\n]]\nreturn 0", 0],
    ["--[==[ 'running' ]==]\nif s == 'running' then return 1 end", 1],
    ['if LIFECYCLE.cancel[status] then return "cancel" end', 0],
  ] as const)('.lua file %j → %i quoted status(es)', (code, n) => {
    expect(scanLua('x.lua', code).filter((o) => o.rule === 'lua')).toHaveLength(n);
  });

  it('reports file:line:column', () => {
    const [o] = scanTypeScript('src/x.ts', "const a = 1;\nconst b = 'stopped';\n");
    expect(o).toEqual({ file: 'src/x.ts', line: 2, column: 11, rule: 'status-literal', text: "'stopped'" });
  });
});

describe('lifecycle spelling guard: src/ and jobs/', () => {
  it('scans the real tree (the lifecycle module itself excluded)', () => {
    const files = SCANNED_DIRS.flatMap(filesUnder);
    expect(files.length).toBeGreaterThan(20);
    expect(files).toContain(LIFECYCLE);
    expect(files.map((f) => relative(ROOT, join(ROOT, f)))).toEqual(files);
  });

  it('no status is spelled outside src/domain/lifecycle.ts', () => {
    const offenders = findOffenders();
    if (offenders.length > 0) {
      throw new Error(`${offenders.length} status spelling(s) outside ${LIFECYCLE} (import Status / the sets, or give Lua the prelude):\n${report(offenders)}`);
    }
  });
});
