/** The ProviderError a promise rejects with; fails the test when it resolves or rejects with anything else. */
import { expect } from 'vitest';
import { ProviderError } from '../../src/errors.js';

export async function failure(p: Promise<unknown>): Promise<ProviderError> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(ProviderError);
    return err as ProviderError;
  }
  throw new Error('expected a failure');
}
