/**
 * ZeroMQ transport: one PULL socket per rank for everything it receives, and one PUSH
 * socket per peer (connected lazily on first send) with its own outbound queue.
 *
 * Why a queue per peer: a zeromq.js socket allows one send in flight at a time, and a
 * rank must never block its work loop on a slow or dead peer. `send()` only appends to
 * the queue; a pump per peer drains it.
 *
 * Every arriving message is authenticated and validated by the codec; anything else is
 * dropped and counted in `dropped` (never thrown, never dispatched).
 */
import { Pull, Push } from '../util/cjs-deps.js';
import { Codec, type DropReason, type Envelope } from './codec.js';
import type { Message } from './messages.js';

export interface TransportOptions {
  rank: number;
  size: number;
  /** Address to bind, e.g. 127.0.0.1 or 10.1.2.3; the port is chosen by the OS. */
  bindAddress: string;
  /** Test hook: delay non-empty steal replies by a random 0..N ms (models slow delivery). */
  delayWorkMs?: number;
}

export type MessageHandler = (env: Envelope) => void;

interface Outbox { sock: Push; queue: Buffer[]; busy: boolean }

export class ZmqTransport {
  readonly rank: number;
  readonly size: number;
  private codec: Codec | null = null;
  private readonly pull: Pull;
  private readonly outboxes = new Map<number, Outbox>();
  private endpoints: string[] = [];
  private handler: MessageHandler = () => {};
  private closed = false;
  private readonly delayWorkMs: number;
  /** Messages dropped on arrival, by reason. */
  readonly dropped: Record<DropReason, number> = { malformed: 0, version: 0, secret: 0, sender: 0, body: 0 };
  sent = 0;
  received = 0;

  private constructor(opts: TransportOptions, pull: Pull) {
    this.rank = opts.rank;
    this.size = opts.size;
    this.pull = pull;
    this.delayWorkMs = opts.delayWorkMs ?? 0;
  }

  /** Bind the receiving socket; `endpoint` is what peers must connect to. */
  static async bind(opts: TransportOptions): Promise<{ transport: ZmqTransport; endpoint: string }> {
    const pull = new Pull({ receiveHighWaterMark: 0, linger: 0 });
    const host = opts.bindAddress.includes(':') ? `[${opts.bindAddress}]` : opts.bindAddress;
    await pull.bind(`tcp://${host}:*`);
    const endpoint = pull.lastEndpoint;
    if (!endpoint) throw new Error(`could not bind a socket on ${opts.bindAddress}`);
    return { transport: new ZmqTransport(opts, pull), endpoint };
  }

  /**
   * Learn every rank's endpoint and the job secret (from the rendezvous) and start
   * receiving. Messages that arrived before wait in the socket until then.
   */
  start(endpoints: string[], secret: Buffer, handler: MessageHandler): void {
    this.codec = new Codec(secret, this.size);
    this.endpoints = endpoints;
    this.handler = handler;
    void this.receiveLoop();
  }

  private async receiveLoop(): Promise<void> {
    try {
      for await (const frames of this.pull) {
        if (this.closed) break;
        // A well-formed message is exactly one frame; anything else is a stranger.
        if (frames.length !== 1) { this.dropped.malformed++; continue; }
        const env = this.codec!.decode(frames[0] as Buffer);
        if (typeof env === 'string') { this.dropped[env]++; continue; }
        this.received++;
        this.handler(env);
      }
    } catch (err) {
      if (!this.closed) throw err;
    }
  }

  send(to: number, msg: Message): void {
    if (this.closed || !this.codec) return;
    const buf = this.codec.encode(this.rank, msg);
    if (this.delayWorkMs > 0 && msg.type === 'steal-reply' && msg.items.length > 0) {
      // Test mode: work travels slower than tokens, so a token may overtake it.
      setTimeout(() => this.enqueue(to, buf), Math.random() * this.delayWorkMs);
      return;
    }
    this.enqueue(to, buf);
  }

  private enqueue(to: number, buf: Buffer): void {
    if (this.closed) return;
    let box = this.outboxes.get(to);
    if (!box) {
      const sock = new Push({ sendHighWaterMark: 0, linger: 2000, immediate: false });
      sock.connect(this.endpoints[to]!);
      box = { sock, queue: [], busy: false };
      this.outboxes.set(to, box);
    }
    box.queue.push(buf);
    this.sent++;
    if (!box.busy) void this.pump(box);
  }

  private async pump(box: Outbox): Promise<void> {
    box.busy = true;
    try {
      while (box.queue.length > 0 && !this.closed) {
        await box.sock.send(box.queue.shift()!);
      }
    } catch {
      // The socket was closed under us (shutdown); nothing left to deliver.
    } finally {
      box.busy = false;
    }
  }

  /** Wait (bounded) until every outbound queue is handed to ZeroMQ. */
  async flush(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      let pending = false;
      for (const box of this.outboxes.values()) if (box.busy || box.queue.length > 0) pending = true;
      if (!pending) return;
      await new Promise((r) => setTimeout(r, 5));
    }
  }

  /** Close all sockets. `lingerMs` lets messages already queued in ZeroMQ reach peers. */
  close(lingerMs = 500): void {
    if (this.closed) return;
    this.closed = true;
    for (const box of this.outboxes.values()) {
      box.queue.length = 0;
      box.sock.linger = lingerMs;
      box.sock.close();
    }
    this.pull.close();
  }

  get droppedTotal(): number {
    return Object.values(this.dropped).reduce((a, b) => a + b, 0);
  }
}
