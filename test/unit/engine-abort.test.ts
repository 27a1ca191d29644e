/**
 * Stopping a job, on the in-process transport: any rank may abort; every rank stops
 * (pending collectives fail with JobAborted, hooks run, the process would exit with the
 * code), and the reason is printed once. Liveness: a silent predecessor is named.
 */
import { EventEmitter } from 'node:events';
import { describe, expect, it, vi } from 'vitest';
import { JobAborted, type Runtime } from '../../src/engine/runtime.js';
import { SIGNAL_FALLBACK_MS, Stopper } from '../../src/engine/abort.js';
import { Heartbeat } from '../../src/engine/liveness.js';
import { validateBody, type Message } from '../../src/transport/messages.js';
import { simJob } from '../helpers/sim-job.js';

const until = async (ok: () => boolean, ms = 5000) => {
  const end = Date.now() + ms;
  while (!ok() && Date.now() < end) await new Promise((r) => setTimeout(r, 2));
};

/** Wait in `barriers` barriers: 'passed', or how the abort that ended them reads (`show`). */
async function afterBarriers(rt: Runtime, barriers = 1, show: (e: JobAborted) => string = () => 'stopped'): Promise<string> {
  try {
    for (let i = 0; i < barriers; i++) await rt.barrier();
    return 'passed';
  } catch (err) {
    return err instanceof JobAborted ? show(err) : String(err);
  }
}

describe('engine: abort with many ranks in one process', () => {
  it('rank 3 of 7 aborts during a barrier: every rank leaves with its code, hooks run, one line printed', async () => {
    const job = simJob(7, 4, { maxDelayMs: 5, order: 'any' });
    const hooked: number[] = [];
    for (const rt of job.rts) rt.addAbortHook((_reason, code) => void hooked.push(code));
    const outcome = await job.all(async (rt) => {
      if (rt.rank === 3) {
        void rt.abort('disk on fire', 5);
        return 'aborted';
      }
      return afterBarriers(rt, 1, (err) => `stopped: ${err.reason} (${err.exitCode})`);
    });
    expect(outcome.filter((o) => o === 'passed')).toEqual([]);
    expect(outcome[3]).toBe('aborted');
    for (const [r, o] of outcome.entries()) if (r !== 3) expect(o).toBe('stopped: disk on fire (5)');
    await until(() => job.exits.every((c) => c !== null));
    expect(job.exits).toEqual(Array(7).fill(5));
    expect(hooked).toEqual(Array(7).fill(5));
    expect(job.printed).toEqual(['sim: disk on fire\n']);
  });

  it('an item that aborts in the middle of a phase: every rank leaves with the code, no item after it', async () => {
    const job = simJob(4, 8, { maxDelayMs: 2 });
    let processed = 0;
    const outcome = await job.all(async (rt) => {
      try {
        await rt.runPhase({
          name: 'forever',
          seed: (ctx) => { if (ctx.rank === 0) ctx.enqueue(0); },
          process: (n: number, ctx) => {
            processed++;
            if (n === 50) void rt.abort('enough', 3);
            else ctx.enqueue(n + 1);
          },
          isItem: (x): x is number => typeof x === 'number',
        });
        return 'ended';
      } catch (err) {
        return err instanceof JobAborted ? 'stopped' : String(err);
      }
    }, 100_000).catch((err: Error) => err.message);
    // A phase does not end on an abort (the process exits instead): idle ranks go on
    // asking for work until then, so the simulation runs out of steps.
    expect(typeof outcome === 'string' ? outcome : '').toMatch(/no end after/);
    await until(() => job.exits.every((c) => c !== null));
    expect(job.exits).toEqual([3, 3, 3, 3]);
    expect(processed).toBe(51);
  });
});

describe('engine: an abort several ranks ask for at once (a full destination)', () => {
  for (const seed of [1, 2, 3, 4, 5]) {
    it(`seed ${seed}: ranks 2..6 of 7 ask at once, messages late and in any order: rank 0 prints the first reason once, nobody passes the barrier, every rank exits 6`, async () => {
      // requests and aborts 0..500 ms late, other messages 0..50 ms
      const job = simJob(7, seed, { maxDelayMs: 50, order: 'any', extraDelayMs: (f, t, msg) => (msg.type.startsWith('abort') ? (f * 7 + t) * 10 : 0) });
      const outcome = await job.all(async (rt) => {
        if (rt.rank >= 2) {
          rt.requestAbort(`destination full: 'f${rt.rank}' (ENOSPC)`, 6);
          rt.requestAbort('asked twice', 6); // the second request of a rank is not sent
        }
        return afterBarriers(rt, 1, (err) => `stopped (${err.exitCode})`);
      });
      expect(outcome).toEqual(Array(7).fill('stopped (6)'));
      await until(() => job.exits.every((c) => c !== null));
      expect(job.exits).toEqual(Array(7).fill(6));
      expect(job.printed).toHaveLength(1);
      expect(job.printed[0]).toMatch(/^sim: destination full: 'f[2-6]' \(ENOSPC\)\n$/);
    });
  }

  it('a request goes to rank 0 only, once per rank; the collectives of a rank that asked are held back, so rank 0 cannot end the job before it has seen the request', async () => {
    const sent: { from: number; to: number; msg: Message }[] = [];
    // The request is very late: every barrier message would overtake it.
    const job = simJob(4, 9, {
      order: 'any', maxDelayMs: 5,
      extraDelayMs: (_f, _t, msg) => (msg.type === 'abort-req' ? 2000 : 0),
      onSend: (from, to, msg) => void sent.push({ from, to, msg }),
    });
    const outcome = await job.all(async (rt) => {
      if (rt.rank === 3) {
        rt.requestAbort("destination full: 'x' (ENOSPC)", 6);
        rt.requestAbort("destination full: 'y' (ENOSPC)", 6);
      }
      return afterBarriers(rt, 2);
    });
    expect(outcome).toEqual(Array(4).fill('stopped'));
    const requests = sent.filter((s) => s.msg.type === 'abort-req');
    expect(requests).toEqual([{ from: 3, to: 0, msg: { type: 'abort-req', reason: "destination full: 'x' (ENOSPC)", code: 6 } }]);
    expect(sent.filter((s) => s.from === 3 && s.msg.type === 'coll')).toEqual([]);
    await until(() => job.exits.every((c) => c !== null));
    expect(job.exits).toEqual([6, 6, 6, 6]);
    expect(job.printed).toEqual(["sim: destination full: 'x' (ENOSPC)\n"]);
  });

  it('on rank 0 a request is the abort itself', async () => {
    const job = simJob(3, 4);
    const outcome = await job.all(async (rt) => {
      if (rt.rank === 0) rt.requestAbort('full here', 6);
      return afterBarriers(rt);
    });
    expect(outcome).toEqual(['stopped', 'stopped', 'stopped']);
    await until(() => job.exits.every((c) => c !== null));
    expect(job.printed).toEqual(['sim: full here\n']);
  });

  it('a reason longer than a message carries (a very long path) is cut, not dropped: the job still aborts', async () => {
    const job = simJob(3, 5);
    const long = `destination full: '/${'d/'.repeat(4000)}f' (ENOSPC)`;
    const outcome = await job.all(async (rt) => {
      if (rt.rank === 2) rt.requestAbort(long, 6);
      return afterBarriers(rt);
    });
    expect(outcome).toEqual(['stopped', 'stopped', 'stopped']);
    await until(() => job.exits.every((c) => c !== null));
    expect(job.exits).toEqual([6, 6, 6]);
    expect(job.printed).toEqual([`sim: ${long.slice(0, 4093)}...\n`]);
  });

  it("the 'abort-req' message arrives typed, or not at all", () => {
    expect(validateBody('abort-req', { reason: 'full', code: 6 })).toEqual({ type: 'abort-req', reason: 'full', code: 6 });
    for (const bad of [{ reason: 'full' }, { reason: 7, code: 6 }, { reason: 'x'.repeat(5000), code: 6 }, { reason: 'full', code: 1.5 }]) {
      expect(validateBody('abort-req', bad), JSON.stringify(bad).slice(0, 40)).toBeNull();
    }
  });
});

describe('engine: a signal to one rank', () => {
  /** Rank `rank` of 3's Stopper, its signals from an emitter, what it sends, prints and exits with. */
  const stopper = (rank: number) => {
    const signals = new EventEmitter();
    const sent: { to: number; msg: Message }[] = [];
    const printed: string[] = [];
    const exits: number[] = [];
    const st = new Stopper({
      tool: 'sim', rank, size: 3,
      send: (to, msg) => void sent.push({ to, msg }),
      describe: (r) => `rank ${r} (host, pid 9)`,
      halt: () => {},
      closeTransport: async () => {},
      exit: (code) => {
        exits.push(code);
        return undefined as never;
      },
      print: (line) => void printed.push(line),
    });
    st.installSignalHandlers(4, signals);
    return { st, signals, sent, printed, exits };
  };

  it('on a rank other than 0: rank 0 is asked to stop the job (it prints the reason and the resume command), nothing waits 300 ms', () => {
    const s = stopper(2);
    s.signals.emit('SIGTERM');
    expect(s.sent).toEqual([{ to: 0, msg: { type: 'abort-req', reason: 'stopped by SIGTERM on rank 2 (host, pid 9)', code: 4 } }]);
    expect(s.printed).toEqual([]);
    expect(s.exits).toEqual([]);
    expect(s.st.holdsCollectives).toBe(true);
  });

  it('a second signal while rank 0 has not answered: the rank stops the job itself at once', async () => {
    const s = stopper(1);
    s.signals.emit('SIGINT');
    s.signals.emit('SIGINT');
    expect(s.sent.map((x) => [x.to, x.msg.type])).toEqual([[0, 'abort-req'], [0, 'abort'], [2, 'abort']]);
    expect(s.printed).toEqual(['sim: stopped by SIGINT on rank 1 (host, pid 9)\n']);
    await until(() => s.exits.length > 0);
    expect(s.exits).toEqual([4]);
  });

  it(`rank 0 silent for ${SIGNAL_FALLBACK_MS} ms: the rank stops the job itself`, async () => {
    vi.useFakeTimers();
    try {
      const s = stopper(2);
      s.signals.emit('SIGTERM');
      vi.advanceTimersByTime(SIGNAL_FALLBACK_MS - 1);
      expect(s.sent).toHaveLength(1);
      vi.advanceTimersByTime(1);
      expect(s.sent.map((x) => [x.to, x.msg.type])).toEqual([[0, 'abort-req'], [0, 'abort'], [1, 'abort']]);
      expect(s.printed).toEqual(['sim: stopped by SIGTERM on rank 2 (host, pid 9)\n']);
    } finally {
      vi.useRealTimers();
    }
  });

  it('on rank 0 the job stops at once; once the job is finishing a signal is ignored', async () => {
    const s = stopper(0);
    s.signals.emit('SIGHUP');
    expect(s.sent.map((x) => [x.to, x.msg.type])).toEqual([[1, 'abort'], [2, 'abort']]);
    expect(s.printed).toEqual(['sim: stopped by SIGHUP\n']);
    await until(() => s.exits.length > 0);
    expect(s.exits).toEqual([4]);
    const f = stopper(2);
    f.st.finishing = true;
    f.signals.emit('SIGTERM');
    expect(f.sent).toEqual([]);
  });
});

describe('engine: liveness', () => {
  // Watches for `ms`, or, given `enough`, until it holds (timers run late on a loaded machine).
  const watch = (heard: (hb: Heartbeat) => void, finishing = false, enough?: (dead: string | null, sent: Message[]) => boolean) => new Promise<{ dead: string | null; sent: Message[] }>((resolve) => {
    const sent: Message[] = [];
    let dead: string | null = null;
    const hb = new Heartbeat({
      rank: 2, size: 5, everyMs: 10, timeoutMs: 60,
      send: (to, msg) => { expect(to).toBe(3); sent.push(msg); },
      describe: (r) => `rank ${r} (host, pid 9)`,
      finishing: () => finishing,
      onDead: (reason) => { dead ??= reason; },
    });
    hb.start();
    const feed = setInterval(() => heard(hb), 10);
    const started = Date.now();
    const check = setInterval(() => {
      if (enough ? !enough(dead, sent) && Date.now() - started < 5000 : Date.now() - started < 250) return;
      clearInterval(check);
      clearInterval(feed);
      hb.stop();
      resolve({ dead, sent });
    }, 10);
  });

  it('a silent predecessor is declared dead, named; heartbeats go to the successor', async () => {
    const { dead, sent } = await watch(() => {}, false, (d, sent) => d !== null && sent.length > 3);
    expect(dead).toMatch(/^rank 1 \(host, pid 9\) stopped responding \(no message for \d+ s, noticed by rank 2\)/);
    expect(sent.length).toBeGreaterThan(3);
    expect(sent.every((m) => m.type === 'hb')).toBe(true);
  });

  it('a predecessor that speaks is alive; another rank speaking does not count', async () => {
    expect((await watch((hb) => hb.heard(1))).dead).toBeNull();
    expect((await watch((hb) => hb.heard(4))).dead).not.toBeNull();
  });

  it('once the job is finishing, silence is not death', async () => {
    expect((await watch(() => {}, true)).dead).toBeNull();
  });
});
