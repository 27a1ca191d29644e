/**
 * The runtime on its own (a synthetic task, no files): real rank processes, real
 * ZeroMQ sockets, real launchers.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { Push } from 'zeromq';
import { Codec } from '../../dist/transport/codec.js';
import { fixture, isRoot, lastJson, node, run, scratch, sleep, start } from '../helpers/run.js';

interface SynthOut {
  items: number; expectedItems: number; hash: number; expectedHash: number; steals: number;
  dropped: Record<string, number>; ranks: { items: number; steals: number }[];
}

const synth = fixture('synthetic-job.js');
const hasMpirun = spawnSync('sh', ['-c', 'command -v mpirun']).status === 0;

function slurmEnv(rank: number, size: number, job: string): NodeJS.ProcessEnv {
  return { ...process.env, SLURM_PROCID: String(rank), SLURM_NTASKS: String(size), SLURM_JOB_ID: job, SLURM_STEP_ID: '0', SLURM_NNODES: '1' };
}

/**
 * `n` synth ranks started by hand with Slurm variables, `gapMs` apart (each command through
 * `wrap`, e.g. strace): every one exits 0, and rank 0 saw every item and every rank.
 */
async function byHand(n: number, gapMs: number, args: string[], job: string, wrap: (r: number, argv: string[]) => [string, string[]] = (_r, argv) => [argv[0]!, argv.slice(1)]): Promise<void> {
  const procs = [];
  for (let r = 0; r < n; r++) {
    const [cmd, argv] = wrap(r, [process.execPath, synth, ...args]);
    procs.push(start(cmd, argv, { env: slurmEnv(r, n, job) }));
    await sleep(gapMs);
  }
  const results = await Promise.all(procs.map((p) => p.done));
  for (const r of results) expect(r.code, r.stderr).toBe(0);
  const out = lastJson<SynthOut>(results[0]!.stdout);
  expect(out.items).toBe(out.expectedItems);
  expect(out.ranks).toHaveLength(n);
}

describe('engine: every item exactly once', () => {
  for (const np of [1, 2, 4, 8, 16]) {
    it(`processes a random work tree exactly once with ${np} rank(s)`, async () => {
      const r = await node(synth, ['--np', String(np), '--seed', String(np * 7 + 3), '--depth', '11', '--json'], { timeoutMs: 60_000 });
      expect(r.code, r.stderr).toBe(0);
      const out = lastJson<SynthOut>(r.stdout);
      expect(out.expectedItems).toBeGreaterThan(1000);
      expect(out.items).toBe(out.expectedItems);
      expect(out.hash).toBe(out.expectedHash);
      expect(out.ranks).toHaveLength(np);
    });
  }
});

describe('engine: work enqueued after a delay (a retry) is waited for', () => {
  for (const np of [1, 3]) {
    it(`every item exactly once with ${np} rank(s) when some items are enqueued up to 300 ms later`, async () => {
      const r = await node(synth, ['--np', String(np), '--seed', '11', '--depth', '8', '--later-ms', '300', '--json'], { timeoutMs: 60_000 });
      expect(r.code, r.stderr).toBe(0);
      const out = lastJson<SynthOut>(r.stdout);
      expect(out.expectedItems).toBeGreaterThan(100);
      expect(out.items).toBe(out.expectedItems);
      expect(out.hash).toBe(out.expectedHash);
    });
  }
});

interface ExchangeOut {
  received: number; sent: number; expected: number; hash: number; expectedHash: number;
  misrouted: number; duplicates: number; corrupt: number; oversized: number; rounds: number[];
}

describe('engine: routed exchange in bounded rounds', () => {
  const exch = fixture('exchange-job.js');
  const check = (out: ExchangeOut, np: number, rounds: number) => {
    expect(out.received).toBe(out.expected);
    expect(out.sent).toBe(out.expected);
    expect(out.hash).toBe(out.expectedHash);
    expect({ misrouted: out.misrouted, duplicates: out.duplicates, corrupt: out.corrupt, oversized: out.oversized })
      .toEqual({ misrouted: 0, duplicates: 0, corrupt: 0, oversized: 0 });
    // every rank took part in every round, the ones with nothing to send included
    expect(out.rounds).toEqual(Array(np).fill(rounds));
  };

  for (const np of [1, 3, 5]) {
    it(`every record exactly once at its rank with ${np} rank(s), one rank sending 25 rounds, the others few or none`, async () => {
      const r = await node(exch, ['--np', String(np), '--counts', '2500,0,7', '--round', '100', '--json'], { timeoutMs: 60_000 });
      expect(r.code, r.stderr).toBe(0);
      const out = lastJson<ExchangeOut>(r.stdout);
      expect(out.expected).toBe(np >= 3 ? 2507 : 2500);
      check(out, np, 25);
    });
  }

  it('every rank sending to one rank (-np 5): rounds bound what each sends, nothing lost', async () => {
    const r = await node(exch, ['--np', '5', '--counts', '300,0,150,1,40', '--round', '64', '--to-last', '--json'], { timeoutMs: 60_000 });
    expect(r.code, r.stderr).toBe(0);
    const out = lastJson<ExchangeOut>(r.stdout);
    expect(out.expected).toBe(491);
    check(out, 5, 5);
  });

  it('nothing to send anywhere: no round at all, and the round size comes from the runtime\'s configuration', async () => {
    const none = await node(exch, ['--np', '3', '--counts', '0,0,0', '--json'], { timeoutMs: 60_000 });
    expect(none.code, none.stderr).toBe(0);
    check(lastJson<ExchangeOut>(none.stdout), 3, 0);
    const hook = await node(exch, ['--np', '3', '--counts', '0,95', '--runtime-round', '10', '--json'], { timeoutMs: 60_000 });
    expect(hook.code, hook.stderr).toBe(0);
    check(lastJson<ExchangeOut>(hook.stdout), 3, 10);
  });
});

describe('engine: work stealing balances load', () => {
  it('8 ranks, all work seeded on rank 0, >=10,000 items of ~100 us: every rank does at least a quarter of the mean', async () => {
    const r = await node(synth, ['--np', '8', '--depth', '12', '--work-us', '100', '--json'], { timeoutMs: 90_000 });
    expect(r.code, r.stderr).toBe(0);
    const out = lastJson<SynthOut>(r.stdout);
    expect(out.items).toBeGreaterThanOrEqual(10_000);
    expect(out.items).toBe(out.expectedItems);
    const mean = out.items / 8;
    for (const rank of out.ranks) expect(rank.items).toBeGreaterThanOrEqual(mean / 4);
    expect(out.steals).toBeGreaterThan(7);
  });
});

describe('engine: termination under delayed delivery', () => {
  it('never concludes with work outstanding across 50 runs with work messages delayed 0-50 ms', async () => {
    const runs = 50;
    let next = 0;
    const failures: string[] = [];
    let stealsSeen = 0;
    // Three jobs at a time keep the 2 cores busy without starving the delay timers.
    const worker = async () => {
      while (next < runs) {
        const i = next++;
        const r = await node(synth, ['--np', String(2 + (i % 3)), '--seed', String(1000 + i), '--depth', '8', '--work-us', '20', '--delay-work-ms', '50', '--json'], { timeoutMs: 60_000 });
        if (r.code !== 0) { failures.push(`run ${i}: exit ${r.code}: ${r.stderr.slice(-300)}`); continue; }
        const out = lastJson<SynthOut>(r.stdout);
        stealsSeen += out.steals;
        if (out.items !== out.expectedItems || out.hash !== out.expectedHash) failures.push(`run ${i}: ${out.items}/${out.expectedItems} items`);
      }
    };
    await Promise.all([worker(), worker(), worker()]);
    expect(failures).toEqual([]);
    expect(stealsSeen).toBeGreaterThan(50); // work really travelled (and was delayed) in these runs
  }, 300_000);
});

describe('engine: launchers', () => {
  it.runIf(hasMpirun)('runs under real mpirun -np 4', async () => {
    const rdv = scratch('mpirun');
    try {
      const args = ['--oversubscribe', ...(isRoot ? ['--allow-run-as-root'] : []), '-np', '4', process.execPath, synth, '--depth', '10', '--rendezvous', rdv.dir, '--json'];
      const r = await run('mpirun', args, { timeoutMs: 90_000 });
      expect(r.code, r.stderr).toBe(0);
      const out = lastJson<SynthOut>(r.stdout);
      expect(out.items).toBe(out.expectedItems);
      expect(out.ranks).toHaveLength(4);
      expect(readdirSync(rdv.dir)).toEqual([]); // the rendezvous folder is removed after startup
    } finally {
      rdv.cleanup();
    }
  });

  it('mpirun is installed (CI installs openmpi-bin)', () => {
    expect(hasMpirun).toBe(true);
  });

  it('runs as separate processes started by hand with Slurm variables, starting seconds apart', async () => {
    const rdv = scratch('slurm');
    try {
      await byHand(3, 700, ['--depth', '10', '--rendezvous', rdv.dir, '--json'], `t${Date.now()}`);
    } finally {
      rdv.cleanup();
    }
  });

  it('ranks started by hand meet through the list rank 0 writes: only rank 0 reads the ranks\' endpoint files', async () => {
    const rdv = scratch('rdv-list');
    const traces = scratch('rdv-strace');
    try {
      await byHand(4, 300, ['--depth', '8', '--rendezvous', rdv.dir, '--json'], `l${Date.now()}`,
        (r, argv) => ['strace', ['-f', '-e', 'trace=openat', '-o', `${traces.dir}/r${r}`, ...argv]]);
      // Reads of endpoint files (their own are written under a temporary name and renamed).
      const readsOf = (r: number) => readFileSync(`${traces.dir}/r${r}`, 'utf8').split('\n')
        .filter((l) => /O_RDONLY/.test(l) && !/ENOENT/.test(l)).map((l) => /\/(rank-\d+|peers|secret)"/.exec(l)?.[1]).filter(Boolean);
      expect(new Set(readsOf(0))).toEqual(new Set(['rank-1', 'rank-2', 'rank-3']));
      for (const r of [1, 2, 3]) expect(new Set(readsOf(r)), `rank ${r}`).toEqual(new Set(['secret', 'peers']));
    } finally {
      rdv.cleanup();
      traces.cleanup();
    }
  });

  it('names the ranks that never show up and exits non-zero', async () => {
    const rdv = scratch('missing');
    try {
      const job = `m${Date.now()}`;
      const procs = [0, 1].map((r) => start(process.execPath, [synth, '--rendezvous', rdv.dir, '--startup-timeout', '2000'], { env: slurmEnv(r, 4, job) }));
      const results = await Promise.all(procs.map((p) => p.done));
      for (const r of results) {
        expect(r.code).not.toBe(0);
        expect(r.stderr).toMatch(/ranks 2-3 never showed up/);
        expect(r.stderr.trim().split('\n')).toHaveLength(1);
      }
    } finally {
      rdv.cleanup();
    }
  });
});

describe('engine: security', () => {
  it('counts and drops garbage and wrong-secret messages from a stranger; the job completes', async () => {
    const eps = scratch('stranger');
    try {
      const p = start(process.execPath, [synth, '--np', '2', '--depth', '10', '--work-us', '300', '--endpoint-file', `${eps.dir}/ep`, '--json']);
      let files: string[] = [];
      for (let i = 0; i < 100 && files.length < 2; i++) {
        await sleep(50);
        files = readdirSync(eps.dir);
      }
      expect(files.length).toBe(2);
      const target = JSON.parse(readFileSync(`${eps.dir}/ep.1`, 'utf8')) as { endpoint: string };
      const stranger = new Push({ linger: 1000 });
      stranger.connect(target.endpoint);
      await stranger.send(Buffer.from('this is not msgpack \xff\xfe'));
      await stranger.send([Buffer.from('two'), Buffer.from('frames')]);
      const forged = new Codec(Buffer.alloc(16, 7), 2).encode(0, { type: 'abort', reason: 'forged', code: 9 });
      await stranger.send(forged);
      // A raw TCP client speaking no ZMTP at all must not disturb the rank either.
      const net = await import('node:net');
      const [host, port] = target.endpoint.replace('tcp://', '').split(':');
      const raw = net.connect(Number(port), host!, () => raw.end(Buffer.alloc(4096, 0xab)));
      raw.on('error', () => {});
      const r = await p.done;
      stranger.close();
      expect(r.code, r.stderr).toBe(0);
      const out = lastJson<SynthOut>(r.stdout);
      expect(out.items).toBe(out.expectedItems);
      expect(out.dropped.malformed).toBeGreaterThanOrEqual(2);
      expect(out.dropped.secret).toBeGreaterThanOrEqual(1);
      expect(r.stderr).not.toMatch(/forged/);
    } finally {
      eps.cleanup();
    }
  });
});

describe('engine: a dead rank stops the job', () => {
  it('kill -9 of one rank (no parent watching): the others exit non-zero within 10 s, naming it', async () => {
    const rdv = scratch('kill');
    const eps = scratch('kill-eps');
    try {
      const job = `k${Date.now()}`;
      const procs = [0, 1, 2].map((r) =>
        start(process.execPath, [synth, '--depth', '13', '--work-us', '500', '--rendezvous', rdv.dir, '--endpoint-file', `${eps.dir}/ep`], { env: slurmEnv(r, 3, job) }));
      for (let i = 0; i < 200 && readdirSync(eps.dir).length < 3; i++) await sleep(50);
      await sleep(1000);
      const t0 = Date.now();
      procs[2]!.child.kill('SIGKILL');
      const [a, b] = await Promise.all([procs[0]!.done, procs[1]!.done]);
      const elapsed = Date.now() - t0;
      expect(elapsed).toBeLessThan(10_000);
      expect(a.code).not.toBe(0);
      expect(b.code).not.toBe(0);
      const said = a.stderr + b.stderr;
      expect(said).toMatch(/rank 2 .*stopped responding/);
      expect(said.trim().split('\n')).toHaveLength(1); // one line for the job, not one per rank
    } finally {
      rdv.cleanup();
      eps.cleanup();
    }
  });

  it('kill -9 of a self-launched rank: rank 0 names it at once and every rank exits', async () => {
    const eps = scratch('kill-self');
    try {
      const p = start(process.execPath, [synth, '--np', '3', '--depth', '13', '--work-us', '500', '--endpoint-file', `${eps.dir}/ep`]);
      for (let i = 0; i < 200 && readdirSync(eps.dir).length < 3; i++) await sleep(50);
      await sleep(500);
      const victim = JSON.parse(readFileSync(`${eps.dir}/ep.1`, 'utf8')) as { pid: number };
      const t0 = Date.now();
      process.kill(victim.pid, 'SIGKILL');
      const r = await p.done;
      expect(Date.now() - t0).toBeLessThan(10_000);
      expect(r.code).toBe(3);
      expect(r.stderr).toMatch(/rank 1 \(pid \d+\) was killed by SIGKILL/);
      const other = JSON.parse(readFileSync(`${eps.dir}/ep.2`, 'utf8')) as { pid: number };
      await sleep(200);
      expect(() => process.kill(other.pid, 0)).toThrow(); // no rank outlives the job
    } finally {
      eps.cleanup();
    }
  });
});
