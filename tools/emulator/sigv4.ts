/**
 * @module emulator/sigv4
 * AWS Signature Version 4 verification of a received HTTP request: rebuilds the canonical request
 * from what arrived, derives the signing key from the credential scope, and compares signatures.
 */
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';

export interface SignedRequest {
  method: string;
  /** Path and query as received (`/`, `/?a=b`). */
  url: string;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

/** The parsed `Authorization` header. */
export interface SigV4Auth {
  accessKeyId: string;
  date: string;
  region: string;
  service: string;
  signedHeaders: string[];
  signature: string;
}

const AUTH = new RegExp(
  String.raw`^AWS4-HMAC-SHA256\s+Credential=([^/,\s]+)/(\d{8})/([^/,\s]+)/([^/,\s]+)/aws4_request,` +
    String.raw`\s*SignedHeaders=([^,\s]+),\s*Signature=([0-9a-f]{64})\s*$`,
);

/** Parses `Authorization`; undefined when absent or not SigV4. */
export function parseAuthorization(header: string | undefined): SigV4Auth | undefined {
  if (header === undefined) return undefined;
  const m = AUTH.exec(header);
  if (m === null) return undefined;
  return {
    accessKeyId: m[1] as string,
    date: m[2] as string,
    region: m[3] as string,
    service: m[4] as string,
    signedHeaders: (m[5] as string).split(';'),
    signature: m[6] as string,
  };
}

/** RFC 3986 encoding as SigV4 wants it. */
function escape(s: string): string {
  return encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

function canonicalUri(path: string): string {
  if (path === '' || path === '/') return '/';
  // Non-S3 services escape the (already escaped) path once more, segment by segment.
  return path
    .split('/')
    .map((seg) => escape(seg))
    .join('/');
}

function canonicalQuery(query: string): string {
  if (query === '') return '';
  const pairs = query.split('&').map((kv) => {
    const i = kv.indexOf('=');
    const k = decodeURIComponent((i < 0 ? kv : kv.slice(0, i)).replace(/\+/g, ' '));
    const v = i < 0 ? '' : decodeURIComponent(kv.slice(i + 1).replace(/\+/g, ' '));
    return [escape(k), escape(v)] as const;
  });
  pairs.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0));
  return pairs.map(([k, v]) => `${k}=${v}`).join('&');
}

function headerValue(headers: IncomingHttpHeaders, name: string): string | undefined {
  const v = headers[name];
  if (v === undefined) return undefined;
  return (Array.isArray(v) ? v.join(',') : v).trim().replace(/\s+/g, ' ');
}

const hmac = (key: Buffer | string, data: string): Buffer => createHmac('sha256', key).update(data).digest();

export function signingKey(secret: string, date: string, region: string, service: string): Buffer {
  return hmac(hmac(hmac(hmac(`AWS4${secret}`, date), region), service), 'aws4_request');
}

/** The signature the request should carry if signed with `secret`; undefined when a signed header is missing. */
export function expectedSignature(req: SignedRequest, auth: SigV4Auth, secret: string): string | undefined {
  const amzDate = headerValue(req.headers, 'x-amz-date');
  if (amzDate === undefined) return undefined;
  const q = req.url.indexOf('?');
  const path = q < 0 ? req.url : req.url.slice(0, q);
  const query = q < 0 ? '' : req.url.slice(q + 1);
  const lines: string[] = [];
  for (const name of auth.signedHeaders) {
    const v = headerValue(req.headers, name);
    if (v === undefined) return undefined;
    lines.push(`${name}:${v}\n`);
  }
  // The body is always hashed: a declared x-amz-content-sha256 that does not match it fails too.
  const payloadHash = createHash('sha256').update(req.body).digest('hex');
  const declared = headerValue(req.headers, 'x-amz-content-sha256');
  if (declared !== undefined && declared !== payloadHash) return undefined;
  const canonical = [
    req.method,
    canonicalUri(path),
    canonicalQuery(query),
    lines.join(''),
    auth.signedHeaders.join(';'),
    payloadHash,
  ].join('\n');
  const scope = `${auth.date}/${auth.region}/${auth.service}/aws4_request`;
  const toSign = ['AWS4-HMAC-SHA256', amzDate, scope, createHash('sha256').update(canonical).digest('hex')].join('\n');
  return createHmac('sha256', signingKey(secret, auth.date, auth.region, auth.service))
    .update(toSign)
    .digest('hex');
}

export function signatureMatches(req: SignedRequest, auth: SigV4Auth, secret: string): boolean {
  if (!auth.signedHeaders.includes('host')) return false;
  const want = expectedSignature(req, auth, secret);
  if (want === undefined) return false;
  const a = Buffer.from(want, 'hex');
  const b = Buffer.from(auth.signature, 'hex');
  return a.length === b.length && timingSafeEqual(a, b);
}
