/**
 * From `SRC... DST` to copy roots, with cp -r semantics, refusing bad input before
 * anything is written:
 * - DST is an existing directory: each SRC is copied to DST/basename(SRC);
 * - otherwise, with one SRC, DST becomes the copy (its parent must exist);
 * - refused: a missing SRC, several SRC and DST not a directory, SRC equal to its target,
 *   a target inside SRC (it would copy itself forever and write into SRC), a directory
 *   onto a non-directory.
 */
import { showPath } from '../model/paths.js';
import { lstatSync, realpathSync, statSync } from 'node:fs';
import { basename, dirname, join, resolve, sep } from 'node:path';
import { UsageError, causeOf } from '../errors.js';
import type { Root } from '../model/entry.js';

/** realpath of the longest existing prefix, plus the rest: where a not-yet-created path will be. */
function realish(p: string): string {
  const rest: string[] = [];
  let cur = resolve(p);
  for (;;) {
    try {
      return join(realpathSync(cur), ...rest.reverse());
    } catch {
      const parent = dirname(cur);
      if (parent === cur) return resolve(p);
      rest.push(basename(cur));
      cur = parent;
    }
  }
}

const inside = (child: string, parent: string) => child === parent || child.startsWith(parent.endsWith(sep) ? parent : parent + sep);

/**
 * `asCopy`: treat DST as the copy itself even though it exists now. A resume needs this:
 * the interrupted run created DST, and must not now be read as "copy into DST".
 */
export function resolveRoots(sources: string[], dest: string, asCopy = false): Root[] {
  if (sources.length === 0) throw new UsageError(dest ? `missing destination after '${showPath(dest)}'` : 'missing source and destination (usage: fcp SRC... DST)');
  let dstStat = null;
  try {
    dstStat = statSync(dest);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw new UsageError(`cannot access '${showPath(dest)}': ${causeOf(err)}`);
  }
  const dstIsDir = (dstStat?.isDirectory() ?? false) && !(asCopy && sources.length === 1);
  if (sources.length > 1 && !dstIsDir) throw new UsageError(`target '${showPath(dest)}' is not a directory`);
  if (!dstStat) {
    const parent = dirname(resolve(dest));
    try {
      if (!statSync(parent).isDirectory()) throw new Error();
    } catch {
      throw new UsageError(`cannot create '${showPath(dest)}': parent directory '${showPath(parent)}' does not exist`);
    }
  }
  const roots: Root[] = [];
  for (const src of sources) {
    let st;
    try {
      st = lstatSync(src);
    } catch (err) {
      throw new UsageError(`cannot stat '${showPath(src)}': ${causeOf(err)}`);
    }
    const target = dstIsDir ? join(dest, basename(resolve(src))) : dest;
    const realSrc = realish(src);
    const realTarget = realish(target);
    if (realSrc === realTarget) throw new UsageError(`'${showPath(src)}' and '${showPath(target)}' are the same file`);
    if (st.isDirectory() && inside(realTarget, realSrc)) {
      throw new UsageError(`cannot copy a directory, '${showPath(src)}', into itself, '${showPath(target)}'`);
    }
    if (st.isDirectory()) {
      try {
        const t = lstatSync(target);
        if (!t.isDirectory()) throw new UsageError(`cannot overwrite non-directory '${showPath(target)}' with directory '${showPath(src)}'`);
      } catch (err) {
        if (err instanceof UsageError) throw err;
      }
    }
    roots.push({ src: Buffer.from(resolve(src)), dst: Buffer.from(resolve(target)) });
  }
  return roots;
}
