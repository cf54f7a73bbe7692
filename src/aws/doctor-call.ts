/**
 * @module aws/doctor-call
 * One call of `doctor`'s IAM, EKS or KMS reads through the SDK, and the error it throws when the
 * call fails: the operation, AWS's error name and a message made by the provider's own classifier
 * (aws-errors.ts), which never quotes an answer's body and redacts what looks like a credential.
 */
import { classifyAwsError } from '../aws-errors.js';

export type DoctorService = 'IAM' | 'EKS' | 'KMS';

/** An IAM, EKS or KMS call that AWS refused or that did not complete. */
export class DoctorCallError extends Error {
  constructor(
    readonly service: DoctorService,
    readonly operation: string,
    /** AWS's error name as the SDK gives it (`NoSuchEntityException`, `AccessDenied`), or `TimeoutError`… */
    readonly awsCode: string,
    /** HTTP status, 0 when no answer came. */
    readonly status: number,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'DoctorCallError';
  }
}

/** Runs `send`; a failure becomes a DoctorCallError. */
export async function doctorCall<T>(
  service: DoctorService,
  operation: string,
  region: string,
  send: () => Promise<T>,
): Promise<T> {
  try {
    return await send();
  } catch (err) {
    const e = classifyAwsError(err, {
      what: `${service} ${operation}`,
      region,
      service,
      operation,
      accessDeniedHint: 'the credentials doctor runs with need the action named above',
    });
    const status = (err as { $metadata?: { httpStatusCode?: number } } | null)?.$metadata?.httpStatusCode ?? 0;
    throw new DoctorCallError(service, operation, e.awsName, status, e.message, { cause: e });
  }
}
