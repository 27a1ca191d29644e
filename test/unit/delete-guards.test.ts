/**
 * --max-delete's arithmetic: the two forms parse exactly, and the limit is "more than":
 * N allows N, P% allows P% of DST's entries (integer arithmetic, no rounding surprises).
 */
import { describe, expect, it } from 'vitest';
import { overLimit, parseMaxDelete } from '../../src/copy/delete-guards.js';

describe('--max-delete', () => {
  it('parses N and P% and rejects anything else with the value in the message', () => {
    expect(parseMaxDelete('0')).toEqual({ kind: 'count', n: 0 });
    expect(parseMaxDelete('1234')).toEqual({ kind: 'count', n: 1234 });
    expect(parseMaxDelete('10%')).toEqual({ kind: 'percent', p: 10 });
    expect(parseMaxDelete('0.5%')).toEqual({ kind: 'percent', p: 0.5 });
    expect(parseMaxDelete('100%')).toEqual({ kind: 'percent', p: 100 });
    for (const bad of ['', '-1', '1.5', '10 %', '%', '100.1%', '1e3', '0.0000001%', 'ten', '99999999999999999999']) {
      expect(() => parseMaxDelete(bad), bad).toThrow(`not '${bad}'`);
    }
  });

  it('refuses only more than the limit, and names the count and the limit', () => {
    expect(overLimit(100, 1000, { kind: 'count', n: 100 })).toBeNull();
    expect(overLimit(101, 1000, { kind: 'count', n: 100 })).toBe('101 entries would be deleted, more than --max-delete 100');
    expect(overLimit(1, 5, { kind: 'count', n: 0 })).toBe('1 entry would be deleted, more than --max-delete 0');
    expect(overLimit(0, 0, { kind: 'count', n: 0 })).toBeNull();
    // 10% of 30 is exactly 3
    expect(overLimit(3, 30, { kind: 'percent', p: 10 })).toBeNull();
    expect(overLimit(4, 30, { kind: 'percent', p: 10 })).toBe('4 entries would be deleted, more than --max-delete 10% of the 30 entries in DST');
    expect(overLimit(30, 30, { kind: 'percent', p: 100 })).toBeNull();
    expect(overLimit(1, 300, { kind: 'percent', p: 0.5 })).toBeNull();
    expect(overLimit(2, 300, { kind: 'percent', p: 0.5 })).not.toBeNull();
    // decimals without float surprises: 0.1% of 3,000 and 0.7% of 100,000,000,000 are exact
    expect(overLimit(3, 3000, { kind: 'percent', p: 0.1 })).toBeNull();
    expect(overLimit(4, 3000, { kind: 'percent', p: 0.1 })).not.toBeNull();
    expect(overLimit(700_000_000, 100_000_000_000, { kind: 'percent', p: 0.7 })).toBeNull();
    expect(overLimit(700_000_001, 100_000_000_000, { kind: 'percent', p: 0.7 })).not.toBeNull();
  });
});
