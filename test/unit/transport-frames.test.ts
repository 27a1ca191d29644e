/** Messages larger than a frame: cut into fragments that fit the socket limit, put back together in order. */
import { describe, expect, it } from 'vitest';
import { Codec } from '../../src/transport/codec.js';
import { FRAGMENT_BYTES, MAX_FRAME_BYTES } from '../../src/transport/limits.js';
import { Reassembly } from '../../src/transport/reassembly.js';

describe('transport fragments', () => {
  it('a 12 MB message is cut to fragments no larger than the socket limit, and put back together', () => {
    const codec = new Codec(Buffer.alloc(16, 1), 2);
    const items = Array.from({ length: 300 }, (_, i) => ({ id: `${i}`, pad: Buffer.alloc(40_000, i) }));
    const frames = codec.encodeFrames(1, { type: 'steal-reply', phase: 3, items });
    expect(frames.length).toBe(3); // 12 MB in 4 MiB pieces
    for (const f of frames) expect(f.length).toBeLessThanOrEqual(MAX_FRAME_BYTES);
    const re = new Reassembly();
    let whole: Buffer | null | 'broken' = null;
    for (const f of frames) {
      const env = codec.decode(f);
      if (typeof env === 'string' || env.msg.type !== 'frag') throw new Error(`not a fragment: ${String(env)}`);
      whole = re.add(env.from, env.msg);
    }
    if (!Buffer.isBuffer(whole)) throw new Error('not reassembled');
    const env = codec.decode(whole);
    if (typeof env === 'string' || env.msg.type !== 'steal-reply') throw new Error('bad message');
    expect(env.msg.items).toHaveLength(300);
    expect((env.msg.items[299] as { pad: Uint8Array }).pad[0]).toBe(299 % 256);
    // a small message goes whole; a fragment out of order breaks its message
    expect(codec.encodeFrames(0, { type: 'hb' })).toHaveLength(1);
    const second = codec.decode(frames[1]!);
    if (typeof second === 'string' || second.msg.type !== 'frag') throw new Error('not a fragment');
    expect(new Reassembly().add(1, second.msg)).toBe('broken');
    expect(FRAGMENT_BYTES).toBeLessThan(MAX_FRAME_BYTES);
  });


  it('a frame with the wrong secret is refused from its header, before it is decoded', () => {
    const mine = new Codec(Buffer.alloc(16, 1), 2);
    const theirs = new Codec(Buffer.alloc(16, 2), 2);
    const frame = theirs.encode(0, { type: 'hb' });
    expect(mine.decode(frame)).toBe('secret');
    // the header is checked first: what follows it is never unpacked (here: not msgpack at all)
    const garbage = Buffer.concat([frame.subarray(0, 20), Buffer.from([0xc1, 0xc1, 0xc1])]);
    expect(mine.decode(garbage)).toBe('secret');
    expect(typeof theirs.decode(garbage)).toBe('string'); // with the right secret it is unpacked, and refused
    expect(mine.decode(Buffer.from([0x95, 99]))).toBe('malformed');
    expect(mine.decode(Buffer.concat([Buffer.from([0x95, 99]), Buffer.alloc(30)]))).toBe('version');
  });
});
