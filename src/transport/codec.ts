/**
 * Envelope encoding: `[version, secret, from, type, body]` with msgpackr.
 *
 * The secret is the job's random 16-byte key. It travels in every message so a rank
 * can drop anything that did not come from its own job (another job on the same
 * ports, a stranger, a stale process) before looking at the body. Comparison is
 * constant-time so the secret cannot be guessed byte by byte.
 *
 * The secret is checked on the raw bytes, before anything is decoded: msgpack lets a
 * few bytes stand for large structures (a byte per array element, and JavaScript spends
 * some 8 to 16 bytes holding each), so a stranger's frame is never unpacked at all.
 * The envelope's first 20 bytes are fixed: 0x95 (an array of 5), the version (a
 * positive fixint), 0xc4 0x10 (bin 8 of 16 bytes) and the secret.
 */
import { timingSafeEqual } from 'node:crypto';
import { Packr } from '../util/cjs-deps.js';
import { FRAGMENT_BYTES, MAX_FRAGMENTS } from './limits.js';
import { PROTOCOL_VERSION, bodyOf, validateBody, type Message } from './messages.js';

// Plain structures only: no records/structured clone extensions, so a peer cannot make
// us build class instances, and every decoded value is data.
const packr = new Packr({ useRecords: false, moreTypes: false, mapsAsObjects: true, int64AsType: 'number' });

import { SECRET_BYTES } from './secret.cjs';
import { FcpError } from '../fcp-error.cjs';

export { SECRET_BYTES };

export interface Envelope { from: number; msg: Message }

/** Why a message was dropped; counted per reason by the transport. */
export type DropReason = 'malformed' | 'version' | 'secret' | 'sender' | 'body';

/** Dropped messages by reason, and `address`: connections refused because they came from outside the job. */
export type DropCounts = Record<DropReason | 'address', number>;

const HEADER_BYTES = 4 + SECRET_BYTES;

/** A message too large even in fragments (MAX_FRAGMENTS x FRAGMENT_BYTES). */
export class MessageTooLarge extends FcpError {
  constructor(readonly type: string, readonly bytes: number) {
    super('MESSAGE_TOO_LARGE', `a '${type}' message of ${(bytes / 2 ** 20).toFixed(0)} MiB is more than the transport carries (${MAX_FRAGMENTS} x ${FRAGMENT_BYTES / 2 ** 20} MiB)`);
  }
}

export class Codec {
  constructor(private readonly secret: Buffer, private readonly size: number) {
    if (secret.length !== SECRET_BYTES) throw new Error(`job secret must be ${SECRET_BYTES} bytes`);
  }

  encode(from: number, msg: Message): Buffer {
    return packr.pack([PROTOCOL_VERSION, this.secret, from, msg.type, bodyOf(msg)]);
  }

  /**
   * The frames that carry `msg`: the message itself, or, when it is larger than
   * FRAGMENT_BYTES, `frag` messages of that size each (see limits.ts).
   */
  encodeFrames(from: number, msg: Message): Buffer[] {
    const whole = this.encode(from, msg);
    if (whole.length <= FRAGMENT_BYTES) return [whole];
    const parts = Math.ceil(whole.length / FRAGMENT_BYTES);
    if (parts > MAX_FRAGMENTS) throw new MessageTooLarge(msg.type, whole.length);
    const out: Buffer[] = [];
    for (let part = 0; part < parts; part++) {
      const data = whole.subarray(part * FRAGMENT_BYTES, (part + 1) * FRAGMENT_BYTES);
      out.push(this.encode(from, { type: 'frag', part, parts, data }));
    }
    return out;
  }

  /** Decode and authenticate; returns the drop reason instead of throwing. */
  decode(buf: Buffer): Envelope | DropReason {
    if (buf.length < HEADER_BYTES || buf[0] !== 0x95) return 'malformed';
    if (buf[1] !== PROTOCOL_VERSION) return 'version';
    if (buf[2] !== 0xc4 || buf[3] !== SECRET_BYTES) return 'secret';
    if (!timingSafeEqual(buf.subarray(4, HEADER_BYTES), this.secret)) return 'secret';
    let raw: unknown;
    try {
      raw = packr.unpack(buf);
    } catch {
      return 'malformed';
    }
    if (!Array.isArray(raw) || raw.length !== 5) return 'malformed';
    const [version, secret, from, type, body] = raw as unknown[];
    if (version !== PROTOCOL_VERSION) return 'version';
    if (!(secret instanceof Uint8Array) || secret.length !== SECRET_BYTES) return 'secret';
    if (!timingSafeEqual(Buffer.from(secret.buffer, secret.byteOffset, secret.length), this.secret)) return 'secret';
    if (typeof from !== 'number' || !Number.isInteger(from) || from < 0 || from >= this.size) return 'sender';
    const msg = validateBody(type, body);
    if (!msg) return 'body';
    return { from, msg };
  }
}

/**
 * Encode and decode a few messages with a throwaway secret: run only while a startup
 * snapshot is built (see util/snapshot.ts), so that the snapshot holds the compiled code of
 * the codec and of msgpackr, which every rank started from it would otherwise compile on
 * its first messages.
 */
export function warmUpCodec(): void {
  const codec = new Codec(Buffer.alloc(SECRET_BYTES), 2);
  const samples: Message[] = [
    { type: 'hello', pid: 1, host: 'h' },
    { type: 'coll', id: 1, dir: 'up', value: { n: [1, 2], s: 'x', b: Buffer.from('y') } },
    { type: 'steal-req', phase: 1 },
    { type: 'token', phase: 1, round: 1, up: false, black: false, count: 0 },
    { type: 'bye' },
  ];
  for (const m of samples) for (const f of codec.encodeFrames(0, m)) codec.decode(f);
}
