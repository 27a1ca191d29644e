/**
 * --files-from: the walk's seed when a list names what to copy, instead of the roots.
 *
 * Rank 0 reads the list as a stream (listLines) and turns it lazily, as the engine pulls
 * (Task.source), into the walk's ordinary stealable 's' items (lstat these names of this
 * directory), so other ranks steal the lstats and the list is never held whole:
 * - each listed path, under its parent directory; flag 'l' (do not descend) unless
 *   --recursive-list, when a listed directory is walked whole;
 * - each directory leading to a listed path that the list does not name (rsync's implied
 *   directories), flag 'p': recorded like any directory (created, given its source
 *   metadata in the directory-metadata phase), never descended, and a failure to lstat
 *   it is not reported (the listed path below it is).
 * Every path goes through SeenPaths first, so a path named twice, or implied by thousands
 * of lines, is walked (and so created and given its metadata) exactly once.
 */
import { promises as fsp } from 'node:fs';
import type { Readable } from 'node:stream';
import type { EntryErrors } from '../errors.js';
import type { ResumeState } from '../checkpoint/resume-state.js';
import { listLines, listPath } from './list-lines.js';
import { SeenPaths } from './seen-paths.js';

/** Which names of an 's' item the walk records: 'l' listed (not descended), 'p' implied parents. */
export type ListFlag = 'l' | 'p';

export type ListItem =
  | { t: 'd'; r: number; p: Buffer }
  | { t: 's'; r: number; p: Buffer; n: Buffer[]; x?: ListFlag };

export interface FileList {
  /** the list as a stream (a file, or stdin for '-'); opened by rank 0 only */
  open: () => Readable;
  /** how to name the list in messages */
  name: string;
  /** the separator: '\n', or NUL with --from0 */
  sep: 0 | 10;
  /** --recursive-list: a listed directory is copied whole */
  recursive: boolean;
}

const NAMES_PER_ITEM = 512;
/**
 * Lines held back to gather names of one directory into one item: an unsorted list would
 * otherwise make an item (a thread-pool job, a checkpoint row) per line.
 */
const WINDOW = 4096;
const SLASH = 0x2f;

function listError(code: string, message: string): NodeJS.ErrnoException {
  return Object.assign(new Error(message), { code });
}

const listedLate = () => listError('EINVAL', 'with --recursive-list a directory must be listed before the paths inside it (as find lists them)');

/** The walk items of a list, for root 0 (--files-from takes one SRC). */
export async function* listItems(list: FileList, errors: EntryErrors, resume: ResumeState | null | undefined): AsyncGenerator<ListItem> {
  const seen = new SeenPaths();
  type Group = { p: Buffer; n: Buffer[]; x: ListFlag | undefined };
  /** names not yet handed out, by directory and flag */
  const pending = new Map<string, Group>();
  let held = 0;
  const item = (b: Group): ListItem => (b.x ? { t: 's', r: 0, p: b.p, n: b.n, x: b.x } : { t: 's', r: 0, p: b.p, n: b.n });
  /** Add one name; returns the items it completes (a full directory group, or the whole window). */
  const add = (dir: Buffer, name: Buffer, x: ListFlag | undefined): ListItem[] => {
    const key = `${x ?? ''}/${dir.toString('latin1')}`;
    let g = pending.get(key);
    if (!g) pending.set(key, (g = { p: dir, n: [], x }));
    g.n.push(name);
    held++;
    if (g.n.length >= NAMES_PER_ITEM) {
      pending.delete(key);
      held -= g.n.length;
      return [item(g)];
    }
    return held >= WINDOW ? drain() : [];
  };
  const drain = (): ListItem[] => {
    const out = [...pending.values()].map(item);
    pending.clear();
    held = 0;
    return out;
  };
  let rootListed = false;
  /** a line other than SRC itself came already */
  let anyPath = false;
  try {
    for await (const l of listLines(list.open(), list.sep)) {
      if ('tooLong' in l) {
        errors.report(`read line ${l.no} of the list`, list.name, listError('ENAMETOOLONG', 'File name too long'));
        continue;
      }
      const lp = listPath(l.line);
      if (lp.kind === 'blank') continue;
      if (lp.kind === 'dotdot') {
        errors.report(`copy list line ${l.no}`, l.line, listError('EINVAL', "a '..' component is refused: it could lead out of SRC"));
        continue;
      }
      const p = lp.p;
      if (p.length === 0) {
        // SRC itself ('.' or '/'): always recorded; listed with --recursive-list, the whole tree.
        if (list.recursive && !rootListed && anyPath) {
          errors.report(`copy list line ${l.no}`, l.line, listedLate());
          continue;
        }
        if (list.recursive && !rootListed && !resume?.isComplete(0, p)) yield { t: 'd', r: 0, p };
        rootListed = true;
        continue;
      }
      anyPath = true;
      if (list.recursive && rootListed) continue;
      // The directories leading to p, shallowest first.
      let covered = false;
      for (let i = p.indexOf(SLASH); i >= 0; i = p.indexOf(SLASH, i + 1)) {
        const a = p.subarray(0, i);
        const was = seen.mark(a, false);
        if (was === 'listed' && list.recursive) {
          // inside a directory listed (and so walked whole) before
          covered = true;
          break;
        }
        if (was === 'new') {
          const s = a.lastIndexOf(SLASH);
          const out = add(s < 0 ? Buffer.alloc(0) : Buffer.from(a.subarray(0, s)), Buffer.from(a.subarray(s + 1)), 'p');
          yield* out;
        }
      }
      if (covered) continue;
      const was = seen.mark(p, true);
      if (was === 'listed') continue; // named again: once is enough
      if (was === 'parent') {
        // Recorded already as a parent. Walking it whole now would record again the paths
        // inside it that earlier lines named (a large file copied twice at once by two ranks
        // is not safe): refused, named.
        if (list.recursive) errors.report(`copy list line ${l.no}`, l.line, listedLate());
        continue;
      }
      const s = p.lastIndexOf(SLASH);
      const out = add(s < 0 ? Buffer.alloc(0) : p.subarray(0, s), p.subarray(s + 1), list.recursive ? undefined : 'l');
      yield* out;
    }
  } catch (err) {
    // What was read is copied; the job ends with an error (exit 1) and can be resumed.
    errors.report('read the list', list.name, err);
  } finally {
    seen.close();
  }
  yield* drain();
}

/**
 * Why the directory `rel` of a listed path cannot be used (a component is a symlink, or not
 * a directory), or null. The walk of a tree only ever descends into what it lstat'ed as a
 * directory; a list names paths directly, so a symlink planted on the way ('a' -> /etc,
 * listed 'a/passwd') must not be followed: each component is lstat'ed first.
 */
export async function listedDirProblem(root: Buffer, rel: Buffer): Promise<NodeJS.ErrnoException | null> {
  for (let i = rel.indexOf(SLASH); ; i = rel.indexOf(SLASH, i + 1)) {
    const prefix = i < 0 ? rel : rel.subarray(0, i);
    if (prefix.length > 0) {
      let st;
      try {
        st = await fsp.lstat(Buffer.concat([root, Buffer.from('/'), prefix]));
      } catch (err) {
        return err as NodeJS.ErrnoException;
      }
      if (st.isSymbolicLink()) return listError('ELOOP', 'Too many levels of symbolic links');
      if (!st.isDirectory()) return listError('ENOTDIR', 'Not a directory');
    }
    if (i < 0) return null;
  }
}
