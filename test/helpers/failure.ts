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

/** The gRPC status a mount was refused with, as the driver sees it. */
export interface GrpcError {
  code: number;
  details: string;
}

/** The status a call rejects with; fails the test when it succeeds. */
export async function refused(p: Promise<unknown>): Promise<GrpcError> {
  try {
    await p;
  } catch (err) {
    return err as GrpcError;
  }
  throw new Error('mount succeeded but was expected to fail');
}
