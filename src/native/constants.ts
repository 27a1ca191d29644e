/**
 * The numbers the addon and the TypeScript share. Their one definition is the addon's
 * table (native/src/constants.h), exported as `constants`: loader.ts reads them from the
 * loaded addon. This copy is what the pure-Node fallback uses when there is no addon;
 * test/unit/native-constants.test.ts checks it against the addon's, value for value.
 */
export interface NativeConstants {
  /** The failing step of a native status (status[1]); UP_TO_DATE and REPLACED are not failures. */
  readonly ops: Readonly<Record<'NONE' | 'OPEN_SRC' | 'OPEN_DST' | 'READ' | 'WRITE' | 'TRUNCATE' | 'CHOWN' | 'XATTR' | 'CHMOD' | 'UTIMES' | 'CLOSE' | 'CHANGED' | 'UP_TO_DATE' | 'REPLACED', number>>;
  /** copyFiles/copyChunk flags. */
  readonly copyFlags: Readonly<Record<'CHOWN' | 'XATTRS' | 'SPARSE' | 'HASH' | 'UPDATE' | 'WRITEBACK' | 'REPORT' | 'LAYOUT', number>>;
  /** fcp's own errnos in status[0] (with ops.CHANGED): the file shrank, or grew (or its mtime moved). */
  readonly errnos: Readonly<Record<'SHRANK' | 'GREW', number>>;
  /** copyFiles' numbers per file (root, size, mode, uid, gid, atime s/ns, mtime s/ns, blocks). */
  readonly copyNums: number;
  /** copyFiles' status numbers per file (-errno, op, hole bytes). */
  readonly copyStatus: number;
  /** numbers per name of statAt, scanDir and lstatAt (model/entry.ts STAT_RECORD_FIELDS) */
  readonly statFields: number;
  /** one hash leaf (checksum/hasher.ts LEAF) */
  readonly leafBytes: number;
  /** Lustre's O_LOV_DELAY_CREATE (O_NOCTTY | FASYNC; asm-generic values: x86-64, arm64, ppc64le) */
  readonly oLovDelayCreate: number;
}

/** The pure-Node fallback's copy of native/src/constants.h. */
export const FALLBACK_CONSTANTS: NativeConstants = Object.freeze({
  ops: Object.freeze({
    NONE: 0, OPEN_SRC: 1, OPEN_DST: 2, READ: 3, WRITE: 4, TRUNCATE: 5, CHOWN: 6, XATTR: 7, CHMOD: 8, UTIMES: 9, CLOSE: 10,
    CHANGED: 11, UP_TO_DATE: 12, REPLACED: 13,
  }),
  copyFlags: Object.freeze({ CHOWN: 1, XATTRS: 2, SPARSE: 4, HASH: 8, UPDATE: 16, WRITEBACK: 32, REPORT: 64, LAYOUT: 512 }),
  errnos: Object.freeze({ SHRANK: -1000, GREW: -1001 }),
  copyNums: 10,
  copyStatus: 3,
  statFields: 15,
  leafBytes: 1024 * 1024,
  oLovDelayCreate: 0o400 | 0o20000,
});
