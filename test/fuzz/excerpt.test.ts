// The fuzz summaries quote a status message: whole when short, else cut at a word and marked.
import { describe, expect, it } from 'vitest';
import { excerpt } from './socket-fuzz.js';

describe('excerpt', () => {
  it('keeps a short message whole', () => {
    expect(excerpt('secret not found', 160)).toBe('secret not found');
  });
  it('cuts a long one at a word boundary, marked with …, within the limit', () => {
    const msg =
      'Failed to fetch secret prod/db-creds from Secrets Manager in eu-west-1: AccessDeniedException: User is not ' +
      'authorized to perform secretsmanager:GetSecretValue on resource';
    const e = excerpt(msg, 80);
    expect(e.endsWith(' …')).toBe(true);
    expect(e.length).toBeLessThanOrEqual(82);
    const kept = e.slice(0, -2);
    expect(msg.startsWith(kept)).toBe(true);
    // the next character of the original after the kept text is a space or punctuation: no word was cut
    expect(msg[kept.length]).toMatch(/[\s,;:(]/);
  });
  it('a single long word is cut at the limit rather than dropped', () => {
    expect(excerpt('x'.repeat(200), 50)).toBe(`${'x'.repeat(50)} …`);
  });
});
