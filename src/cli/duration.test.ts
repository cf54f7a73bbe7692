// Go's time.ParseDuration grammar (cases from Go's time/time_test.go parseDurationTests) and the
// String() form used in ASCP's log lines.
import { describe, expect, it } from 'vitest';
import { formatDuration, parseGoDuration } from './duration.js';

describe('parseGoDuration', () => {
  it.each<[string, number]>([
    ['0', 0],
    ['-0', 0],
    ['+0', 0],
    ['5s', 5000],
    ['30s', 30_000],
    ['1478s', 1_478_000],
    ['-5s', -5000],
    ['+5s', 5000],
    ['5.0s', 5000],
    ['5.6s', 5600],
    ['5.s', 5000],
    ['.5s', 500],
    ['1.004s', 1004],
    ['100.00100s', 100_001],
    ['10ns', 10e-6],
    ['11us', 11e-3],
    ['12µs', 12e-3],
    ['12μs', 12e-3],
    ['13ms', 13],
    ['15m', 15 * 60_000],
    ['16h', 16 * 3_600_000],
    ['3h30m', 3.5 * 3_600_000],
    ['10.5s4m', 250_500],
    ['-2m3.4s', -123_400],
    ['1h2m3s4ms', 3_723_004],
    ['39h9m14.425s', 140_954_425],
    ['100ms', 100],
    ['30001ms', 30_001],
    ['1m30s', 90_000],
  ])('%j → %d ms', (text, ms) => {
    expect(parseGoDuration(text)).toBeCloseTo(ms, 9);
  });

  it.each<[string, RegExp]>([
    ['', /^time: invalid duration ""$/],
    ['invalid', /^time: invalid duration "invalid"$/],
    ['3', /^time: missing unit in duration "3"$/],
    ['-', /invalid duration "-"/],
    ['s', /invalid duration "s"/],
    ['.', /duration "\."/],
    ['-.', /duration "-\."/],
    ['.s', /invalid duration "\.s"/],
    ['+.s', /invalid duration "\+\.s"/],
    ['1d', /duration "1d"/],
    ['1s 2s', /duration "1s 2s"/],
    [' 1s', /duration " 1s"/],
    ['1S', /duration "1S"/],
  ])('%j is refused: %s', (text, message) => {
    expect(() => parseGoDuration(text)).toThrow(message);
  });
});

describe('formatDuration (Go Duration.String for log lines)', () => {
  it.each<[number, string]>([
    [0, '0s'],
    [100, '100ms'],
    [-100, '-100ms'],
    [1000, '1s'],
    [35_000, '35s'],
    [30_001, '30.001s'],
    [90_000, '1m30s'],
    [3_600_000, '1h0m0s'],
    [3_723_004, '1h2m3.004s'],
  ])('%d ms → %j', (ms, text) => {
    expect(formatDuration(ms)).toBe(text);
  });
});
