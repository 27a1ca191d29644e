/**
 * A side of a job (src/io/side.ts) behaves the same whichever implementation openSide
 * chose: anchored beneath the roots' directory fds (the addon) or by whole path (node:fs,
 * no addon). The same checks run against both on a real temp tree; what only the anchored
 * side promises (no symlink in any component) and what only the path side lacks follow.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadNative } from '../../src/native/loader.js';
import { openSide, type Side } from '../../src/io/side.js';

const base = fs.existsSync('/dev/shm') ? '/dev/shm' : os.tmpdir();
const native = loadNative({ reload: true });
const B = (s: string) => Buffer.from(s);
const { O_CREAT, O_EXCL, O_RDONLY, O_WRONLY } = fs.constants;

/** The rejection of p, for its code and path. */
async function failure(p: Promise<unknown>): Promise<NodeJS.ErrnoException> {
  const e = await p.then(() => null, (err: NodeJS.ErrnoException) => err);
  if (!e) throw new Error('expected a failure');
  return e;
}

const impls = [
  { name: 'path side (no addon)', native: null },
  ...(native ? [{ name: 'anchored side (the addon)', native }] : []),
];

describe.each(impls)('$name', ({ native: addon }) => {
  let dir: string;
  let root: string;
  let side: Side;
  const at = (rel: string) => path.join(root, rel);
  const P = (rel: string) => B(at(rel));

  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(base, 'side-unit-'));
    root = path.join(dir, 'root');
    fs.mkdirSync(path.join(root, 'a/b'), { recursive: true });
    fs.writeFileSync(path.join(root, 'a/b/file'), 'inside');
    side = openSide(addon, [B(root)], () => true, true);
  });
  afterAll(() => {
    side.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('says whether it resolves beneath anchors', () => {
    expect(side.safe).toBe(addon !== null);
  });

  it('creates a file with open, writes it, and lstat sees it', async () => {
    const fd = await side.open(P('a/new'), O_WRONLY | O_CREAT | O_EXCL, 0o640);
    fs.writeSync(fd, 'hello');
    fs.closeSync(fd);
    expect(fs.readFileSync(at('a/new'), 'utf8')).toBe('hello');
    const st = await side.lstat(P('a/new'));
    expect(st.isFile()).toBe(true);
    expect(st.isDirectory()).toBe(false);
    expect(st.size).toBe(5);
    expect(st.mode & 0o777).toBe(0o640 & ~process.umask());
    const rec = await side.lstatRecord(P('a/new'));
    expect(rec[0]).toBe(0);
    expect(rec[4]).toBe(5);
    expect(st.mtime).toEqual([rec[12], rec[13]]);
    const sync = side.openSync(P('a/b/file'), O_RDONLY);
    expect(fs.readFileSync(sync, 'utf8')).toBe('inside');
    fs.closeSync(sync);
  });

  it('lstat of a directory, and of the root itself', async () => {
    expect((await side.lstat(P('a/b'))).isDirectory()).toBe(true);
    expect((await side.lstat(B(root))).isDirectory()).toBe(true);
  });

  it('renames, hard-links and unlinks', async () => {
    fs.writeFileSync(at('a/r1'), 'moved');
    await side.rename(P('a/r1'), P('a/b/r2'));
    expect(fs.existsSync(at('a/r1'))).toBe(false);
    expect(fs.readFileSync(at('a/b/r2'), 'utf8')).toBe('moved');
    await side.link(P('a/b/r2'), P('a/r3'));
    expect(fs.statSync(at('a/r3')).ino).toBe(fs.statSync(at('a/b/r2')).ino);
    await side.unlink(P('a/b/r2'));
    await side.unlink(P('a/r3'));
    expect(fs.existsSync(at('a/b/r2')) || fs.existsSync(at('a/r3'))).toBe(false);
  });

  it('makes a symlink, reads it back, and never follows it', async () => {
    await side.symlink(B('b/file'), P('a/sl'));
    expect((await side.lstat(P('a/sl'))).isSymbolicLink()).toBe(true);
    expect((await side.readlink(P('a/sl'))).toString()).toBe('b/file');
    expect((await failure(side.open(P('a/sl'), O_RDONLY))).code).toBe('ELOOP');
    await side.unlink(P('a/sl'));
    expect(fs.existsSync(at('a/sl'))).toBe(false);
  });

  it('chmod sets the mode', async () => {
    fs.writeFileSync(at('a/m'), '');
    await side.chmod(P('a/m'), 0o600);
    expect(fs.statSync(at('a/m')).mode & 0o777).toBe(0o600);
    await side.lchown(P('a/m'), process.getuid!(), process.getgid!());
    expect(fs.statSync(at('a/m')).uid).toBe(process.getuid!());
  });

  it('mkdir: an existing directory is EEXIST, unless parents; parents creates the missing ones', async () => {
    const e = await failure(side.mkdir(P('a/b'), 0o755, false));
    expect(e.code).toBe('EEXIST');
    await side.mkdir(P('a/b'), 0o755, true);
    await side.mkdir(P('p/q/r'), 0o755, true);
    expect(fs.statSync(at('p/q/r')).isDirectory()).toBe(true);
    await side.mkdir(P('p/s'), 0o700, false);
    expect(fs.statSync(at('p/s')).mode & 0o777).toBe(0o700 & ~process.umask());
  });

  it('rmdir removes an empty directory only; removeTree removes a whole one, and a missing one is fine', async () => {
    fs.mkdirSync(at('t/u/v'), { recursive: true });
    fs.writeFileSync(at('t/u/v/f'), 'x');
    expect((await failure(side.rmdir(P('t/u')))).code).toBe('ENOTEMPTY');
    fs.mkdirSync(at('t/empty'));
    await side.rmdir(P('t/empty'));
    expect(fs.existsSync(at('t/empty'))).toBe(false);
    await side.removeTree(P('t'));
    expect(fs.existsSync(at('t'))).toBe(false);
    await side.removeTree(P('t'));
  });

  it('a missing path is ENOENT, and the error carries the whole path', async () => {
    const whole = at('a/nothing/here');
    for (const op of [
      () => side.lstat(B(whole)),
      () => side.open(B(whole), O_RDONLY),
      () => side.readlink(B(whole)),
      () => side.unlink(B(whole)),
      () => side.rmdir(B(whole)),
      () => side.chmod(B(whole), 0o644),
      () => side.mkdir(B(whole), 0o755, false),
    ]) {
      const e = await failure(op());
      expect(e.code).toBe('ENOENT');
      expect(String(e.path)).toBe(whole);
    }
    // rename names one of its two whole paths: node:fs the source, the anchored side the
    // destination (where it writes); both are whole paths
    const r = await failure(side.rename(B(whole), P('a/elsewhere')));
    expect(r.code).toBe('ENOENT');
    expect(String(r.path)).toBe(addon ? at('a/elsewhere') : whole);
    let sync: NodeJS.ErrnoException | null = null;
    try {
      side.openSync(B(whole), O_RDONLY);
    } catch (err) {
      sync = err as NodeJS.ErrnoException;
    }
    expect(sync?.code).toBe('ENOENT');
    expect(String(sync?.path)).toBe(whole);
  });
});

describe.skipIf(!native)('anchored side only', () => {
  let dir: string;
  let side: Side;
  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(base, 'side-unit-anchored-'));
    fs.mkdirSync(path.join(dir, 'root/a'), { recursive: true });
    fs.mkdirSync(path.join(dir, 'outside'));
    fs.writeFileSync(path.join(dir, 'outside/file'), 'OUTSIDE');
    side = openSide(native, [B(path.join(dir, 'root'))], () => true);
  });
  afterAll(() => {
    side.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('a directory component swapped for a symlink is ELOOP, nothing outside read or written', async () => {
    fs.rmSync(path.join(dir, 'root/a'), { recursive: true });
    fs.symlinkSync(path.join(dir, 'outside'), path.join(dir, 'root/a'));
    const file = B(path.join(dir, 'root/a/file'));
    expect((await failure(side.open(file, O_RDONLY))).code).toBe('ELOOP');
    expect((await failure(side.lstat(file))).code).toBe('ELOOP');
    expect((await failure(side.unlink(file))).code).toBe('ELOOP');
    expect((await failure(side.open(B(path.join(dir, 'root/a/new')), O_WRONLY | O_CREAT, 0o644))).code).toBe('ELOOP');
    expect(fs.readdirSync(path.join(dir, 'outside'))).toEqual(['file']);
  });

  it('maps a whole path to its anchor and a relative path without trailing slashes', () => {
    const { fd, rel } = side.at(B(path.join(dir, 'root/a/b//')));
    expect(fd).toBeGreaterThanOrEqual(0);
    expect(rel.toString()).toBe('root/a/b');
  });
});

describe('path side only', () => {
  const side = openSide(null, [B('/nonexistent-side-root')], () => true, true);

  it('has no anchors (at is EXDEV) and refuses what Node cannot do (ENOTSUP)', async () => {
    expect(side.safe).toBe(false);
    expect(() => side.at(B('/x/y'))).toThrow(expect.objectContaining({ code: 'EXDEV', message: 'not beneath any root: /x/y' }));
    expect(await side.cachedOwnerMode(B('/'))).toBeNull();
    expect((await failure(side.mkfifo(B('/tmp/never'), 0o644))).code).toBe('ENOTSUP');
    expect(fs.existsSync('/nonexistent-side-root')).toBe(false);
  });
});
