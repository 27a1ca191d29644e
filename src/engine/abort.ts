/**
 * Stopping a job: abort (any rank may stop the whole job), stop on a signal or a time
 * limit, and the hooks tools run on the way out.
 *
 * The rank that aborts tells every peer, prints the reason once, runs the abort hooks
 * (tools flush checkpoints there) and exits with the given code; ranks that receive an
 * abort do the same silently. Once the job's work is done (`finishing`), a signal no
 * longer turns a finished job into a stopped one.
 *
 * A failure that several ranks may hit at once (a full destination) is not aborted on
 * by each: a rank other than 0 asks rank 0 (`requestAbort`), which aborts with the first
 * request it gets, so the reason is printed once however late the messages travel. Until
 * rank 0's abort arrives the asking rank goes on, but it sends nothing to a collective
 * (`holdsCollectives`): messages may arrive in any order (transport.ts), and this way
 * rank 0 cannot get through a collective, so cannot end the job, before it has seen the
 * request. If rank 0 is gone, liveness (liveness.ts) aborts the job naming it: nobody waits
 * for ever.
 */
import { MAX_REASON, type Message } from '../transport/messages.js';
import { FcpError, codeOfExit } from '../fcp-error.cjs';

/** The job is aborting with `exitCode` (an abort carries only the exit status across ranks). */
export class JobAborted extends FcpError {
  constructor(readonly reason: string, readonly exitCode: number) {
    super(codeOfExit(exitCode), reason);
  }
}

/**
 * A reason as it can travel: a longer one (a path of thousands of escaped bytes) would be
 * dropped on arrival, and a request dropped would leave the job waiting for its abort.
 */
function onWire(reason: string): string {
  return reason.length <= MAX_REASON ? reason : `${reason.slice(0, MAX_REASON - 3)}...`;
}

/** How long a rank that got a signal waits for rank 0 to stop the job before it does so itself. */
export const SIGNAL_FALLBACK_MS = 2000;

/** Where signals come from: the process (a test's emitter stands in for it). */
export interface SignalSource { on(sig: NodeJS.Signals, fn: () => void): unknown }

export type AbortHook = (reason: string, code: number) => void | Promise<void>;

export interface StopperOptions {
  tool: string;
  rank: number;
  size: number;
  send(to: number, msg: Message): void;
  describe(rank: number): string;
  /** Stop what the runtime has running (pending collectives fail with `err`, timers stop) before the hooks. */
  halt(err: JobAborted): void;
  /** Hand queued messages on and close the transport, bounded. */
  closeTransport(): Promise<void>;
  /** How the process leaves (see RuntimeOptions.exit). */
  exit(code: number): never;
  /** Where the reason is printed (default: standard error). */
  print?(line: string): void;
}

export class Stopper {
  /** The job's work is done: signals are ignored, a silent peer has left rather than died. */
  finishing = false;
  aborting = false;
  /** This rank asked rank 0 to abort the job (requestAbort) and waits for it. */
  private requested = false;
  /** A signal came (and rank 0 was asked to stop the job). */
  private signalled = false;
  private readonly hooks: AbortHook[] = [];

  constructor(private readonly o: StopperOptions) {}

  addHook(hook: AbortHook): void {
    this.hooks.push(hook);
  }

  /** Stop the whole job: tell every peer, print the reason once, run hooks, exit. Resolves never. */
  async abort(reason: string, code: number, origin = true): Promise<never> {
    if (this.aborting) return new Promise<never>(() => {});
    this.aborting = true;
    if (origin) {
      for (let r = 0; r < this.o.size; r++) if (r !== this.o.rank) this.o.send(r, { type: 'abort', reason: onWire(reason), code });
      (this.o.print ?? ((l: string) => process.stderr.write(l)))(`${this.o.tool}: ${reason}\n`);
    }
    this.o.halt(new JobAborted(reason, code));
    const hooks = Promise.all(this.hooks.map(async (h) => { try { await h(reason, code); } catch { /* keep going */ } }));
    await Promise.race([hooks, new Promise((r) => setTimeout(r, 5000))]);
    await this.o.closeTransport();
    return this.o.exit(code);
  }

  /**
   * Ask for the job to be aborted with `reason` (printed once, by rank 0, for the first
   * request it gets). On rank 0, or alone, this is abort itself.
   */
  requestAbort(reason: string, code: number): void {
    if (this.o.rank === 0 || this.o.size === 1) {
      void this.abort(reason, code);
      return;
    }
    if (this.aborting || this.requested) return;
    this.requested = true;
    this.o.send(0, { type: 'abort-req', reason: onWire(reason), code });
  }

  /**
   * True while this rank waits for the abort it asked for: it must then send nothing to a
   * collective, so that rank 0 cannot complete one (and end the job) without the request.
   */
  get holdsCollectives(): boolean {
    return this.requested;
  }

  /** Stop the job as SIGTERM does (every rank saves its progress), unless it is already ending. */
  stop(reason: string, code: number): void {
    if (this.finishing || this.aborting) return;
    void this.abort(reason, code);
  }

  /**
   * SIGINT, SIGTERM and SIGHUP stop the job with `code`. The handlers stay for the life of
   * the process: a rank stopping or leaving must not be killed outright by a SIGTERM that
   * arrives a moment after its peers' (Slurm signals the tasks one by one).
   *
   * A rank other than 0 asks rank 0 to stop the job (requestAbort), which does so at once
   * and prints the reason and the resume command once, whether the signal reached one rank
   * or all (Ctrl-C, Slurm at the time limit: then rank 0's own signal usually wins). Should
   * rank 0 not answer (stopped, its host unreachable), the rank stops the job itself after
   * SIGNAL_FALLBACK_MS, or at once on a second signal.
   */
  installSignalHandlers(code: number, signals: SignalSource = process): void {
    for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as NodeJS.Signals[]) {
      signals.on(sig, () => {
        if (this.finishing || this.aborting) return;
        const { rank } = this.o;
        const reason = `stopped by ${sig}${rank === 0 ? '' : ` on ${this.o.describe(rank)}`}`;
        if (rank === 0 || this.o.size === 1 || this.signalled) {
          this.stop(reason, code);
          return;
        }
        this.signalled = true;
        this.requestAbort(reason, code);
        setTimeout(() => this.stop(reason, code), SIGNAL_FALLBACK_MS).unref();
      });
    }
  }
}
