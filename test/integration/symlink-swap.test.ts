/**
 * A directory of SRC or DST swapped for a symlink while fcp copies (users write to the
 * trees during a copy; fcp runs as root): nothing outside SRC is read into DST, nothing
 * outside DST is written, and every entry that can no longer be reached is named once,
 * `fcp: cannot <op> '<path>': changed during the copy: a directory became a symlink`,
 * exit 1.
 *
 * The window between the walk and the copy is widened with the copy's slow-item test
 * hook (fcp's hidden --test-slow-copy-ms: every copy item waits before it starts): the swap happens
 * as soon as the mkdir phase has made DST's directories, so the walk is over and the
 * copy items have not started.
 *
 * And without the addon (FCP_NO_NATIVE=1) root is refused: that guarantee needs it.
 */
import { existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, readlinkSync, renameSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { isRoot, scratch, start, type RunResult } from '../helpers/run.js';
import { envWith, fcp, fcpBin, stderrLines, walk } from '../helpers/trees.js';

const FILES = 1500;
// Inside and outside files have the same sizes, so a copy that followed the swapped
// directory would read the outside ones without noticing any change.
const MARKER = 'OUTSIDE';
const names = Array.from({ length: FILES }, (_, i) => `f${String(i).padStart(4, '0')}`);

/** SRC with a directory `victim` of FILES small files and a few other entries; `outside` with the same names, marked. */
function makeTrees(dir: string): { src: string; dst: string; outside: string } {
  const src = join(dir, 'src');
  const outside = join(dir, 'outside');
  mkdirSync(join(src, 'victim', 'sub'), { recursive: true });
  mkdirSync(join(src, 'other'));
  mkdirSync(join(outside, 'sub'), { recursive: true });
  for (const n of names) {
    writeFileSync(join(src, 'victim', n), `inside-${n}\n`);
    writeFileSync(join(outside, n), `${MARKER}${n}\n`);
  }
  writeFileSync(join(src, 'victim', 'sub', 'deep'), 'inside-deep\n');
  writeFileSync(join(outside, 'sub', 'deep'), `${MARKER}deep\n`);
  symlinkSync('target', join(src, 'victim', 'link'));
  symlinkSync('elsewhere', join(outside, 'link'));
  for (let i = 0; i < 20; i++) writeFileSync(join(src, 'other', `o${i}`), `other ${i}\n`);
  return { src, dst: join(dir, 'dst'), outside };
}

/** Run fcp SRC DST; once the mkdir phase has made DST's directories, call swap(). */
async function copyWithSwap(src: string, dst: string, np: number, swap: () => void): Promise<{ r: RunResult; swapped: boolean }> {
  const { done } = start(process.execPath, [fcpBin, src, dst, '-np', String(np), '--test-slow-copy-ms', '400'], { env: envWith() });
  let swapped = false;
  const made = [join(dst, 'victim', 'sub'), join(dst, 'other')];
  const poll = setInterval(() => {
    if (swapped || !made.every((p) => existsSync(p))) return;
    swap();
    swapped = true;
  }, 2);
  const r = await done;
  clearInterval(poll);
  return { r, swapped };
}

/** Every entry under dir (never following a symlink): a file's content, a symlink's target. */
function contents(dir: string): string[] {
  return walk(dir).map((e) => {
    const p = join(dir, e.rel.toString());
    if (e.st.isSymbolicLink()) return `link -> ${readlinkSync(p, 'utf8')}`;
    return e.st.isFile() ? readFileSync(p, 'utf8') : '';
  });
}

const changedLines = (stderr: string) => stderrLines(stderr).filter((l) => /^fcp: cannot [a-z ]+ '.*': changed during the copy: a directory became a symlink/.test(l));

describe.each([1, 3])('a directory swapped for a symlink during the copy (-np %i)', (np) => {
  it('in SRC: nothing from outside SRC lands in DST; the swapped entries are named; exit 1', async () => {
    const s = scratch(`paths-swap-src-${np}`);
    try {
      const { src, dst, outside } = makeTrees(s.dir);
      const { r, swapped } = await copyWithSwap(src, dst, np, () => {
        renameSync(join(src, 'victim'), join(src, 'victim.moved'));
        symlinkSync(outside, join(src, 'victim'));
      });
      expect(swapped, r.stderr).toBe(true);
      expect(r.code, r.stderr).toBe(1);
      // No byte from outside SRC anywhere in DST.
      expect(contents(dst).filter((c) => c.includes(MARKER))).toEqual([]);
      // The entries that could not be reached any more are named, each once, in the one shape:
      // the swap came before any file of victim was copied, so all of them.
      const lines = changedLines(r.stderr);
      expect(lines.length, r.stderr).toBeGreaterThanOrEqual(FILES);
      for (const l of lines) expect(l).toMatch(new RegExp(`'${src}/victim(/[^']*)?'`));
      expect(new Set(lines).size).toBe(lines.length);
      // Everything else was copied.
      expect(readdirSync(join(dst, 'other')).sort()).toEqual(readdirSync(join(src, 'other')).sort());
      // SRC itself is untouched (never written).
      expect(readdirSync(outside).sort()).toEqual([...names, 'link', 'sub'].sort());
    } finally {
      s.cleanup();
    }
  }, 120_000);

  it('in DST: nothing is written outside DST; the swapped entries are named; exit 1', async () => {
    const s = scratch(`paths-swap-dst-${np}`);
    try {
      const { src, dst, outside } = makeTrees(s.dir);
      const before = walk(outside).map((e) => [e.rel.toString(), e.st.mode, e.st.size, e.st.mtimeNs, e.st.uid].join(' ')).sort();
      const outsideDirBefore = statSync(outside);
      const { r, swapped } = await copyWithSwap(src, dst, np, () => {
        renameSync(join(dst, 'victim'), join(dst, 'victim.moved'));
        symlinkSync(outside, join(dst, 'victim'));
      });
      expect(swapped, r.stderr).toBe(true);
      expect(r.code, r.stderr).toBe(1);
      // The directory outside DST is exactly as it was: no file created, truncated, chmod'ed or touched.
      const after = walk(outside).map((e) => [e.rel.toString(), e.st.mode, e.st.size, e.st.mtimeNs, e.st.uid].join(' ')).sort();
      expect(after).toEqual(before);
      const outsideDirAfter = statSync(outside);
      expect([outsideDirAfter.mode, outsideDirAfter.mtimeMs]).toEqual([outsideDirBefore.mode, outsideDirBefore.mtimeMs]);
      expect(readFileSync(join(outside, names[0]!), 'utf8')).toContain(MARKER);
      const lines = changedLines(r.stderr);
      expect(lines.length, r.stderr).toBeGreaterThanOrEqual(FILES);
      for (const l of lines) expect(l).toMatch(new RegExp(`'${dst}/victim(/[^']*)?'`));
      // The swap itself is left alone: still a symlink, to where it pointed.
      expect(lstatSync(join(dst, 'victim')).isSymbolicLink()).toBe(true);
      expect(readdirSync(join(dst, 'other')).sort()).toEqual(readdirSync(join(src, 'other')).sort());
    } finally {
      s.cleanup();
    }
  }, 120_000);
});

describe('a directory swapped for a symlink between a stopped copy and its --resume', () => {
  it('the resume reuses the walk but reads nothing from outside SRC; the swapped entries are named; exit 1', async () => {
    const s = scratch('paths-swap-resume');
    try {
      const { src, dst, outside } = makeTrees(s.dir);
      const { child, done } = start(process.execPath, [fcpBin, src, dst, '-np', '2', '--test-slow-copy-ms', '400'], { env: envWith() });
      // stopped once the walk is over and DST's directories are made
      const poll = setInterval(() => {
        if (existsSync(join(dst, 'victim', 'sub')) && existsSync(join(dst, 'other'))) {
          clearInterval(poll);
          child.kill('SIGTERM');
        }
      }, 2);
      const first = await done;
      clearInterval(poll);
      expect(first.code, first.stderr).toBe(4);
      renameSync(join(src, 'victim'), join(src, 'victim.moved'));
      symlinkSync(outside, join(src, 'victim'));
      const r = await fcp([src, dst, '--resume', '-np', '2']);
      expect(r.code, r.stderr).toBe(1);
      expect(contents(dst).filter((c) => c.includes(MARKER))).toEqual([]);
      const lines = changedLines(r.stderr);
      expect(lines.length, r.stderr).toBeGreaterThanOrEqual(FILES);
      for (const l of lines) expect(l).toMatch(new RegExp(`'${src}/victim(/[^']*)?'`));
      expect(readdirSync(join(dst, 'other')).sort()).toEqual(readdirSync(join(src, 'other')).sort());
    } finally {
      s.cleanup();
    }
  }, 120_000);
});

describe.skipIf(!isRoot)('as root without the addon', () => {
  it('refuses with one line and exit 2, writing nothing; --unsafe-paths copies anyway', async () => {
    const s = scratch('paths-nonative');
    try {
      const src = join(s.dir, 'src');
      mkdirSync(src);
      writeFileSync(join(src, 'f'), 'x');
      const dst = join(s.dir, 'dst');
      const refused = await fcp([src, dst], { env: envWith({ FCP_NO_NATIVE: '1' }) });
      expect(refused.code, refused.stderr).toBe(2);
      expect(stderrLines(refused.stderr)).toHaveLength(1);
      expect(refused.stderr).toMatch(/^fcp: refusing to run as root without the native addon .*--unsafe-paths/);
      expect(readdirSync(s.dir).sort()).toEqual(['src']); // no DST, no checkpoint, no rendezvous
      const r = await fcp([src, dst, '--unsafe-paths', '-q'], { env: envWith({ FCP_NO_NATIVE: '1' }) });
      expect(r.code, r.stderr).toBe(0);
      expect(readFileSync(join(dst, 'f'), 'utf8')).toBe('x');
      expect(existsSync(join(dst, 'f'))).toBe(true);
    } finally {
      s.cleanup();
    }
  });
});
