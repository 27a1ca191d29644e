/**
 * A file's layout on a parallel file system (Lustre's striping: stripe count and size, OST
 * pool, PFL components), kept in the `lustre.lov` extended attribute.
 *
 * Lustre takes a layout only on a file that has no data objects yet: created with
 * O_LOV_DELAY_CREATE, or set right after open(O_CREAT) before any write. Set after the data,
 * as the other xattrs are, it is ignored without an error. So a layout is never copied with
 * the other xattrs (native/src/layout.h), and `--layout` decides:
 *   inherit (default)  every file and directory gets DST's default layout (its directory's,
 *                      inherited as Lustre does): no layout attribute is set at all
 *   copy               the source's layout is set when a file is created, before its first
 *                      byte (whole files in the native batch, large files' part files here),
 *                      and on each new directory at mkdir (its default layout)
 * `copy` applies only on Lustre (statfs magic of DST); elsewhere it is a no-op, said once.
 */
import { statfsSync } from 'node:fs';
import { showPath } from '../model/paths.js';
import { NATIVE_CONSTANTS } from '../native/loader.js';

export type LayoutMode = 'inherit' | 'copy';

/** Lustre's statfs f_type (LL_SUPER_MAGIC). */
export const LL_SUPER_MAGIC = 0x0bd00bd0;
/** The attribute Lustre exposes a file's layout (a directory's default layout) as. */
export const LUSTRE_LAYOUT_XATTR = 'lustre.lov';
/** Lustre's O_LOV_DELAY_CREATE (O_NOCTTY | FASYNC): the addon's value (native/src/constants.h). */
export const O_LOV_DELAY_CREATE = NATIVE_CONSTANTS.oLovDelayCreate;

export interface LayoutOptions {
  mode: LayoutMode;
  /**
   * For tests only (the hidden --layout-xattr): the attribute that holds a layout, on any
   * file system, instead of lustre.lov on Lustre; a user.* name lets a test on tmpfs see
   * when it is set.
   */
  testXattr?: string;
}

/** What the copy does with layouts, decided once per job. */
export interface Layout {
  /** set the source's layout at create (copy, on a file system that has layouts) */
  copy: boolean;
  /** the layout attribute's name: set at create when `copy`, never with the other xattrs */
  name: Buffer;
}

/** f_type of the file system that holds p (or its nearest existing ancestor: DST may not exist yet). */
function fsType(p: Buffer): number | null {
  for (let q = p; q.length > 0;) {
    try {
      return statfsSync(q).type;
    } catch {
      const i = q.lastIndexOf(0x2f);
      q = i > 0 ? q.subarray(0, i) : i === 0 && q.length > 1 ? q.subarray(0, 1) : Buffer.alloc(0);
    }
  }
  return null;
}

/**
 * The job's layout handling for DST `dst`, and the line to say when --layout copy cannot
 * apply (null otherwise).
 */
export function resolveLayout(opts: LayoutOptions, dst: Buffer): { layout: Layout; note: string | null } {
  if (opts.testXattr !== undefined) return { layout: { copy: opts.mode === 'copy', name: Buffer.from(opts.testXattr) }, note: null };
  const name = Buffer.from(LUSTRE_LAYOUT_XATTR);
  if (opts.mode !== 'copy') return { layout: { copy: false, name }, note: null };
  const type = fsType(dst);
  if (type === LL_SUPER_MAGIC) return { layout: { copy: true, name }, note: null };
  const what = type === null ? 'is on no file system fcp can stat' : `is not on Lustre (file system type 0x${type.toString(16)})`;
  return { layout: { copy: false, name }, note: `--layout copy: '${showPath(dst)}' ${what}: files and directories get the destination's default layout` };
}
