/**
 * Reads the Lua steps from src/store/lua/: one file per script, named `<name>-<numberOfKeys>.lua`, each opening
 * with a comment that documents its KEYS, ARGV and output. A line `--@include <name>` is replaced by shared Lua:
 * `lifecycle` by the generated batch lifecycle (`luaLifecyclePrelude`, so Lua never spells a batch status),
 * anything else by `lua/includes/<name>.lua`.
 *
 * tsc does not copy .lua files, so the compiled module (dist/src/store/) reads them from the source tree; under
 * ts-jest the module runs from src/store/ itself. Both are checked, in that order (as static-files.ts does for
 * the console's page). package.json "files" ships src/store/lua for the same reason.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

import { luaLifecyclePrelude } from '../domain/lifecycle.js';

const CANDIDATE_DIRS = [new URL('./lua/', import.meta.url), new URL('../../../src/store/lua/', import.meta.url)];

/** The include that stands for the generated lifecycle prelude rather than a file. */
export const LIFECYCLE_INCLUDE = 'lifecycle';

const SCRIPT_FILE = /^([A-Za-z][A-Za-z0-9]*)-(\d+)\.lua$/;
const INCLUDE_LINE = /^--@include[ \t]+(\S+)[ \t]*$/gm;
const INCLUDE_NAME = /^[A-Za-z][A-Za-z0-9]*$/;

export interface LoadedScript {
  /** Command name, from the file name. */
  readonly name: string;
  /** How many of the arguments are keys, from the file name. */
  readonly numberOfKeys: number;
  /** Absolute path of the .lua file. */
  readonly file: string;
  /** The file as written (header comment and `--@include` lines). */
  readonly source: string;
  /** Names of the includes it pulls in, in order. */
  readonly includes: readonly string[];
  /** What is sent to Redis: the source with every include expanded. */
  readonly lua: string;
}

/** The folder the .lua files are read from. */
export function luaDir(): URL {
  const found = CANDIDATE_DIRS.find((dir) => existsSync(dir));
  if (!found) throw new Error(`Lua scripts not found (looked in ${CANDIDATE_DIRS.map((d) => fileURLToPath(d)).join(', ')})`);
  return found;
}

function includeText(name: string, dir: URL, script: string): string {
  if (name === LIFECYCLE_INCLUDE) return luaLifecyclePrelude();
  if (!INCLUDE_NAME.test(name)) throw new Error(`${script}: bad include name ${JSON.stringify(name)}`);
  const file = new URL(`includes/${name}.lua`, dir);
  if (!existsSync(file)) throw new Error(`${script}: include ${name} not found (${fileURLToPath(file)})`);
  const text = readFileSync(file, 'utf8');
  // One level only: an include that includes would make the expanded text depend on the order of expansion.
  if (new RegExp(INCLUDE_LINE.source, 'm').test(text)) throw new Error(`includes/${name}.lua: includes may not include`);
  return text;
}

/** Reads and expands one script file. */
export function loadScript(fileName: string, dir: URL = luaDir()): LoadedScript {
  const match = SCRIPT_FILE.exec(fileName);
  if (!match) throw new Error(`${fileName}: Lua script files are named <name>-<numberOfKeys>.lua`);
  const file = fileURLToPath(new URL(fileName, dir));
  const source = readFileSync(file, 'utf8');
  const includes: string[] = [];
  const lua = source.replace(INCLUDE_LINE, (_line, name: string) => {
    if (includes.includes(name)) throw new Error(`${fileName}: includes ${name} twice`);
    includes.push(name);
    return includeText(name, dir, fileName);
  });
  return { name: match[1] as string, numberOfKeys: Number(match[2]), file, source, includes, lua };
}

/** Every script in the folder, by file name. A .lua file that is not named `<name>-<numberOfKeys>.lua` is an error. */
export function loadScripts(dir: URL = luaDir()): LoadedScript[] {
  return readdirSync(dir, { withFileTypes: true })
    .filter((entry) => entry.isFile() && entry.name.endsWith('.lua'))
    .map((entry) => entry.name)
    .sort()
    .map((name) => loadScript(name, dir));
}
