/**
 * The two sides of a job (SRC and DST, each a Side: io/side.ts), opened once per rank,
 * and the operations that take an entry on each (extended attributes, layout).
 *
 * With the addon a side resolves every path beneath anchors, so a directory swapped for a
 * symlink during the copy is ELOOP instead of a way out of SRC or DST (io/anchored-side.ts);
 * without it the same calls go to node:fs by whole path (io/path-side.ts, --unsafe-paths).
 */
import type { NativeAddon } from '../native/loader.js';
import type { Root } from '../model/entry.js';
import { withPath } from './anchored-side.js';
import { openSide, type Side } from './side.js';

export type { EntryStat, Side } from './side.js';

const SLASH = 0x2f;

/** Copy extended attributes from src (on side s) to dst (on side d), addon only; layout attributes left out (copy/layout.ts). */
export async function copyXattrsBeneath(native: NativeAddon, s: Side, src: Buffer, d: Side, dst: Buffer, symlink: boolean, layout?: Buffer): Promise<void> {
  const a = s.at(src);
  const b = d.at(dst);
  return native.copyXattrsAt(a.fd, a.rel, b.fd, b.rel, symlink, layout).catch((e) => {
    throw withPath(e, (e as NodeJS.ErrnoException).syscall === 'openat2 source' ? src : dst);
  });
}

/**
 * Give dst (on side d: a new, empty file or a new directory) the layout attribute `layout`
 * of src (on side s), addon only: true when set, false when src has none.
 */
export async function copyLayoutBeneath(native: NativeAddon, s: Side, src: Buffer, d: Side, dst: Buffer, layout: Buffer): Promise<boolean> {
  const a = s.at(src);
  const b = d.at(dst);
  return native.copyLayoutAt(a.fd, a.rel, b.fd, b.rel, layout).then((set) => set === 1, (e) => {
    throw withPath(e, String((e as NodeJS.ErrnoException).syscall).endsWith(' source') ? src : dst);
  });
}

/** Both sides of a job's roots, opened once per rank. */
export class Trees {
  readonly src: Side;
  readonly dst: Side;

  /** createDst: create DST roots' missing parent directories (a copy; not a dry run). */
  constructor(readonly native: NativeAddon | null, roots: Root[], createDst = false) {
    const srcRoots = roots.map((r) => r.src);
    // SRC: a root given with a trailing slash is followed (as lstat("link/") does); a DST
    // root that is a symlink when the job starts was meant as the place to copy to.
    this.src = openSide(native, srcRoots, (root) => root.length > 1 && root[root.length - 1] === SLASH);
    try {
      this.dst = openSide(native, roots.map((r) => r.dst), () => true, createDst);
    } catch (e) {
      this.src.close();
      throw e;
    }
  }

  /** The anchors of roots[i] joined with prefixes, for copyFiles: [srcFd, dstFd, ...] and [srcRel, dstRel, ...]. */
  copyFilesRoots(roots: Root[]): { anchors: Int32Array; rels: Buffer[] } {
    const anchors = new Int32Array(roots.length * 2);
    const rels: Buffer[] = [];
    roots.forEach((r, i) => {
      const s = this.src.at(r.src);
      const d = this.dst.at(r.dst);
      anchors[2 * i] = s.fd;
      anchors[2 * i + 1] = d.fd;
      rels.push(s.rel, d.rel);
    });
    return { anchors, rels };
  }

  close(): void {
    this.src.close();
    this.dst.close();
  }
}
