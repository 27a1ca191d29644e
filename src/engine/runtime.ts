/**
 * The runtime a tool runs on: rank identity, transport, rendezvous, phases of
 * work-stealing work, collectives, progress, liveness and abort. It knows nothing of
 * files; tools (copy, sum) build on `runPhase` and the collectives.
 *
 * Liveness: every rank sends a heartbeat to its ring successor each `heartbeatMs` and
 * watches its predecessor; any message counts as a sign of life. A predecessor silent
 * for `heartbeatTimeoutMs` is declared dead and the job is aborted naming it, so a
 * killed rank or a lost host stops the job within seconds instead of hanging it.
 *
 * Abort: the rank that aborts tells every peer, prints the reason once, runs the abort
 * hooks (tools flush checkpoints there) and exits with the given code; ranks that
 * receive an abort do the same silently.
 */
import type { LaunchInfo } from '../launch/env.cjs';
import { chooseBindAddress, removeJobDir, rendezvous } from '../launch/rendezvous.js';
import type { PeerInfo } from '../launch/peers.cjs';
import { MessageTooLarge, type DropCounts, type Envelope } from '../transport/codec.js';
import { dropCountsOf, emptyDrops } from '../transport/drop-report.js';
import { isCounters, type Counters, type LimitsMsg, type Message } from '../transport/messages.js';
import { ZmqTransport } from '../transport/zmq-transport.js';
import { Collectives, treeChildren, treeParent } from './collectives.js';
import { PhaseRunner } from './phase.js';
import { ProgressReducer, addCounters } from './progress.js';
import type { PhaseResult, Task } from './task.js';
import type { Token } from './termination.js';
import { SqliteSpill } from './spill.js';

export interface RuntimeConfig {
  /** Tool name used in messages ("fcp", "fsum"). */
  tool: string;
  launch: LaunchInfo;
  /** Where ranks publish their endpoints (a directory every rank can reach). */
  rendezvousDir: string;
  /** Address or interface name to bind; default: loopback when all ranks are local, else the first non-internal IPv4. */
  bind?: string;
  /** Secret handed over by the launcher (self-launch). */
  secret?: Buffer;
  startupTimeoutMs?: number;
  heartbeatMs?: number;
  heartbeatTimeoutMs?: number;
  progressIntervalMs?: number;
  /** Test hook: delay work messages by a random 0..N ms. */
  delayWorkMs?: number;
  /** Work items a rank's queue keeps in memory before spilling to a temporary SQLite file. */
  queueInMemory?: number;
  /** Directory for spill files (default: the system temp dir). */
  spillDir?: string;
  /**
   * Exchange endpoints some other way than the rendezvous directory (self-launch uses the
   * IPC channel between rank 0 and its children: no polling of files).
   */
  exchange?: (endpoint: string) => Promise<PeerInfo[]>;
  /**
   * How an aborting rank leaves (default process.exit). process.exit waits for the libuv
   * thread pool at teardown, forever if a thread is blocked in a hung file system; tools
   * pass the native addon's exitNow (_exit), so a stop always ends the process.
   */
  exit?: (code: number) => never;
}

/** Job-wide rates (rate limits), per second (0: unlimited), shared evenly by `ranks` ranks. */
export interface Rates { bytesPerSecond: number; opsPerSecond: number; ranks: number }

/**
 * A number each rank adds to its progress reports (not to the phase's counters): rank 0
 * gets the sum over the ranks every progress interval.
 */
export interface ProgressGauge { name: string; sample: () => number; onTotal: (sum: number) => void; onPhase?: () => void }

/** Exit codes shared by every tool. */
export const EXIT = { OK: 0, ENTRIES_FAILED: 1, USAGE: 2, ABORTED: 3, INTERRUPTED: 4, DELETE_REFUSED: 5, DESTINATION_FULL: 6 } as const;

export class JobAborted extends Error {
  constructor(readonly reason: string, readonly code: number) {
    super(reason);
  }
}

type AbortHook = (reason: string, code: number) => void | Promise<void>;

export class Runtime {
  readonly rank: number;
  readonly size: number;
  readonly collectives: Collectives;
  private readonly transport: ZmqTransport | null;
  private peers: PeerInfo[] = [];
  /** This rank's receiving endpoint (tcp://addr:port), or null in a one-rank job. */
  endpoint: string | null = null;
  private phaseNo = 0;
  private current: PhaseRunner<unknown> | null = null;
  private readonly earlyTokens = new Map<number, Token>();
  private readonly progress: ProgressReducer;
  private progressCb: ((phase: number, total: Counters) => void) | null = null;
  private readonly hooks: AbortHook[] = [];
  private aborting = false;
  private lastSeenPred = Date.now();
  private lastCheck = Date.now();
  private hbTimer: NodeJS.Timeout | null = null;
  private readonly byes = new Set<number>();
  private byeAcked = false;
  /** finish() waiting for byes: told of each one (see untilBye). */
  private byeArrived: (() => void) | null = null;
  private finishing = false;
  private limitsSeq = 0;
  private limitsCb: ((rates: Rates) => void) | null = null;
  private unheardRates: Rates | null = null;
  private gauge: ProgressGauge | null = null;

  private constructor(private readonly cfg: RuntimeConfig, transport: ZmqTransport | null) {
    this.rank = cfg.launch.rank;
    this.size = cfg.launch.size;
    this.transport = transport;
    const send = (to: number, msg: Message) => this.send(to, msg);
    this.collectives = new Collectives(this.rank, this.size, send);
    this.progress = new ProgressReducer(this.rank, this.size, send);
  }

  /** Bind, rendezvous, connect and pass a first barrier; every rank returns with all peers reachable. */
  static async start(cfg: RuntimeConfig): Promise<Runtime> {
    const { rank, size } = cfg.launch;
    if (size === 1) {
      const rt = new Runtime(cfg, null);
      rt.installSignalHandlers();
      return rt;
    }
    const bindAddress = chooseBindAddress(cfg.bind, cfg.launch.allLocal);
    const { transport, endpoint } = await ZmqTransport.bind({ rank, size, bindAddress, delayWorkMs: cfg.delayWorkMs });
    const rt = new Runtime(cfg, transport);
    rt.endpoint = endpoint;
    rt.installSignalHandlers();
    const startupTimeoutMs = cfg.startupTimeoutMs ?? 60_000;
    let rdv;
    try {
      rdv = cfg.exchange && cfg.secret
        ? { secret: cfg.secret, peers: await cfg.exchange(endpoint), jobDir: null }
        : await rendezvous({
          dir: cfg.rendezvousDir, jobKey: cfg.launch.jobKey ?? 'default', rank, size, endpoint,
          timeoutMs: startupTimeoutMs, secret: cfg.secret,
        });
    } catch (err) {
      transport.close(0);
      throw err;
    }
    rt.peers = rdv.peers;
    transport.start(rdv.peers.map((p) => p.endpoint), rdv.secret, (env) => rt.dispatch(env));
    // Everyone must hear everyone's first message before work starts: a barrier through
    // the tree proves the connections work, within the startup timeout.
    const timer = setTimeout(() => {
      void rt.abort(`could not reach every rank over TCP within ${Math.round(startupTimeoutMs / 1000)} s (bound to ${bindAddress}; see --bind)`, EXIT.ABORTED);
    }, startupTimeoutMs);
    await rt.collectives.barrier();
    clearTimeout(timer);
    if (rank === 0 && rdv.jobDir) await removeJobDir(rdv.jobDir).catch(() => {});
    else rdv.jobDir?.close();
    rt.startHeartbeats();
    return rt;
  }

  /** Describe a rank for messages: "rank 3 (host, pid 1234)". */
  describe(r: number): string {
    const p = this.peers[r];
    return p ? `rank ${r} (${p.host}, pid ${p.pid})` : `rank ${r}`;
  }

  /** Messages dropped on arrival (strangers, wrong secret, malformed) by reason, and connections refused (`address`). */
  get dropped(): Record<string, number> {
    return this.transport ? this.transport.dropped : {};
  }

  /** Collective: the dropped counts summed over every rank (see drop-report.ts). */
  async droppedEverywhere(): Promise<DropCounts> {
    return dropCountsOf(await this.allreduceCounters(this.transport ? this.transport.dropped : emptyDrops()));
  }

  onProgress(cb: (phase: number, total: Counters) => void, intervalMs = this.cfg.progressIntervalMs ?? 1000): void {
    this.progressCb = cb;
    const local = () => {
      const c = this.current?.counters ?? null;
      return c && this.gauge ? { ...c, [this.gauge.name]: this.gauge.sample() } : c;
    };
    this.progress.start(intervalMs, () => this.phaseNo, local, (p, t) => {
      this.progressCb?.(p, t);
      this.gauge?.onTotal(t[this.gauge.name] ?? 0);
    });
  }

  /** Add a gauge to the progress reports (one at a time; null removes it). */
  setProgressGauge(g: ProgressGauge | null): void {
    this.gauge = g;
  }

  /**
   * Rank 0: give every rank new job-wide rates (rate limits); they travel down the tree
   * and reach each rank's onRates callback. Asynchronous: nobody waits for anybody.
   */
  announceRates(rates: Rates): void {
    if (this.rank !== 0) throw new Error('only rank 0 announces rates');
    this.forwardRates({ type: 'limits', seq: ++this.limitsSeq, ...rates });
  }

  /** Called with the rates rank 0 announces (on ranks other than 0); the newest that came before, at once. */
  onRates(cb: ((rates: Rates) => void) | null): void {
    this.limitsCb = cb;
    if (cb && this.unheardRates) cb(this.unheardRates);
    this.unheardRates = null;
  }

  private forwardRates(msg: LimitsMsg): void {
    for (const c of treeChildren(this.rank, this.size)) this.send(c, msg);
  }

  /** Abort hooks run before exit (flush a checkpoint, remove temporary files...). */
  addAbortHook(hook: AbortHook): void {
    this.hooks.push(hook);
  }

  /**
   * Run one phase of `task` on every rank until no work is left anywhere, then sum the
   * counters. Every rank must call runPhase for the same tasks in the same order.
   */
  async runPhase<I>(task: Task<I>): Promise<PhaseResult> {
    const phase = ++this.phaseNo;
    this.gauge?.onPhase?.();
    const runner = new PhaseRunner<I>(phase, task, {
      rank: this.rank,
      size: this.size,
      send: (to, msg) => this.send(to, msg),
      fail: (reason) => void this.abort(reason, EXIT.ABORTED),
      queueInMemory: this.cfg.queueInMemory ?? 100_000,
      makeSpill: () => new SqliteSpill(this.cfg.spillDir),
    }, this.earlyTokens.get(phase) ?? null);
    this.earlyTokens.delete(phase);
    this.current = runner as PhaseRunner<unknown>;
    const local = await runner.run();
    const perRank = await this.collectives.allgather<Counters>({ ...local }, isCounters);
    this.current = null;
    const total: Counters = {};
    for (const c of perRank) addCounters(total, c);
    return { local: { ...local }, total, perRank };
  }

  /** Sum counter records over all ranks; every rank gets the total. */
  allreduceCounters(c: Counters): Promise<Counters> {
    return this.collectives.allreduce<Counters>({ ...c }, (a, b) => addCounters(a, b), isCounters);
  }

  barrier(): Promise<void> {
    return this.collectives.barrier();
  }

  /** End of job: a last barrier so nobody closes sockets a peer still needs, then close. */
  /**
   * The job's work is done (its summary may be printed): a signal from now on does not
   * turn a finished job into a stopped one; the teardown below is bounded.
   */
  markFinishing(): void {
    this.finishing = true;
  }

  async finish(): Promise<void> {
    this.finishing = true;
    await this.barrier();
    // The barrier's last messages may still sit in ZeroMQ's queues, and process.exit does
    // not wait for them: a rank leaves only once its tree children said they got theirs
    // (bounded wait: a child that is gone does not hold its parent).
    const children = treeChildren(this.rank, this.size);
    // From here on a silent peer is one that has finished, not one that died.
    this.finishing = true;
    if (this.rank !== 0) this.send(treeParent(this.rank), { type: 'bye' });
    await this.untilBye(() => children.every((c) => this.byes.has(c)), 3000);
    // Leave once the parent answered our 'bye' (it is then on the wire and read): exiting
    // earlier could drop it with the process. Bounded: a parent that already left (its
    // answer lost at its own exit) does not hold us long.
    if (this.transport && this.rank !== 0) await this.untilBye(() => this.byeAcked, 200);
    this.stopTimers();
    if (this.transport) {
      await this.transport.flush(2000);
      this.transport.close(1000);
    }
  }

  /**
   * Resolve when `done()` holds, checked as each 'bye' arrives (not by polling: with many
   * ranks on few cores, a 1 ms timer loop in every waiting rank takes CPU from the ranks
   * still finishing), or after `ms`.
   */
  private untilBye(done: () => boolean, ms: number): Promise<void> {
    if (done()) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.byeArrived = null;
        resolve();
      }, ms);
      this.byeArrived = () => {
        if (!done()) return;
        clearTimeout(timer);
        this.byeArrived = null;
        resolve();
      };
    });
  }

  /**
   * Stop the whole job: tell every peer, print the reason once, run hooks, exit.
   * Resolves never (the process exits).
   */
  async abort(reason: string, code: number, origin = true): Promise<never> {
    if (this.aborting) return new Promise<never>(() => {});
    this.aborting = true;
    if (origin) {
      for (let r = 0; r < this.size; r++) if (r !== this.rank) this.send(r, { type: 'abort', reason, code });
      process.stderr.write(`${this.cfg.tool}: ${reason}\n`);
    }
    this.collectives.fail(new JobAborted(reason, code));
    this.stopTimers();
    const hooks = Promise.all(this.hooks.map(async (h) => { try { await h(reason, code); } catch { /* keep going */ } }));
    await Promise.race([hooks, new Promise((r) => setTimeout(r, 5000))]);
    if (this.transport) {
      await this.transport.flush(500);
      this.transport.close(300);
    }
    const exit: (code: number) => never = this.cfg.exit ?? process.exit;
    return exit(code);
  }

  /**
   * Stop the job as SIGTERM does (every rank saves its progress, exit 4), unless it is
   * already ending: --time-limit, and a signal.
   */
  stop(reason: string): void {
    if (this.finishing || this.aborting) return;
    void this.abort(reason, EXIT.INTERRUPTED);
  }

  private send(to: number, msg: Message): void {
    try {
      this.transport?.send(to, msg);
    } catch (err) {
      // A message the transport cannot carry would leave its collective waiting forever.
      if (!(err instanceof MessageTooLarge)) throw err;
      void this.abort(`cannot send to ${this.describe(to)}: ${err.message}`, EXIT.ABORTED);
    }
  }

  private dispatch({ from, msg }: Envelope): void {
    if (from === (this.rank - 1 + this.size) % this.size) this.lastSeenPred = Date.now();
    const cur = this.current;
    switch (msg.type) {
      case 'hello':
      case 'hb':
        return;
      case 'bye':
        // From a tree child: it is leaving; answer, so it need not guess when its word
        // reached us. From the tree parent: that answer.
        if (this.rank !== 0 && from === treeParent(this.rank)) this.byeAcked = true;
        else {
          this.byes.add(from);
          this.send(from, { type: 'bye' });
        }
        this.byeArrived?.();
        return;
      case 'coll':
        return this.collectives.onMessage(from, msg);
      case 'progress':
        return this.progress.onMessage(from, msg);
      case 'abort':
        void this.abort(msg.reason, msg.code, false);
        return;
      case 'steal-req':
        if (cur) cur.onStealRequest(from, msg);
        else this.send(from, { type: 'steal-reply', phase: msg.phase, items: [] });
        return;
      case 'steal-reply':
        if (cur && cur.phase === msg.phase) cur.onStealReply(from, msg);
        else if (msg.items.length > 0) void this.abort(`work from ${this.describe(from)} arrived outside its phase`, EXIT.ABORTED);
        return;
      case 'token':
        if (cur && cur.phase === msg.phase) cur.onToken(msg);
        else if (msg.phase > this.phaseNo) this.earlyTokens.set(msg.phase, { round: msg.round, black: msg.black, count: msg.count });
        return;
      case 'term':
        if (cur && cur.phase === msg.phase) cur.onTerminate();
        return;
      case 'limits':
        // Only from the tree parent, newest first; forwarded before it is applied here.
        if (this.rank === 0 || from !== treeParent(this.rank) || msg.seq <= this.limitsSeq) return;
        this.limitsSeq = msg.seq;
        this.forwardRates(msg);
        {
          const rates = { bytesPerSecond: msg.bytesPerSecond, opsPerSecond: msg.opsPerSecond, ranks: msg.ranks };
          if (this.limitsCb) this.limitsCb(rates);
          else this.unheardRates = rates;
        }
        return;
    }
  }

  private startHeartbeats(): void {
    const every = this.cfg.heartbeatMs ?? 1000;
    const timeout = this.cfg.heartbeatTimeoutMs ?? 6000;
    const succ = (this.rank + 1) % this.size;
    const pred = (this.rank - 1 + this.size) % this.size;
    this.lastSeenPred = this.lastCheck = Date.now();
    this.hbTimer = setInterval(() => {
      const now = Date.now();
      // If this rank itself was stalled (a long synchronous step), messages from the
      // predecessor may be waiting unread: do not blame it for our own silence.
      if (now - this.lastCheck > 3 * every) this.lastSeenPred = now;
      this.lastCheck = now;
      this.send(succ, { type: 'hb' });
      if (now - this.lastSeenPred > timeout && !this.finishing) {
        void this.abort(`${this.describe(pred)} stopped responding (no message for ${Math.round((now - this.lastSeenPred) / 1000)} s, noticed by rank ${this.rank}): it died or its host is unreachable`, EXIT.ABORTED);
      }
    }, every);
    this.hbTimer.unref();
  }

  private installSignalHandlers(): void {
    for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as NodeJS.Signals[]) {
      const h = () => {
        if (this.finishing || this.aborting) return;
        // Usually every rank gets the signal (Ctrl-C, Slurm at the time limit): let rank 0
        // speak for the job; another rank speaks only if no abort came from rank 0.
        const go = () => this.stop(`stopped by ${sig}${this.rank === 0 ? '' : ` on ${this.describe(this.rank)}`}`);
        if (this.rank === 0 || this.size === 1) go();
        else setTimeout(go, 300).unref();
      };
      process.on(sig, h);
    }
  }

  private stopTimers(): void {
    this.progress.stop();
    if (this.hbTimer) clearInterval(this.hbTimer);
    this.hbTimer = null;
    // The signal handlers stay: a rank stopping (abort) or leaving (finish) must not be
    // killed outright by a SIGTERM that arrives a moment after its peers' (Slurm signals
    // the tasks one by one); the handlers ignore signals once the job is ending.
  }
}

