/**
 * The registry of requests in flight (src/io/in-flight.ts): stalls are reported once,
 * with the file a native batch is on; a batch stuck on one file hands the files it has
 * not started to someone else. The batch case uses the real addon and a real hang: a
 * FIFO with no writer, whose open(2) blocks until one comes.
 */
import { closeSync, constants as C, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { InFlight, type Stall } from '../../src/io/in-flight.js';
import { COPY_FLAGS, loadNative } from '../../src/native/loader.js';

const base = mkdtempSync('/dev/shm/fcp-test-inflight-');
afterAll(() => rmSync(base, { recursive: true, force: true }));

describe('InFlight', () => {
  it('reports a request older than the stall timeout once, with its operation, path and age', () => {
    let now = 1000;
    const stalls: Stall[] = [];
    const f = new InFlight({ stallMs: 300_000, onStall: (s) => stalls.push(s), now: () => now });
    const endA = f.begin('read of', '/pfs/a');
    f.begin('copy of', '/pfs/b');
    now += 299_000;
    f.check();
    expect(stalls).toEqual([]);
    endA();
    now += 1_000;
    f.check(); // a returned: b is the one that stalled
    now += 5_000;
    f.check();
    expect(stalls).toEqual([{ op: 'copy of', path: '/pfs/b', seconds: 300 }]);
    expect(f.size).toBe(1);
  });

  it('names the file a batch is on, and does not blame a batch still waiting for a thread', () => {
    let now = 0;
    const stalls: Stall[] = [];
    const f = new InFlight({ stallMs: 10_000, handoffMs: 1_000_000, onStall: (s) => stalls.push(s), now: () => now });
    const waiting = new Int32Array(1);
    f.beginBatch('copy of', 4, waiting, (i) => `w${i}`, () => {});
    const busy = new Int32Array(1);
    f.beginBatch('copy of', 4, busy, (i) => `f${i}`, () => {});
    Atomics.store(busy, 0, 3); // on file 2
    f.check();
    now += 11_000;
    f.check();
    expect(stalls).toEqual([{ op: 'copy of', path: 'f2', seconds: 11 }]);
  });

  const native = loadNative();
  it.runIf(native !== null)('a native batch stuck on one file hands the files after it on; they are copied while it hangs', async () => {
    const src = join(base, 'src');
    const dst = join(base, 'dst');
    mkdirSync(src);
    mkdirSync(dst);
    writeFileSync(join(src, 'a'), 'aaa');
    execFileSync('mkfifo', [join(src, 'hung')]); // open(O_RDONLY) blocks: no writer yet
    writeFileSync(join(src, 'b'), 'bbbb');
    writeFileSync(join(src, 'c'), 'ccccc');
    const names = ['a', 'hung', 'b', 'c'];
    const sizes = [3, 0, 4, 5];
    const nums = (idx: number[]) => {
      const a = new Float64Array(idx.length * 10);
      idx.forEach((i, k) => a.set([0, sizes[i]!, 0o100644, 0, 0, 1_600_000_000, 0, 1_600_000_000, 0, -1], k * 10));
      return a;
    };
    const stalls: Stall[] = [];
    let handedFrom = -1;
    let rest: Promise<{ status: Float64Array }> | null = null;
    const f = new InFlight({ stallMs: 1500, handoffMs: 200, onStall: (s) => stalls.push(s) });
    f.start();
    const cursor = new Int32Array(1);
    const end = f.beginBatch('copy of', names.length, cursor, (i) => join(src, names[i]!), (from) => {
      handedFrom = from;
      const idx = [2, 3].filter((i) => i >= from);
      rest = native!.copyFiles([Buffer.from(src), Buffer.from(dst)], idx.map((i) => Buffer.from(names[i]!)), nums(idx), COPY_FLAGS.SPARSE);
    });
    const first = native!.copyFiles([Buffer.from(src), Buffer.from(dst)], names.map((n) => Buffer.from(n)), nums([0, 1, 2, 3]), COPY_FLAGS.SPARSE, cursor).finally(end);
    // The rest is handed on after the hand-off delay and copied while the batch still hangs.
    const until = Date.now() + 5000;
    while (!rest && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
    expect(handedFrom).toBe(2);
    const r = await rest!;
    expect([...r.status].filter((_, i) => i % 3 === 0)).toEqual([0, 0]);
    expect(readFileSync(join(dst, 'b'), 'utf8')).toBe('bbbb');
    expect(readFileSync(join(dst, 'c'), 'utf8')).toBe('ccccc');
    // Still hung: the stall names the FIFO.
    while (stalls.length === 0 && Date.now() < until + 3000) await new Promise((r) => setTimeout(r, 50));
    expect(stalls).toEqual([{ op: 'copy of', path: join(src, 'hung'), seconds: expect.any(Number) }]);
    // Release it: a writer opens the FIFO; the batch returns, without the files it gave away.
    const w = openSync(join(src, 'hung'), C.O_WRONLY | C.O_NONBLOCK);
    writeSync(w, '');
    closeSync(w);
    const { status } = await first;
    f.stop();
    expect(status[0]).toBe(0); // a was copied before the hang
    expect([status[6], status[9]]).toEqual([-125, -125]); // b and c: ECANCELED, not touched by this batch
    expect(cursor[0]).toBe(-1);
  });
});

describe('InFlight drain (the job stops)', () => {
  it('takes from each batch the files it has not started, for nobody; one begun while draining starts none', async () => {
    const f = new InFlight({ stallMs: 1_000_000, onStall: () => {} });
    const cut: [string, number, boolean][] = [];
    const onFile3 = new Int32Array(1);
    Atomics.store(onFile3, 0, 3); // on file 2 of 6: 3, 4, 5 not started
    const endA = f.beginBatch('copy of', 6, onFile3, () => '', (from, stopping) => cut.push(['a', from, stopping]));
    const onLast = new Int32Array(1);
    Atomics.store(onLast, 0, 4); // on its last file: nothing to take
    const endB = f.beginBatch('copy of', 4, onLast, () => '', (from, stopping) => cut.push(['b', from, stopping]));
    const drained = f.drain(5000);
    expect(f.draining).toBe(true);
    expect(cut).toEqual([['a', 3, true]]);
    expect([onFile3[0], onLast[0]]).toEqual([-1, 4]);
    const late = new Int32Array(1);
    const endC = f.beginBatch('copy of', 5, late, () => '', (from, stopping) => cut.push(['c', from, stopping]));
    expect(cut).toEqual([['a', 3, true], ['c', 0, true]]);
    expect(late[0]).toBe(-1);
    // drain returns once the batches have (their current files finished)
    let done = false;
    void drained.then(() => (done = true));
    endA();
    endC();
    await new Promise((r) => setTimeout(r, 50));
    expect(done).toBe(false);
    endB();
    await drained;
    expect(f.size).toBe(0);
  });
});

describe('InFlight hand-offs', () => {
  it('stop once several batches are stuck at once (each holds a thread-pool thread)', () => {
    let now = 0;
    const handed: number[] = [];
    const f = new InFlight({ stallMs: 1_000_000, handoffMs: 1000, onStall: () => {}, now: () => now });
    const cursors = Array.from({ length: 6 }, () => new Int32Array(1));
    cursors.forEach((c, i) => {
      Atomics.store(c, 0, 1); // each on its first file, more to come
      f.beginBatch('copy of', 8, c, () => '', () => handed.push(i));
    });
    f.check();
    now += 1000;
    f.check();
    expect(handed).toEqual([]); // six stuck: none handed on
    const f2 = new InFlight({ stallMs: 1_000_000, handoffMs: 1000, onStall: () => {}, now: () => now });
    cursors.slice(0, 3).forEach((c, i) => {
      Atomics.store(c, 0, 1);
      f2.beginBatch('copy of', 8, c, () => '', () => handed.push(i));
    });
    f2.check();
    now += 1000;
    f2.check();
    expect(handed).toEqual([0, 1, 2]);
    expect(cursors.slice(0, 3).map((c) => c[0])).toEqual([-1, -1, -1]);
  });
});
