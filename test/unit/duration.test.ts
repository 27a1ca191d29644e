/** --time-limit's durations (src/cli/options.ts parseDuration). */
import { describe, expect, it } from 'vitest';
import { parseDuration } from '../../src/cli/options.js';

describe('parseDuration', () => {
  it('reads days, hours, minutes and seconds, or plain seconds', () => {
    expect(parseDuration('3h50m')).toBe(3 * 3600 + 50 * 60);
    expect(parseDuration('90s')).toBe(90);
    expect(parseDuration('45m')).toBe(2700);
    expect(parseDuration('1d12h')).toBe(36 * 3600);
    expect(parseDuration('1h0m30s')).toBe(3630);
    expect(parseDuration('5400')).toBe(5400);
    expect(parseDuration('1.5s')).toBe(1.5);
  });

  it('refuses what it cannot read, and zero', () => {
    for (const bad of ['', '3x', 'h', '50m3h', '-5m', '0', '0s', '3h 50m', '1e3']) expect(parseDuration(bad), bad).toBeNull();
  });
});
