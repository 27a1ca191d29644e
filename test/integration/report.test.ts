/**
 * --report FILE: one line per entry of SRC (and per entry --delete removed), sorted by
 * path bytes, whose actions agree with what the copy did (treecmp, the --json counters),
 * written by every rank to its own part and joined by rank 0; the parts are gone at the
 * end, also when the job was stopped with SIGTERM.
 *
 * SRC is read through latfs, which fails the open of one file with EACCES (root reads
 * any mode-000 file, so permissions alone would not make it unreadable here).
 */
import { existsSync, mkdirSync, readFileSync, readdirSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { lastJson, scratch, sleep, start } from '../helpers/run.js';
import { fcp, fcpBin, makeTree, treecmp, walk } from '../helpers/trees.js';
import { mountLatfs, unmountAll } from '../helpers/latfs.js';

interface Summary {
  files: number; errors: number; excluded: number; deleted: number; filesCopied: number; filesUpToDate: number; exitCode: number;
}

interface Line { action: string; path: Buffer; error: string | null }

/** The inverse of showPath (src/model/paths.ts): `\\`, `\n`, `\t`, `\xHH`, the rest UTF-8. */
function unescape(s: string): Buffer {
  const out: Buffer[] = [];
  let plain = '';
  const take = () => {
    if (plain) out.push(Buffer.from(plain, 'utf8'));
    plain = '';
  };
  for (let i = 0; i < s.length; i++) {
    if (s[i] !== '\\') {
      plain += s[i];
      continue;
    }
    const c = s[++i];
    if (c === '\\') plain += '\\';
    else if (c === 'n') plain += '\n';
    else if (c === 't') plain += '\t';
    else if (c === 'x') {
      take();
      out.push(Buffer.from([parseInt(s.slice(i + 1, i + 3), 16)]));
      i += 2;
    } else throw new Error(`bad escape in ${s}`);
  }
  take();
  return Buffer.concat(out);
}

function readText(file: string): Line[] {
  const text = readFileSync(file, 'utf8');
  expect(text.endsWith('\n') || text === '').toBe(true);
  return text.split('\n').slice(0, -1).map((l) => {
    const m = /^([+*~=h\-x!]) ([^\t]*)(?:\t(.*))?$/.exec(l);
    expect(m, `report line: ${JSON.stringify(l)}`).not.toBeNull();
    return { action: m![1]!, path: unescape(m![2]!), error: m![3] ?? null };
  });
}

const LETTER: Record<string, string> = { copied: '+', updated: '*', metadata: '~', uptodate: '=', linked: 'h', deleted: '-', excluded: 'x', failed: '!' };

function readJson(file: string): Line[] {
  return readFileSync(file, 'utf8').split('\n').slice(0, -1).map((l) => {
    const o = JSON.parse(l) as { action: string; path?: string; pathHex?: string; error: string | null };
    expect(LETTER[o.action], l).toBeDefined();
    expect(typeof o.path === 'string' || typeof o.pathHex === 'string', l).toBe(true);
    return { action: LETTER[o.action]!, path: o.path !== undefined ? Buffer.from(o.path) : Buffer.from(o.pathHex!, 'hex'), error: o.error };
  });
}

const DOT = Buffer.from('.');
const key = (rel: Buffer) => (rel.length === 0 ? DOT : rel);

/** Lines sorted by path bytes, each path once. */
function expectSortedOnce(lines: Line[]): void {
  for (let i = 1; i < lines.length; i++) {
    expect(Buffer.compare(lines[i - 1]!.path, lines[i]!.path), `${lines[i - 1]!.path} before ${lines[i]!.path}`).toBeLessThan(0);
  }
}

const count = (lines: Line[], action: string, pred: (l: Line) => boolean = () => true) => lines.filter((l) => l.action === action && pred(l)).length;

/** SRC: a few directories of files, a symlink, a name with a newline, one that is not UTF-8, an excluded file, an unreadable one. */
function buildSrc(src: string): void {
  makeTree('small', src, { files: 120, seed: 7 });
  writeFileSync(join(src, 'new\nline.txt'), 'a newline in the name');
  writeFileSync(Buffer.concat([Buffer.from(`${src}/`), Buffer.from([0x6e, 0xff, 0x2e, 0x62, 0x69, 0x6e])]), 'not UTF-8');
  writeFileSync(join(src, 'junk.tmp'), 'excluded');
  mkdirSync(join(src, 'sub'));
  writeFileSync(join(src, 'sub', 'locked.dat'), 'cannot be opened');
  writeFileSync(join(src, 'sub', 'later.dat'), 'version 1');
  symlinkSync('later.dat', join(src, 'sub', 'link'));
  // copied in chunks by several ranks, finished by its owner (with --chunk-size 1M)
  writeFileSync(join(src, 'sub', 'big.bin'), Buffer.alloc(3 * 1024 * 1024 + 5, 7));
}

afterEach(async () => {
  await unmountAll();
});

describe('--report FILE', () => {
  it.each([1, 3])('-np %i: a copy, then --update --delete: every SRC path once, sorted, actions as the summary counts them; parts removed', async (np) => {
    const work = scratch(`report-np${np}`);
    try {
      const back = join(work.dir, 'back');
      buildSrc(join(back, 'src'));
      const m = await mountLatfs(back, ['--fail-open', 'src/sub/locked.dat:EACCES'], 'report');
      const src = m.path('src');
      const dst = join(work.dir, 'dst');
      const reports = join(work.dir, 'reports');
      mkdirSync(reports);
      const rep1 = join(reports, 'first.txt');

      // 1. a fresh copy: everything new ('+'), the excluded file 'x', the unreadable one '!'
      const r1 = await fcp([src, dst, '-np', String(np), '--exclude', '*.tmp', '--no-checkpoint', '--chunk-size', '1M', '--report', rep1, '--json'], { timeoutMs: 120_000 });
      expect(r1.code, r1.stderr).toBe(1);
      const s1 = lastJson<Summary>(r1.stdout);
      const lines1 = readText(rep1);
      expectSortedOnce(lines1);
      const entries = walk(join(back, 'src'));
      const isFile = new Map(entries.map((e) => [key(e.rel).toString('hex'), e.st.isFile()]));
      expect(lines1.map((l) => l.path.toString('hex')).sort()).toEqual(entries.map((e) => key(e.rel).toString('hex')).sort());
      const locked = lines1.find((l) => l.path.equals(Buffer.from('sub/locked.dat')))!;
      expect(locked.action).toBe('!');
      expect(locked.error).toMatch(/Permission denied \(EACCES\)/);
      expect(lines1.find((l) => l.path.equals(Buffer.from('junk.tmp')))!.action).toBe('x');
      expect(lines1.find((l) => l.path.equals(Buffer.from('sub/big.bin')))!.action).toBe('+');
      expect(count(lines1, '!')).toBe(s1.errors);
      expect(count(lines1, 'x')).toBe(s1.excluded);
      expect(count(lines1, '+', (l) => isFile.get(l.path.toString('hex'))!)).toBe(s1.filesCopied);
      expect(lines1.filter((l) => !['+', '!', 'x'].includes(l.action))).toEqual([]);
      // the newline is escaped on its line, the file read back as the copy has it
      expect(readFileSync(rep1, 'utf8')).toContain('+ new\\nline.txt\n');
      expect(readFileSync(rep1, 'utf8')).toContain('+ n\\xff.bin\n');
      const cmp1 = await treecmp(join(back, 'src'), dst);
      expect(cmp1.lines.every((l) => l.startsWith('junk.tmp') || l.startsWith('sub/locked.dat')), cmp1.output).toBe(true);
      expect(readdirSync(reports)).toEqual(['first.txt']);

      // 2. --update --delete, JSON lines: one file changed ('*'), an extra in DST ('-'), the rest '='
      // (through the mount: latfs caches attributes for a second, so a change behind it could go unseen)
      writeFileSync(join(src, 'sub', 'later.dat'), 'version 2, longer');
      utimesSync(join(src, 'sub', 'later.dat'), new Date(), new Date(Date.now() + 10_000));
      writeFileSync(join(dst, 'sub', 'extra.dat'), 'only in DST');
      const rep2 = join(reports, 'second.json');
      // (locked.dat still fails, which keeps --delete's walk guard quiet: it fails at open, not in the walk)
      const r2 = await fcp([src, dst, '-np', String(np), '--exclude', '*.tmp', '--no-checkpoint', '--chunk-size', '1M', '--update', '--delete', '--report', rep2, '--report-format', 'json', '--json'], { timeoutMs: 120_000 });
      expect(r2.code, r2.stderr).toBe(1);
      const s2 = lastJson<Summary>(r2.stdout);
      const lines2 = readJson(rep2);
      expectSortedOnce(lines2);
      expect(lines2.map((l) => l.path.toString('hex')).sort()).toEqual([...entries.map((e) => key(e.rel).toString('hex')), Buffer.from('sub/extra.dat').toString('hex')].sort());
      const action2 = (p: string | Buffer) => lines2.find((l) => l.path.equals(Buffer.from(p)))?.action;
      expect(action2('sub/later.dat')).toBe('*');
      expect(action2('sub/extra.dat')).toBe('-');
      expect(action2('sub/locked.dat')).toBe('!');
      expect(action2('junk.tmp')).toBe('x');
      expect(action2('sub/link')).toBe('=');
      expect(action2('sub/big.bin')).toBe('=');
      expect(action2(Buffer.from([0x6e, 0xff, 0x2e, 0x62, 0x69, 0x6e]))).toBe('=');
      expect(readFileSync(rep2, 'utf8')).toContain('"pathHex":"6eff2e62696e"');
      expect(count(lines2, '-')).toBe(s2.deleted);
      expect(s2.deleted).toBe(1);
      expect(count(lines2, '!')).toBe(s2.errors);
      expect(count(lines2, '*') + count(lines2, '+', (l) => isFile.get(l.path.toString('hex')) === true)).toBe(s2.filesCopied);
      expect(count(lines2, '=', (l) => isFile.get(l.path.toString('hex')) === true)).toBe(s2.filesUpToDate);
      expect(existsSync(join(dst, 'sub', 'extra.dat'))).toBe(false);
      expect(readdirSync(reports).sort()).toEqual(['first.txt', 'second.json']);

      // 3. --update=checksum: a file touched (same content, new mtime) gets its metadata only ('~')
      utimesSync(join(src, 'sub', 'later.dat'), new Date(), new Date(Date.now() + 20_000));
      const rep3 = join(reports, 'third.txt');
      const r3 = await fcp([src, dst, '-np', String(np), '--exclude', '*.tmp', '--no-checkpoint', '--update=checksum', '--report', rep3, '--json'], { timeoutMs: 120_000 });
      expect(r3.code, r3.stderr).toBe(1);
      const s3 = lastJson<Summary>(r3.stdout);
      const lines3 = readText(rep3);
      expectSortedOnce(lines3);
      expect(lines3.find((l) => l.path.equals(Buffer.from('sub/later.dat')))!.action).toBe('~');
      expect(count(lines3, '~')).toBe(s3.filesUpToDate);
      expect(count(lines3, '+', (l) => isFile.get(l.path.toString('hex')) === true) + count(lines3, '*')).toBe(s3.filesCopied);
      const cmp3 = await treecmp(join(back, 'src'), dst);
      expect(cmp3.lines.every((l) => l.startsWith('junk.tmp') || l.startsWith('sub/locked.dat')), cmp3.output).toBe(true);
      expect(readdirSync(reports).sort()).toEqual(['first.txt', 'second.json', 'third.txt']);
    } finally {
      await unmountAll();
      work.cleanup();
    }
  }, 240_000);

  it('a job stopped with SIGTERM (exit 4) still has its report joined: what was done, sorted, no parts left; its --resume lists the rest', async () => {
    const work = scratch('report-term');
    try {
      const back = join(work.dir, 'back');
      makeTree('small', join(back, 'src'), { files: 1500, seed: 3 });
      // SRC through latfs at 2 ms a metadata request: the copy takes long enough to be stopped mid-way
      const m = await mountLatfs(back, ['--meta-us', '2000'], 'report');
      const dst = join(work.dir, 'dst');
      const rep = join(work.dir, 'report.txt');
      const job = start(process.execPath, [fcpBin, m.path('src'), dst, '-np', '3', '--report', rep, '--json']);
      const inDst = () => (existsSync(dst) ? walk(dst).length : 0);
      for (let i = 0; i < 3000 && inDst() < 100; i++) await sleep(20);
      // the walk is over and files are landing in DST
      expect(existsSync(dst)).toBe(true);
      job.child.kill('SIGTERM');
      const r = await job.done;
      expect(r.code, r.stderr).toBe(4);
      const s = lastJson<Summary>(r.stdout);
      expect(s.exitCode).toBe(4);
      const lines = readText(rep);
      expectSortedOnce(lines);
      expect(lines.length).toBeGreaterThan(0);
      // Every file reported copied is in DST whole; not everything was copied.
      const srcFiles = walk(join(back, 'src')).filter((e) => e.st.isFile()).length;
      const copied = lines.filter((l) => l.action === '+' && !l.path.equals(DOT));
      for (const l of copied) expect(existsSync(join(dst, l.path.toString())), l.path.toString()).toBe(true);
      expect(count(lines, '+', (l) => l.path.toString().endsWith('.dat'))).toBeLessThan(srcFiles);
      expect(readdirSync(work.dir).filter((n) => n.startsWith('report.txt'))).toEqual(['report.txt']);

      // --resume with a report: what the stopped run finished is not listed again; together they list every file
      const rep2 = join(work.dir, 'resumed.txt');
      const r2 = await fcp(['--resume', m.path('src'), dst, '-np', '2', '--report', rep2, '--json'], { timeoutMs: 120_000 });
      expect(r2.code, r2.stderr).toBe(0);
      const s2 = lastJson<Summary & { filesSkipped: number }>(r2.stdout);
      const lines2 = readText(rep2);
      expectSortedOnce(lines2);
      const files2 = lines2.filter((l) => l.action === '+' && l.path.toString().endsWith('.dat'));
      expect(files2.length).toBe(s2.filesCopied);
      expect(s2.filesSkipped).toBeGreaterThan(0);
      expect(files2.length).toBeLessThan(srcFiles);
      const listed = new Set([...copied, ...files2].map((l) => l.path.toString()));
      const all = walk(join(back, 'src')).filter((e) => e.st.isFile()).map((e) => e.rel.toString());
      expect(all.filter((f) => !listed.has(f))).toEqual([]);
      expect((await treecmp(join(back, 'src'), dst)).code).toBe(0);
    } finally {
      await unmountAll();
      work.cleanup();
    }
  }, 180_000);

  it('a stop on a slow file system, where one batch of small files runs for seconds, records every file already in DST: the resume lists only the rest', async () => {
    const work = scratch('report-slow-term');
    try {
      const back = join(work.dir, 'back');
      makeTree('small', join(back, 'src'), { files: 1500, seed: 5 });
      // 8 ms a metadata request: a batch of small files takes seconds, longer than a stop waits
      const m = await mountLatfs(back, ['--meta-us', '8000'], 'report');
      const dst = join(work.dir, 'dst');
      const rep = join(work.dir, 'report.txt');
      const job = start(process.execPath, [fcpBin, m.path('src'), dst, '-np', '3', '--report', rep, '--json']);
      const datInDst = () => (existsSync(dst) ? walk(dst).filter((e) => e.st.isFile() && e.rel.toString().endsWith('.dat')) : []);
      for (let i = 0; i < 3000 && datInDst().length < 100; i++) await sleep(20);
      job.child.kill('SIGTERM');
      const r = await job.done;
      expect(r.code, r.stderr).toBe(4);
      // Every file in DST once the job is gone was finished and is reported copied (not left for a resume to redo as '*').
      const copied = new Set(readText(rep).filter((l) => l.action === '+').map((l) => l.path.toString()));
      const landed = datInDst().map((e) => e.rel.toString());
      expect(landed.length).toBeGreaterThan(0);
      expect(landed.filter((f) => !copied.has(f))).toEqual([]);
      const rep2 = join(work.dir, 'resumed.txt');
      const r2 = await fcp(['--resume', m.path('src'), dst, '--report', rep2, '--json'], { timeoutMs: 120_000 });
      expect(r2.code, r2.stderr).toBe(0);
      const lines2 = readText(rep2).filter((l) => l.path.toString().endsWith('.dat'));
      expect(lines2.filter((l) => l.action !== '+')).toEqual([]);
      expect(lines2.length + landed.length).toBe(walk(join(back, 'src')).filter((e) => e.st.isFile() && e.rel.toString().endsWith('.dat')).length);
    } finally {
      await unmountAll();
      work.cleanup();
    }
  }, 180_000);
});
