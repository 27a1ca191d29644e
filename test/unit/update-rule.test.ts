// --update's time rule is written twice, in TypeScript (src/model/update-rule.ts: the walk,
// the file-by-file copy, large files, --dry-run) and in C++ (the native batch's F_UPDATE).
// One table of cases runs through both: each must give the table's answer, so the two
// cannot drift apart.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { COPY_FLAGS, COPY_STATUS, OP_UP_TO_DATE, loadNative } from '../../src/native/loader.js';
import { recordsSameByTime, sameByTime } from '../../src/model/update-rule.js';
import { STAT_RECORD_FIELDS } from '../../src/model/entry.js';

const n = loadNative();
const MTIME = '1700000000.123456789';
const MTIME_NUM: [number, number] = [1_700_000_000, 123_456_789];

/** Set an mtime to the nanosecond (touch -h: never through a symlink). */
function touch(p: string, at: string) {
  const r = spawnSync('touch', ['-h', '-d', `@${at}`, p]);
  if (r.status !== 0) throw new Error(`touch ${p}: ${r.stderr}`);
}

interface Case {
  name: string;
  /** make DST's entry (SRC's is 'hello' with MTIME) */
  dst: (p: string) => void;
  upToDate: boolean;
}

const file = (content: string, at: string) => (p: string) => {
  fs.writeFileSync(p, content);
  touch(p, at);
};

const CASES: Case[] = [
  { name: 'same size and mtime', dst: file('hello', MTIME), upToDate: true },
  { name: 'same size and mtime, other bytes (not read)', dst: file('HELLO', MTIME), upToDate: true },
  { name: 'size differs', dst: file('hello!', MTIME), upToDate: false },
  { name: 'mtime differs by a second', dst: file('hello', '1700000001.123456789'), upToDate: false },
  { name: 'mtime differs by a nanosecond', dst: file('hello', '1700000000.123456788'), upToDate: false },
  { name: 'a directory with the same mtime', dst: (p) => { fs.mkdirSync(p); touch(p, MTIME); }, upToDate: false },
  { name: 'a symlink with the same mtime', dst: (p) => { fs.symlinkSync('hello', p); touch(p, MTIME); }, upToDate: false },
  { name: 'missing', dst: () => {}, upToDate: false },
];

describe.skipIf(!n)('--update time rule: TypeScript and the native batch agree', () => {
  let base: string;
  let src: string;
  let dst: string;
  const names = CASES.map((_c, i) => Buffer.from(`f${i}`));

  beforeAll(() => {
    base = fs.mkdtempSync(path.join(os.tmpdir(), 'fcp-update-rule-'));
    src = path.join(base, 'src');
    dst = path.join(base, 'dst');
    fs.mkdirSync(src);
    fs.mkdirSync(dst);
    CASES.forEach((c, i) => {
      file('hello', MTIME)(path.join(src, `f${i}`));
      c.dst(path.join(dst, `f${i}`));
    });
  });
  afterAll(() => fs.rmSync(base, { recursive: true, force: true }));

  it('each case gives the table\'s answer in TypeScript (on stat records and on facts) and natively', async () => {
    const s = await n!.statAt(Buffer.from(src), names);
    const d = await n!.statAt(Buffer.from(dst), names);
    const ts = CASES.map((_c, i) => recordsSameByTime(s, d, i));
    const facts = CASES.map((_c, i) => {
      const o = i * STAT_RECORD_FIELDS;
      if (d[o] !== 0) return false; // no DST entry: nothing to compare
      return sameByTime({ size: s[o + 4]!, mtime: [s[o + 12]!, s[o + 13]!] }, { mode: d[o + 1]!, size: d[o + 4]!, mtime: [d[o + 12]!, d[o + 13]!] });
    });
    // The native batch, told the source's size and mtime, with --update's flag.
    const nums = new Float64Array(CASES.length * 10);
    CASES.forEach((_c, i) => nums.set([0, 5, 0o100644, 0, 0, ...MTIME_NUM, ...MTIME_NUM, -1], i * 10));
    const { status } = await n!.copyFiles([Buffer.from(src), Buffer.from(dst)], names, nums, COPY_FLAGS.UPDATE);
    const native = CASES.map((_c, i) => status[i * COPY_STATUS] === 0 && status[i * COPY_STATUS + 1] === OP_UP_TO_DATE);
    const want = CASES.map((c) => c.upToDate);
    const row = (v: boolean[]) => Object.fromEntries(CASES.map((c, i) => [c.name, v[i]]));
    expect(row(ts)).toEqual(row(want));
    expect(row(facts)).toEqual(row(want));
    expect(row(native)).toEqual(row(want));
  });
});
