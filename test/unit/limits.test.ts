/** Rate limits: the token bucket's pacing, the throttle's shares and gate, and the limits' syntax (src/limits/). */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { TokenBucket } from '../../src/limits/token-bucket.js';
import { Throttle } from '../../src/limits/throttle.js';
import { validateBody } from '../../src/transport/messages.js';
import { LimitsFile } from '../../src/limits/limits-file.js';
import { mkdtempSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { LimitsText } from '../../src/limits/rates.js';
import { effectiveLimits, parseBwlimit, parseLimitsText, parseMaxOps, showLimits } from '../../src/limits/rates.js';

describe('TokenBucket', () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  /** Resolved yet? (after letting promise callbacks run) */
  const settled = async (p: Promise<void> | null) => {
    let done = p === null;
    void p?.then(() => (done = true));
    await vi.advanceTimersByTimeAsync(0);
    return done;
  };

  it('unlimited costs nothing: take returns null', () => {
    const b = new TokenBucket(0, 0.1, () => Date.now());
    expect(b.take(1e12)).toBeNull();
    expect(b.limited).toBe(false);
  });

  it('each caller pays first and waits out its own cost, in the order they took', async () => {
    const b = new TokenBucket(100, 0.1, () => Date.now()); // 100 a second
    const first = b.take(50); // 0.5 s
    const second = b.take(100); // 1.5 s: after the first
    await vi.advanceTimersByTimeAsync(490);
    expect(await settled(first)).toBe(false);
    await vi.advanceTimersByTimeAsync(20);
    expect(await settled(first)).toBe(true);
    expect(await settled(second)).toBe(false);
    await vi.advanceTimersByTimeAsync(1000);
    expect(await settled(second)).toBe(true);
  });

  it('an idle bucket saves at most its burst: after a pause only 0.1 s of rate passes at once', async () => {
    const b = new TokenBucket(100, 0.1, () => Date.now());
    await vi.advanceTimersByTimeAsync(10_000);
    expect(b.take(10)).toBeNull(); // the 10 saved
    const next = b.take(10);
    expect(next).not.toBeNull();
    await vi.advanceTimersByTimeAsync(105);
    expect(await settled(next)).toBe(true);
  });

  it('a raised rate applies to callers already waiting; unlimited releases them all', async () => {
    const b = new TokenBucket(10, 0.1, () => Date.now());
    const w = b.take(100); // 10 s at 10/s
    await vi.advanceTimersByTimeAsync(1000); // 10 paid, 90 owed
    b.setRate(90); // 1 s more
    await vi.advanceTimersByTimeAsync(900);
    expect(await settled(w)).toBe(false);
    await vi.advanceTimersByTimeAsync(150);
    expect(await settled(w)).toBe(true);
    const x = b.take(1000);
    const y = b.take(1000);
    b.setRate(0);
    expect(await settled(x)).toBe(true);
    expect(await settled(y)).toBe(true);
  });
});

describe('Throttle', () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  it('gives each rank its share: 4 ranks of a 400/s job pace at 100/s, 2 sharers at 200/s', async () => {
    const t = new Throttle(4, { bytesPerSecond: 0, opsPerSecond: 400 });
    let done = false;
    void t.take(0, 100).then(() => (done = true));
    await vi.advanceTimersByTimeAsync(990);
    expect(done).toBe(false);
    await vi.advanceTimersByTimeAsync(20);
    expect(done).toBe(true);
    t.set(t.limits, 2);
    done = false;
    void t.take(0, 100).then(() => (done = true));
    await vi.advanceTimersByTimeAsync(510);
    expect(done).toBe(true);
  });

  it('idle() holds the next item while a take waits; sample() says whether the rank had work to pace', async () => {
    const t = new Throttle(1, { bytesPerSecond: 1000, opsPerSecond: 0 });
    expect(t.sample()).toBe(0);
    expect(t.idle()).toBeNull();
    const w = t.take(500, 1);
    const gate = t.idle();
    expect(gate).not.toBeNull();
    let open = false;
    void gate!.then(() => (open = true));
    await vi.advanceTimersByTimeAsync(400);
    expect(open).toBe(false);
    expect(t.sample()).toBe(1);
    await vi.advanceTimersByTimeAsync(150);
    await w;
    expect(open).toBe(true);
    expect(t.sample()).toBe(0); // nothing since the last sample
  });

  it('with no limit set it is inactive (callers skip it)', () => {
    expect(new Throttle(3).active).toBe(false);
    expect(new Throttle(3, { bytesPerSecond: 1, opsPerSecond: 0 }).active).toBe(true);
  });
});

describe('limits syntax', () => {
  it('--bwlimit: sizes per second; 0 and none are unlimited', () => {
    expect(parseBwlimit('2G')).toBe(2 * 2 ** 30);
    expect(parseBwlimit('500M')).toBe(500 * 2 ** 20);
    expect(parseBwlimit('1.5G/s')).toBe(1.5 * 2 ** 30);
    expect(parseBwlimit('0')).toBe(0);
    expect(parseBwlimit('none')).toBe(0);
    for (const bad of ['fast', '-1M', '', '1X']) expect(() => parseBwlimit(bad), bad).toThrow();
  });

  it('--max-ops: operations per second, k and M allowed; 0 and none are unlimited', () => {
    expect(parseMaxOps('5000')).toBe(5000);
    expect(parseMaxOps('2.5k')).toBe(2500);
    expect(parseMaxOps('none')).toBe(0);
    expect(parseMaxOps('0')).toBe(0);
    for (const bad of ['-5', 'many', '5 k', '']) expect(() => parseMaxOps(bad), bad).toThrow();
  });

  it('a limits file: key=value lines, comments and blanks skipped, the last of a key wins, bad lines returned with their number', () => {
    const t = parseLimitsText('# slow down during the day\nbwlimit = 1G\n\nmax-ops=5000 # MDS\nbwlimit=2G\nspeed=fast\nmax-ops=lots\nnonsense\n');
    expect(t.bytesPerSecond).toBe(2 * 2 ** 30);
    expect(t.opsPerSecond).toBe(5000);
    expect(t.bad.map((b) => [b.line, b.text])).toEqual([[6, 'speed=fast'], [7, 'max-ops=lots'], [8, 'nonsense']]);
    expect(t.bad[0]!.why).toBe("unknown key 'speed' (bwlimit, max-ops)");
  });

  it("the file's keys win over the options; a key it does not name keeps the option's value", () => {
    const cli = { bytesPerSecond: 100, opsPerSecond: 7 };
    expect(effectiveLimits(cli, parseLimitsText('bwlimit=none\n'))).toEqual({ bytesPerSecond: 0, opsPerSecond: 7 });
    expect(effectiveLimits(cli, null)).toEqual(cli);
    expect(showLimits({ bytesPerSecond: 40 * 2 ** 20, opsPerSecond: 0 })).toBe('bwlimit 40.0 MiB/s, max-ops unlimited');
  });
});

describe("the 'limits' message", () => {
  it('arrives typed, or not at all when a field is missing, negative, fractional or shares among no rank', () => {
    expect(validateBody('limits', { seq: 3, bytesPerSecond: 1048576, opsPerSecond: 0, ranks: 2 }))
      .toEqual({ type: 'limits', seq: 3, bytesPerSecond: 1048576, opsPerSecond: 0, ranks: 2 });
    for (const bad of [
      { seq: 3, bytesPerSecond: 1, opsPerSecond: 0 },
      { seq: 3, bytesPerSecond: -1, opsPerSecond: 0, ranks: 1 },
      { seq: 3, bytesPerSecond: 1.5, opsPerSecond: 0, ranks: 1 },
      { seq: 3, bytesPerSecond: 1, opsPerSecond: 0, ranks: 0 },
      { seq: -1, bytesPerSecond: 1, opsPerSecond: 0, ranks: 1 },
    ]) expect(validateBody('limits', bad), JSON.stringify(bad)).toBeNull();
  });
});

describe('LimitsFile', () => {
  it('is read again only when it changed; a bad line is named once however often it is read; a vanished file is said once', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'limits-unit-'));
    try {
      const path = join(dir, 'limits');
      writeFileSync(path, 'bwlimit=1M\nspeed=fast\n');
      const warned: string[] = [];
      const seen: LimitsText[] = [];
      const f = new LimitsFile({ path, everyMs: 60_000, warn: (l) => warned.push(l), onChange: (t) => seen.push(t) });
      expect(f.readNow()?.bytesPerSecond).toBe(2 ** 20);
      await f.check();
      expect(seen).toHaveLength(0); // unchanged since readNow
      writeFileSync(path, 'bwlimit=4M\nspeed=fast\n');
      utimesSync(path, new Date(), new Date(Date.now() + 5000)); // a new mtime even within the clock's tick
      await f.check();
      expect(seen.map((t) => t.bytesPerSecond)).toEqual([4 * 2 ** 20]);
      expect(warned).toEqual([`--limits-file '${path}' line 2 ('speed=fast'): unknown key 'speed' (bwlimit, max-ops); line ignored`]);
      rmSync(path);
      await f.check();
      await f.check();
      expect(warned.slice(1)).toEqual([`cannot read --limits-file '${path}': No such file or directory (ENOENT); the limits stay as they are`]);
      expect(seen).toHaveLength(1);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
