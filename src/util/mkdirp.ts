/**
 * `mkdir -p` that reports the error the system gave. Node's `mkdir(..., { recursive: true })`
 * turns some failures into a misleading ENOENT (on a read-only file system it says ENOENT
 * where mkdir(2) said EROFS), so users were told a directory was missing when the
 * destination was read-only. Here each missing component is created with a plain mkdir,
 * and the first real failure is thrown as it came.
 */
import { mkdirSync, promises as fsp, statSync } from 'node:fs';
import { dirname } from 'node:path';

const code = (err: unknown) => (err as NodeJS.ErrnoException).code;

/** Create `dir` and its missing parents with `mode`; an existing directory is fine. */
export async function mkdirp(dir: string | Buffer, mode = 0o777): Promise<void> {
  try {
    await fsp.mkdir(dir, mode);
  } catch (err) {
    if (code(err) === 'EEXIST') {
      if ((await fsp.stat(dir)).isDirectory()) return;
      throw err;
    }
    const parent = parentOf(dir);
    if (code(err) !== 'ENOENT' || parent === null) throw err;
    await mkdirp(parent, mode);
    try {
      await fsp.mkdir(dir, mode);
    } catch (again) {
      if (code(again) !== 'EEXIST' || !(await fsp.stat(dir)).isDirectory()) throw again;
    }
  }
}

/** The same, synchronously; true when this call created `dir` itself (so it is empty). */
export function mkdirpSync(dir: string | Buffer, mode = 0o777): boolean {
  try {
    mkdirSync(dir, mode);
    return true;
  } catch (err) {
    if (code(err) === 'EEXIST') {
      if (statSync(dir).isDirectory()) return false;
      throw err;
    }
    const parent = parentOf(dir);
    if (code(err) !== 'ENOENT' || parent === null) throw err;
    mkdirpSync(parent, mode);
    try {
      mkdirSync(dir, mode);
      return true;
    } catch (again) {
      if (code(again) !== 'EEXIST' || !statSync(dir).isDirectory()) throw again;
      return false;
    }
  }
}

/** The parent of a path, or null at the top (nothing left to create). */
function parentOf(dir: string | Buffer): string | Buffer | null {
  if (typeof dir === 'string') {
    const p = dirname(dir);
    return p === dir ? null : p;
  }
  let end = dir.length;
  while (end > 1 && dir[end - 1] === 0x2f) end--;
  const i = dir.lastIndexOf(0x2f, end - 1);
  if (i < 0) return null;
  const p = dir.subarray(0, i === 0 ? 1 : i);
  return p.length === end ? null : p;
}
