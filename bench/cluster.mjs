// Simulated cluster: fcp on K nodes, each a separate client of one parallel file system.
//
//   node bench/cluster.mjs [--nodes 1,2,4] [--ranks-per-node 2] [--cluster-files 2000]
//                          [--meta-us 1000] [--data-us N] [--threads 8] [--reps 3]
//
// Each node is a network namespace with its own mount namespace and its own latfs
// mount of one backing directory on tmpfs, at the same path on every node
// (bench/cluster-lab.mjs): latfs --threads 8 caps the requests a node keeps in flight,
// as Lustre's max_rpcs_in_flight caps a client's, and every request sleeps --meta-us
// (read and write --data-us, by default the same). R ranks per node start together in
// their node's namespaces with the variables `srun -N K -n K*R` would set, meet through
// the rendezvous directory (DST's parent, inside the mount) and talk over the lab
// addresses. Source and destination are both inside the mount.
//
// Cases K = 1, 2, 4 nodes, alternated (bench/lib.mjs compare), each run on fresh mounts,
// medians of --reps. Printed: seconds, entries per second, speed-up over 1 node and the
// scaling efficiency (speed of K nodes ÷ (K × speed of 1 node); the goal: 4 nodes at
// ≥ 3.2× the speed of 1, efficiency ≥ 0.8), treecmp of every run's copy, the CPU all
// processes used (ranks and latfs) against what the machine has, requests per entry,
// the most requests a node's latfs had in flight, each node's share of the files, and
// rank 0's phase times (FCP_TRACE_PHASES): what the time went to.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { pathToFileURL } from 'node:url';
import { repoRoot, toolsDir, compare, median, makeTree, dropDir, parseOpts, shQuote, fmtBytes, srcDirFor } from './lib.mjs';
import { flatCounts } from './latfs.mjs';
import { setupCluster, clusterUnavailable, cpusAvailable, SUBNET } from './cluster-lab.mjs';

const SPEC = {
  nodes: 'string',
  'ranks-per-node': 'number',
  'cluster-files': 'number',
  'meta-us': 'number',
  'data-us': 'number',
  threads: 'number',
  'fcp-args': 'string',
  'baseline-root': 'string',
  reps: 'number',
  only: 'string',
  'no-verify': 'boolean',
  snapshot: 'boolean',
  help: 'boolean',
};

const HELP = `usage: node bench/cluster.mjs [options]   (or: npm run bench -- [options])
  --nodes LIST          node counts K, comma-separated (default 1,2,4); the first is the base
  --ranks-per-node R    fcp ranks on each node (default 2)
  --cluster-files N     files of the mktree small tree (default 2000)
  --meta-us N           latfs round trip of a metadata request, µs (default 1000)
  --data-us N           of a read or write (default: --meta-us)
  --threads N           latfs worker threads per node: the node's requests in flight (default 8)
  --fcp-args "ARGS"     more fcp arguments (split on whitespace), e.g. "--no-checkpoint"
  --baseline-root DIR   also run the fcp of another built checkout (DIR/bin/fcp.js), alternated
                        with this one, and print its tables too
  --reps N              rounds (default 3)
  --only LIST           under npm run bench: runs when the list names "cluster"
  --no-verify           skip the treecmp of each run's copy
  --snapshot            start every rank from its build's startup snapshot, as the README
                        advises under srun/mpirun (node --snapshot-blob "$(node bin/snapshot.js
                        --path fcp)" bin/fcp.js ...); default: node bin/fcp.js, as srun fcp does
Needs root (network and mount namespaces, FUSE), ip, nsenter, unshare, fusermount3.
Backing store /dev/shm/cluster-bench-<pid>, mount point /tmp/cluster-bench-<pid>/mnt on every node,
lab network ${SUBNET}.0/24 in namespaces cluster-<pid>-*.`;

const list = (s) => (s ?? '').split(/[\s,]+/).filter(Boolean);
const line = (cells) => `| ${cells.join(' | ')} |`;
const table = (head, rows) => [line(head), line(head.map((_, i) => (i ? '---:' : '---'))), ...rows.map(line)].join('\n');
const loadavg = () => os.loadavg()[0].toFixed(1);
const fmtUs = (us) => (us >= 1000 && us % 1000 === 0 ? `${us / 1000} ms` : `${us} µs`);

/** rank 0's "[phase] NAME MS ms" lines (FCP_TRACE_PHASES=1): { name: ms }. */
function phasesOf(stderr) {
  const out = {};
  for (const m of stderr.matchAll(/^\[phase\] (.+?) ([\d.]+) ms$/gm)) out[m[1].replace(/ \(.*\)$/, '')] = Number(m[2]);
  const exit = /^\[phase\] exit at ([\d.]+) ms/m.exec(stderr);
  if (exit) out['exit at'] = Number(exit[1]);
  return out;
}

/** The --json summary rank 0 prints (the last JSON line with "ranks"), or null. */
function summaryOf(stdout) {
  const l = stdout.split('\n').filter((x) => x.startsWith('{') && x.includes('"ranks"')).pop();
  return l ? JSON.parse(l) : null;
}

export async function main(argv = process.argv.slice(2), { direct = false } = {}) {
  const { opts, unknown } = parseOpts(argv, SPEC);
  if (opts.help) { console.log(HELP); return; }
  if (unknown.length && direct) console.error(`cluster.mjs: ignoring unknown arguments: ${unknown.join(' ')}`);
  const only = list(opts.only);
  if (only.length && !only.includes('cluster')) {
    console.log('## cluster: skipped (--only does not name cluster)\n');
    return;
  }
  const why = clusterUnavailable();
  if (why) {
    console.log(`## cluster: skipped (${why})\n`);
    return;
  }
  const ks = list(opts.nodes ?? '1,2,4').map(Number);
  if (!ks.length || ks.some((k) => !Number.isInteger(k) || k < 1 || k > 64)) throw new Error(`--nodes: want node counts 1..64, got "${opts.nodes}"`);
  const R = opts['ranks-per-node'] ?? 2;
  const files = opts['cluster-files'] ?? 2000;
  const metaUs = opts['meta-us'] ?? 1000;
  const dataUs = opts['data-us'] ?? metaUs;
  const threads = opts.threads ?? 8;
  const reps = opts.reps ?? 3;
  const fcpArgs = list(opts['fcp-args']);
  if (!(R >= 1) || !(files >= 1) || !(reps >= 1) || !(threads >= 1)) throw new Error('--ranks-per-node, --cluster-files, --threads and --reps must be at least 1');
  const variants = [{ label: '', root: repoRoot }];
  if (opts['baseline-root']) variants.push({ label: 'baseline', root: path.resolve(opts['baseline-root']) });
  for (const v of variants) if (!fs.existsSync(path.join(v.root, 'dist'))) throw new Error(`${v.root}/dist not found: build first (npm run build)`);
  // --snapshot: each build's own blob for this node, as `node bin/snapshot.js --path fcp` prints it.
  for (const v of variants) {
    v.nodeArgs = [];
    if (!opts.snapshot) continue;
    const blob = spawnSync(process.execPath, [path.join(v.root, 'bin/snapshot.js'), '--path', 'fcp'], { encoding: 'utf8' });
    if (blob.status !== 0) throw new Error(`${v.root}: no startup snapshot for this node (npm run build): ${blob.stderr.trim()}`);
    v.nodeArgs = ['--snapshot-blob', blob.stdout.trim()];
  }

  const srcCache = srcDirFor('small', { files });
  console.error(`cluster: tree ${srcCache}`);
  const tree = makeTree('small', srcCache, { files });
  const entries = tree.files + tree.dirs;

  const back = `/dev/shm/cluster-bench-${process.pid}`;
  const base = `/tmp/cluster-bench-${process.pid}`;
  const mnt = path.join(base, 'mnt');
  const work = path.join(base, 'work');
  dropDir(back);
  fs.mkdirSync(back, { recursive: true });
  fs.mkdirSync(work, { recursive: true });
  const cp = spawnSync('cp', ['-a', srcCache, path.join(back, 'src')], { encoding: 'utf8' });
  if (cp.status !== 0) throw new Error(`cp -a ${srcCache}: ${cp.stderr}`);

  const lab = setupCluster(Math.max(...ks));
  const removeAll = () => { lab.teardown(); dropDir(back); dropDir(base); };
  process.on('exit', removeAll);
  const src = path.join(mnt, 'src');
  const dst = path.join(mnt, 'dst');
  const runs = new Map(variants.map((v) => [v.label, new Map(ks.map((k) => [k, []]))])); // per variant and K: one record per timed run
  const verified = [];
  const cpus = cpusAvailable();
  const load0 = loadavg();
  let n = 0;

  try {
    const cases = variants.flatMap((v) => ks.map((k) => ({
      name: `${k} node${k > 1 ? 's' : ''}${v.label ? `, ${v.label}` : ''}`,
      k,
      run: async () => {
        const job = await lab.run(path.join(v.root, 'bin/fcp.js'), [src, dst, '--json', ...fcpArgs], { ranksPerNode: R, workDir: work, env: { FCP_TRACE_PHASES: '1' }, timeoutMs: 600_000, nodeArgs: v.nodeArgs });
        const nodes = await lab.unmount();
        const bad = job.ranks.filter((r) => r.code !== 0);
        if (bad.length) {
          throw new Error(`${k} nodes: ${bad.map((r) => `rank ${r.rank} exit ${r.code ?? r.signal}`).join(', ')}\n` +
            bad.map((r) => r.stderr.trim().split('\n').slice(-5).join('\n')).join('\n'));
        }
        let same = null;
        if (!opts['no-verify']) {
          const c = spawnSync(path.join(toolsDir, 'treecmp'), ['-q', path.join(back, 'src'), path.join(back, 'dst')], { encoding: 'utf8' });
          same = c.status === 0;
          verified.push(same);
          if (!same) console.error(`cluster: ${k} nodes: treecmp found differences:\n${c.stdout}${c.stderr}`);
        }
        const sum = summaryOf(job.ranks[0].stdout);
        const perNodeFiles = Array.from({ length: k }, (_, i) => (sum?.ranks ?? []).slice(i * R, (i + 1) * R).reduce((a, r) => a + r.files, 0));
        const rankCpu = job.ranks.map((r) => r.cpuS);
        runs.get(v.label).get(k).push({
          wallS: job.wallS,
          same,
          rankCpuS: rankCpu.every((c) => c !== null) ? rankCpu.reduce((a, c) => a + c, 0) : null,
          latfsCpuS: nodes.reduce((a, x) => a + (x.cpuS ?? 0), 0),
          requests: nodes.reduce((a, x) => a + flatCounts(x.stats).charged, 0),
          peaks: nodes.map((x) => x.stats.peak_concurrent_sleeps),
          nodeFiles: perNodeFiles,
          phases: phasesOf(job.ranks[0].stderr),
        });
        return job.wallS;
      },
    })));
    await compare(cases, {
      reps,
      prepare: (c) => {
        dropDir(path.join(back, 'dst'));
        for (const f of fs.readdirSync(back)) if (f.startsWith('.fcp-')) dropDir(path.join(back, f));
        lab.mount({ back, mnt, metaUs, dataUs, latfsArgs: ['--threads', String(threads)], workDir: work, count: c.k });
        console.error(`cluster: run ${++n}/${reps * cases.length}: ${c.name} × ${R} ranks`);
      },
    });
  } finally {
    removeAll();
  }

  for (const v of variants) {
    report({ ks, R, runs: runs.get(v.label), entries, tree, metaUs, dataUs, threads, reps, cpus, load0, verified, fcpArgs,
      title: `${v.label ? `${v.label}: fcp of ${v.root}` : variants.length > 1 ? `fcp of ${v.root}` : 'fcp'}${opts.snapshot ? ', ranks started from its startup snapshot' : ''}` });
  }
  const entry = path.relative(repoRoot, process.argv[1] ?? 'bench/cluster.mjs');
  const env = process.env.FCP_TOOLS_DIR ? `FCP_TOOLS_DIR=${shQuote(process.env.FCP_TOOLS_DIR)} ` : '';
  console.log(`Reproduce: \`cd ${shQuote(repoRoot)} && ${[`${env}node`, direct ? entry : 'bench/cluster.mjs', ...argv].map((w, i) => (i ? shQuote(w) : w)).join(' ')}\`\n`);
  // A wrong copy is a bug, not a slow result: it fails the command (and npm run bench).
  if (verified.includes(false)) throw new Error(`${verified.filter((v) => !v).length} of ${verified.length} copies differ from the source (treecmp)`);
}

function report({ ks, R, runs, entries, tree, metaUs, dataUs, threads, reps, cpus, load0, verified, fcpArgs, title }) {
  const k0 = ks[0];
  const t0 = median(runs.get(k0).map((r) => r.wallS));
  console.log(`## cluster: ${title} on simulated nodes (a network and a mount namespace and a latfs mount each)\n`);
  console.log(`mktree small, ${tree.files.toLocaleString('en-US')} files and ${tree.dirs} directories (${fmtBytes(tree.bytes)}); ${R} ranks per node; ` +
    `latfs per node: --meta-us ${metaUs} --data-us ${dataUs} --threads ${threads} (requests in flight per node), fresh mounts every run` +
    `${fcpArgs.length ? `; fcp ${fcpArgs.join(' ')}` : ''}. Medians of ${reps} alternated runs; ${cpus} CPUs, load average ${load0} at the start, ${loadavg()} at the end.\n`);
  const rows = ks.map((k) => {
    const rs = runs.get(k);
    const t = median(rs.map((r) => r.wallS));
    const speedup = t0 / t;
    const ranksCpu = rs.every((r) => r.rankCpuS !== null) ? median(rs.map((r) => r.rankCpuS)) : null;
    const latfsCpu = median(rs.map((r) => r.latfsCpuS));
    const files = rs[0].nodeFiles.map((_, i) => median(rs.map((r) => r.nodeFiles[i])));
    const totalFiles = files.reduce((a, b) => a + b, 0) || 1;
    return [
      `${k} × ${R}`, t.toFixed(2), `${Math.min(...rs.map((r) => r.wallS)).toFixed(2)}–${Math.max(...rs.map((r) => r.wallS)).toFixed(2)}`,
      Math.round(entries / t).toLocaleString('en-US'), `${(speedup * k0).toFixed(2)}×`, (speedup * k0 / k).toFixed(2),
      ranksCpu === null ? '–' : `${ranksCpu.toFixed(1)} + ${latfsCpu.toFixed(1)} (${Math.round((100 * (ranksCpu + latfsCpu)) / (t * cpus))} %)`,
      (median(rs.map((r) => r.requests)) / entries).toFixed(2),
      rs[0].peaks.map((_, i) => median(rs.map((r) => r.peaks[i]))).join(' / '),
      files.map((f) => `${Math.round((100 * f) / totalFiles)} %`).join(' / '),
    ];
  });
  console.log(table(['nodes × ranks', 'median s', 'min–max s', 'entries/s', `speed-up over ${k0} node${k0 > 1 ? 's' : ''}`, 'efficiency',
    `CPU s: ranks + latfs (of ${cpus} CPUs × wall)`, 'charged requests/entry', 'most in flight, per node', 'files copied, per node'], rows));
  const same = verified.length ? (verified.every(Boolean) ? `all ${verified.length} copies identical` : `**${verified.filter((v) => !v).length} of ${verified.length} copies differ**`) : 'skipped';
  const kMax = Math.max(...ks);
  const effMax = (t0 / median(runs.get(kMax).map((r) => r.wallS))) * k0 / kMax;
  console.log(`\nefficiency = speed of K nodes ÷ (K × speed of 1 node)${k0 !== 1 ? ` (here relative to ${k0} nodes)` : ''}; goal 4 nodes ≥ 3.2× (0.80): ${kMax} nodes ${effMax.toFixed(2)}. treecmp after every run: ${same}.\n`);

  // Which part scales: the whole run, the job after startup (rank 0's life less its
  // startup: on a real cluster each node starts its ranks on its own CPUs, here all
  // nodes share this machine's), the walk and the copy phase.
  const partOf = {
    'whole run': (r) => r.wallS * 1000,
    'after startup': (r) => (r.phases['exit at'] ?? NaN) - (r.phases.startup ?? NaN),
    walk: (r) => r.phases.walk ?? NaN,
    copy: (r) => r.phases.copy ?? NaN,
  };
  const partRows = Object.entries(partOf).map(([part, f]) => {
    const base = median(runs.get(k0).map(f));
    return [part, ...ks.map((k) => {
      const t = median(runs.get(k).map(f));
      return Number.isFinite(t) ? `${(t / 1000).toFixed(2)} s, ${((base / t) * k0).toFixed(2)}× (${((base / t) * k0 / k).toFixed(2)})` : '–';
    })];
  });
  console.log(`Scaling by part: median seconds, speed-up over ${k0} node${k0 > 1 ? 's' : ''} (efficiency):\n`);
  console.log(table(['part', ...ks.map((k) => `${k} × ${R}`)], partRows));
  console.log('');

  // Where the time goes: rank 0's phases (medians), per K.
  const names = [...new Set(ks.flatMap((k) => runs.get(k).flatMap((r) => Object.keys(r.phases))))];
  if (names.length) {
    console.log(`Rank 0's phases, ms (FCP_TRACE_PHASES=1; "startup" is process start to the job, all ranks connected; "exit at" its whole life):\n`);
    console.log(table(['phase', ...ks.map((k) => `${k} × ${R}`)], names.map((p) => [p, ...ks.map((k) => {
      const v = runs.get(k).map((r) => r.phases[p]).filter((x) => x !== undefined);
      return v.length ? median(v).toFixed(0) : '–';
    })])));
    console.log('');
  }
}

// Run directly (node bench/cluster.mjs ...) rather than imported by run.mjs.
if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  main(process.argv.slice(2), { direct: true }).catch((e) => { console.error(`cluster.mjs: ${e.stack ?? e}`); process.exitCode = 1; });
}
