/**
 * A real, private, single-node Slurm cluster for the tests: its own munged, slurmctld and
 * slurmd, all in the foreground as children of the test process, with every file (munge
 * key and socket, slurm.conf, state, spool, logs, pid files) under one temp directory and
 * the daemons on free TCP ports, so nothing touches a system Slurm or munge the machine
 * may also have.
 *
 * What a container-ish root machine (Debian 12, slurm-wlm 22.05, no systemd, cgroup v1
 * controllers mounted by the host) needs:
 *  - munged refuses a socket directory that others cannot search, and a key that is not
 *    0600 and owned by the daemon's user: the key lives in a 0700 dir, the socket in a
 *    0755 dir of a 0755 base (mkdtemp makes 0700, hence the chmod).
 *  - no cgroup plugins: ProctrackType=proctrack/linuxproc, TaskPlugin=task/none,
 *    JobAcctGatherType=jobacct_gather/none (so no cgroup.conf is read at all).
 *  - SlurmdSpoolDir must exist before slurmd starts (it puts its domain socket there).
 *  - SlurmctldHost=<hostname -s>(127.0.0.1) and NodeAddr=127.0.0.1: no DNS needed;
 *    slurmctld only checks that the short host name matches.
 *  - no accounting, MpiDefault=none (the Debian build's PMIx plugin cannot load; slurmd
 *    logs that and carries on), ReturnToService=2 so the node comes up idle.
 *  - requeued batch jobs wait 120 s (BeginTime) before they may start again: tests that
 *    requeue call `release()` (scontrol update StartTime=now) instead of sleeping; it
 *    still waits ~2 s, since a relaunch in the very second of the requeue is refused.
 *
 * The daemons run under `setpriv --pdeathsig KILL`, so they die with the test process
 * even when it is killed. Should any survive (no setpriv), `startSlurm` first stops those
 * of earlier runs whose owner is gone, by the pids in their pid files, and only after
 * checking that the pid's command line names that run's directory.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { isRoot, sleep, start, type RunResult, pidAlive } from './run.js';

const PREFIX = 'fcp-slurm-';
const DAEMONS = ['munged', 'slurmctld', 'slurmd'] as const;
const TOOLS = ['munged', 'mungekey', 'slurmctld', 'slurmd', 'srun', 'sbatch', 'sinfo', 'squeue', 'scontrol', 'scancel'];

/** A tool's absolute path: PATH first, then the sbin directories a non-login PATH may lack. */
function which(tool: string): string | null {
  const dirs = [...(process.env.PATH ?? '').split(':').filter(Boolean), '/usr/sbin', '/sbin', '/usr/local/sbin'];
  for (const d of dirs) {
    const p = join(d, tool);
    if (spawnSync('test', ['-x', p]).status === 0) return p;
  }
  return null;
}

const bin = (tool: string) => which(tool) ?? tool;

/** Why this machine cannot run the Slurm tests, or null when it can. */
export function slurmUnavailable(): string | null {
  if (!isRoot) return 'the Slurm tests run slurmd/slurmctld as root (SlurmUser=root); this test run is not root';
  const missing = [...TOOLS, 'munge'].filter((t) => which(t) === null);
  if (missing.length) return `not installed: ${missing.join(', ')} (apt-get install slurm-wlm munge; .ci/run does this)`;
  return null;
}

export interface SlurmCluster {
  dir: string;
  conf: string;
  node: string;
  cpus: number;
  partition: string;
  /** Environment for Slurm commands (and what they launch): SLURM_CONF set, no inherited job variables. */
  env: NodeJS.ProcessEnv;
  /** Run a Slurm client command against this cluster. */
  cmd(name: string, args: string[], opts?: { timeoutMs?: number; env?: NodeJS.ProcessEnv; cwd?: string }): Promise<RunResult>;
  /** `scontrol show job ID` as key=value pairs (first occurrence of each key). */
  job(id: string): Promise<Record<string, string>>;
  /** Let a requeued job start now instead of after Slurm's 120 s requeue delay. */
  release(id: string): Promise<void>;
  /** Cancel every job of the test partition and wait (bounded) until the queue is empty. */
  cancelAll(): Promise<void>;
  /** The daemons' logs (tail of each), for failure messages. */
  logs(): string;
  stop(): Promise<void>;
}

/** The environment without any launcher's variables (a test may itself run under srun or mpirun). */
export function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (/^(SLURM_|SBATCH_|SRUN_|SALLOC_|OMPI_|PMIX_|PMI_|MPI_LOCAL|FCP_)/.test(k)) continue;
    env[k] = v;
  }
  return { ...env, ...extra };
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => resolve(port));
    });
  });
}


function cmdline(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ');
  } catch {
    return '';
  }
}

/** Stop the daemons of earlier runs whose test process is gone, and remove their directories. */
export function reapStaleClusters(base = tmpdir()): string[] {
  const reaped: string[] = [];
  for (const name of readdirSync(base)) {
    const m = new RegExp(`^${PREFIX}(\\d+)-`).exec(name);
    if (!m || Number(m[1]) === process.pid || pidAlive(Number(m[1]))) continue;
    const dir = join(base, name);
    for (const d of DAEMONS) {
      let pid = 0;
      try {
        pid = Number(readFileSync(join(dir, 'run', `${d}.pid`), 'utf8').trim());
      } catch { /* never started */ }
      // Only a process whose command line names this run's directory is ours.
      if (pid > 1 && cmdline(pid).includes(dir)) {
        try {
          process.kill(pid, 'SIGKILL');
          reaped.push(`${d} ${pid}`);
        } catch { /* gone meanwhile */ }
      }
    }
    rmSync(dir, { recursive: true, force: true });
  }
  return reaped;
}

/** `slurmd -C`: this machine's node line, e.g. NodeName=vm CPUs=2 Boards=1 SocketsPerBoard=1 ... */
function nodeHardware(): { cpus: number; layout: string } {
  const r = spawnSync(bin('slurmd'), ['-C'], { encoding: 'utf8' });
  const line = (r.stdout ?? '').split('\n').find((l) => l.startsWith('NodeName=')) ?? '';
  const cpus = Number(/\bCPUs=(\d+)/.exec(line)?.[1] ?? 0);
  if (r.status !== 0 || !cpus) throw new Error(`slurmd -C failed (${r.status}): ${r.stdout}${r.stderr}`);
  // Keep the CPU topology as slurmd sees it; memory is declared small on purpose.
  const layout = line.split(/\s+/).filter((kv) => /^(CPUs|Boards|SocketsPerBoard|CoresPerSocket|ThreadsPerCore)=/.test(kv)).join(' ');
  return { cpus, layout };
}

const pdeathsig = spawnSync('setpriv', ['--help'], { encoding: 'utf8' }).stdout?.includes('--pdeathsig') ?? false;

export async function startSlurm(): Promise<SlurmCluster> {
  reapStaleClusters();
  const dir = mkdtempSync(join(tmpdir(), `${PREFIX}${process.pid}-`));
  chmodSync(dir, 0o755); // munged: every directory above its socket must be searchable by all
  for (const d of ['run', 'state', 'log', 'spool']) mkdirSync(join(dir, d), { mode: 0o755 });
  mkdirSync(join(dir, 'munge'), { mode: 0o700 });
  const node = hostname().split('.')[0]!;
  mkdirSync(join(dir, 'spool', node), { mode: 0o755 });
  const key = join(dir, 'munge', 'munge.key');
  const socket = join(dir, 'run', 'munge.socket');
  const conf = join(dir, 'slurm.conf');
  const env = cleanEnv({ SLURM_CONF: conf });
  const children: ChildProcess[] = [];
  const partition = 'fcptest';
  const { cpus, layout } = nodeHardware();

  const daemon = (cmd: string, args: string[], name: string) => {
    const out = openSync(join(dir, 'log', `${name}.stdio`), 'a');
    // setpriv --pdeathsig: the daemon is killed if the test process dies without stop().
    const child = pdeathsig ? spawn('setpriv', ['--pdeathsig', 'KILL', cmd, ...args], { env, stdio: ['ignore', out, out] }) : spawn(cmd, args, { env, stdio: ['ignore', out, out] });
    closeSync(out);
    children.push(child);
    // Foreground daemons write no pid file of their own early enough for the stale
    // reaper; write it ourselves.
    if (child.pid) writeFileSync(join(dir, 'run', `${name}.pid`), `${child.pid}\n`);
    return child;
  };

  const cluster: SlurmCluster = {
    dir, conf, node, cpus, partition, env,
    cmd: (name, args, opts = {}) => command(bin(name), args, opts.timeoutMs ?? 60_000, { env: opts.env ?? env, cwd: opts.cwd }),
    async job(id) {
      const r = await cluster.cmd('scontrol', ['show', 'job', '-o', id]);
      const out: Record<string, string> = {};
      if (r.code !== 0) return out;
      for (const kv of r.stdout.trim().split(/\s+/)) {
        const i = kv.indexOf('=');
        if (i > 0 && !(kv.slice(0, i) in out)) out[kv.slice(0, i)] = kv.slice(i + 1);
      }
      return out;
    },
    async release(id) {
      // Not at once: slurmd revokes the old run's credential with a one-second timestamp,
      // and a relaunch within that same second is refused ("Job N already killed, do not
      // launch batch job": the job fails). Wait for the node to be idle again, then let
      // the clock move on, then release.
      await waitFor(async () => {
        const r = await cluster.cmd('sinfo', ['-h', '-n', node, '-o', '%t'], { timeoutMs: 10_000 });
        return r.code === 0 && r.stdout.trim() === 'idle';
      }, 30_000, `node ${node} to be idle after the requeue`);
      await sleep(2000);
      const r = await cluster.cmd('scontrol', ['update', `JobId=${id}`, 'StartTime=now']);
      if (r.code !== 0) throw new Error(`scontrol update StartTime=now failed: ${r.stderr}`);
    },
    async cancelAll() {
      await cluster.cmd('scancel', ['--partition', partition], { timeoutMs: 10_000 }).catch(() => {});
      const deadline = Date.now() + 15_000;
      while (Date.now() < deadline) {
        const q = await cluster.cmd('squeue', ['-h', '-p', partition, '-o', '%i'], { timeoutMs: 10_000 }).catch(() => null);
        if (!q || q.code !== 0 || q.stdout.trim() === '') break;
        await sleep(250);
      }
    },
    logs() {
      const parts: string[] = [];
      for (const f of existsSync(join(dir, 'log')) ? readdirSync(join(dir, 'log')) : []) {
        const text = readFileSync(join(dir, 'log', f), 'utf8');
        parts.push(`--- ${f} (last 40 lines)\n${text.split('\n').slice(-40).join('\n')}`);
      }
      return parts.join('\n');
    },
    async stop() {
      if (!existsSync(dir)) return;
      // Jobs first (their slurmstepd processes belong to slurmd), then the daemons.
      const ctld = children[1];
      if (ctld && ctld.exitCode === null && ctld.signalCode === null) await cluster.cancelAll();
      for (const child of [...children].reverse()) {
        if (child.exitCode !== null || child.signalCode !== null) continue;
        const gone = new Promise((r) => child.once('exit', r));
        child.kill('SIGTERM');
        const t = setTimeout(() => child.kill('SIGKILL'), 5000);
        await gone;
        clearTimeout(t);
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };

  try {
    const mk = spawnSync(bin('mungekey'), ['--create', `--keyfile=${key}`], { encoding: 'utf8' });
    if (mk.status !== 0) throw new Error(`mungekey failed: ${mk.stderr}`);
    chmodSync(key, 0o600);
    const ports = [await freePort(), await freePort()];
    writeFileSync(conf, [
      'ClusterName=fcptest',
      `SlurmctldHost=${node}(127.0.0.1)`,
      `SlurmctldPort=${ports[0]}`,
      `SlurmdPort=${ports[1]}`,
      'SlurmUser=root',
      'SlurmdUser=root',
      'AuthType=auth/munge',
      'CredType=cred/munge',
      `AuthInfo=socket=${socket}`,
      `StateSaveLocation=${join(dir, 'state')}`,
      `SlurmdSpoolDir=${join(dir, 'spool', '%n')}`,
      `SlurmctldPidFile=${join(dir, 'run', 'slurmctld.real.pid')}`,
      `SlurmdPidFile=${join(dir, 'run', 'slurmd.real.pid')}`,
      `SlurmctldLogFile=${join(dir, 'log', 'slurmctld.log')}`,
      `SlurmdLogFile=${join(dir, 'log', 'slurmd.log')}`,
      'SlurmctldDebug=info',
      'SlurmdDebug=info',
      'ProctrackType=proctrack/linuxproc',
      'TaskPlugin=task/none',
      'JobAcctGatherType=jobacct_gather/none',
      'AccountingStorageType=accounting_storage/none',
      'JobCompType=jobcomp/none',
      'SelectType=select/cons_tres',
      'SelectTypeParameters=CR_CPU',
      'SchedulerType=sched/builtin',
      'MpiDefault=none',
      'ReturnToService=2',
      'KillWait=5',
      'InactiveLimit=0',
      'MinJobAge=600',
      `NodeName=${node} NodeAddr=127.0.0.1 ${layout} RealMemory=1000 State=UNKNOWN`,
      `PartitionName=${partition} Nodes=${node} Default=YES MaxTime=INFINITE State=UP`,
      '',
    ].join('\n'));

    const munged = daemon(bin('munged'), ['--foreground', '--force', `--socket=${socket}`, `--key-file=${key}`,
      `--pid-file=${join(dir, 'run', 'munged.real.pid')}`, `--log-file=${join(dir, 'log', 'munged.log')}`,
      `--seed-file=${join(dir, 'munge', 'munged.seed')}`], 'munged');
    // munge answers once its socket is there.
    await waitFor(async () => {
      if (munged.exitCode !== null) throw new Error(`munged exited with ${munged.exitCode}`);
      return existsSync(socket) && spawnSync(bin('munge'), ['-S', socket, '-n'], { stdio: 'ignore' }).status === 0;
    }, 15_000, 'munged to answer');

    const ctld = daemon(bin('slurmctld'), ['-D', '-i', '-f', conf], 'slurmctld');
    const slurmd = daemon(bin('slurmd'), ['-D', '-f', conf], 'slurmd');
    await waitFor(async () => {
      for (const [n, c] of [['slurmctld', ctld], ['slurmd', slurmd]] as const) {
        if (c.exitCode !== null || c.signalCode !== null) throw new Error(`${n} exited (${c.exitCode ?? c.signalCode})`);
      }
      const r = await cluster.cmd('sinfo', ['-h', '-n', node, '-o', '%t'], { timeoutMs: 10_000 });
      return r.code === 0 && r.stdout.trim() === 'idle';
    }, 60_000, `node ${node} to be idle in sinfo`);
    return cluster;
  } catch (err) {
    const logs = cluster.logs();
    await cluster.stop();
    throw new Error(`could not start the test Slurm cluster: ${(err as Error).message}\n${logs}`);
  }
}

/** Run a command with stdin closed (Slurm clients never read it), killed after `timeoutMs`. */
async function command(cmd: string, args: string[], timeoutMs: number, opts: { env: NodeJS.ProcessEnv; cwd?: string }): Promise<RunResult> {
  const { child, done } = start(cmd, args, opts);
  let timedOut = false;
  const t = setTimeout(() => { timedOut = true; child.kill('SIGKILL'); }, timeoutMs);
  const r = await done;
  clearTimeout(t);
  if (timedOut) throw new Error(`timed out after ${timeoutMs} ms: ${cmd} ${args.join(' ')}\nstdout: ${r.stdout.slice(-2000)}\nstderr: ${r.stderr.slice(-2000)}`);
  return r;
}

async function waitFor(cond: () => Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs / 1000} s waiting for ${what}`);
    await sleep(200);
  }
}
