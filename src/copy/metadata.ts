/**
 * Reading and applying inode metadata: owner, mode, times, extended attributes.
 *
 * Without the native addon: times are set through fs.utimes/lutimes with seconds as a double
 * (precision ~1 µs for current dates), and extended attributes are not copied.
 */
import fs from 'node:fs';
import type { NativeAddon } from '../native/loader.js';
import { copyXattrsBeneath, type Side } from '../io/beneath.js';
import { isSymlinkMode, metaFromBigStats, type EntryMeta, type NsTime } from '../model/meta.js';

export interface MetaOptions {
  native: NativeAddon | null;
  /** chown to meta.uid/gid (true when running as root) */
  chown: boolean;
  /** copy extended attributes from xattrSrc (needs native and xattrSrc) */
  xattrs: boolean;
  /**
   * Source path to copy extended attributes from when `xattrs` is set. They are applied after
   * chown (which clears security.capability) and before chmod (a read-only mode would refuse
   * user.* xattrs to non-root). Without it, call copyXattrs yourself after applyMeta.
   */
  xattrSrc?: Buffer;
  /**
   * The job's trees (io/beneath.ts): with the addon, dst (and xattrSrc) are then reached
   * beneath their roots' anchors, never through a symlink in any component.
   */
  sides?: { src: Side; dst: Side };
  /**
   * The job's layout attribute (copy/layout.ts), left out with Lustre's own (lustre.lov,
   * trusted.lov): a layout is set when an entry is created (--layout copy) or not at all.
   */
  layout?: Buffer;
  /**
   * The owner and mode dst has already (as created, or from an lstat): a chown or chmod
   * that would change nothing is left out, each a round trip on a parallel file system.
   * After a chown the mode is set in any case (a chown may clear setuid and setgid).
   */
  have?: { mode: number; uid: number; gid: number } | null;
}

/** Which of chown and chmod applyMeta makes, given what dst has already. */
function needed(meta: EntryMeta, opts: MetaOptions, symlink: boolean): { chown: boolean; chmod: boolean } {
  const have = opts.have;
  const chown = opts.chown && !(have && have.uid === meta.uid && have.gid === meta.gid);
  const chmod = !symlink && (chown || !have || (have.mode & 0o7777) !== (meta.mode & 0o7777));
  return { chown, chmod };
}

/** lstat (never follows a final symlink). */
export async function readMeta(path: Buffer): Promise<EntryMeta> {
  return metaFromBigStats(await fs.promises.lstat(path, { bigint: true }));
}

function withPath(e: unknown, path: Buffer): unknown {
  if (e && typeof e === 'object' && (e as NodeJS.ErrnoException).path === undefined) {
    (e as NodeJS.ErrnoException).path = path.toString();
  }
  return e;
}

/**
 * Apply owner (when opts.chown), extended attributes (when opts.xattrs and opts.xattrSrc), mode
 * (not for symlinks), then times (last, so nothing moves them); owner and mode only where
 * they differ from opts.have. Never follows a symlink at dst.
 * Throws the first failure (an Error with code, syscall and path).
 */
export async function applyMeta(dst: Buffer, meta: EntryMeta, opts: MetaOptions): Promise<void> {
  const symlink = isSymlinkMode(meta.mode);
  if (opts.native && opts.sides?.dst.safe) return applyMetaBeneath(dst, meta, opts, opts.native, opts.sides, symlink);
  const need = needed(meta, opts, symlink);
  try {
    // chown first: it clears setuid/setgid bits and security.capability.
    if (need.chown) await fs.promises.lchown(dst, meta.uid, meta.gid);
    if (opts.xattrs && opts.xattrSrc) copyXattrs(opts.xattrSrc, dst, opts.native, symlink, opts.layout);
    if (need.chmod) await fs.promises.chmod(dst, meta.mode & 0o7777);
    await setTimes(dst, meta, symlink, opts.native);
  } catch (e) {
    throw withPath(e, dst);
  }
}

/** applyMeta beneath the anchors, in the same order. */
async function applyMetaBeneath(dst: Buffer, meta: EntryMeta, opts: MetaOptions, native: NativeAddon, sides: { src: Side; dst: Side }, symlink: boolean): Promise<void> {
  const need = needed(meta, opts, symlink);
  if (need.chown) await sides.dst.lchown(dst, meta.uid, meta.gid);
  if (opts.xattrs && opts.xattrSrc) await copyXattrsBeneath(native, sides.src, opts.xattrSrc, sides.dst, dst, symlink, opts.layout);
  if (need.chmod) await sides.dst.chmod(dst, meta.mode & 0o7777);
  await sides.dst.utimens(dst, meta.atime, meta.mtime);
}

async function setTimes(dst: Buffer, meta: EntryMeta, symlink: boolean, native: NativeAddon | null): Promise<void> {
  if (native) {
    // AT_SYMLINK_NOFOLLOW always: a regular dst is unaffected, a symlink gets its own times.
    native.utimens(dst, meta.atime[0], meta.atime[1], meta.mtime[0], meta.mtime[1], false);
    return;
  }
  // Seconds as a double (libuv keeps microseconds). Node turns a negative *number* into "now",
  // so pre-1970 times go as numeric strings, which Node documents as accepted and keeps as-is.
  // libuv truncates to whole microseconds after converting the double, and the double
  // itself is only good to ~0.24 us at today's dates: aim half a microsecond up so the
  // result is the source time rounded to the microsecond, never a microsecond short.
  const secs = ([s, ns]: NsTime): number | string => {
    const v = s + (ns + 500) / 1e9;
    return s < 0 ? String(v) : v;
  };
  const atime = secs(meta.atime);
  const mtime = secs(meta.mtime);
  if (symlink) await fs.promises.lutimes(dst, atime, mtime);
  else await fs.promises.utimes(dst, atime, mtime);
}

/** Errors ignored (silently) when reading or setting xattrs outside the user.* namespace. */
const IGNORABLE_XATTR_ERRORS = new Set(['EPERM', 'ENOTSUP', 'EOPNOTSUPP', 'EACCES', 'EINVAL']);
const USER_PREFIX = Buffer.from('user.');
/** Lustre's layout attributes: never copied after the data (see copy/layout.ts). */
const LUSTRE_LAYOUT_XATTRS = [Buffer.from('lustre.lov'), Buffer.from('trusted.lov')];

/**
 * Copy all extended attributes of src to dst (never following symlinks). user.* errors are
 * thrown; other namespaces (trusted.*, security.*, system.*, lustre.*...) are tried and
 * EPERM/ENOTSUP/EOPNOTSUPP/EACCES/EINVAL are ignored. No-op without native. For symlinks
 * user.* is skipped (Linux refuses user.* on symlinks). A src file system without xattr
 * support (ENOTSUP on list) copies nothing; an attribute removed meanwhile (ENODATA) is skipped.
 * Layout attributes (Lustre's and `layout`) are left out.
 */
export function copyXattrs(src: Buffer, dst: Buffer, native: NativeAddon | null, isSymlink: boolean, layout?: Buffer): void {
  if (!native) return;
  let names: Buffer[];
  try {
    names = native.listXattrs(src);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOTSUP' || code === 'EOPNOTSUPP') return;
    throw e;
  }
  for (const name of names) {
    if (LUSTRE_LAYOUT_XATTRS.some((l) => l.equals(name)) || layout?.equals(name)) continue;
    const user = name.subarray(0, USER_PREFIX.length).equals(USER_PREFIX);
    if (user && isSymlink) continue;
    try {
      const value = native.getXattr(src, name);
      native.setXattr(dst, name, value);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code ?? '';
      if (code === 'ENODATA') continue;
      if (!user && IGNORABLE_XATTR_ERRORS.has(code)) continue;
      throw e;
    }
  }
}
