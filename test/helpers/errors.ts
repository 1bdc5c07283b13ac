/** The SmsgateError a call throws; fails the test when it returns or throws anything else. */
import { SmsgateError } from '../../modem/errors.js';

export function errorOf(fn: () => unknown): SmsgateError {
  try {
    fn();
  } catch (error) {
    if (error instanceof SmsgateError) return error;
    throw error;
  }
  throw new Error('expected an SmsgateError, but the call returned');
}
