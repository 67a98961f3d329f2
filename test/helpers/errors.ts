/** Assertions on the errors a user mistake must produce (an InputError, never a crash). */
import { expect } from '@jest/globals';

import { InputError } from '../../src/domain/errors.js';

/** Awaits `p`, expecting an InputError (and nothing else); returns it for closer checks. */
export async function inputError(p: Promise<unknown>): Promise<InputError> {
  let caught: unknown;
  try {
    await p;
  } catch (error) {
    caught = error;
  }
  expect(caught).toBeInstanceOf(InputError);
  return caught as InputError;
}
