/**
 * The whole wire protocol of the runtime, in one place.
 *
 * Every message is an envelope `[version, secret, from, type, body]` encoded with
 * msgpackr (see codec.ts). `type` selects one member of the `Message` union below.
 * Bodies are validated field by field on arrival (`validateBody`): a peer on a shared
 * cluster network is not trusted to send well-formed data, so nothing reaches the
 * engine unless it has the shape its type promises.
 *
 * Bump PROTOCOL_VERSION whenever a body changes shape; ranks of different versions
 * drop each other's messages (and count them) instead of misreading them.
 */
import { FRAGMENT_BYTES, MAX_FRAGMENTS } from './limits.js';

export const PROTOCOL_VERSION = 4;

/** Items and counters are task-defined plain data; the task validates items itself. */
export type Counters = Record<string, number>;

export interface HelloMsg { type: 'hello'; pid: number; host: string }
/** Liveness; sent along the ring so every rank is watched by its successor. */
export interface HeartbeatMsg { type: 'hb' }
/** An idle rank asks a random peer for work in phase `phase`. */
export interface StealRequestMsg { type: 'steal-req'; phase: number }
/** The victim's answer: its oldest items (possibly none). A non-empty reply is a "basic message" for Safra. */
export interface StealReplyMsg { type: 'steal-reply'; phase: number; items: unknown[] }
/**
 * Safra's termination token, as a wave over the tree (see engine/termination.ts): a round
 * going down, or a subtree's report going up with its colour (black = some rank received
 * work since it last reported) and its message count sum.
 */
export interface TokenMsg { type: 'token'; phase: number; round: number; up: boolean; black: boolean; count: number }
/** Rank 0 concluded that phase `phase` is over. */
export interface TerminateMsg { type: 'term'; phase: number }
/**
 * One step of a collective: `up` towards rank 0 (reduce), `down` from rank 0 (broadcast)
 * along the tree, or `peer` straight from one rank to another (all-to-all exchange).
 */
export interface CollectiveMsg { type: 'coll'; id: number; dir: 'up' | 'down' | 'peer'; value: unknown }
/** Periodic asynchronous progress reduction: the sum of the counters of the sender's subtree. */
export interface ProgressMsg { type: 'progress'; phase: number; seq: number; counters: Counters }
/** End of job: a rank received the last barrier's message and is leaving (to its tree parent); the parent answers with the same. */
export interface ByeMsg { type: 'bye' }
/** Any rank may stop the whole job; receivers stop at once and exit non-zero. */
export interface AbortMsg { type: 'abort'; reason: string; code: number }
/**
 * A rank asks rank 0 to abort the job for it (a failure several ranks may hit at once,
 * such as a full destination): rank 0 aborts with the first request it gets, so the
 * reason is printed once, and ignores the rest (see abort.ts).
 */
export interface AbortRequestMsg { type: 'abort-req'; reason: string; code: number }
/**
 * Part `part` of `parts` of one larger message (its whole encoded envelope, cut in
 * pieces of FRAGMENT_BYTES, see limits.ts). A sender's fragments arrive in order and
 * together: one PUSH socket per peer, one outbound queue.
 */
export interface FragmentMsg { type: 'frag'; part: number; parts: number; data: Buffer }
/**
 * Rank 0 changed the job's rate limits (--limits-file) or how they are shared: bytes and
 * operations per second for the whole job (0: unlimited), split evenly among `ranks`
 * ranks (those with work now). Sent down the collectives' tree, each rank forwarding to
 * its children; `seq` grows with each change, so a rank keeps the newest.
 */
export interface LimitsMsg { type: 'limits'; seq: number; bytesPerSecond: number; opsPerSecond: number; ranks: number }

export type Message =
  | HelloMsg
  | HeartbeatMsg
  | StealRequestMsg
  | StealReplyMsg
  | TokenMsg
  | TerminateMsg
  | CollectiveMsg
  | ProgressMsg
  | ByeMsg
  | AbortMsg
  | AbortRequestMsg
  | FragmentMsg
  | LimitsMsg;

export type MessageType = Message['type'];

const isInt = (x: unknown): x is number => typeof x === 'number' && Number.isSafeInteger(x);
const isNat = (x: unknown): x is number => isInt(x) && x >= 0;
const isObj = (x: unknown): x is Record<string, unknown> =>
  typeof x === 'object' && x !== null && !Array.isArray(x) && !Buffer.isBuffer(x);

export function isCounters(x: unknown): x is Counters {
  if (!isObj(x)) return false;
  for (const v of Object.values(x)) if (typeof v !== 'number' || !Number.isFinite(v)) return false;
  return true;
}

/** The longest reason an abort (or a request for one) carries; longer ones are cut to it (abort.ts). */
export const MAX_REASON = 4096;

/** Returns the typed message, or null when the body does not match its type. */
export function validateBody(type: unknown, body: unknown): Message | null {
  if (!isObj(body)) return null;
  const b = body;
  switch (type) {
    case 'hello':
      return isNat(b.pid) && typeof b.host === 'string' ? { type, pid: b.pid, host: b.host } : null;
    case 'hb':
    case 'bye':
      return { type };
    case 'steal-req':
      return isNat(b.phase) ? { type, phase: b.phase } : null;
    case 'steal-reply':
      return isNat(b.phase) && Array.isArray(b.items) ? { type, phase: b.phase, items: b.items } : null;
    case 'token':
      return isNat(b.phase) && isNat(b.round) && typeof b.up === 'boolean' && typeof b.black === 'boolean' && isInt(b.count)
        ? { type, phase: b.phase, round: b.round, up: b.up, black: b.black, count: b.count }
        : null;
    case 'term':
      return isNat(b.phase) ? { type, phase: b.phase } : null;
    case 'coll':
      return isNat(b.id) && (b.dir === 'up' || b.dir === 'down' || b.dir === 'peer') && 'value' in b
        ? { type, id: b.id, dir: b.dir, value: b.value }
        : null;
    case 'progress':
      return isNat(b.phase) && isNat(b.seq) && isCounters(b.counters)
        ? { type, phase: b.phase, seq: b.seq, counters: b.counters }
        : null;
    case 'abort':
    case 'abort-req':
      return typeof b.reason === 'string' && b.reason.length <= MAX_REASON && isInt(b.code)
        ? { type, reason: b.reason, code: b.code }
        : null;
    case 'frag':
      return isNat(b.part) && isNat(b.parts) && b.parts >= 2 && b.parts <= MAX_FRAGMENTS && b.part < b.parts
        && b.data instanceof Uint8Array && b.data.length > 0 && b.data.length <= FRAGMENT_BYTES
        ? { type, part: b.part, parts: b.parts, data: Buffer.from(b.data.buffer, b.data.byteOffset, b.data.length) }
        : null;
    case 'limits':
      return isNat(b.seq) && isNat(b.bytesPerSecond) && isNat(b.opsPerSecond) && isNat(b.ranks) && b.ranks >= 1
        ? { type, seq: b.seq, bytesPerSecond: b.bytesPerSecond, opsPerSecond: b.opsPerSecond, ranks: b.ranks }
        : null;
    default:
      return null;
  }
}

/** The body of a message is everything but its type tag. */
export function bodyOf(m: Message): Record<string, unknown> {
  const { type: _t, ...rest } = m;
  return rest;
}
