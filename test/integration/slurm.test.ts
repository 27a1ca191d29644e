/**
 * fcp under a real Slurm: a private single-node cluster (munged, slurmctld, slurmd; see
 * test/helpers/slurm.ts) started for this file and stopped afterwards, whatever happens.
 * Ranks are started by srun (not by fcp) and find each other through --rendezvous.
 *
 * Skips, loudly, only when the machine cannot run Slurm at all (not root, or slurm-wlm /
 * munge not installed); .ci/run installs both, so CI always runs these.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { repoRoot, scratch, sleep } from '../helpers/run.js';
import { cleanEnv, slurmUnavailable, startSlurm, type SlurmCluster } from '../helpers/slurm.js';
import { entryErrors, fcpBin, tree, treecmp } from '../helpers/trees.js';

interface Summary { files: number; bytes: number; errors: number; filesSkipped?: number; filesCopied?: number; ranks: { files: number }[] }

const why = slurmUnavailable();
if (why) {
  const line = '#'.repeat(100);
  console.warn(`${line}\n# SKIPPING test/integration/slurm.test.ts: this machine cannot run Slurm: ${why}\n${line}`);
}

/** JSON summary lines fcp printed (one per job: several would mean the ranks did not form one job). */
function summaries(text: string): Summary[] {
  return text.split('\n').filter((l) => l.startsWith('{') && l.includes('"ranks"')).map((l) => JSON.parse(l) as Summary);
}

/** A regular file anywhere in the top `depth` levels of dir (the copy has begun writing files). */
function someFileIn(dir: string, depth = 4): boolean {
  let entries;
  try {
    entries = readdirSync(dir, { withFileTypes: true });
  } catch {
    return false;
  }
  return entries.some((e) => e.isFile() || (depth > 1 && e.isDirectory() && someFileIn(join(dir, e.name), depth - 1)));
}

const example = join(repoRoot, 'examples', 'fcp.sbatch');
const fcpCommand = `${process.execPath} ${fcpBin}`;

describe.skipIf(why !== null)('slurm: a real single-node cluster', () => {
  let slurm: SlurmCluster;
  const work = scratch('slurm');

  beforeAll(async () => {
    slurm = await startSlurm();
  }, 120_000);

  // A failed test must not leave its job holding the node for the next one.
  afterEach(async () => {
    await slurm?.cancelAll();
  }, 30_000);

  afterAll(async () => {
    await slurm?.stop();
    work.cleanup();
  }, 60_000);

  it('srun -n 4 (overcommitted on this machine): the 4 tasks form one fcp job and copy 2000 files exactly', async () => {
    expect(slurm.cpus).toBeLessThan(4); // so --overcommit really matters here
    const src = tree('small', { files: 2000 });
    const dst = join(work.dir, 'srun-out');
    const rdv = join(work.dir, 'srun-rdv');
    mkdirSync(rdv);
    const r = await slurm.cmd('srun', ['-n', '4', '--overcommit', '--kill-on-bad-exit=1', process.execPath, fcpBin, src, dst, '--rendezvous', rdv, '--json'],
      { timeoutMs: 110_000, cwd: repoRoot });
    expect(r.code, `${r.stderr}\n${slurm.logs()}`).toBe(0);
    expect(entryErrors(r.stderr), r.stderr).toEqual([]);
    // One summary, from rank 0, with 4 ranks: had the tasks not recognised srun's
    // variables, each would have copied alone and printed its own 1-rank summary.
    const sums = summaries(r.stdout);
    expect(sums, r.stdout).toHaveLength(1);
    expect(sums[0]!.ranks).toHaveLength(4);
    expect(sums[0]!.files).toBe(2000);
    expect(sums[0]!.ranks.reduce((a, x) => a + x.files, 0)).toBe(2000);
    const cmp = await treecmp(src, dst);
    expect(cmp.lines, cmp.output).toEqual([]);
    expect(cmp.differences).toBe(0);
    expect(cmp.code).toBe(0);
    expect(cmp.entries).toBeGreaterThan(2000);
    // Rank 0 removes the job's rendezvous folder once everyone has connected.
    expect(readdirSync(rdv)).toEqual([]);
  });

  it('sbatch --wait examples/fcp.sbatch: the example job script copies a tree and logs it', async () => {
    const src = tree('small', { files: 2000 });
    const dst = join(work.dir, 'sbatch-out');
    const rdv = join(work.dir, 'sbatch-rdv');
    const log = join(work.dir, 'sbatch-%j.out');
    mkdirSync(rdv);
    const env = cleanEnv({ SLURM_CONF: slurm.conf, FCP: fcpCommand, FCP_RANKS_PER_NODE: '4', FCP_RDV: rdv });
    // The script asks for 2 whole nodes; the command line fits it to this cluster, and
    // 4 ranks on this 2-CPU node exercise its --overcommit.
    const r = await slurm.cmd('sbatch', ['--wait', '--parsable', '-N', '1', '--time=10', `--output=${log}`, example, src, dst, '--json'],
      { timeoutMs: 110_000, env, cwd: work.dir }).catch(async (err) => {
      const q = await slurm.cmd('scontrol', ['show', 'job']);
      throw new Error(`${(err as Error).message}\n${q.stdout}\n${slurm.logs()}`);
    });
    const id = r.stdout.trim().split(';')[0]!;
    const out = existsSync(log.replace('%j', id)) ? readFileSync(log.replace('%j', id), 'utf8') : '(no job output)';
    expect(r.code, `${r.stderr}\n${out}\n${slurm.logs()}`).toBe(0);
    expect(out).toMatch(new RegExp(`^fcp\\.sbatch: job ${id} run 1 on 1 node\\(s\\), 4 ranks`, 'm'));
    expect(out).toContain('fcp.sbatch: fcp exited with 0');
    expect(out).not.toContain('requeueing');
    const sums = summaries(out);
    expect(sums, out).toHaveLength(1);
    expect(sums[0]!.ranks).toHaveLength(4);
    expect(sums[0]!.files).toBe(2000);
    expect(sums[0]!.errors).toBe(0);
    const cmp = await treecmp(src, dst);
    expect(cmp.lines, cmp.output).toEqual([]);
    expect(cmp.differences).toBe(0);
    const job = await slurm.job(id);
    expect(job.JobState).toBe('COMPLETED');
    expect(job.Restarts).toBe('0');
  });

  it('SIGTERM mid-copy (as --signal sends before the time limit): fcp exits 4, the job requeues itself and the next run resumes and finishes the copy', async () => {
    const src = tree('small', { files: 20_000 });
    const dst = join(work.dir, 'requeue-out');
    const rdv = join(work.dir, 'requeue-rdv');
    const log = join(work.dir, 'requeue-%j.out');
    mkdirSync(rdv);
    // --test-slow-copy-ms (hidden): each copy item waits 200 ms, so the copy surely still runs when
    // Slurm's signal arrives (copying 20,000 files here can take less than that latency; a rank
    // runs 12 items at once, so 30 ms let the ~300 items finish within the signal's latency).
    const env = cleanEnv({ SLURM_CONF: slurm.conf, FCP: fcpCommand, FCP_RANKS_PER_NODE: '4', FCP_RDV: rdv, MAX_RESTARTS: '3' });
    const sub = await slurm.cmd('sbatch', ['--parsable', '-N', '1', '--time=10', `--output=${log}`, example, src, dst, '--json', '--test-slow-copy-ms', '200'],
      { env, cwd: work.dir });
    expect(sub.code, sub.stderr).toBe(0);
    const id = sub.stdout.trim().split(';')[0]!;
    const outFile = log.replace('%j', id);
    const output = () => (existsSync(outFile) ? readFileSync(outFile, 'utf8') : '');

    // Signal the job's steps (not the batch shell), as --signal=TERM@120 does, once the
    // copy is under way: the first regular files have arrived.
    let deadline = Date.now() + 60_000;
    while (!someFileIn(dst)) {
      if (Date.now() > deadline) throw new Error(`the copy never started\n${output()}\n${slurm.logs()}`);
      await sleep(20);
    }
    const sig = await slurm.cmd('scancel', ['--signal=TERM', id]);
    expect(sig.code, sig.stderr).toBe(0);

    // The script sees exit 4 and requeues: the job is pending again with one restart.
    deadline = Date.now() + 60_000;
    let job = await slurm.job(id);
    while (!(job.Restarts === '1' && job.JobState === 'PENDING')) {
      if (Date.now() > deadline || job.JobState === 'COMPLETED' || job.JobState === 'FAILED') {
        throw new Error(`job not requeued: ${JSON.stringify(job)}\n${output()}\n${slurm.logs()}`);
      }
      await sleep(100);
      job = await slurm.job(id);
    }
    const first = output();
    expect(first).toContain('fcp.sbatch: fcp exited with 4');
    expect(first).toMatch(/^fcp: stopped by SIGTERM/m);
    expect(first).toContain(`fcp.sbatch: requeueing job ${id} to resume`);
    expect(summaries(first)).toEqual([]); // it did not finish
    await slurm.release(id); // skip Slurm's 120 s requeue delay

    deadline = Date.now() + 100_000;
    while (!['COMPLETED', 'FAILED', 'CANCELLED', 'TIMEOUT'].includes(job.JobState ?? '')) {
      if (Date.now() > deadline) throw new Error(`job did not finish: ${JSON.stringify(job)}\n${output()}`);
      await sleep(200);
      job = await slurm.job(id);
    }
    const out = output();
    expect(job.JobState, `${JSON.stringify(job)}\n${out}\n${slurm.logs()}`).toBe('COMPLETED');
    expect(job.Restarts).toBe('1');
    expect(out).toMatch(new RegExp(`^fcp\\.sbatch: job ${id} run 2 on 1 node\\(s\\), 4 ranks`, 'm'));
    expect(out.split('fcp.sbatch: fcp exited with 0').length - 1).toBe(1);
    const sums = summaries(out);
    expect(sums, out).toHaveLength(1);
    expect(sums[0]!.ranks).toHaveLength(4);
    expect(sums[0]!.errors).toBe(0);
    // --resume: the second run skipped what the first one had finished, and copied the rest.
    expect(sums[0]!.filesSkipped, out).toBeGreaterThan(0);
    expect(sums[0]!.filesCopied, out).toBeGreaterThan(0);
    expect(sums[0]!.filesSkipped! + sums[0]!.filesCopied!).toBe(20_000);
    const cmp = await treecmp(src, dst);
    expect(cmp.lines, cmp.output).toEqual([]);
    expect(cmp.differences).toBe(0);
    expect(cmp.code).toBe(0);
  }, 200_000);
});
