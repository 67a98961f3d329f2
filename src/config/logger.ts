/**
 * Structured logs (pino, JSON lines on stderr so stdout stays for data). Phone numbers are personal data:
 * call sites log `maskPhone(...)` / `maskChatKey(...)`, never raw numbers. Key-like fields are redacted as a
 * second line of defence.
 */
import { type DestinationStream, pino, type Logger } from 'pino';

import { maskPhone } from '../domain/phone.js';

export type { Logger };

/**
 * `destination` defaults to stderr; tests pass a stream to read back everything that was logged (and check that
 * no key or phone number is in it).
 */
export function makeLogger(level: string, name = 'bulk-unassign', destination?: DestinationStream): Logger {
  return pino(
    {
      name,
      level,
      redact: { paths: ['apiKey', 'authorization', '*.apiKey', '*.authorization', 'headers.authorization'], censor: '[redacted]' },
    },
    destination ?? pino.destination({ fd: 2, sync: false }),
  );
}

/** Logger that drops everything (tests, library use). */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}

/** A chat key with its phone numbers masked, for logs. Group ids are not personal data. */
export function maskChatKey(chatKey: string): string {
  if (!chatKey.startsWith('p:')) return chatKey;
  const [phone = '', waba = ''] = chatKey.slice(2).split('@');
  return `p:${maskPhone(phone)}@${waba}`;
}
