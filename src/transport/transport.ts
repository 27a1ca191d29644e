/**
 * What the engine needs from a transport, and nothing more: send a typed message to a
 * rank, receive validated messages through one handler, count what was dropped, and
 * leave cleanly. ZmqTransport (zmq-transport.ts) is the one that crosses processes and
 * hosts; InProcessNetwork (in-process.ts) runs many ranks in one process for tests.
 *
 * Delivery contract the engine relies on (and the only one):
 * - a message sent to a live rank is delivered once, whole and validated, or the job
 *   aborts (a dead peer is found by liveness.ts, not by the transport);
 * - `send` never blocks and never waits for the receiver;
 * - NO ORDER between messages is assumed by the engine, not even per sender-receiver
 *   pair. ZeroMQ does keep order per pair (one PUSH socket per peer), and the transport
 *   itself uses that for fragments (reassembly.ts); but the engine's protocols stand on
 *   their own: collectives key every message by call id, steal requests have one reply
 *   outstanding, progress and rate limits carry sequence numbers, early tokens wait for
 *   their phase, and Safra's counting (termination.ts) is correct for non-FIFO channels.
 *   The in-process transport may therefore reorder freely, and the tests make it do so.
 */
import type { DropCounts, Envelope } from './codec.js';
import type { Message } from './messages.js';

export type { Envelope };
export type MessageHandler = (env: Envelope) => void;

export interface Transport {
  readonly rank: number;
  readonly size: number;
  /**
   * Queue `msg` for rank `to` and return at once. Throws MessageTooLarge (codec.ts) for a
   * message the transport cannot carry; the caller decides what that means for the job.
   */
  send(to: number, msg: Message): void;
  /** Where every arriving (validated) message goes; set once, before messages flow. */
  onMessage(handler: MessageHandler): void;
  /** Messages dropped on arrival by reason, and connections refused (`address`). */
  readonly dropped: DropCounts;
  /** Wait (bounded) until every queued message is handed on. */
  flush(timeoutMs: number): Promise<void>;
  /** Stop sending and receiving; `lingerMs` lets messages already handed on reach peers. */
  close(lingerMs?: number): void;
}
