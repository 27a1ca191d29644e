/**
 * ZeroMQ transport: one PULL socket per rank for everything it receives, and one PUSH
 * socket per peer (connected lazily on first send) with its own outbound queue.
 *
 * Why a queue per peer: a zeromq.js socket allows one send in flight at a time, and a
 * rank must never block its work loop on a slow or dead peer. `send()` only appends to
 * the queue; a pump per peer drains it.
 *
 * Every arriving message is authenticated and validated by the codec; anything else is
 * dropped and counted in `dropped` (never thrown, never dispatched). What a stranger can
 * make a rank hold is bounded before that (see limits.ts and address-gate.ts): frames
 * larger than MAX_FRAME_BYTES are refused by libzmq (ZMQ_MAXMSGSIZE, set before bind),
 * larger messages of the job travel as fragments, and connections from addresses
 * outside the job are refused by a ZAP handler. The sockets live in a context of their
 * own, so that handler answers for this transport's socket and no other.
 */
import { Pull, Push, ZmqContext } from '../util/cjs-deps.js';
import { AddressGate, ZAP_DOMAIN, endpointHost, isWildcard } from './address-gate.js';
import { Codec, type DropCounts, type DropReason, type Envelope } from './codec.js';
import { MAX_FRAME_BYTES } from './limits.js';
import type { Message } from './messages.js';
import { Reassembly } from './reassembly.js';
import type { MessageHandler, Transport } from './transport.js';

export interface TransportOptions {
  rank: number;
  size: number;
  /** Address to bind, e.g. 127.0.0.1 or 10.1.2.3; the port is chosen by the OS. */
  bindAddress: string;
  /** Test hook: delay non-empty steal replies by a random 0..N ms (models slow delivery). */
  delayWorkMs?: number;
  /** Test hook: abort messages (and requests for one) leave N ms late (models a loaded machine). */
  delayAbortMs?: number;
}

interface Outbox { sock: Push; queue: Buffer[]; busy: boolean }

export class ZmqTransport implements Transport {
  readonly rank: number;
  readonly size: number;
  private codec: Codec | null = null;
  private readonly pull: Pull;
  private readonly context: ZmqContext;
  private readonly gate: AddressGate;
  /** Where this rank's connections come from: the address it listens on (see connectAddress). */
  private readonly sourceHost: string | null;
  private readonly reassembly = new Reassembly();
  private readonly outboxes = new Map<number, Outbox>();
  private endpoints: string[] = [];
  private handler: MessageHandler = () => {};
  private closed = false;
  private readonly delayWorkMs: number;
  private readonly delayAbortMs: number;
  private readonly drops: Record<DropReason, number> = { malformed: 0, version: 0, secret: 0, sender: 0, body: 0 };
  sent = 0;
  received = 0;

  private constructor(opts: TransportOptions, context: ZmqContext, gate: AddressGate, pull: Pull, endpoint: string) {
    this.rank = opts.rank;
    this.size = opts.size;
    this.context = context;
    this.gate = gate;
    this.pull = pull;
    const host = endpointHost(endpoint);
    this.sourceHost = isWildcard(host) ? null : endpoint.slice('tcp://'.length, endpoint.lastIndexOf(':'));
    this.delayWorkMs = opts.delayWorkMs ?? 0;
    this.delayAbortMs = opts.delayAbortMs ?? 0;
  }

  /** Bind the receiving socket; `endpoint` is what peers must connect to. */
  static async bind(opts: TransportOptions): Promise<{ transport: ZmqTransport; endpoint: string }> {
    const context = new ZmqContext();
    // The gate first: libzmq admits everyone to a socket with a ZAP domain when no handler
    // is bound (zapEnforceDomain would refuse instead, but it is a draft option that a
    // libzmq built without the draft API rejects, and the gate is bound first anyway).
    const gate = await AddressGate.start(context);
    const pull = new Pull({ context, receiveHighWaterMark: 0, linger: 0, maxMessageSize: MAX_FRAME_BYTES, zapDomain: ZAP_DOMAIN });
    const host = opts.bindAddress.includes(':') ? `[${opts.bindAddress}]` : opts.bindAddress;
    try {
      await pull.bind(`tcp://${host}:*`);
    } catch (err) {
      gate.close();
      pull.close();
      throw err;
    }
    const endpoint = pull.lastEndpoint;
    if (!endpoint) throw new Error(`could not bind a socket on ${opts.bindAddress}`);
    return { transport: new ZmqTransport(opts, context, gate, pull, endpoint), endpoint };
  }

  /** Messages dropped on arrival by reason, and connections refused (`address`). */
  get dropped(): DropCounts {
    return { ...this.drops, address: this.gate.refused };
  }

  /**
   * Learn every rank's endpoint and the job secret (from the rendezvous) and start
   * receiving (into the handler given to onMessage). Messages that arrived before wait
   * in the socket until then.
   */
  start(endpoints: string[], secret: Buffer): void {
    this.codec = new Codec(secret, this.size);
    this.endpoints = endpoints;
    this.gate.admit(endpoints);
    void this.receiveLoop();
  }

  onMessage(handler: MessageHandler): void {
    this.handler = handler;
  }

  private async receiveLoop(): Promise<void> {
    try {
      for await (const frames of this.pull) {
        if (this.closed) break;
        // A well-formed message is exactly one frame; anything else is a stranger.
        if (frames.length !== 1) { this.drops.malformed++; continue; }
        const env = this.receive(frames[0] as Buffer);
        if (typeof env === 'string') { this.drops[env]++; continue; }
        if (env === null) continue; // a fragment of a message not complete yet
        this.received++;
        this.handler(env);
      }
    } catch (err) {
      if (!this.closed) throw err;
    }
  }

  /** One frame: a message, a drop reason, or null for a fragment of an unfinished message. */
  private receive(frame: Buffer): Envelope | DropReason | null {
    const env = this.codec!.decode(frame);
    if (typeof env === 'string' || env.msg.type !== 'frag') return env;
    const whole = this.reassembly.add(env.from, env.msg);
    if (whole === 'broken') return 'malformed';
    if (whole === null) return null;
    const inner = this.codec!.decode(whole);
    if (typeof inner === 'string') return inner;
    // A fragment's message is its sender's own, and never itself in fragments.
    return inner.from === env.from && inner.msg.type !== 'frag' ? inner : 'malformed';
  }

  /**
   * Queue `msg` for rank `to`. Throws MessageTooLarge (codec.ts) for a message too large
   * even in fragments; the caller decides what that means for the job.
   */
  send(to: number, msg: Message): void {
    if (this.closed || !this.codec) return;
    const frames = this.codec.encodeFrames(this.rank, msg);
    if (this.delayWorkMs > 0 && msg.type === 'steal-reply' && msg.items.length > 0) {
      // Test mode: work travels slower than tokens, so a token may overtake it.
      setTimeout(() => this.enqueue(to, frames), Math.random() * this.delayWorkMs);
      return;
    }
    if (this.delayAbortMs > 0 && (msg.type === 'abort' || msg.type === 'abort-req')) {
      setTimeout(() => this.enqueue(to, frames), this.delayAbortMs);
      return;
    }
    this.enqueue(to, frames);
  }

  private enqueue(to: number, frames: Buffer[]): void {
    if (this.closed) return;
    let box = this.outboxes.get(to);
    if (!box) {
      // A PUSH socket receives no messages, but its peer's handshake commands are frames too.
      const sock = new Push({ context: this.context, sendHighWaterMark: 0, linger: 2000, immediate: false, maxMessageSize: MAX_FRAME_BYTES });
      sock.connect(this.connectAddress(this.endpoints[to]!));
      box = { sock, queue: [], busy: false };
      this.outboxes.set(to, box);
    }
    // A message's fragments go back to back: nothing else is queued between them.
    for (const f of frames) box.queue.push(f);
    this.sent++;
    if (!box.busy) void this.pump(box);
  }

  /**
   * Connect from the address this rank listens on ("tcp://SOURCE:0;HOST:PORT"): the peer's
   * address gate admits the addresses the ranks published, and on a host with several
   * interfaces the kernel might otherwise pick another source address.
   */
  private connectAddress(endpoint: string): string {
    return this.sourceHost === null ? endpoint : `tcp://${this.sourceHost}:0;${endpoint.slice('tcp://'.length)}`;
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
    this.gate.close();
  }

  get droppedTotal(): number {
    return Object.values(this.dropped).reduce((a, b) => a + b, 0);
  }
}
