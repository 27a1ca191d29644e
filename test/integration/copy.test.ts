/**
 * fcp SRC... DST end to end: real rank processes copy real trees made by mktree, and
 * treecmp (an independent checker) compares the result entry by entry: type, content,
 * holes, modes, owners, ns mtimes, symlink targets, hard-link groups, user xattrs.
 *
 * Trees come from test/helpers/trees.ts at reduced sizes (see PROFILES there).
 */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, linkSync, lstatSync, mkdirSync, readdirSync, readFileSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { isRoot, lastJson, repoRoot, run, scratch } from '../helpers/run.js';
import { PROFILES, countTree, entryDiffs, envWith, failureLines, fcp, fcpBin, mtimeMismatchesMicro, stderrLines, tree, treecmp, walk } from '../helpers/trees.js';

interface Summary {
  files: number; dirs: number; symlinks: number; specials: number; bytes: number; seconds: number;
  bytesPerSecond: number; errors: number; chunkSize: number;
  ranks: { files: number; bytes: number; chunks: number; steals: number }[];
}

const hasMpirun = spawnSync('sh', ['-c', 'command -v mpirun']).status === 0;
const profiles = Object.keys(PROFILES);

/** Copy with the addon: exit 0, no error lines, the addon really loaded, treecmp clean, roots alike. */
async function copyExact(src: string, dst: string, args: string[]): Promise<Summary> {
  const r = await fcp([src, dst, ...args, '--json'], { env: envWith() });
  expect(r.code, r.stderr).toBe(0);
  expect(r.stderr).not.toContain('native addon not loaded');
  expect(failureLines(r.stderr), r.stderr).toEqual([]);
  const cmp = await treecmp(src, dst);
  expect(cmp.lines, cmp.output).toEqual([]);
  expect(cmp.differences).toBe(0);
  expect(cmp.code).toBe(0);
  expect(entryDiffs(src, dst), 'root directory metadata').toEqual([]);
  return lastJson<Summary>(r.stdout);
}

/** A directory of many small random files: `dirs` x `perDir`. */
function manyFiles(root: string, dirs: number, perDir: number): void {
  for (let d = 0; d < dirs; d++) {
    const dir = join(root, `d${String(d).padStart(2, '0')}`);
    mkdirSync(dir, { recursive: true });
    for (let f = 0; f < perDir; f++) writeFileSync(join(dir, `f${String(f).padStart(4, '0')}`), randomBytes(1 + ((d * 131 + f * 17) % 700)));
  }
}

describe('copy: identical trees with the native addon', () => {
  for (const profile of profiles) {
    for (const np of [1, 2, 4, 7]) {
      it(`${profile} at -np ${np}`, async () => {
        const src = tree(profile);
        const s = scratch(`copy-${profile}-${np}`);
        try {
          const out = await copyExact(src, join(s.dir, 'out'), ['-np', String(np)]);
          expect(out.ranks).toHaveLength(np);
          expect(out.errors).toBe(0);
        } finally {
          s.cleanup();
        }
      });
    }
  }
});

describe('copy: pure-Node fallback (FCP_NO_NATIVE=1)', () => {
  for (const profile of profiles) {
    for (const np of [1, 4]) {
      it(`${profile} at -np ${np}: identical but for xattrs, times to 1 µs; says what it skips, once`, async () => {
        const src = tree(profile);
        const s = scratch(`fallback-${profile}-${np}`);
        try {
          const dst = join(s.dir, 'out');
          // --unsafe-paths: as root, fcp refuses to run without the addon (symlink-swap.test.ts)
          const r = await fcp([src, dst, '-np', String(np), '--json', '--unsafe-paths'], { env: envWith({ FCP_NO_NATIVE: '1' }) });
          expect(r.code, r.stderr).toBe(0);
          expect(failureLines(r.stderr), r.stderr).toEqual([]);
          const lines = stderrLines(r.stderr).filter((l) => l.includes('native addon'));
          expect(lines, r.stderr).toHaveLength(1);
          expect(lines[0]).toMatch(/^fcp: native addon not loaded: /);
          expect(lines[0]).toMatch(/extended attributes/);
          expect(lines[0]).toMatch(/timestamps/);
          expect(lines[0]).toMatch(/named pipes/);
          // Holes, modes, owners, links, content: all still checked; xattrs and ns left out.
          const cmp = await treecmp(src, dst, ['--no-xattr', '--no-mtime']);
          expect(cmp.lines, cmp.output).toEqual([]);
          expect(cmp.differences).toBe(0);
          expect.soft(mtimeMismatchesMicro(src, dst), 'mtimes within 1 µs').toEqual([]);
          expect.soft(entryDiffs(src, dst, 999n), 'root directory metadata').toEqual([]);
          expect(lastJson<Summary>(r.stdout).ranks).toHaveLength(np);
        } finally {
          s.cleanup();
        }
      });
    }
  }
});

describe('copy: under a launcher', () => {
  for (const profile of ['features', 'mixed']) {
    it.runIf(hasMpirun)(`${profile} under mpirun -np 4`, async () => {
      const src = tree(profile);
      const s = scratch(`mpirun-${profile}`);
      try {
        const dst = join(s.dir, 'out');
        const rdv = join(s.dir, 'rdv');
        mkdirSync(rdv);
        const args = ['--oversubscribe', ...(isRoot ? ['--allow-run-as-root'] : []), '-np', '4', process.execPath, fcpBin, src, dst, '--rendezvous', rdv, '--json'];
        const r = await run('mpirun', args, { timeoutMs: 110_000, env: envWith(), cwd: repoRoot });
        expect(r.code, r.stderr).toBe(0);
        expect(failureLines(r.stderr), r.stderr).toEqual([]);
        const out = lastJson<Summary>(r.stdout);
        expect(out.ranks).toHaveLength(4); // the launcher's 4 ranks formed one job
        const cmp = await treecmp(src, dst);
        expect(cmp.lines, cmp.output).toEqual([]);
        expect(cmp.differences).toBe(0);
        expect(entryDiffs(src, dst)).toEqual([]);
      } finally {
        s.cleanup();
      }
    });
  }
});

describe('copy: targets (cp -r semantics)', () => {
  it('several SRC into an existing DST directory land as DST/basename each', async () => {
    const deep = tree('deep');
    const small = tree('small');
    const s = scratch('multi');
    try {
      const file = join(s.dir, 'single.bin');
      writeFileSync(file, randomBytes(300_000));
      utimesSync(file, new Date('2001-02-03T04:05:06.789Z'), new Date('2001-02-03T04:05:06.789Z'));
      const dst = join(s.dir, 'dst');
      mkdirSync(dst);
      writeFileSync(join(dst, 'unrelated'), 'keep me');
      const r = await fcp([deep, small, file, dst, '-np', '3', '--json'], { env: envWith() });
      expect(r.code, r.stderr).toBe(0);
      expect(readdirSync(dst).sort()).toEqual([basename(deep), basename(small), 'single.bin', 'unrelated'].sort());
      expect(readFileSync(join(dst, 'unrelated'), 'utf8')).toBe('keep me');
      for (const t of [deep, small]) {
        const cmp = await treecmp(t, join(dst, basename(t)));
        expect(cmp.lines, cmp.output).toEqual([]);
        expect(cmp.differences).toBe(0);
        expect(entryDiffs(t, join(dst, basename(t)))).toEqual([]);
      }
      expect(entryDiffs(file, join(dst, 'single.bin'))).toEqual([]);
      const out = lastJson<Summary>(r.stdout);
      expect(out.files).toBe(countTree(deep).files + countTree(small).files + 1);
    } finally {
      s.cleanup();
    }
  });

  it('DST that does not exist, with one SRC, becomes the copy (not DST/basename)', async () => {
    const src = tree('deep');
    const s = scratch('newdst');
    try {
      const dst = join(s.dir, 'brand-new');
      await copyExact(src, dst, ['-np', '2']);
      expect(readdirSync(dst).sort()).toEqual(readdirSync(src).sort());
      expect(existsSync(join(dst, basename(src)))).toBe(false);
    } finally {
      s.cleanup();
    }
  });

  it('SRC a single file: to a new name, and into an existing directory', async () => {
    const s = scratch('onefile');
    try {
      const file = join(s.dir, 'one.dat');
      writeFileSync(file, randomBytes(5 * 1024 * 1024 + 17), { mode: 0o640 });
      utimesSync(file, 1_000_000_000.123456, 1_100_000_000.654321);
      const named = join(s.dir, 'copy.dat');
      const r1 = await fcp([file, named, '-np', '2', '--chunk-size', '1M'], { env: envWith() });
      expect(r1.code, r1.stderr).toBe(0);
      expect(entryDiffs(file, named)).toEqual([]);
      const dir = join(s.dir, 'into');
      mkdirSync(dir);
      const r2 = await fcp([file, dir, '-np', '2'], { env: envWith() });
      expect(r2.code, r2.stderr).toBe(0);
      expect(readdirSync(dir)).toEqual(['one.dat']);
      expect(entryDiffs(file, join(dir, 'one.dat'))).toEqual([]);
    } finally {
      s.cleanup();
    }
  });

  it('re-copy onto an existing copy: exit 0, still identical (features tree, read-only dirs included)', async () => {
    const src = tree('features');
    const s = scratch('recopy');
    try {
      const parent = join(s.dir, 'parent');
      mkdirSync(parent);
      const copy = join(parent, basename(src));
      for (let i = 0; i < 2; i++) {
        const r = await fcp([src, parent, '-np', '3'], { env: envWith() });
        expect(r.code, `run ${i + 1}: ${r.stderr}`).toBe(0);
        expect(failureLines(r.stderr), r.stderr).toEqual([]);
        expect(readdirSync(parent)).toEqual([basename(src)]);
        const cmp = await treecmp(src, copy);
        expect(cmp.lines, `run ${i + 1}: ${cmp.output}`).toEqual([]);
        expect(entryDiffs(src, copy)).toEqual([]);
      }
    } finally {
      s.cleanup();
    }
  });

  it('re-copy overwrites files that differ in DST (cp -a semantics)', async () => {
    const src = tree('small');
    const s = scratch('overwrite');
    try {
      const parent = join(s.dir, 'parent');
      mkdirSync(parent);
      const copy = join(parent, basename(src));
      const r1 = await fcp([src, parent, '-np', '2'], { env: envWith() });
      expect(r1.code, r1.stderr).toBe(0);
      const files = walk(src).filter((e) => e.st.isFile() && e.st.size > 10n).map((e) => e.rel.toString());
      writeFileSync(join(copy, files[0]!), 'not the original'); // other size
      writeFileSync(join(copy, files[1]!), randomBytes(Number(lstatSync(join(src, files[1]!)).size))); // same size
      const r2 = await fcp([src, parent, '-np', '2'], { env: envWith() });
      expect(r2.code, r2.stderr).toBe(0);
      const cmp = await treecmp(src, copy);
      expect(cmp.lines, cmp.output).toEqual([]);
      expect(cmp.differences).toBe(0);
    } finally {
      s.cleanup();
    }
  });
});

describe('copy: content and names', () => {
  it('--chunk-size 1M is honoured on a 10 MiB file: chunks counted, content identical', async () => {
    const s = scratch('chunks');
    try {
      const src = join(s.dir, 'src');
      mkdirSync(src);
      writeFileSync(join(src, 'ten.bin'), randomBytes(10 * 1024 * 1024 + 4321));
      writeFileSync(join(src, 'tiny.txt'), 'tiny');
      const out = await copyExact(src, join(s.dir, 'dst'), ['-np', '4', '--chunk-size', '1M']);
      expect(out.chunkSize).toBe(1024 * 1024);
      const chunks = out.ranks.reduce((n, r) => n + r.chunks, 0);
      expect(chunks).toBeGreaterThanOrEqual(11); // ten.bin in 11 pieces (+ tiny.txt)
      expect(readdirSync(join(s.dir, 'dst')).filter((n) => n.startsWith('.fcp-part'))).toEqual([]);
    } finally {
      s.cleanup();
    }
  });

  it('255-byte names and non-UTF-8 names (files, directories, a chunked file, symlink targets)', async () => {
    const s = scratch('names');
    try {
      const src = Buffer.from(join(s.dir, 'src'));
      const p = (...parts: (string | Buffer)[]) => Buffer.concat([src, ...parts.flatMap((x) => [Buffer.from('/'), Buffer.isBuffer(x) ? x : Buffer.from(x)])]);
      mkdirSync(src);
      const long = 'L'.repeat(251) + '.dat'; // 255 bytes, the NAME_MAX of Linux file systems
      const longDir = 'D'.repeat(255);
      const bad = Buffer.from([0x62, 0x61, 0x64, 0x2d, 0xff, 0xfe, 0x2e, 0x64, 0x61, 0x74]); // "bad-\xff\xfe.dat"
      const badDir = Buffer.from([0x64, 0x69, 0x72, 0x2d, 0xc3, 0x28]); // "dir-\xc3(" (invalid UTF-8)
      const longMultibyte = Buffer.concat([Buffer.from('é'.repeat(127)), Buffer.from([0x80])]); // 255 bytes, ends mid-sequence
      writeFileSync(p(long), randomBytes(1000));
      mkdirSync(p(longDir));
      writeFileSync(p(longDir, long), randomBytes(3 * 1024 * 1024 + 5)); // chunked: its .part name must fit
      writeFileSync(p(bad), randomBytes(2000));
      mkdirSync(p(badDir));
      writeFileSync(p(badDir, bad), randomBytes(50));
      writeFileSync(p(badDir, longMultibyte), randomBytes(70));
      symlinkSync(bad, p(badDir, 'link-to-bad'));
      const out = await copyExact(src.toString(), join(s.dir, 'dst'), ['-np', '2', '--chunk-size', '1M']);
      expect(out.files).toBe(5);
      expect(lstatSync(join(s.dir, 'dst', longDir, long)).size).toBe(3 * 1024 * 1024 + 5);
    } finally {
      s.cleanup();
    }
  });

  it('a FIFO is copied as a FIFO (native addon)', async () => {
    const s = scratch('fifo');
    try {
      const src = join(s.dir, 'src');
      mkdirSync(join(src, 'sub'), { recursive: true });
      expect(spawnSync('mkfifo', ['-m', '0640', join(src, 'sub', 'pipe')]).status).toBe(0);
      utimesSync(join(src, 'sub', 'pipe'), 1_234_567_890, 1_234_567_890);
      writeFileSync(join(src, 'sub', 'file'), 'x');
      const out = await copyExact(src, join(s.dir, 'dst'), ['-np', '2']);
      expect(lstatSync(join(s.dir, 'dst', 'sub', 'pipe')).isFIFO()).toBe(true);
      expect(out.specials).toBe(1);
    } finally {
      s.cleanup();
    }
  });

  it('hard-link groups spread over many directories and ranks (-np 4), a chunked file among them', async () => {
    const s = scratch('hardlinks');
    try {
      const src = join(s.dir, 'src');
      manyFiles(src, 16, 150);
      // 40 pairs, each joining a file to a name in a far directory; one triple; one 3 MiB
      // file (chunked at 1M) with a second name.
      for (let i = 0; i < 40; i++) {
        const a = join(src, `d${String(i % 16).padStart(2, '0')}`, `f${String(i).padStart(4, '0')}`);
        linkSync(a, join(src, `d${String((i + 8) % 16).padStart(2, '0')}`, `link-${i}`));
      }
      linkSync(join(src, 'd03', 'f0100'), join(src, 'd09', 'triple-2'));
      linkSync(join(src, 'd03', 'f0100'), join(src, 'd14', 'triple-3'));
      writeFileSync(join(src, 'd05', 'big'), randomBytes(3 * 1024 * 1024 + 1));
      linkSync(join(src, 'd05', 'big'), join(src, 'd12', 'big-too'));
      const dst = join(s.dir, 'dst');
      const out = await copyExact(src, dst, ['-np', '4', '--chunk-size', '1M']);
      expect(lstatSync(join(dst, 'd03', 'f0100')).nlink).toBe(3);
      expect(lstatSync(join(dst, 'd05', 'big')).ino).toBe(lstatSync(join(dst, 'd12', 'big-too')).ino);
      for (let i = 0; i < 40; i++) expect(lstatSync(join(dst, `d${String((i + 8) % 16).padStart(2, '0')}`, `link-${i}`)).nlink).toBe(2);
      // The names were spread over the ranks (each pair's two names in far directories).
      expect(out.ranks.filter((r) => r.files > 0).length).toBeGreaterThanOrEqual(2);
    } finally {
      s.cleanup();
    }
  });

  it('without the addon a FIFO is left out as announced, and everything else is copied', async () => {
    const s = scratch('fifo-fallback');
    try {
      const src = join(s.dir, 'src');
      mkdirSync(src);
      expect(spawnSync('mkfifo', [join(src, 'pipe')]).status).toBe(0);
      writeFileSync(join(src, 'file'), 'content');
      const dst = join(s.dir, 'dst');
      const r = await fcp([src, dst, '--json', '--unsafe-paths'], { env: envWith({ FCP_NO_NATIVE: '1' }) });
      expect(r.code, r.stderr).toBe(0);
      expect(failureLines(r.stderr), r.stderr).toEqual([]);
      expect(stderrLines(r.stderr).filter((l) => l.startsWith('fcp: native addon not loaded:') && l.includes('named pipes'))).toHaveLength(1);
      expect(readdirSync(dst).filter((n) => n !== 'pipe')).toEqual(['file']);
      expect(existsSync(join(dst, 'pipe')) && !lstatSync(join(dst, 'pipe')).isFIFO()).toBe(false); // no impostor
      expect(readFileSync(join(dst, 'file'), 'utf8')).toBe('content');
    } finally {
      s.cleanup();
    }
  });
});

describe('copy: --json summary', () => {
  for (const [profile, np] of [['small', 1], ['small', 3], ['mixed', 4], ['features', 2], ['features', 5]] as const) {
    it(`${profile} at -np ${np}: totals, one entry per rank, ranks' bytes add up to bytes`, async () => {
      const src = tree(profile);
      const s = scratch(`json-${profile}-${np}`);
      try {
        const out = await copyExact(src, join(s.dir, 'out'), ['-np', String(np)]);
        const want = countTree(src);
        expect({ files: out.files, dirs: out.dirs, symlinks: out.symlinks, specials: out.specials }).toEqual(want);
        expect(out.errors).toBe(0);
        expect(out.seconds).toBeGreaterThan(0);
        expect(out.chunkSize).toBeGreaterThanOrEqual(4 * 1024 * 1024); // adaptive default: at least 4 MiB
        expect(out.ranks).toHaveLength(np);
        for (const r of out.ranks) {
          for (const k of ['files', 'bytes', 'chunks', 'steals'] as const) {
            expect(Number.isInteger(r[k]) && r[k] >= 0, `${k} = ${r[k]}`).toBe(true);
          }
        }
        expect.soft(out.ranks.reduce((n, r) => n + r.bytes, 0), 'sum of ranks[].bytes').toBe(out.bytes);
        expect.soft(Math.abs(out.bytesPerSecond - out.bytes / out.seconds) / (out.bytes / out.seconds), 'bytesPerSecond vs bytes / seconds').toBeLessThan(1e-9);
        if (profile !== 'features') {
          // No hard links here: every file is copied once, by one rank.
          expect(out.ranks.reduce((n, r) => n + r.files, 0)).toBe(out.files);
          let bytes = 0;
          for (const e of walk(src)) if (e.st.isFile()) bytes += Number(e.st.size);
          expect(out.bytes).toBe(bytes);
        }
      } finally {
        s.cleanup();
      }
    });
  }
});
