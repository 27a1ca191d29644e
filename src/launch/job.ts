/**
 * From command line to a running Runtime, whatever started us: mpirun/mpiexec, srun,
 * `-np N` self-launch, or a single process. Tools call `startJob` and `endJob` and never
 * look at the launcher themselves.
 */
import { dirname, resolve } from 'node:path';
import { EXIT, type Runtime } from '../engine/runtime.js';
import { detectLauncher, type LaunchInfo } from './env.cjs';
import { exitStatusOf } from '../errors.js';
import { startRuntime, type RuntimeConfig } from './start-runtime.js';
import { childExchange, spawnLocalRanks, takeEarlyRanks, watchParent, type LocalRanks } from './self-launch.cjs';

export interface JobOptions {
  tool: string;
  /** Ranks to start when no launcher started us. */
  np: number;
  /** Rendezvous directory (launcher mode); default: beside `besidePath`. */
  rendezvous?: string;
  /** A path whose parent directory is the default rendezvous (the destination). */
  besidePath: string;
  bind?: string;
  startupTimeoutMs?: number;
  heartbeatTimeoutMs?: number;
  delayWorkMs?: number;
  /** test hook: abort messages leave this many ms late */
  delayAbortMs?: number;
  /** records a rank sends per round of a routed exchange (tests: many small rounds) */
  exchangeRound?: number;
  /** work items a queue keeps in memory before spilling */
  queueInMemory?: number;
  /** how an aborting rank leaves (see RuntimeConfig.exit) */
  exit?: (code: number) => never;
  /** told why the job could not start, just before the process exits (e.g. for a --json summary) */
  onStartupFailure?: (reason: string) => void;
}

export interface Job {
  rt: Runtime;
  launch: LaunchInfo;
  local: LocalRanks | null;
}

export async function startJob(opts: JobOptions): Promise<Job> {
  let launch = detectLauncher();
  let local: LocalRanks | null = null;
  let secret: Buffer | undefined;
  let rendezvousDir = opts.rendezvous ?? dirname(resolve(opts.besidePath));
  let rtRef: Runtime | null = null;
  let exchange: RuntimeConfig['exchange'];
  const startupTimeoutMs = opts.startupTimeoutMs ?? 60_000;

  if (launch.kind === 'none' && opts.np > 1) {
    local = takeEarlyRanks(opts.np) ?? spawnLocalRanks(opts.np);
    local.setDeathHandler((rank, pid, code, signal) => {
      const how = signal ? `was killed by ${signal}` : `exited with code ${code}`;
      // A rank that fails on its own tells the job first; give that message a moment.
      setTimeout(() => {
        if (rtRef) void rtRef.abort(`rank ${rank} (pid ${pid}) ${how}`, EXIT.ABORTED);
        else {
          // Still starting: no peer to tell and nothing saved; stop now rather than wait
          // out --startup-timeout (the 'exit' handler takes the other ranks along).
          const reason = `rank ${rank} (pid ${pid}) ${how} during startup`;
          process.stderr.write(`${opts.tool}: ${reason}\n`);
          opts.onStartupFailure?.(reason);
          process.exit(EXIT.ABORTED);
        }
      }, signal ? 0 : 300).unref();
    });
    secret = local.secret;
    rendezvousDir = local.rendezvousDir;
    launch = { kind: 'self', rank: 0, size: opts.np, jobKey: local.jobKey, allLocal: true };
    const ranks = local;
    exchange = (endpoint) => ranks.exchange(endpoint, startupTimeoutMs);
  } else if (launch.kind === 'self') {
    const hex = process.env.FCP_SECRET ?? '';
    if (!/^[0-9a-f]{32}$/.test(hex)) throw new Error('FCP_SECRET is missing or malformed in a self-launched rank');
    secret = Buffer.from(hex, 'hex');
    rendezvousDir = process.env.FCP_RENDEZVOUS ?? rendezvousDir;
    // Before the runtime is up there is nothing to flush: leave quietly (rank 0 said why).
    watchParent(() => (rtRef ? void rtRef.abort('the launching process (rank 0) went away', EXIT.ABORTED, false) : process.exit(EXIT.ABORTED)));
    if (process.send) exchange = (endpoint) => childExchange(launch.rank, endpoint, startupTimeoutMs);
  } else if (launch.kind !== 'none' && opts.np > 1 && opts.np !== launch.size && launch.rank === 0) {
    process.stderr.write(`${opts.tool}: started by ${launch.kind} with ${launch.size} ranks; -np ${opts.np} is ignored\n`);
  }

  const cfg: RuntimeConfig = {
    tool: opts.tool,
    launch,
    rendezvousDir,
    bind: opts.bind,
    secret,
    startupTimeoutMs: opts.startupTimeoutMs,
    heartbeatTimeoutMs: opts.heartbeatTimeoutMs,
    delayWorkMs: opts.delayWorkMs,
    delayAbortMs: opts.delayAbortMs,
    exchangeRound: opts.exchangeRound,
    queueInMemory: opts.queueInMemory,
    exchange,
    exit: opts.exit,
  };
  try {
    rtRef = await startRuntime(cfg);
  } catch (err) {
    local?.cleanup();
    const msg = err instanceof Error ? err.message : String(err);
    process.stderr.write(`${opts.tool}: ${msg}\n`);
    opts.onStartupFailure?.(msg);
    // A rendezvous folder we may not trust is the user's to fix, and nothing was written.
    process.exit(exitStatusOf(err));
  }
  local?.handOverSignals();
  if (local) {
    // Rank 0 of a self-launch leaves last: its ranks have the abort message; give them a
    // moment to flush and exit, then make sure none is left behind.
    const ranks = local;
    rtRef.addAbortHook(async () => {
      await Promise.race([ranks.exited, new Promise((r) => setTimeout(r, 3000))]);
      for (const c of ranks.children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
      await ranks.exited;
      ranks.cleanup();
    });
  }
  return { rt: rtRef, launch, local };
}

/** Close the job on every rank and exit with `code` (rank 0 of a self-launch also waits for its ranks). */
export async function endJob(job: Job, code: number, finalize?: () => void): Promise<never> {
  await job.rt.finish();
  finalize?.();
  if (job.local) {
    const codes = await job.local.exited;
    job.local.cleanup();
    const worst = codes.find((c) => c !== 0);
    if (worst !== undefined && code === 0) code = worst;
  }
  if (process.env.FCP_TRACE_PHASES === '1' && job.rt.rank === 0) {
    process.stderr.write(`[phase] exit at ${performance.now().toFixed(1)} ms (engine phases ${job.rt.phasesRun}, collectives ${job.rt.collectives.started})\n`);
  }
  if (process.env.FCP_TRACE_PHASES === '2') {
    const cpu = process.cpuUsage();
    process.stderr.write(`[phase r${job.rt.rank}] exit at ${performance.now().toFixed(1)} ms cpu ${((cpu.user + cpu.system) / 1000).toFixed(0)} ms in all\n`);
  }
  process.exit(code);
}

