/**
 * Putting fragmented messages back together (see limits.ts and the `frag` message).
 *
 * Only fragments that passed the codec reach here, so only members of the job can make
 * a rank hold a partial message. A sender's fragments come in order and back to back
 * (one queue per peer on its side, one connection); anything else is a broken sender,
 * and what it had sent so far is dropped.
 */
import type { FragmentMsg } from './messages.js';

interface Partial { parts: number; pieces: Buffer[] }

export class Reassembly {
  private readonly open = new Map<number, Partial>();

  /**
   * Add a fragment from `from`: the whole encoded message once its last part is in, null
   * while parts are missing, 'broken' when the fragment does not continue what `from` sent.
   */
  add(from: number, f: FragmentMsg): Buffer | null | 'broken' {
    const p = this.open.get(from);
    if (f.part === 0) {
      // A new message: what `from` left unfinished before it is lost (and said so).
      const unfinished = p !== undefined;
      this.open.set(from, { parts: f.parts, pieces: [f.data] });
      return unfinished ? 'broken' : null;
    }
    if (!p || f.parts !== p.parts || f.part !== p.pieces.length) {
      this.open.delete(from);
      return 'broken';
    }
    p.pieces.push(f.data);
    if (p.pieces.length < p.parts) return null;
    this.open.delete(from);
    return Buffer.concat(p.pieces);
  }
}
