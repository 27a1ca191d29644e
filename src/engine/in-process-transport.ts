/**
 * An in-process transport: many ranks in one process, for the engine's unit tests (and
 * anything else that wants ranks without sockets). Each message is validated as it would
 * be on arrival over the wire (validateBody) and delivered through a Scheduler after a
 * delay chosen per message, so a test decides how late and in which order messages
 * arrive.
 *
 * Order: 'fifo' keeps order per sender-receiver pair, as ZeroMQ does; 'any' lets any
 * message overtake any other. The engine must work with 'any' (see transport.ts).
 */
import type { Scheduler } from './scheduler.js';
import type { DropCounts } from '../transport/codec.js';
import { emptyDrops } from '../transport/drop-report.js';
import { bodyOf, validateBody, type Message } from '../transport/messages.js';
import type { MessageHandler, Transport } from '../transport/transport.js';

export interface InProcessOptions {
  scheduler: Scheduler;
  /** Milliseconds before `msg` reaches `to` (default 0: the next turn). */
  delayMs?: (from: number, to: number, msg: Message) => number;
  /** 'fifo' (per sender-receiver pair, as ZeroMQ) or 'any' (default 'fifo'). */
  order?: 'fifo' | 'any';
  /** Called at every send, before delivery is scheduled (tests watch the traffic here). */
  onSend?: (from: number, to: number, msg: Message) => void;
  /** Called as a message reaches a rank that is still open, before its handler. */
  onDeliver?: (from: number, to: number, msg: Message) => void;
}

/** The ranks of one in-process job: `transport(r)` is rank r's. */
export class InProcessNetwork {
  private readonly ends: InProcessTransport[];
  /** Per sender-receiver pair, messages sent and not yet delivered ('fifo'). */
  private readonly pending = new Map<number, Message[]>();
  /** Messages sent and not yet delivered (or dropped at a closed rank). */
  inFlight = 0;

  constructor(readonly size: number, private readonly opts: InProcessOptions) {
    this.ends = Array.from({ length: size }, (_, r) => new InProcessTransport(r, size, this));
  }

  transport(rank: number): InProcessTransport {
    return this.ends[rank]!;
  }

  /** @internal */
  carry(from: number, to: number, msg: Message): void {
    if (!Number.isInteger(to) || to < 0 || to >= this.size) throw new Error(`no rank ${to} in a job of ${this.size}`);
    // What the receiver gets is what would survive the wire's validation.
    const valid = validateBody(msg.type, bodyOf(msg));
    if (!valid) throw new Error(`rank ${from} sent a malformed '${msg.type}' message`);
    this.opts.onSend?.(from, to, valid);
    this.inFlight++;
    const delay = Math.max(0, this.opts.delayMs?.(from, to, valid) ?? 0);
    if (this.opts.order === 'any') {
      this.opts.scheduler.after(delay, () => this.arrive(from, to, valid));
      return;
    }
    // FIFO: each timer delivers the oldest message of its pair, whichever timer fires.
    const key = from * this.size + to;
    let q = this.pending.get(key);
    if (!q) this.pending.set(key, (q = []));
    q.push(valid);
    this.opts.scheduler.after(delay, () => this.arrive(from, to, q.shift()!));
  }

  private arrive(from: number, to: number, msg: Message): void {
    this.inFlight--;
    const end = this.ends[to]!;
    if (end.isClosed) return;
    this.opts.onDeliver?.(from, to, msg);
    end.deliver(from, msg);
  }
}

export class InProcessTransport implements Transport {
  private handler: MessageHandler = () => {};
  private closed = false;

  constructor(readonly rank: number, readonly size: number, private readonly net: InProcessNetwork) {}

  send(to: number, msg: Message): void {
    if (!this.closed) this.net.carry(this.rank, to, msg);
  }

  onMessage(handler: MessageHandler): void {
    this.handler = handler;
  }

  get dropped(): DropCounts {
    return emptyDrops();
  }

  async flush(): Promise<void> {}

  close(): void {
    this.closed = true;
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** @internal */
  deliver(from: number, msg: Message): void {
    if (!this.closed) this.handler({ from, msg });
  }
}
