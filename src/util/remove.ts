/**
 * Removing what a job made, without `rmSync`: Node loads its recursive remover (rimraf)
 * on the first `rmSync`, even for one file, and the module load costs each rank about
 * 1 ms of CPU at the end of every job. These are the plain calls.
 */
import { rmSync, rmdirSync, readdirSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';

const code = (err: unknown) => (err as NodeJS.ErrnoException).code;

/** unlink(2) `path`; one already gone is fine. */
export function removeFile(path: string): void {
  try {
    unlinkSync(path);
  } catch (err) {
    if (code(err) !== 'ENOENT') throw err;
  }
}

/**
 * Remove `dir` and the files in it (a directory of files only, as the checkpoint's); one
 * already gone is fine. `likely`: names it probably holds alone, removed first so that an
 * rmdir may do without listing it (a round trip or more each on a parallel file system).
 * Anything else in it (a subdirectory) falls back to rmSync's recursive remove, so the
 * result is the same.
 */
export function removeFlatDir(dir: string, likely: string[] = []): void {
  try {
    for (const name of likely) removeFile(join(dir, name));
    try {
      rmdirSync(dir);
      return;
    } catch (err) {
      if (code(err) !== 'ENOTEMPTY' && code(err) !== 'EEXIST') throw err;
    }
    for (const name of readdirSync(dir)) removeFile(join(dir, name));
    rmdirSync(dir);
  } catch (err) {
    if (code(err) === 'ENOENT') return;
    rmSync(dir, { recursive: true, force: true });
  }
}
