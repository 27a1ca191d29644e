// A simulated cluster, for bench/cluster.mjs and test/integration/cluster.test.ts.
//
// K nodes. Each node is a network namespace with its own mount namespace, in which
// its own latfs mount (bench/latfs.mjs) shows one backing directory at the same path
// on every node: as each node of a cluster is a separate client of the same parallel
// file system, with its own caches and its own cap on requests in flight (latfs
// --threads, as Lustre's max_rpcs_in_flight). The nodes reach each other over a lab
// network: a veth per node, plugged into a bridge in a switch namespace of its own,
// so the machine's own network is never touched:
//
//   cluster-PID-n0: lo, clu0 10.231.78.11 ──veth── p0 ┐
//   cluster-PID-n1: lo, clu0 10.231.78.12 ──veth── p1 ├─ br0 (in cluster-PID-sw)
//   ...                                               ┘
//
// A node's mount namespace is the one its latfs daemon runs in (made by `unshare
// --mount` when latfs starts, so it lives exactly as long as the mount); ranks enter
// it and the node's network namespace with `nsenter -t LATFS_PID --net --mount`, and
// get the environment srun -N K would give them (SLURM_PROCID, SLURM_NTASKS,
// SLURM_NNODES...), so they find each other through the rendezvous directory (by
// default DST's parent, inside the mount) and bind their lab address.
//
// Names carry this process's pid, so a test and a benchmark can run side by side;
// setup removes namespaces that a crashed run (pid gone) left behind.

import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { LatfsMount, latfsBinary } from './latfs.mjs';
import { buildBridgedLab, ip, netnsProbe } from './netns-lab.mjs';

export const SUBNET = '10.231.78';
const IFACE = 'clu0';
const NAME = /^cluster-(\d+)-(sw|n\d+)$/;
const TICKS = 100; // USER_HZ: /proc/PID/stat counts CPU time in 1/100 s on Linux

const pidAlive = (pid) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return e.code === 'EPERM';
  }
};

/** Why this machine cannot run the lab, or null when it can. */
export function clusterUnavailable() {
  if (process.getuid?.() !== 0) return 'network and mount namespaces and FUSE mounts need root';
  for (const cmd of ['ip', 'nsenter', 'unshare', 'fusermount3']) {
    if (spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status !== 0) return `${cmd} not installed (iproute2, util-linux, fuse3; .ci/run installs them)`;
  }
  if (!fs.existsSync('/dev/fuse')) return 'no /dev/fuse';
  return netnsProbe(`cluster-probe-${process.pid}`);
}

/**
 * Delete lab namespaces whose owner process is gone (a crashed run), or all of `pid`'s.
 * What still runs in a crashed run's namespaces (its latfs daemons, each holding its
 * node's mount namespace and mount, and any rank) gets SIGTERM first: latfs then fails
 * what is in flight, unmounts and exits.
 */
function removeNamespaces(pid) {
  for (const line of ip(['netns', 'list'], false).out.split('\n')) {
    const ns = line.split(' ')[0];
    const m = NAME.exec(ns ?? '');
    if (!m) continue;
    const owner = Number(m[1]);
    if (owner !== pid && (pid !== undefined || pidAlive(owner))) continue;
    if (owner !== pid) {
      for (const p of ip(['netns', 'pids', ns], false).out.split('\n').map(Number).filter((x) => x > 0)) {
        try {
          process.kill(p, 'SIGTERM');
        } catch { /* gone */ }
      }
    }
    ip(['netns', 'del', ns], false);
  }
}

// Run in the node's new mount namespace before latfs: it starts with a copy of every
// mount the machine had, other people's FUSE mounts included, and a copy held here would
// keep such a file system alive after its owner unmounted it (and its daemon waiting).
// So drop the copies of FUSE mounts first (lazily: nothing here uses them), then exec.
const DROP_FOREIGN_FUSE = `awk '$3 ~ /^fuse(\\.|$|blk$)/ {print $2}' /proc/self/mounts |
  while read -r m; do umount -l "$(printf '%b' "$m")" 2>/dev/null; done
exec "$@"`;

/** latfs on one node: started inside the node's network namespace, in a mount namespace of its own. */
class NodeLatfs extends LatfsMount {
  constructor(ns, root, mnt, opts) {
    super(root, mnt, opts);
    this.ns = ns;
  }

  spawnLatfs(bin, args, opts) {
    return spawnSync('nsenter', [`--net=/run/netns/${this.ns}`, '--', 'unshare', '--mount', '--propagation', 'private', '--',
      'sh', '-c', DROP_FOREIGN_FUSE, 'sh', bin, ...args], opts);
  }

  /** fusermount3 inside latfs's mount namespace (the mount is invisible anywhere else). */
  fusermount(args, opts) {
    if (!this.pid || !pidAlive(this.pid)) return { status: 0, stdout: '', stderr: '' };
    return spawnSync('nsenter', ['-t', String(this.pid), '--mount', '--', 'fusermount3', ...args], opts);
  }

  /** CPU seconds latfs has used so far (user + system, all its threads). */
  cpuSeconds() {
    try {
      const f = fs.readFileSync(`/proc/${this.pid}/stat`, 'utf8').replace(/^.*\) /s, '').split(' ');
      return (Number(f[11]) + Number(f[12])) / TICKS;
    } catch {
      return null;
    }
  }
}

/** The environment of launcher variables stripped from ours, so a rank sees only what we give it. */
function baseEnv() {
  const env = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (!/^(SLURM_|SBATCH_|SRUN_|SALLOC_|OMPI_|PMIX_|PMI_|MPI_LOCAL|FCP_)/.test(k)) env[k] = v;
  }
  return env;
}

let jobs = 0;

/**
 * The lab's network: `nodes` namespaces on one bridge. Mount latfs on every node with
 * mount(), run a job with run(), unmount() for each node's request counts; teardown()
 * removes everything (also after a failure; safe to call twice).
 */
export function setupCluster(nodes) {
  if (!(nodes >= 1 && nodes <= 200)) throw new Error(`1..200 nodes, not ${nodes}`);
  removeNamespaces(undefined); // leftovers of a crashed run
  const prefix = `cluster-${process.pid}`;
  const sw = `${prefix}-sw`;
  const lab = {
    nodes: Array.from({ length: nodes }, (_, i) => ({ index: i, ns: `${prefix}-n${i}`, addr: `${SUBNET}.${11 + i}`, latfs: null })),

    /**
     * A fresh latfs mount of `back` at `mnt` on each of the first `count` nodes (cold
     * caches, counts of their own). latfsArgs: more latfs options (--threads...).
     *
     * Without caching of "no such name" (--negative-timeout 0) unless latfsArgs says
     * otherwise: a Lustre or GPFS client is coherent (a name another client creates is
     * seen at once, under the directory's lock), but a FUSE client caches a failed lookup
     * for its timeout whatever other clients do. With latfs's default of 1 s, a rank that
     * looked a DST directory up before another node made it cannot create files in it
     * for up to a second (ENOENT), and rendezvous files appear late.
     */
    mount({ back, mnt, metaUs, dataUs = metaUs, latfsArgs = [], workDir, count = nodes }) {
      const bin = latfsBinary();
      if (!latfsArgs.includes('--negative-timeout')) latfsArgs = ['--negative-timeout', '0', ...latfsArgs];
      for (const n of lab.nodes.slice(0, count)) {
        if (n.latfs) throw new Error(`${n.ns}: still mounted`);
        n.latfs = new NodeLatfs(n.ns, back, mnt, {
          bin, metaUs, dataUs, extra: latfsArgs,
          stats: path.join(workDir, `latfs-n${n.index}.json`), pidfile: path.join(workDir, `latfs-n${n.index}.pid`),
        }).mount();
      }
    },

    /** Unmount every node; per node: { stats (latfs's final JSON), cpuS (latfs's CPU seconds) }. */
    async unmount() {
      const out = [];
      for (const n of lab.nodes) {
        if (!n.latfs) continue;
        const cpuS = n.latfs.cpuSeconds();
        out.push({ node: n.index, stats: await n.latfs.unmount(), cpuS });
        n.latfs = null;
      }
      return out;
    },

    /**
     * Start `ranksPerNode` fcp ranks on every mounted node with `args` (and `nodeArgs` to
     * node before the script: a --snapshot-blob), as srun -N K would
     * (rank r on node floor(r / ranksPerNode)), and wait for all. Resolves { wallS, ranks:
     * [{ rank, node, code, signal, stdout, stderr, cpuS }] }; a job past timeoutMs is
     * killed (its ranks then show signal SIGKILL). cpuS (user + system of the rank) needs
     * GNU time (/usr/bin/time), else null.
     */
    run(fcpBin, args, { ranksPerNode, timeoutMs = 600_000, env = {}, workDir, nodeArgs = [] }) {
      const up = lab.nodes.filter((n) => n.latfs);
      if (!up.length) throw new Error('no node is mounted');
      const size = up.length * ranksPerNode;
      const jobId = `${process.pid}-${++jobs}`;
      const gnuTime = fs.existsSync('/usr/bin/time') ? '/usr/bin/time' : null;
      const t0 = process.hrtime.bigint();
      const ranks = [];
      for (const n of up) {
        for (let local = 0; local < ranksPerNode; local++) {
          const rank = n.index * ranksPerNode + local;
          const rankEnv = {
            ...baseEnv(), ...env,
            SLURM_JOB_ID: jobId, SLURM_STEP_ID: '0', SLURM_PROCID: String(rank), SLURM_NTASKS: String(size),
            SLURM_NNODES: String(up.length), SLURM_STEP_NUM_NODES: String(up.length), SLURM_NODEID: String(n.index),
            SLURM_LOCALID: String(local), SLURM_TASKS_PER_NODE: `${ranksPerNode}(x${up.length})`,
          };
          const cpuFile = path.join(workDir, `cpu-${jobId}-${rank}`);
          const cmd = [...(gnuTime ? [gnuTime, '-f', '%U %S', '-o', cpuFile] : []), process.execPath, ...nodeArgs, fcpBin, ...args];
          // nsenter execs in place, so the pid is the rank's (or GNU time's, its parent);
          // detached: its own process group, to kill the whole rank on a timeout.
          const child = spawn('nsenter', ['-t', String(n.latfs.pid), '--net', '--mount', '--', ...cmd],
            { env: rankEnv, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
          let stdout = '';
          let stderr = '';
          child.stdout.setEncoding('utf8').on('data', (d) => { stdout += d; });
          child.stderr.setEncoding('utf8').on('data', (d) => { stderr += d; });
          const done = new Promise((resolve) => {
            child.on('error', (e) => resolve({ code: null, signal: null, error: e }));
            child.on('close', (code, signal) => resolve({ code, signal }));
          }).then((r) => {
            let cpuS = null;
            try {
              const [u, s] = fs.readFileSync(cpuFile, 'utf8').trim().split('\n').pop().split(' ').map(Number);
              cpuS = u + s;
              fs.rmSync(cpuFile, { force: true });
            } catch { /* no GNU time, or the rank was killed */ }
            return { rank, node: n.index, ...r, stdout, stderr, cpuS };
          });
          ranks.push({ child, done });
        }
      }
      const timer = setTimeout(() => {
        for (const { child } of ranks) {
          try {
            process.kill(-child.pid, 'SIGKILL');
          } catch { /* gone */ }
        }
      }, timeoutMs);
      return Promise.all(ranks.map((r) => r.done)).then((results) => {
        clearTimeout(timer);
        return { wallS: Number(process.hrtime.bigint() - t0) / 1e9, ranks: results };
      });
    },

    /** Stop latfs everywhere (SIGTERM: it fails what is in flight and unmounts) and remove the namespaces. */
    teardown() {
      for (const n of lab.nodes) {
        if (n.latfs?.pid && pidAlive(n.latfs.pid)) {
          const r = n.latfs.fusermount(['-u', '-z', n.latfs.mnt], { stdio: 'ignore' });
          if (r.status !== 0) {
            try {
              process.kill(n.latfs.pid, 'SIGTERM');
            } catch { /* gone */ }
          }
        }
        n.latfs = null;
      }
      removeNamespaces(process.pid);
    },
  };

  try {
    buildBridgedLab(sw, lab.nodes.map((n) => ({ ns: n.ns, addr: n.addr, port: `p${n.index}` })), IFACE);
  } catch (e) {
    lab.teardown();
    throw e;
  }
  return lab;
}

/** Number of CPUs this process may run on (nproc), for the CPU-bound check of the results. */
export function cpusAvailable() {
  const r = spawnSync('nproc', [], { encoding: 'utf8' });
  return Number(r.stdout?.trim()) || os.availableParallelism?.() || os.cpus().length;
}
