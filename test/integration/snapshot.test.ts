/**
 * Startup snapshots (bin/snapshot.js): with -np N, rank 0 starts the other ranks from the
 * tool's V8 startup snapshot when a valid blob for this node is in the user's private cache
 * directory, and as before otherwise. Real processes: strace shows how each rank was
 * started (its execve), treecmp checks the copy, fsum's signature must not depend on it.
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isRoot, lastJson, repoRoot, run, scratch, type RunResult } from '../helpers/run.js';
import { envWith, fcpBin, tree, treecmp } from '../helpers/trees.js';

const hasStrace = spawnSync('sh', ['-c', 'command -v strace']).status === 0;
const hasMpirun = spawnSync('sh', ['-c', 'command -v mpirun']).status === 0;
const fsumBin = join(repoRoot, 'bin', 'fsum.js');

let traces = 0;

/** Run a tool under strace -f (execve only, into a file in `dir`); its result and the arguments of each rank it started. */
async function traced(dir: string, bin: string, args: string[], env: NodeJS.ProcessEnv): Promise<{ r: RunResult; ranks: string[][] }> {
  const out = join(dir, `strace-${++traces}`);
  const r = await run('strace', ['-f', '-qq', '-s', '512', '-e', 'trace=execve', '-e', 'signal=none', '-o', out, process.execPath, bin, ...args], { env, timeoutMs: 120_000 });
  // N execve("/usr/bin/node", ["/usr/bin/node", "--snapshot-blob", "...", ...], ...) = 0
  const ranks = readFileSync(out, 'utf8').split('\n')
    .filter((l) => /^\d+ +execve\(/.test(l) && l.includes(`"${bin}"`) && !l.includes('<unfinished'))
    .map((l) => [...l.slice(l.indexOf('['), l.indexOf(']') + 1).matchAll(/"((?:[^"\\]|\\.)*)"/g)].map((m) => m[1]!));
  return { r, ranks: ranks.slice(1) }; // the first is rank 0, started by strace
}

describe.skipIf(!hasStrace)('ranks started from the startup snapshot', () => {
  let work: { dir: string; cleanup: () => void };
  let cache: string;
  const src = () => tree('small');
  const env = (extra: Record<string, string> = {}) => envWith({ XDG_CACHE_HOME: cache, ...extra });
  const blobs = () => (existsSync(join(cache, 'fcp', 'snapshot')) ? readdirSync(join(cache, 'fcp', 'snapshot')).filter((n) => n.endsWith('.blob')) : []);

  beforeAll(() => {
    work = scratch('snapshot');
    cache = join(work.dir, 'cache');
    mkdirSync(cache, { mode: 0o700 });
  });
  afterAll(() => work.cleanup());

  it('without a blob: every rank starts from the program, and the copy is exact', async () => {
    const dst = join(work.dir, 'none');
    const { r, ranks } = await traced(work.dir, fcpBin, [src(), dst, '-np', '3'], env());
    expect(r.code, r.stderr).toBe(0);
    expect(ranks).toHaveLength(2);
    for (const argv of ranks) expect(argv).not.toContain('--snapshot-blob');
    expect((await treecmp(src(), dst)).code).toBe(0);
  });

  it('node bin/snapshot.js builds one blob per tool into the private cache, 0600, replaces it on a rebuild, and drops those of installs that are gone', async () => {
    const dir = join(cache, 'fcp', 'snapshot');
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    writeFileSync(join(dir, 'fcp-000000000000-0123456789abcdef0123.blob'), 'old');
    writeFileSync(join(dir, 'fcp-000000000000-root'), join(work.dir, 'no-such-checkout'));
    for (let i = 0; i < 2; i++) {
      const b = await run(process.execPath, [join(repoRoot, 'bin', 'snapshot.js')], { env: env(), timeoutMs: 120_000 });
      expect(b.code, b.stderr).toBe(0);
      expect(blobs().map((n) => n.split('-')[0]).sort()).toEqual(['fcp', 'fsum']);
    }
    expect(readdirSync(dir).filter((n) => n.startsWith('fcp-000000000000-'))).toEqual([]);
    for (const n of blobs()) expect(statSync(join(cache, 'fcp', 'snapshot', n)).mode & 0o777).toBe(0o600);
    expect(statSync(join(cache, 'fcp', 'snapshot')).mode & 0o777).toBe(0o700);
  });

  it('with the blob: rank 0 starts every other rank from it, and the copy is exact', async () => {
    const blob = join(cache, 'fcp', 'snapshot', blobs().find((n) => n.startsWith('fcp-'))!);
    const dst = join(work.dir, 'snap');
    const { r, ranks } = await traced(work.dir, fcpBin, [src(), dst, '-np', '3'], env());
    expect(r.code, r.stderr).toBe(0);
    expect(ranks).toHaveLength(2);
    for (const argv of ranks) expect(argv.slice(1, 3)).toEqual(['--snapshot-blob', blob]);
    const cmp = await treecmp(src(), dst);
    expect(cmp.lines, cmp.output).toEqual([]);
    expect(cmp.code).toBe(0);
  });

  it('fsum gives the same signature whether its ranks start from the snapshot or not', async () => {
    const a = await traced(work.dir, fsumBin, [src(), '-np', '3'], env());
    const b = await traced(work.dir, fsumBin, [src(), '-np', '3'], env({ FCP_NO_SNAPSHOT: '1' }));
    expect(a.r.code, a.r.stderr).toBe(0);
    expect(b.r.code, b.r.stderr).toBe(0);
    expect(a.ranks.every((argv) => argv.includes('--snapshot-blob'))).toBe(true);
    expect(b.ranks.some((argv) => argv.includes('--snapshot-blob'))).toBe(false);
    expect(a.r.stdout.split('\n')[0]).toMatch(/^[0-9a-f]{16,} /);
    expect(a.r.stdout.split('\n')[0]).toBe(b.r.stdout.split('\n')[0]);
  });

  it.runIf(hasMpirun)('ranks that mpirun starts from the blob bin/snapshot.js --path names form one job and copy exactly', async () => {
    const p = await run(process.execPath, [join(repoRoot, 'bin', 'snapshot.js'), '--path', 'fcp'], { env: env() });
    expect(p.code, p.stderr).toBe(0);
    expect(p.stdout.trim()).toBe(join(cache, 'fcp', 'snapshot', blobs().find((n) => n.startsWith('fcp-'))!));
    const dst = join(work.dir, 'mpirun');
    const rdv = join(work.dir, 'rdv');
    mkdirSync(rdv);
    const args = ['--oversubscribe', ...(isRoot ? ['--allow-run-as-root'] : []), '-np', '3',
      process.execPath, '--snapshot-blob', p.stdout.trim(), fcpBin, src(), dst, '--rendezvous', rdv, '--json'];
    const r = await run('mpirun', args, { timeoutMs: 110_000, env: env(), cwd: repoRoot });
    expect(r.code, r.stderr).toBe(0);
    expect(lastJson<{ ranks: unknown[] }>(r.stdout).ranks).toHaveLength(3);
    const cmp = await treecmp(src(), dst);
    expect(cmp.lines, cmp.output).toEqual([]);
    expect(cmp.code).toBe(0);
    const none = await run(process.execPath, [join(repoRoot, 'bin', 'snapshot.js'), '--path', 'fcp'], { env: envWith({ XDG_CACHE_HOME: join(work.dir, 'empty') }) });
    expect(none.code).toBe(1);
    expect(none.stdout).toBe('');
  });

  it('a blob others could write, node options, or FCP_NO_SNAPSHOT=1: not used, and the copy still runs', async () => {
    const dir = join(cache, 'fcp', 'snapshot');
    const blob = join(dir, blobs().find((n) => n.startsWith('fcp-'))!);
    const cases: [string, Record<string, string>, () => void][] = [
      ['off', { FCP_NO_SNAPSHOT: '1' }, () => {}],
      // a V8 flag for every rank: Node would refuse the blob (exit 14)
      ['NODE_OPTIONS', { NODE_OPTIONS: '--max-old-space-size=400' }, () => {}],
      ['blob 0666', {}, () => chmodSync(blob, 0o666)],
      ['directory 0777', {}, () => { chmodSync(blob, 0o600); chmodSync(dir, 0o777); }],
    ];
    for (const [what, extra, prepare] of cases) {
      prepare();
      const dst = join(work.dir, `not-${what.replace(/\W/g, '')}`);
      const { r, ranks } = await traced(work.dir, fcpBin, [src(), dst, '-np', '2'], env(extra));
      expect(r.code, `${what}: ${r.stderr}`).toBe(0);
      expect(ranks, what).toHaveLength(1);
      expect(ranks[0], what).not.toContain('--snapshot-blob');
      expect((await treecmp(src(), dst)).code, what).toBe(0);
    }
    chmodSync(dir, 0o700);
  });
});
