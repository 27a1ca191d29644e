// The addon's fsum jobs (hashRange, hashFiles) against the spec in src/checksum/hasher.ts.
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { COPY_OPS, loadNative } from '../../src/native/loader.js';
import { LEAF, digestOfBuffer, fileDigest, fromHex, initHashing, toHex } from '../../src/checksum/hasher.js';
import { entryDigest } from '../../src/checksum/entry-digest.js';

const native = loadNative();
const base = fs.existsSync('/dev/shm') ? '/dev/shm' : os.tmpdir();
const MiB = LEAF;
let dir: string;
/** file name -> contents */
const files = new Map<string, Buffer>();

beforeAll(async () => {
  await initHashing({ prefer: 'wasm' }); // the reference values come from the JS side alone
  dir = fs.mkdtempSync(path.join(base, 'fsumspeed-native-hash-'));
  fs.mkdirSync(path.join(dir, 'sub'));
  for (const [name, size] of [['empty', 0], ['one', 1], ['leaf', MiB], ['leaf+1', MiB + 1], ['odd', 3 * MiB + 12345], ['sub/f', 77777]] as const) {
    const data = randomBytes(size);
    fs.writeFileSync(path.join(dir, name), data);
    files.set(name, data);
  }
  fs.symlinkSync(path.join(dir, 'sub'), path.join(dir, 'link'));
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

const whole = (name: string) => Buffer.from(path.join(dir, name));

describe.skipIf(!native)('hashRange', () => {
  it('partials of any leaf-aligned cut add up to the whole-file digest', async () => {
    const data = files.get('odd')!;
    for (const cuts of [[0, data.length], [0, MiB, 3 * MiB, data.length], [0, 2 * MiB, data.length]]) {
      const partials: bigint[] = [];
      for (let k = 0; k + 1 < cuts.length; k++) {
        const { status, partial } = await native!.hashRange(whole('odd'), cuts[k]!, cuts[k + 1]! - cuts[k]!);
        expect([...status]).toEqual([0, 0]);
        partials.push(fromHex(partial.toString('hex')));
      }
      expect(toHex(fileDigest(partials, data.length))).toBe(toHex(digestOfBuffer(data)));
    }
  });

  it('beneath an anchor: the same digest; a symlink on the way is refused (ELOOP)', async () => {
    const anchor = native!.openAnchor(Buffer.from(dir));
    try {
      const data = files.get('sub/f')!;
      const ok = await native!.hashRange(anchor, Buffer.from('sub/f'), 0, data.length);
      expect(ok.status[0]).toBe(0);
      expect(toHex(fileDigest([fromHex(ok.partial.toString('hex'))], data.length))).toBe(toHex(digestOfBuffer(data)));
      const bad = await native!.hashRange(anchor, Buffer.from('link/f'), 0, data.length);
      expect(bad.status[0]).toBe(-os.constants.errno.ELOOP);
      expect(COPY_OPS[bad.status[1]!]).toBe('open');
    } finally {
      native!.closeFd(anchor);
    }
  });

  it('reports a missing file (open) and one shorter than the range (-1000, read)', async () => {
    const gone = await native!.hashRange(whole('nope'), 0, 10);
    expect([...gone.status]).toEqual([-os.constants.errno.ENOENT, 1]);
    const short = await native!.hashRange(whole('leaf+1'), MiB, 2);
    expect(short.status[0]).toBe(-1000);
    expect(COPY_OPS[short.status[1]!]).toBe('copy');
  });

  it('refuses a range that does not start on a leaf', () => {
    expect(() => native!.hashRange(whole('odd'), MiB / 2, 10)).toThrow(/multiple of 1 MiB/);
    expect(() => native!.hashRange(whole('odd'), -MiB, 10)).toThrow(/multiple of 1 MiB/);
  });
});

describe.skipIf(!native)('hashFiles', () => {
  it('gives each file its content digest (sizeTerm + leaf terms), whole paths and beneath an anchor', async () => {
    const names = ['empty', 'one', 'leaf', 'leaf+1', 'odd', 'sub/f'];
    const anchor = native!.openAnchor(Buffer.from(dir));
    try {
      const anchors = Int32Array.from(names, (_, i) => (i % 2 ? anchor : -1));
      const paths = names.map((n, i) => (i % 2 ? Buffer.from(n) : whole(n)));
      const sizes = Float64Array.from(names, (n) => files.get(n)!.length);
      const { status, digests } = await native!.hashFiles(anchors, paths, sizes);
      expect([...status]).toEqual(new Array(2 * names.length).fill(0));
      names.forEach((n, i) => expect(digests.subarray(16 * i, 16 * i + 16).toString('hex'), n).toBe(toHex(digestOfBuffer(files.get(n)!))));
    } finally {
      native!.closeFd(anchor);
    }
  });

  it('a failing file gets its errno and op and a zero digest; the others still hash', async () => {
    const data = files.get('one')!;
    const { status, digests } = await native!.hashFiles(
      Int32Array.of(-1, -1, -1),
      [whole('nope'), whole('one'), whole('leaf')],
      Float64Array.of(5, data.length, MiB + 7), // 'leaf' is shorter than the walk saw
    );
    expect([status[0], status[1]]).toEqual([-os.constants.errno.ENOENT, 1]);
    expect(digests.subarray(0, 16).equals(Buffer.alloc(16))).toBe(true);
    expect([status[2], status[3]]).toEqual([0, 0]);
    expect(digests.subarray(16, 32).toString('hex')).toBe(toHex(digestOfBuffer(data)));
    expect(status[4]).toBe(-1000);
    expect(digests.subarray(32, 48).equals(Buffer.alloc(16))).toBe(true);
  });

  it('with digest roots and relative paths, also each file\'s entry digest (as entryDigest without --meta); zeros where a file failed', async () => {
    const names = ['empty', 'one', 'odd', 'sub/f'];
    const digestRoots = Int32Array.of(0, 3, 1, 0);
    const rels = names.map((n, i) => Buffer.from(i === 3 ? 'deeper/sub/f' : n));
    const { status, digests, entries } = await native!.hashFiles(
      Int32Array.from([...names, 'nope'], () => -1), [...names.map(whole), whole('nope')], Float64Array.from([...names, 'one'], (n) => files.get(n)!.length),
      Int32Array.from([...digestRoots, 0]), [...rels, Buffer.from('nope')],
    );
    names.forEach((n, i) => {
      expect(status[2 * i], n).toBe(0);
      const content = digestOfBuffer(files.get(n)!);
      expect(digests.subarray(16 * i, 16 * i + 16).toString('hex'), n).toBe(toHex(content));
      const want = entryDigest({ root: digestRoots[i]!, path: rels[i]!, kind: 'f', size: files.get(n)!.length, content });
      expect(entries.subarray(16 * i, 16 * i + 16).toString('hex'), n).toBe(toHex(want));
    });
    expect(status[2 * names.length]).toBe(-os.constants.errno.ENOENT);
    expect(entries.subarray(16 * names.length).equals(Buffer.alloc(16))).toBe(true);
  });

  it('validates its arguments', () => {
    expect(() => native!.hashFiles(Int32Array.of(-1), [whole('one')], Float64Array.of(1), Int32Array.of(0, 1), [Buffer.from('one')])).toThrow(/one of each per file/);
    expect(() => native!.hashFiles(Int32Array.of(-1), [whole('one')], Float64Array.of(1), Int32Array.of(-1), [Buffer.from('one')])).toThrow(/one of each per file/);
    expect(() => native!.hashFiles(Int32Array.of(-1), [whole('one')], Float64Array.of(1, 2))).toThrow(/one of each per file/);
    expect(() => native!.hashFiles(Int32Array.of(-1), [whole('one')], Float64Array.of(-1))).toThrow(/one of each per file/);
    expect(() => native!.hashFiles(Int32Array.of(3), [whole('one')], Float64Array.of(1))).toThrow(/relative/);
  });
});
