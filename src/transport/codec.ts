/**
 * Envelope encoding: `[version, secret, from, type, body]` with msgpackr.
 *
 * The secret is the job's random 16-byte key. It travels in every message so a rank
 * can drop anything that did not come from its own job (another job on the same
 * ports, a stranger, a stale process) before looking at the body. Comparison is
 * constant-time so the secret cannot be guessed byte by byte.
 */
import { timingSafeEqual } from 'node:crypto';
import { Packr } from '../util/cjs-deps.js';
import { PROTOCOL_VERSION, bodyOf, validateBody, type Message } from './messages.js';

// Plain structures only: no records/structured clone extensions, so a peer cannot make
// us build class instances, and every decoded value is data.
const packr = new Packr({ useRecords: false, moreTypes: false, mapsAsObjects: true, int64AsType: 'number' });

import { SECRET_BYTES } from './secret.cjs';

export { SECRET_BYTES };

export interface Envelope { from: number; msg: Message }

/** Why a message was dropped; counted per reason by the transport. */
export type DropReason = 'malformed' | 'version' | 'secret' | 'sender' | 'body';

export class Codec {
  constructor(private readonly secret: Buffer, private readonly size: number) {
    if (secret.length !== SECRET_BYTES) throw new Error(`job secret must be ${SECRET_BYTES} bytes`);
  }

  encode(from: number, msg: Message): Buffer {
    return packr.pack([PROTOCOL_VERSION, this.secret, from, msg.type, bodyOf(msg)]);
  }

  /** Decode and authenticate; returns the drop reason instead of throwing. */
  decode(buf: Buffer): Envelope | DropReason {
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
