/**
 * Everything a comment, a test title, a doc or a script cites must be something a reader of this
 * repository can open. The compatibility facts live in docs/behaviour.md; this test fails on a
 * citation of a document kept outside the repository, of the style guide, or of an issue number, on
 * a `docs/<file>.md` that does not exist, and on a cited heading (`docs/behaviour.md, "Failover"`,
 * `README, "Caching and cost"`, a link's `#anchor`) that its document does not have.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('../', import.meta.url));
const SELF = 'test/docs-references.test.ts';

/** What a reader cannot open, each with the reason given when found. */
const FORBIDDEN: readonly { re: RegExp; why: string }[] = [
  // Built from parts, so that this file does not itself cite what it forbids.
  {
    re: new RegExp(['CONTRACT\\.md', 'ascp-' + 'behaviour', 'driver-' + 'behaviour', 'driver-' + 'contract'].join('|')),
    why: 'a document outside the repository: cite docs/behaviour.md',
  },
  { re: /\.\.\/(?:shared|seeds|spec)\//, why: 'a path outside the repository' },
  { re: /\bSTYLE\b/, why: 'the style guide is outside the repository: give the reason itself' },
  { re: /\bissues? #?\d/i, why: 'an issue number: name the thing instead (a doc, a test, a benchmark target)' },
  { re: /(?<!RFC \d+ )§/, why: 'a section number of a document outside the repository: cite a docs/ heading' },
];

/** Tracked files (every file but the ignored ones when git is not there), as repository paths. */
function trackedFiles(): string[] {
  try {
    return execFileSync('git', ['ls-files', '-z'], { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] })
      .split('\0')
      .filter((f) => f !== '');
  } catch {
    const skip = new Set(['node_modules', 'dist', 'coverage', '.tmp', '.git']);
    const walk = (dir: string): string[] =>
      readdirSync(path.join(ROOT, dir), { withFileTypes: true }).flatMap((e) => {
        const rel = dir === '' ? e.name : `${dir}/${e.name}`;
        if (e.isDirectory()) return skip.has(e.name) || /^manifests\/charts\/[^/]+\/charts$/.test(rel) ? [] : walk(rel);
        return [rel];
      });
    return walk('');
  }
}

/** The text files to check: sources, tests, docs, scripts, manifests (not the lock file, not binaries). */
const FILES: { rel: string; text: string }[] = trackedFiles()
  .filter((rel) => rel !== 'package-lock.json' && rel !== SELF && existsSync(path.join(ROOT, rel)))
  .map((rel) => ({ rel, text: readFileSync(path.join(ROOT, rel), 'utf8') }))
  .filter(({ text }) => !text.includes('\0'));

/** GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens. */
function slug(heading: string): string {
  return heading
    .trim()
    .toLowerCase()
    .replace(/[^\p{L}\p{N}\s_-]/gu, '')
    .replace(/\s/g, '-');
}

function headings(rel: string): string[] {
  const text = readFileSync(path.join(ROOT, rel), 'utf8').replace(/^```[\s\S]*?^```/gm, '');
  return [...text.matchAll(/^#{1,6}\s+(.+?)\s*#*$/gm)].map((m) => m[1] ?? '');
}

/** A comment's text with its line breaks and comment markers taken out, so a citation may wrap. */
function joined(text: string): string {
  return text.replace(/\n\s*(?:\*(?!\/)|\/\/|#)?\s*/g, ' ');
}

describe('references a reader can open', () => {
  it('scans the repository (sanity)', () => {
    expect(FILES.some((f) => f.rel === 'src/main.ts')).toBe(true);
    expect(FILES.some((f) => f.rel === 'docs/behaviour.md')).toBe(true);
  });

  it('no file cites a document outside the repository, the style guide or an issue number', () => {
    const found: string[] = [];
    for (const { rel, text } of FILES) {
      text.split('\n').forEach((line, i) => {
        for (const { re, why } of FORBIDDEN)
          if (re.test(line)) found.push(`${rel}:${i + 1}: ${why}\n    ${line.trim()}`);
      });
    }
    expect(found, found.join('\n')).toEqual([]);
  });

  it('every docs/<file>.md cited exists', () => {
    const missing: string[] = [];
    for (const { rel, text } of FILES) {
      for (const m of text.matchAll(/\bdocs\/([\w.-]+\.md)\b/g)) {
        if (!existsSync(path.join(ROOT, 'docs', m[1] ?? ''))) missing.push(`${rel}: docs/${m[1]}`);
      }
    }
    expect(missing, missing.join('\n')).toEqual([]);
  });

  it('every cited heading exists: docs/<file>.md, "Heading" and README, "Heading"', () => {
    const bad: string[] = [];
    const cite = /\b(docs\/[\w.-]+\.md|README(?:\.md)?),((?:\s*(?:and\s+)?"[^"\n]+",?)+)/g;
    for (const { rel, text } of FILES) {
      for (const m of joined(text).matchAll(cite)) {
        const doc = (m[1] ?? '').startsWith('README') ? 'README.md' : (m[1] ?? '');
        if (!existsSync(path.join(ROOT, doc))) continue; // reported by the test above
        const have = headings(doc);
        for (const h of (m[2] ?? '').matchAll(/"([^"]+)"/g)) {
          const c = h[1] ?? ''; // a heading with a subtitle may be cited by its title: "Start-up in the box"
          if (!have.some((x) => x === c || x.startsWith(`${c}:`))) bad.push(`${rel}: ${doc} has no heading "${h[1]}"`);
        }
      }
    }
    expect(bad, bad.join('\n')).toEqual([]);
  });

  it('every relative link in docs/ points to a file that exists, and to a heading it has', () => {
    const bad: string[] = [];
    for (const { rel, text } of FILES.filter((f) => /^docs\/[^/]+\.md$/.test(f.rel))) {
      for (const m of text.matchAll(/\]\(([^)\s]+)\)/g)) {
        const target = m[1] ?? '';
        if (/^[a-z]+:/i.test(target)) continue; // a URL
        const [file = '', anchor] = target.split('#');
        const doc = file === '' ? rel : path.posix.normalize(path.posix.join(path.posix.dirname(rel), file));
        if (!existsSync(path.join(ROOT, doc))) {
          bad.push(`${rel}: ${target}: no such file`);
        } else if (anchor !== undefined && doc.endsWith('.md') && !headings(doc).map(slug).includes(anchor)) {
          bad.push(`${rel}: ${target}: no such heading`);
        }
      }
    }
    expect(bad, bad.join('\n')).toEqual([]);
  });
});
