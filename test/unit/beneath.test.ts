/**
 * Resolution beneath an anchor (native/src/beneath.cc, src/io/beneath.ts): a path below
 * a root never follows a symlink in any component and never leaves the root, both with
 * openat2 and with the openat(O_NOFOLLOW) walk used where the kernel has no openat2.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { COPY_FLAGS, COPY_NUMS, loadNative, type NativeAddon } from '../../src/native/loader.js';
import { Trees } from '../../src/io/beneath.js';
import { causeOf } from '../../src/errors.js';

const base = fs.existsSync('/dev/shm') ? '/dev/shm' : os.tmpdir();
const native = loadNative({ reload: true });
let dir: string;
let anchor = -1;
const B = (s: string) => Buffer.from(s);

// root/            the anchor
//   a/b/file       'inside'
//   a/link -> ../outside (a directory outside the root)
//   flink -> a/b/file
// outside/file     'OUTSIDE'
beforeAll(() => {
  dir = fs.mkdtempSync(path.join(base, 'fcp-beneath-'));
  fs.mkdirSync(path.join(dir, 'root/a/b'), { recursive: true });
  fs.writeFileSync(path.join(dir, 'root/a/b/file'), 'inside');
  fs.mkdirSync(path.join(dir, 'outside'));
  fs.writeFileSync(path.join(dir, 'outside/file'), 'OUTSIDE');
  fs.symlinkSync(path.join(dir, 'outside'), path.join(dir, 'root/a/link'));
  fs.symlinkSync('a/b/file', path.join(dir, 'root/flink'));
  if (native) anchor = native.openAnchor(B(path.join(dir, 'root')));
});
afterAll(() => {
  if (native && anchor >= 0) native.closeFd(anchor);
  fs.rmSync(dir, { recursive: true, force: true });
});

const readFd = (fd: number) => {
  const b = Buffer.alloc(64);
  const n = fs.readSync(fd, b, 0, 64, 0);
  fs.closeSync(fd);
  return b.subarray(0, n).toString();
};

describe.skipIf(!native).each(['openat2', 'walk'] as const)('resolution beneath an anchor (%s)', (mode) => {
  const n = native as NativeAddon;
  beforeAll(() => {
    expect(n.resolveMode(mode === 'walk')).toBe(mode);
  });
  afterAll(() => {
    n.resolveMode(false);
  });

  it('a plain path opens', async () => {
    expect(readFd(await n.openAt(anchor, B('a/b/file'), fs.constants.O_RDONLY, 0))).toBe('inside');
    expect(readFd(n.openAtSync(anchor, B('a/b/file'), fs.constants.O_RDONLY, 0))).toBe('inside');
  });

  it('a symlink in a middle component is ELOOP, for every operation', async () => {
    const eloop = expect.objectContaining({ code: 'ELOOP' });
    await expect(n.openAt(anchor, B('a/link/file'), fs.constants.O_RDONLY, 0)).rejects.toEqual(eloop);
    expect(() => n.openAtSync(anchor, B('a/link/file'), fs.constants.O_RDONLY, 0)).toThrow(eloop);
    await expect(n.openAt(anchor, B('a/link/new'), fs.constants.O_WRONLY | fs.constants.O_CREAT, 0o600)).rejects.toEqual(eloop);
    await expect(n.lstatAt(anchor, B('a/link/file'))).rejects.toEqual(eloop);
    await expect(n.mkdirAt(anchor, B('a/link/d'), 0o700, false)).rejects.toEqual(eloop);
    await expect(n.mkdirAt(anchor, B('a/link/d/e'), 0o700, true)).rejects.toEqual(eloop);
    await expect(n.symlinkAt(B('x'), anchor, B('a/link/s'))).rejects.toEqual(eloop);
    await expect(n.unlinkAt(anchor, B('a/link/file'), false)).rejects.toEqual(eloop);
    await expect(n.removeTreeAt(anchor, B('a/link/file'))).rejects.toEqual(eloop);
    await expect(n.chmodAt(anchor, B('a/link/file'), 0o777)).rejects.toEqual(eloop);
    await expect(n.utimensAt(anchor, B('a/link/file'), 1, 0, 1, 0)).rejects.toEqual(eloop);
    await expect(n.renameAt(anchor, B('a/link/file'), anchor, B('stolen'))).rejects.toEqual(eloop);
    await expect(n.linkAt(anchor, B('a/link/file'), anchor, B('stolen'))).rejects.toEqual(eloop);
    await expect(n.scanDir(anchor, B('a/link'), 16)).rejects.toMatchObject({ errno: -40 });
    const st = await n.statAt(anchor, B('a/link'), [B('file')]);
    expect(st[0]).toBe(-40); // -ELOOP: the directory itself is a symlink
    // nothing outside changed or appeared
    expect(fs.readdirSync(path.join(dir, 'outside'))).toEqual(['file']);
    expect(fs.readFileSync(path.join(dir, 'outside/file'), 'utf8')).toBe('OUTSIDE');
    expect(fs.statSync(path.join(dir, 'outside/file')).mode & 0o777).not.toBe(0o777);
    // and fcp names it for what it is
    expect(causeOf(await n.lstatAt(anchor, B('a/link/file')).catch((e: unknown) => e))).toMatch(/^changed during the copy: a directory became a symlink/);
  });

  it('a symlink as the last component is not followed: open is ELOOP, lstat/readlink see the link itself', async () => {
    await expect(n.openAt(anchor, B('flink'), fs.constants.O_RDONLY, 0)).rejects.toMatchObject({ code: 'ELOOP' });
    const st = await n.lstatAt(anchor, B('flink'));
    expect(st[1]! & 0o170000).toBe(0o120000);
    expect((await n.readlinkAt(anchor, B('flink'))).toString()).toBe('a/b/file');
    // times of the link itself (AT_SYMLINK_NOFOLLOW), not of its target
    const before = fs.statSync(path.join(dir, 'root/a/b/file')).mtimeMs;
    await n.utimensAt(anchor, B('flink'), 5, 0, 7, 0);
    expect(fs.lstatSync(path.join(dir, 'root/flink')).mtimeMs).toBe(7000);
    expect(fs.statSync(path.join(dir, 'root/a/b/file')).mtimeMs).toBe(before);
  });

  it('lstatAt(cached) gives what the kernel holds, the same as lstat, and refuses a symlinked directory too', async () => {
    for (const rel of ['a/b/file', 'a/b', 'flink']) {
      const full = await n.lstatAt(anchor, B(rel));
      const cached = await n.lstatAt(anchor, B(rel), true);
      expect(Array.from(cached), rel).toEqual(Array.from(full));
    }
    await expect(n.lstatAt(anchor, B('a/link/file'), true)).rejects.toMatchObject({ code: 'ELOOP' });
  });

  it("'..' and absolute paths cannot leave the anchor", async () => {
    const refused = expect.objectContaining({ code: 'ELOOP' });
    await expect(n.openAt(anchor, B('../outside/file'), fs.constants.O_RDONLY, 0)).rejects.toEqual(refused);
    await expect(n.openAt(anchor, B('a/../../outside/file'), fs.constants.O_RDONLY, 0)).rejects.toEqual(refused);
    await expect(n.lstatAt(anchor, B('a/../../outside/file'))).rejects.toEqual(refused);
    expect(() => n.openAtSync(anchor, B(path.join(dir, 'outside/file')), fs.constants.O_RDONLY, 0)).toThrow(TypeError);
  });

  it('mkdir -p, rename, link and rm -r work beneath the anchor', async () => {
    await n.mkdirAt(anchor, B(`m-${mode}/x/y`), 0o755, true);
    await n.mkdirAt(anchor, B(`m-${mode}/x/y`), 0o755, true); // exists: fine with parents
    const fd = await n.openAt(anchor, B(`m-${mode}/x/y/f`), fs.constants.O_WRONLY | fs.constants.O_CREAT, 0o640);
    fs.writeSync(fd, 'data');
    fs.closeSync(fd);
    await n.linkAt(anchor, B(`m-${mode}/x/y/f`), anchor, B(`m-${mode}/hard`));
    await n.renameAt(anchor, B(`m-${mode}/hard`), anchor, B(`m-${mode}/moved`));
    expect(fs.statSync(path.join(dir, `root/m-${mode}/moved`)).nlink).toBe(2);
    await n.removeTreeAt(anchor, B(`m-${mode}`));
    expect(fs.existsSync(path.join(dir, `root/m-${mode}`))).toBe(false);
  });
});

describe.skipIf(!native)('copyFiles beneath anchors', () => {
  const n = native as NativeAddon;
  it('copies a plain file and refuses one whose directory is a symlink (ELOOP, nothing read from outside)', async () => {
    const dstDir = path.join(dir, 'dst-copy');
    fs.mkdirSync(path.join(dstDir, 'root/a/link'), { recursive: true });
    fs.mkdirSync(path.join(dstDir, 'root/a/b'), { recursive: true });
    const dstAnchor = n.openAnchor(B(dstDir));
    try {
      const nums = new Float64Array(2 * COPY_NUMS);
      for (const [i, size] of [[0, 6], [1, 7]] as const) {
        nums.set([0, size, 0o100644, 0, 0, 1, 0, 1, 0, -1], i * COPY_NUMS);
      }
      const { status } = await n.copyFiles(Int32Array.of(anchor, dstAnchor), [B(''), B('root')], [B('a/b/file'), B('a/link/file')], nums, COPY_FLAGS.SPARSE);
      expect([...status.subarray(0, 2)]).toEqual([0, 0]);
      expect(fs.readFileSync(path.join(dstDir, 'root/a/b/file'), 'utf8')).toBe('inside');
      expect(status[3]).toBe(-40); // -ELOOP
      expect(status[4]).toBe(1); // opening the source
      expect(fs.readdirSync(path.join(dstDir, 'root/a/link'))).toEqual([]);
    } finally {
      n.closeFd(dstAnchor);
    }
  });
});

describe.skipIf(!native)('Trees: whole paths mapped to anchors', () => {
  it('anchors each root at its parent, so a root swapped for a symlink is refused too', async () => {
    const root = path.join(dir, 'tree-root');
    fs.mkdirSync(path.join(root, 'd'), { recursive: true });
    fs.writeFileSync(path.join(root, 'd/f'), 'x');
    const t = new Trees(native, [{ src: B(root), dst: B(path.join(dir, 'tree-dst')) }]);
    try {
      expect(t.src.at(B(`${root}/d/f`)).rel.toString()).toBe('tree-root/d/f');
      expect((await t.src.lstat(B(`${root}/d/f`))).size).toBe(1);
      fs.renameSync(root, `${root}.moved`);
      fs.symlinkSync(path.join(dir, 'outside'), root);
      await expect(t.src.lstat(B(`${root}/file`))).rejects.toMatchObject({ code: 'ELOOP', path: B(`${root}/file`) });
    } finally {
      t.close();
    }
  });
});
