/**
 * `-np N` without a launcher: this process becomes rank 0 and starts N-1 local ranks
 * running the same command line. The job secret and a private rendezvous directory are
 * handed to them through the environment (readable only by the same user).
 *
 * Children never outlive the parent: each has an IPC channel to it and stops when that
 * channel closes (parent killed, even by SIGKILL). The parent watches its children: one
 * that dies by a signal or fails without telling the job aborts the job, naming it.
 *
 * CommonJS, with CommonJS dependencies only: bin/ requires it first thing, before Node's
 * ES module loader is even set up (that alone takes rank 0 some 20-40 ms), so the other
 * ranks start that much sooner. The program's ES modules import the same instance.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { SECRET_BYTES } from '../transport/secret.cjs';
import { RendezvousTimeout, type PeerInfo } from './peers.cjs';
import { hostname } from 'node:os';

/** IPC messages between rank 0 and its children during startup. */
interface EndpointMsg { t: 'fcp-endpoint'; rank: number; endpoint: string }
interface PeersMsg { t: 'fcp-peers'; peers: PeerInfo[] }

export interface LocalRanks {
  secret: Buffer;
  rendezvousDir: string;
  jobKey: string;
  children: ChildProcess[];
  /** Resolves with each child's exit code (128+signal for a signal) once all have exited. */
  exited: Promise<number[]>;
  /** Who to tell when a child dies (replays deaths that happened before). */
  setDeathHandler(fn: ChildDeath): void;
  /** Rank 0's side of the endpoint exchange over the IPC channels. */
  exchange(endpoint: string, timeoutMs: number): Promise<PeerInfo[]>;
  /** The runtime is up and handles SIGINT/SIGTERM/SIGHUP from now on (until then: see onSignal). */
  handOverSignals(): void;
  cleanup(): void;
}

export type ChildDeath = (rank: number, pid: number, code: number | null, signal: NodeJS.Signals | null) => void;

/**
 * The environment a started rank inherits: this process's, without NODE_EXTRA_CA_CERTS.
 * Node reads and parses every certificate of that file when it starts, before any code
 * runs (Debian's bundle: some 50 ms of CPU, more than half of a bare `node -e 0`), and a
 * rank never makes a TLS connection.
 */
export function rankEnv(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const { NODE_EXTRA_CA_CERTS: _unused, ...rest } = env;
  return rest;
}

/**
 * Start ranks 1..np-1 running this command line. `nodeArgs` go to their node before
 * everything else (bin/ passes `--snapshot-blob FILE`: they start from a startup snapshot).
 */
export function spawnLocalRanks(np: number, nodeArgs: readonly string[] = []): LocalRanks {
  // Deaths before the runtime exists (it sets the handler) are kept and replayed.
  const early: Parameters<ChildDeath>[] = [];
  let onDeath: ChildDeath = (...a) => void early.push(a);
  const secret = randomBytes(SECRET_BYTES);
  const rendezvousDir = mkdtempSync(join(tmpdir(), 'fcp-job-'));
  const jobKey = `local-${process.pid}-${randomBytes(4).toString('hex')}`;
  const children: ChildProcess[] = [];
  const exits: Promise<number>[] = [];
  const peers: PeerInfo[] = [];
  let gotEndpoint = () => {};
  // If this process goes away in any way Node can see, take the children with it.
  const killAll = () => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  };
  process.on('exit', () => {
    killAll();
    rmSync(rendezvousDir, { recursive: true, force: true });
  });
  // Until the runtime installs its own handlers, a signal would kill this process the
  // default way, which runs no 'exit' handler: the children would be orphans. Nothing is
  // saved yet, so stop them and leave (4: stopped by a signal). Set before the first
  // spawn: the signal may come while they are being started.
  const onSignal = (sig: NodeJS.Signals) => {
    killAll();
    process.stderr.write(`${basename(process.argv[1] ?? 'fcp').replace(/\.js$/, '')}: stopped by ${sig} while the ranks were starting\n`);
    process.exit(4);
  };
  const signals: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];
  for (const sig of signals) process.on(sig, onSignal);
  const inherited = rankEnv(process.env);
  for (let r = 1; r < np; r++) {
    const child = spawn(process.execPath, [...nodeArgs, ...process.execArgv, process.argv[1]!, ...process.argv.slice(2)], {
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      env: {
        ...inherited,
        FCP_RANK: String(r),
        FCP_SIZE: String(np),
        FCP_JOB_ID: jobKey,
        FCP_SECRET: secret.toString('hex'),
        FCP_RENDEZVOUS: rendezvousDir,
        FCP_ALL_LOCAL: '1',
      },
    });
    children.push(child);
    child.on('message', (m: unknown) => {
      const msg = m as EndpointMsg;
      if (msg && msg.t === 'fcp-endpoint' && msg.rank === r && typeof msg.endpoint === 'string') {
        peers[r] = { rank: r, endpoint: msg.endpoint, host: hostname(), pid: child.pid ?? -1 };
        gotEndpoint();
      }
    });
    exits.push(
      new Promise<number>((resolve) => {
        child.on('exit', (code, signal) => {
          if (signal || code !== 0) onDeath(r, child.pid ?? -1, code, signal);
          resolve(code ?? 128 + signalNumber(signal));
        });
        child.on('error', () => resolve(127));
      }),
    );
  }
  return {
    secret,
    rendezvousDir,
    jobKey,
    children,
    exited: Promise.all(exits),
    setDeathHandler(fn) {
      onDeath = fn;
      for (const a of early.splice(0)) fn(...a);
    },
    async exchange(endpoint, timeoutMs) {
      peers[0] = { rank: 0, endpoint, host: hostname(), pid: process.pid };
      const deadline = Date.now() + timeoutMs;
      const have = () => peers.filter(Boolean).length;
      while (have() < np) {
        const left = deadline - Date.now();
        if (left <= 0) {
          const missing = [...Array(np).keys()].filter((r) => !peers[r]);
          throw new RendezvousTimeout(missing, timeoutMs, 'the local job');
        }
        await new Promise<void>((resolve) => {
          const t = setTimeout(resolve, left);
          gotEndpoint = () => { clearTimeout(t); resolve(); };
        });
      }
      // A child that died meanwhile is reported by its exit (the death handler), not by send.
      for (const c of children) if (c.connected) c.send({ t: 'fcp-peers', peers } satisfies PeersMsg, (err) => void err);
      return peers.slice();
    },
    handOverSignals() {
      for (const sig of signals) process.off(sig, onSignal);
    },
    cleanup: () => rmSync(rendezvousDir, { recursive: true, force: true }),
  };
}

function signalNumber(sig: NodeJS.Signals | null): number {
  const table: Record<string, number> = { SIGHUP: 1, SIGINT: 2, SIGKILL: 9, SIGSEGV: 11, SIGTERM: 15, SIGABRT: 6 };
  return sig ? table[sig] ?? 0 : 0;
}

/** A self-launched child's side of the endpoint exchange: tell rank 0, wait for everyone's. */
export function childExchange(rank: number, endpoint: string, timeoutMs: number): Promise<PeerInfo[]> {
  return new Promise((resolve, reject) => {
    if (!process.send || !process.connected) {
      reject(new Error('a self-launched rank has no IPC channel to rank 0'));
      return;
    }
    const t = setTimeout(() => reject(new Error(`no word from rank 0 within ${Math.round(timeoutMs / 1000)} s`)), timeoutMs);
    const onMsg = (m: unknown) => {
      const msg = m as PeersMsg;
      if (!msg || msg.t !== 'fcp-peers' || !Array.isArray(msg.peers)) return;
      clearTimeout(t);
      process.off('message', onMsg);
      resolve(msg.peers);
    };
    process.on('message', onMsg);
    // Rank 0 may be gone already: then the channel is closed (ERR_IPC_CHANNEL_CLOSED
    // comes to this callback, not as an uncaught exception) and 'disconnect' stops us.
    process.send({ t: 'fcp-endpoint', rank, endpoint } satisfies EndpointMsg, undefined, {}, (err) => {
      if (!err) return;
      clearTimeout(t);
      // The channel closed under the send: rank 0 is gone and has said why if it could.
      // This rank leaves quietly on the channel's 'disconnect' (watchParent's handler),
      // which can come after this callback: say something only if it never comes.
      if (!process.connected) return leaveQuietly();
      setTimeout(() => reject(new Error('rank 0 went away during startup')), 1000).unref();
    });
  });
}

/** In a self-launched child: stop when the parent's IPC channel closes. */
export function watchParent(onParentGone: () => void): void {
  if (!process.channel) return;
  process.off('disconnect', leaveQuietly);
  process.on('disconnect', onParentGone);
  process.channel.unref();
  if (!process.connected) onParentGone();
}

/** Rank 0 is gone before this rank could join: it has said why; nothing to add. */
const leaveQuietly = () => process.exit(3);

/**
 * In a self-launched child, first thing (bin/): until the program takes over (watchParent),
 * leave quietly when rank 0 goes away, instead of running on alone as an orphan.
 */
export function guardChildStartup(): void {
  if (process.channel) process.on('disconnect', leaveQuietly);
}

/**
 * The most ranks `-np` starts without `--force-np`: four per core, and at least 1024. A
 * typo (`-np 100000`) must not fork a machine's worth of processes.
 */
export function npLimit(): number {
  return Math.max(4 * availableParallelism(), 1024);
}

let earlyRanks: LocalRanks | null = null;

/**
 * Called by bin/ before the rest of the program loads: with `-np N` and no launcher,
 * start the other ranks at once so their startup overlaps rank 0's. Usage errors are
 * still caught later by every rank alike (the children then exit quietly). `nodeArgs`
 * is asked only when ranks are started (see spawnLocalRanks).
 */
export function spawnEarly(argv: string[], noLauncher: boolean, nodeArgs: () => readonly string[] = () => []): void {
  if (!noLauncher || argv.some((a) => a === '-h' || a === '--help' || a === '-V' || a === '--version')) return;
  let np = 1;
  let force = false;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '-np' || a === '--np' || a === '-n') np = Number(argv[i + 1]);
    else if (a.startsWith('--np=') || a.startsWith('-np=')) np = Number(a.split('=')[1]);
    else if (a === '--force-np') force = true;
    else if (a === '--') break;
  }
  // Past the limit without --force-np the tool refuses the command: start nothing.
  if (Number.isInteger(np) && np > 1 && np <= (force ? 4096 : npLimit())) earlyRanks = spawnLocalRanks(np, nodeArgs());
}

/** The ranks spawned early, if they match the job's -np. */
export function takeEarlyRanks(np: number): LocalRanks | null {
  const r = earlyRanks;
  earlyRanks = null;
  if (r && r.children.length !== np - 1) {
    r.handOverSignals(); // the ranks spawned instead take over
    for (const c of r.children) c.kill('SIGKILL');
    r.cleanup();
    return null;
  }
  return r;
}
