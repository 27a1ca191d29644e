/**
 * The copy runs at umask 0, so that a file it creates in DST gets exactly the mode it asks
 * for: (mode & 0777) | 0200 is then the source's mode for most files, and the native batch
 * skips their chmod, one round trip per file on a parallel file system (see copyOne's
 * createdRight in native/src/batch.cc). Every other create fcp makes passes an explicit
 * mode: those outside DST (log files, the report, the checkpoint's lock, a missing DST's
 * parents) pass `userMode(m)`, the mode the user's umask would have given; its private
 * files and directories (checkpoint directory, reserve, report parts, part files,
 * directories being filled) pass 0600/0700 already.
 */

/** The umask the process started with, once `clearUmask` replaced it with 0. */
let startedWith: number | null = null;

/** Set the process umask to 0 (once; later calls keep the first umask as the user's). */
export function clearUmask(): void {
  if (startedWith === null) startedWith = process.umask(0);
}

/** `mode` as the user's umask would have left it on a create. */
export function userMode(mode: number): number {
  return startedWith === null ? mode : mode & ~startedWith;
}
