/**
 * A simulated cluster stays correct: three nodes, each a network namespace with its own
 * mount namespace and its own latfs mount of one backing directory at the same path
 * (bench/cluster-lab.mjs, the setup bench/cluster.mjs times), two fcp ranks on each,
 * started with the variables `srun -N 3 -n 6` would set. Not timed.
 *
 * The copy must be exact (treecmp of the backing store), and every node must have done
 * part of the copy through its own mount: its ranks report files copied (--json), and
 * that node's latfs (not another's) served at least as many timestamp settings, one per
 * copied file. Items are slowed (--test-slow-copy-ms) so that the copy lasts long enough
 * for idle ranks to steal work, and there are about twice as many batches of files as the
 * ranks run at once: with 640 files (10 batches) one node got none in 1 of 6 runs, since
 * a rank runs 4 items at once and so had none waiting to be stolen.
 *
 * Skips, loudly, only where the machine cannot make namespaces or FUSE mounts (not root,
 * a container that forbids them); CI runs as root with fuse3 and iproute2 (.ci/run).
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { clusterUnavailable, setupCluster, type ClusterLab } from '../../bench/cluster-lab.mjs';
import { scratch } from '../helpers/run.js';
import { PROFILES, entryErrors, fcpBin, tree, treecmp } from '../helpers/trees.js';

const NODES = 3;
const RANKS_PER_NODE = 2;
/** The suite's small tree: 47 batches of 64 files, about twice what 6 ranks run at once (4 items each), so there is work to steal. */
const FILES = PROFILES.small!.files!;

const why = clusterUnavailable();
if (why) {
  const line = '#'.repeat(100);
  console.warn(`${line}\n# SKIPPING test/integration/cluster.test.ts: ${why}\n${line}`);
}

describe.skipIf(why !== null)('simulated cluster: 3 nodes, each its own namespaces and latfs mount', () => {
  let lab: ClusterLab | undefined;
  const work = scratch('cluster');
  const base = mkdtempSync('/tmp/cluster-test-');
  const back = join(work.dir, 'back');
  const mnt = join(base, 'mnt');

  beforeAll(() => {
    lab = setupCluster(NODES);
    mkdirSync(back);
    const cp = spawnSync('cp', ['-a', tree('small', PROFILES.small), join(back, 'src')], { encoding: 'utf8' });
    if (cp.status !== 0) throw new Error(`cp -a: ${cp.stderr}`);
  }, 120_000);

  afterAll(() => {
    lab?.teardown(); // unmounts what is still mounted, removes the namespaces
    work.cleanup();
    rmSync(base, { recursive: true, force: true });
  });

  it('6 ranks on 3 nodes copy a tree exactly, and each node copies part of it through its own mount', async () => {
    lab!.mount({ back, mnt, metaUs: 100, latfsArgs: ['--threads', '8'], workDir: base });
    // run() resolves however the ranks end (a job past the timeout is killed); latfs writes
    // its counts at unmount. On a throw, afterAll's teardown unmounts.
    const job = await lab!.run(fcpBin, [join(mnt, 'src'), join(mnt, 'dst'), '--json', '--test-slow-copy-ms', '100'],
      { ranksPerNode: RANKS_PER_NODE, workDir: base, timeoutMs: 60_000 });
    const nodes = await lab!.unmount();
    for (const r of job.ranks) expect(r.code, `rank ${r.rank}: ${r.signal ?? ''} ${r.stderr}`).toBe(0);
    expect(job.ranks.flatMap((r) => entryErrors(r.stderr))).toEqual([]);
    expect(job.ranks.slice(1).map((r) => r.stdout).join('')).toBe(''); // only rank 0 reports

    const cmp = await treecmp(join(back, 'src'), join(back, 'dst'));
    expect(cmp.lines, cmp.output).toEqual([]);
    expect(cmp.differences).toBe(0);
    expect(cmp.code).toBe(0);

    const summary = JSON.parse(job.ranks[0]!.stdout.trim().split('\n').pop()!) as { files: number; ranks: { files: number }[] };
    expect(summary.files).toBe(FILES);
    expect(summary.ranks).toHaveLength(NODES * RANKS_PER_NODE);
    expect(nodes.map((n) => n.node)).toEqual([0, 1, 2]);
    for (const n of nodes) {
      const files = summary.ranks.slice(n.node * RANKS_PER_NODE, (n.node + 1) * RANKS_PER_NODE).reduce((a, r) => a + r.files, 0);
      const utimens = n.stats.setattr?.utimens ?? 0;
      expect(files, `node ${n.node}: files copied by its ranks (${JSON.stringify(summary.ranks)})`).toBeGreaterThan(0);
      // Each copied file's times are set through the copying node's mount: its own latfs counts them.
      expect(utimens, `node ${n.node}: utimens its latfs served`).toBeGreaterThanOrEqual(files);
    }
    // The three mounts together served every copied file's timestamps.
    const all = nodes.reduce((a, n) => a + (n.stats.setattr?.utimens ?? 0), 0);
    expect(all).toBeGreaterThanOrEqual(FILES);
  });
});
