import { describe, expect, test } from 'vitest';
import { driverWritesPathProblem, filePathProblem, findPathConflicts, translatePath } from './paths.js';

describe('translatePath', () => {
  test.each([
    ['mypath/TestSecret1', '_', 'mypath_TestSecret1'],
    ['mypath/TestSecret1', '-', 'mypath-TestSecret1'],
    ['/TestSecret1', false, 'TestSecret1'],
    ['/mypath/TestSecret1', false, 'mypath/TestSecret1'],
    ['///a/b', false, 'a/b'],
    ['/a', '/', '/a'],
  ] as const)('%j with %j → %j', (name, t, out) => {
    expect(translatePath(name, t)).toBe(out);
  });
});

describe('filePathProblem', () => {
  test.each([
    'a',
    'a/b/c',
    '..a',
    'a..',
    'a/..b',
    'ünïcødé/秘密',
    'a\\..\\b',
    `${'x'.repeat(255)}`,
    `${'é'.repeat(127)}x`,
  ])('%j is fine', (p) => {
    expect(filePathProblem(p)).toBeUndefined();
  });

  test.each([
    ['', 'empty'],
    ['/abs', 'must be relative'],
    ['..', 'path can not contain ../'],
    ['a/../b', 'path can not contain ../'],
    ['a/..', 'path can not contain ../'],
    ['.', 'can not be "."'],
    ['./a', 'not in clean form'],
    ['a//b', 'not in clean form'],
    ['a/', 'not in clean form'],
    ['a\u0000', 'NUL'],
    ['x'.repeat(256), 'longer than 255 bytes'],
    [`${'abcdefgh/'.repeat(455)}abcdefghi`, 'longer than 4096 bytes'],
  ])('%j: %s', (p, text) => {
    expect(filePathProblem(p)).toContain(text);
  });

  test('driver-writes mode also refuses a first segment starting with ".."', () => {
    expect(driverWritesPathProblem('..a')).toContain('can not start with ".."');
    expect(driverWritesPathProblem('a/..b')).toBeUndefined();
  });
});

describe('findPathConflicts', () => {
  test('duplicates and file/directory clashes, each once', () => {
    expect(findPathConflicts(['a', 'b', 'a', 'a/b', 'c/d', 'c/e'])).toEqual([
      'two outputs would be written to the same file "a"',
      '"a" is written as a file but "a/b" needs it to be a directory',
    ]);
    expect(findPathConflicts(['x/y', 'x'])).toEqual(['"x" is written as a file but "x/y" needs it to be a directory']);
    expect(findPathConflicts(['a', 'b', 'c/d'])).toEqual([]);
  });
});
