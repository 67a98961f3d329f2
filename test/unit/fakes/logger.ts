/** A real pino logger (src/config/logger.ts) writing JSON lines into memory, so tests can read back what was logged. */
import { type Logger, makeLogger } from '../../../src/config/logger.js';

export interface LogLine {
  readonly level: number;
  readonly msg: string;
  readonly [field: string]: unknown;
}

/** pino's numeric levels. */
export const LEVEL = { debug: 20, info: 30, warn: 40, error: 50 } as const;

export function memoryLogger(): { logger: Logger; lines: LogLine[] } {
  const lines: LogLine[] = [];
  const logger = makeLogger('debug', 'test', { write: (text: string) => void lines.push(JSON.parse(text) as LogLine) });
  return { logger, lines };
}
