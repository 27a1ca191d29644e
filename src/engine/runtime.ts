/**
 * The runtime a tool runs on: rank identity, phases of work-stealing work, collectives,
 * progress, rate announcements, and the end of a job. It knows nothing of files (tools
 * build on `runPhase` and the collectives) and nothing of ZeroMQ: it talks through a
 * Transport (transport.ts), the real one set up by launch/start-runtime.ts, an
 * in-process one in the engine's unit tests. Liveness (heartbeats, peer death) is in
 * liveness.ts, abort and signals in abort.ts.
 */
import { MessageTooLarge, type DropCounts, type Envelope } from '../transport/codec.js';
import { dropCountsOf, emptyDrops } from '../transport/drop-report.js';
import { isCounters, type Counters, type LimitsMsg, type Message } from '../transport/messages.js';
import type { Transport } from '../transport/transport.js';
import { Stopper, type AbortHook } from './abort.js';
import { Collectives, treeChildren, treeParent } from './collectives.js';
import { Heartbeat } from './liveness.js';
import { PhaseRunner } from './phase.js';
import { ProgressReducer, addCounters } from './progress.js';
import { realScheduler, type Scheduler } from './scheduler.js';
import type { PhaseResult, Task } from './task.js';
import type { Token } from './termination.js';
import { SqliteSpill } from './spill.js';
import { EXIT } from '../fcp-error.cjs';

export { JobAborted } from './abort.js';

/** What messages say of another rank (launch/peers.cts has the whole record). */
export interface PeerName { host: string; pid: number }

/** How a runtime behaves, whatever carries its messages. */
export interface RuntimeOptions {
  /** Tool name used in messages ("fcp", "fsum"). */
  tool: string;
  heartbeatMs?: number;
  heartbeatTimeoutMs?: number;
  progressIntervalMs?: number;
  /** Work items a rank's queue keeps in memory before spilling to a temporary SQLite file. */
  queueInMemory?: number;
  /** Directory for spill files (default: the system temp dir). */
  spillDir?: string;
  /** Records a rank sends per round of a routed exchange (exchange.ts); tests make it tiny. */
  exchangeRound?: number;
  /** Turns, timers and random choices of the work loop (default: the event loop). */
  scheduler?: Scheduler;
  /**
   * How an aborting rank leaves (default process.exit). process.exit waits for the libuv
   * thread pool at teardown, forever if a thread is blocked in a hung file system; tools
   * pass the native addon's exitNow (_exit), so a stop always ends the process.
   */
  exit?: (code: number) => never;
  /** Where an abort's reason is printed (default: standard error). */
  print?: (line: string) => void;
}

/** Job-wide rates (rate limits), per second (0: unlimited), shared evenly by `ranks` ranks. */
export interface Rates { bytesPerSecond: number; opsPerSecond: number; ranks: number }

/**
 * A number each rank adds to its progress reports (not to the phase's counters): rank 0
 * gets the sum over the ranks every progress interval.
 */
export interface ProgressGauge { name: string; sample: () => number; onTotal: (sum: number) => void; onPhase?: () => void }

/** Exit codes shared by every tool (defined with the error codes: fcp-error.cts). */
export { EXIT };

export class Runtime {
  readonly rank: number;
  readonly size: number;
  readonly collectives: Collectives;
  private peers: readonly PeerName[] = [];
  /** This rank's receiving endpoint (tcp://addr:port), or null in a one-rank job. */
  endpoint: string | null = null;
  private phaseNo = 0;
  private current: PhaseRunner<unknown> | null = null;
  /** A phase's first token, come before this rank started that phase (only its parent's round 1 can). */
  private readonly earlyTokens = new Map<number, { token: Token; from: number }>();
  private readonly progress: ProgressReducer;
  private progressCb: ((phase: number, total: Counters) => void) | null = null;
  private readonly stopper: Stopper;
  private heartbeat: Heartbeat | null = null;
  private readonly byes = new Set<number>();
  private byeAcked = false;
  /** finish() waiting for byes: told of each one (see untilBye). */
  private byeArrived: (() => void) | null = null;
  private limitsSeq = 0;
  private limitsCb: ((rates: Rates) => void) | null = null;
  private unheardRates: Rates | null = null;
  private gauge: ProgressGauge | null = null;

  /**
   * A runtime for rank `rank` of `size` over `transport` (null in a one-rank job). The
   * transport's handler is taken over here; messages flow once the transport is started.
   */
  constructor(private readonly cfg: RuntimeOptions, rank: number, size: number, private readonly transport: Transport | null) {
    this.rank = rank;
    this.size = size;
    const send = (to: number, msg: Message) => this.send(to, msg);
    // A rank waiting for the abort it asked rank 0 for holds back its part of every
    // collective (see abort.ts): the job then cannot end before rank 0 has seen the request.
    const sendCollective = (to: number, msg: Message) => { if (!this.stopper.holdsCollectives) this.send(to, msg); };
    this.collectives = new Collectives(rank, size, sendCollective, { exchangeRound: cfg.exchangeRound });
    this.progress = new ProgressReducer(rank, size, send);
    this.stopper = new Stopper({
      tool: cfg.tool, rank, size, send,
      describe: (r) => this.describe(r),
      halt: (err) => {
        this.collectives.fail(err);
        this.stopTimers();
      },
      closeTransport: async () => {
        if (!this.transport) return;
        await this.transport.flush(500);
        this.transport.close(300);
      },
      exit: cfg.exit ?? process.exit,
      print: cfg.print,
    });
    transport?.onMessage((env) => this.dispatch(env));
  }

  /** Who the other ranks are (from the rendezvous), for messages that name them. */
  setPeers(peers: readonly PeerName[]): void {
    this.peers = peers;
  }

  /** SIGINT, SIGTERM and SIGHUP stop the job (exit 4, progress saved); see abort.ts. */
  handleSignals(): void {
    this.stopper.installSignalHandlers(EXIT.INTERRUPTED);
  }

  /** Watch the ring predecessor and be watched by the successor (see liveness.ts). */
  startHeartbeats(): void {
    if (this.size === 1) return;
    this.heartbeat = new Heartbeat({
      rank: this.rank, size: this.size,
      everyMs: this.cfg.heartbeatMs ?? 1000,
      timeoutMs: this.cfg.heartbeatTimeoutMs ?? 6000,
      send: (to, msg) => this.send(to, msg),
      describe: (r) => this.describe(r),
      finishing: () => this.stopper.finishing,
      onDead: (reason) => void this.abort(reason, EXIT.ABORTED),
    });
    this.heartbeat.start();
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
    this.stopper.addHook(hook);
  }

  /** Engine phases run so far (the same on every rank). */
  get phasesRun(): number {
    return this.phaseNo;
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
      scheduler: this.cfg.scheduler ?? realScheduler,
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

  /**
   * The job's work is done (its summary may be printed): a signal from now on does not
   * turn a finished job into a stopped one; the teardown below is bounded.
   */
  markFinishing(): void {
    this.stopper.finishing = true;
  }

  /** End of job: a last barrier so nobody closes sockets a peer still needs, then close. */
  async finish(): Promise<void> {
    // From here on a silent peer is one that has finished, not one that died.
    this.stopper.finishing = true;
    await this.barrier();
    // The barrier's last messages may still sit in ZeroMQ's queues, and process.exit does
    // not wait for them: a rank leaves only once its tree children said they got theirs
    // (bounded wait: a child that is gone does not hold its parent).
    const children = treeChildren(this.rank, this.size);
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

  /** Stop the whole job: tell every peer, print the reason once, run hooks, exit (see abort.ts). */
  abort(reason: string, code: number, origin = true): Promise<never> {
    return this.stopper.abort(reason, code, origin);
  }

  /**
   * Stop the whole job for a failure several ranks may hit at once: rank 0 aborts with
   * the first such request and prints its reason once (see abort.ts).
   */
  requestAbort(reason: string, code: number): void {
    this.stopper.requestAbort(reason, code);
  }

  /**
   * Stop the job as SIGTERM does (every rank saves its progress, exit 4), unless it is
   * already ending: --time-limit, and a signal.
   */
  stop(reason: string): void {
    this.stopper.stop(reason, EXIT.INTERRUPTED);
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
    this.heartbeat?.heard(from);
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
      case 'abort-req':
        // Only rank 0 speaks for the job: the first request wins, later ones find it aborting.
        if (this.rank === 0) void this.abort(msg.reason, msg.code);
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
        if (cur && cur.phase === msg.phase) cur.onToken(from, msg);
        else if (msg.phase > this.phaseNo && !msg.up) this.earlyTokens.set(msg.phase, { token: { round: msg.round, up: false, black: msg.black, count: msg.count }, from });
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

  private stopTimers(): void {
    this.progress.stop();
    this.heartbeat?.stop();
    // The signal handlers stay (see abort.ts): they ignore signals once the job is ending.
  }
}

