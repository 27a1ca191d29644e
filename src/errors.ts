/**
 * Errors. Two kinds, as in mpiFileUtils:
 * - per-entry failures (an unreadable file, a full disk for one file): data. Each is
 *   printed once, in one fixed shape naming the operation, the path and the cause, counted,
 *   and folded into the exit code; the rest of the job goes on.
 * - job-level failures (bad usage, a dead rank): FcpErrors with a stable `code`, they stop
 *   the job; fcp-error.cts maps each code to its exit status (EXIT), in one table.
 */
export { EXIT, EXIT_OF_CODE, FcpError, codeOfExit, type ExitStatus, type FcpErrorCode } from './fcp-error.cjs';
import { EXIT, FcpError } from './fcp-error.cjs';
import { mkdirpSync } from './util/mkdirp.js';
import { userMode } from './util/umask.js';
import { getSystemErrorName } from 'node:util';
import { constants } from 'node:os';
import { openSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { showPath } from './model/paths.js';
import { FALLBACK_CONSTANTS } from './native/constants.js';

// The table's copy (equal to the addon's, test/unit/native-constants.test.ts): errors sit
// below the loader, which needs them.
const { SHRANK: ERR_SHRANK, GREW: ERR_GREW } = FALLBACK_CONSTANTS.errnos;

/** An Error shaped like Node's fs errors from a negative errno (and fcp's own ERR_SHRANK, ERR_GREW of a native status). */
export function systemError(negErrno: number, syscall: string): NodeJS.ErrnoException {
  let code: string;
  if (negErrno === ERR_SHRANK) code = 'ESHRUNK';
  else if (negErrno === ERR_GREW) code = 'ECHANGED';
  else {
    try {
      code = getSystemErrorName(negErrno);
    } catch {
      code = `E${-negErrno}`;
    }
    // libuv names only the errnos it knows (not ESTALE): the system's table names the rest.
    if (code.startsWith('Unknown')) code = errnoName(-negErrno) ?? code;
  }
  return Object.assign(new Error(`${code}: ${syscall}`), { code, errno: negErrno, syscall });
}

let errnoNames: Map<number, string> | null = null;
const errnoName = (errno: number): string | undefined =>
  (errnoNames ??= new Map(Object.entries(constants.errno as Record<string, number>).map(([k, v]) => [v, k]))).get(errno);

/** A bad command line or argument: one line naming it, exit 2, nothing written. */
export class UsageError extends FcpError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('USAGE', message, options);
  }
}

/** The exit status an error ends the job with: an FcpError's by its code, anything else an abort. */
export function exitStatusOf(err: unknown): number {
  return err instanceof FcpError ? err.exitStatus : EXIT.ABORTED;
}

const STRERROR: Record<string, string> = {
  ENOENT: 'No such file or directory',
  EACCES: 'Permission denied',
  EPERM: 'Operation not permitted',
  ENOSPC: 'No space left on device',
  EDQUOT: 'Disk quota exceeded',
  EEXIST: 'File exists',
  EISDIR: 'Is a directory',
  ENOTDIR: 'Not a directory',
  // Every path under SRC and DST is resolved without following a symlink in any
  // component (io/beneath.ts): ELOOP (and EXDEV, mapped to it natively) means a
  // directory on the way, or the entry itself, is a symlink now that was not at the walk.
  ELOOP: 'changed during the copy: a directory became a symlink',
  EIO: 'Input/output error',
  EROFS: 'Read-only file system',
  ENAMETOOLONG: 'File name too long',
  EMFILE: 'Too many open files',
  ENOTEMPTY: 'Directory not empty',
  EXDEV: 'Invalid cross-device link',
  EFBIG: 'File too large',
  ENOTSUP: 'Operation not supported',
  ESTALE: 'Stale file handle',
  ETIMEDOUT: 'Connection timed out',
  ENOTCONN: 'Transport endpoint is not connected',
  ECONNRESET: 'Connection reset by peer',
  EAGAIN: 'Resource temporarily unavailable',
  ESHRUNK: 'file shrank while it was being copied',
  ECHANGED: 'file changed while it was being copied (it grew, or its mtime moved)',
};

/**
 * The error's code; for an errno libuv does not name (Node says 'Unknown system error
 * -116'), the system's name of it (ESTALE).
 */
export function codeOf(err: unknown): string | undefined {
  const e = err as NodeJS.ErrnoException | null;
  if (!e || typeof e.code !== 'string') return undefined;
  if (e.code.startsWith('Unknown system error') && typeof e.errno === 'number') return errnoName(-e.errno) ?? e.code;
  return e.code;
}

/** "Permission denied (EACCES)" for a Node/system error, else its message. */
export function causeOf(err: unknown): string {
  const e = err as NodeJS.ErrnoException;
  const code = codeOf(e);
  if (code && STRERROR[code]) return `${STRERROR[code]} (${code})`;
  if (e && typeof e.code === 'string') return `${e.message.split(',')[0]} (${e.code})`;
  return e instanceof Error ? e.message : String(err);
}

/**
 * An unexpected error as one line: its message (control characters escaped, as paths
 * are) and where it was thrown, never a multi-line stack trace in the user's log.
 */
export function internalErrorLine(tool: string, err: unknown): string {
  const e = err as Error;
  const msg = e instanceof Error ? `${e.message}${(e as NodeJS.ErrnoException).code ? ` (${(e as NodeJS.ErrnoException).code})` : ''}` : String(err);
  const at = e instanceof Error ? /\n\s+at (.*)/.exec(e.stack ?? '')?.[1] : undefined;
  return `${tool}: internal error: ${showPath(msg)}${at ? ` [at ${showPath(at)}]` : ''}\n`;
}

/** An Error with just a code (a failure learnt from another rank). */
export function systemErrorFromCode(code: string): NodeJS.ErrnoException {
  return Object.assign(new Error(code), { code });
}

/** Error codes that mean the destination is full: the job stops (see EntryErrors.onFull). */
export const FULL_CODES: ReadonlySet<string> = new Set(['ENOSPC', 'EDQUOT']);

export interface EntryErrorRecord { op: string; path: string; cause: string; code: string }

/** Per-rank log of entry failures: print once, count, keep going. */
export class EntryErrors {
  count = 0;
  private logFd: number | null = null;

  constructor(private readonly tool: string, private readonly sink: (line: string) => void = (l) => process.stderr.write(l)) {}

  /**
   * --log-dir: also append every failure to DIR/<tool>-rank<R>.log, one tab-separated
   * line each: path, operation, errno code, cause.
   */
  logTo(dir: string, rank: number): void {
    mkdirpSync(dir, userMode(0o777));
    this.logFd = openSync(join(dir, `${this.tool}-rank${rank}.log`), 'a', userMode(0o666));
  }

  /** A line for the --log-dir file only, in the same four fields (not an entry failure: not counted, not printed). */
  note(what: string, op: string, code: string, cause: string): void {
    if (this.logFd !== null) writeSync(this.logFd, `${what}\t${op}\t${code}\t${cause}\n`);
  }

  /**
   * A full destination (ENOSPC, EDQUOT) is not a per-file error: every file after it
   * would fail the same way. When set, such failures go here, unprinted, instead.
   */
  onFull: ((path: string, code: string) => void) | null = null;

  /** --report: every failure counted here also lands in the report (its path as given, unescaped). */
  onEntry: ((op: string, path: Buffer | string, cause: string) => void) | null = null;

  report(op: string, path: Buffer | string, err: unknown): EntryErrorRecord {
    this.count++;
    const rec = { op, path: showPath(path), cause: causeOf(err), code: codeOf(err) ?? 'EUNKNOWN' };
    this.onEntry?.(op, path, rec.cause);
    if (this.full(path, rec.code)) return rec;
    this.sink(`${this.tool}: cannot ${op} '${rec.path}': ${rec.cause}\n`);
    if (this.logFd !== null) writeSync(this.logFd, `${rec.path}\t${op}\t${rec.code}\t${rec.cause}\n`);
    return rec;
  }

  /** Hand a full-destination failure to onFull; false when it is not one (or nobody listens). */
  full(path: Buffer | string, code: string): boolean {
    if (!this.onFull || !FULL_CODES.has(code)) return false;
    this.onFull(showPath(path), code);
    return true;
  }
}
