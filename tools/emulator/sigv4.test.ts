// SigV4 verification against AWS's published example (IAM ListUsers, 2015-08-30) and its tampering cases.
import { describe, expect, test } from 'vitest';
import { expectedSignature, parseAuthorization, signatureMatches, type SignedRequest } from './sigv4.js';

const SECRET = 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY';
const AUTH =
  'AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/iam/aws4_request, ' +
  'SignedHeaders=content-type;host;x-amz-date, ' +
  'Signature=5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7';
const REQ: SignedRequest = {
  method: 'GET',
  url: '/?Action=ListUsers&Version=2010-05-08',
  headers: {
    'content-type': 'application/x-www-form-urlencoded; charset=utf-8',
    host: 'iam.amazonaws.com',
    'x-amz-date': '20150830T123600Z',
    authorization: AUTH,
  },
  body: Buffer.alloc(0),
};

describe('sigv4', () => {
  test('parses the Authorization header', () => {
    expect(parseAuthorization(AUTH)).toEqual({
      accessKeyId: 'AKIDEXAMPLE',
      date: '20150830',
      region: 'us-east-1',
      service: 'iam',
      signedHeaders: ['content-type', 'host', 'x-amz-date'],
      signature: '5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7',
    });
    expect(parseAuthorization('Bearer x')).toBeUndefined();
    expect(parseAuthorization(undefined)).toBeUndefined();
  });

  test("reproduces AWS's documented signature", () => {
    const auth = parseAuthorization(AUTH);
    if (auth === undefined) throw new Error('unparsed');
    expect(expectedSignature(REQ, auth, SECRET)).toBe(auth.signature);
    expect(signatureMatches(REQ, auth, SECRET)).toBe(true);
  });

  test.each<[string, Partial<SignedRequest>]>([
    ['another query', { url: '/?Action=ListUsers&Version=2010-05-09' }],
    ['another method', { method: 'POST' }],
    ['a body', { body: Buffer.from('x') }],
    ['another host', { headers: { ...REQ.headers, host: 'evil.example' } }],
    ['a missing signed header', { headers: { host: 'iam.amazonaws.com', 'x-amz-date': '20150830T123600Z' } }],
    [
      'a lying x-amz-content-sha256',
      {
        headers: {
          ...REQ.headers,
          'x-amz-content-sha256': 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b856'.replace(
            'e3',
            'f3',
          ),
        },
      },
    ],
  ])('refuses %s', (_, change) => {
    const auth = parseAuthorization(AUTH);
    if (auth === undefined) throw new Error('unparsed');
    expect(signatureMatches({ ...REQ, ...change }, auth, SECRET)).toBe(false);
  });

  test('refuses the wrong secret', () => {
    const auth = parseAuthorization(AUTH);
    if (auth === undefined) throw new Error('unparsed');
    expect(signatureMatches(REQ, auth, SECRET.replace('K7', 'K8'))).toBe(false);
  });
});
