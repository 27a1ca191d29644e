/**
 * 3. mkdir: every directory, with the owner's rwx (so read-only ones can be filled; their
 * modes and times are set last, see dir-meta-phase.ts). A directory that will keep the
 * owner the mkdir gives it (root copying root's, or not root) gets its source's
 * permission bits at once, so the dir-meta phase finds its mode right and makes no chmod
 * (a round trip on a parallel file system); one whose owner is still to change stays
 * owner-only until then, as one that got another owner than expected (a setgid parent).
 * Order-free: a recursive mkdir creates missing parents, owner-only. Work stealing over
 * batches of directories. Collective.
 */
import { forEachLimit } from '../util/for-each-limit.js';
import { noPhase, type PhaseResult, type Task } from '../engine/task.js';
import type { EntryErrors } from '../errors.js';
import type { WalkLists } from '../walk/walk-lists.js';
import { isBuf, type Entry, type Root } from '../model/entry.js';
import type { EntryMeta } from '../model/meta.js';
import { batches } from '../copy/plan.js';
import { dirKey, dstOf, errPath, srcOf } from '../model/paths.js';
import { Trees, copyLayoutBeneath } from '../io/beneath.js';
import type { Layout } from '../copy/layout.js';
import { ACTION, type ReportPart } from '../report/report-part.js';
import type { Throttle } from '../limits/throttle.js';
import type { CopyRun } from './run.js';
import type { Walked } from './walk-phase.js';

export async function mkdirPhase(run: CopyRun, walked: Walked): Promise<PhaseResult> {
  run.progress?.phase('mkdir');
  // The walk made every directory it found (walk-copy.ts): nothing left on any rank.
  const mk = walked.left.dirs ? await run.rt.runPhase(mkdirTask(run.lists, dirMaker(run), walked.dstDirs, walked.made, run.throttle)) : noPhase(run.rt.size);
  run.mark('mkdir');
  return mk;
}

/** What making one directory takes: the mkdir phase's, and the walk's when it overlaps the copy (walk-copy.ts). */
export interface DirMaker {
  roots: Root[];
  trees: Trees;
  errors: EntryErrors;
  tracked: Tracked;
  /** --layout copy (copy/layout.ts): each directory gets its source's default layout, before anything is created in it */
  layout: Layout | null;
  report: ReportPart | null;
  /** a directory of this source metadata keeps the owner its mkdir gives it (root's: no chown follows); null: every directory does (not root: no chown at all) */
  keepsOwner: ((m: EntryMeta) => boolean) | null;
}

export function dirMaker(run: CopyRun): DirMaker {
  const euid = process.geteuid?.() ?? -1;
  const egid = process.getegid?.() ?? -1;
  return {
    roots: run.roots, trees: run.trees, errors: run.errors, report: run.report, layout: run.layout.copy ? run.layout : null,
    tracked: (op, path, fn) => run.retrying(() => run.tracked(op, path, fn)),
    // Without chown (not root) every directory keeps the owner its mkdir gives it.
    keepsOwner: run.chown ? (m: EntryMeta) => m.uid === euid && m.gid === egid : null,
  };
}

type Tracked = <T>(op: string, path: Buffer, fn: () => Promise<T>) => Promise<T>;

/**
 * mkdir `dst` with `mode`: true when this call created it. Parents that are missing
 * (another rank has not made them yet) are made owner-only first (their own mkdir then
 * finds them, and the dir-meta phase sets their mode).
 */
async function mkdirOwnMode(trees: Trees, dst: Buffer, mode: number): Promise<boolean> {
  const once = () => trees.dst.mkdir(dst, mode, false).then(() => true, (err: NodeJS.ErrnoException) => {
    if (err.code === 'EEXIST') return false; // the lstat after tells a directory from anything else
    throw err;
  });
  try {
    return await once();
  } catch (err) {
    const parent = parentPath(dst);
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT' || !parent) throw err;
    await trees.dst.mkdir(parent, 0o700, true);
    return once();
  }
}

/** The path without its last name (null for a single name). */
function parentPath(p: Buffer): Buffer | null {
  let end = p.length;
  while (end > 1 && p[end - 1] === 0x2f) end--;
  const slash = p.lastIndexOf(0x2f, end - 1);
  return slash <= 0 ? null : p.subarray(0, slash);
}

/** The batch's directories grouped by depth (slashes in the path), shallowest first. */
function byDepth(list: Entry[]): Entry[][] {
  const levels = new Map<number, Entry[]>();
  for (const d of list) {
    let n = 0;
    for (const c of d.p) if (c === 0x2f) n++;
    const level = levels.get(n);
    if (level) level.push(d);
    else levels.set(n, [d]);
  }
  return [...levels.entries()].sort((a, b) => a[0] - b[0]).map(([, l]) => l);
}

/**
 * Makes d's destination (see the top of this file for the mode it gets): false when that
 * failed (named and counted in `errors`).
 */
export async function makeDirectory(m: DirMaker, d: Entry): Promise<boolean> {
  const { roots, trees, errors, tracked, layout, report, keepsOwner } = m;
  const dst = dstOf(roots, d);
  try {
    let existed = false;
    const st = await tracked('create of directory', dst, async () => {
      // --report: created or there already (one lstat more, only with --report)
      if (report) existed = await trees.dst.lstat(dst).then(() => true, () => false);
      const mode = !keepsOwner || keepsOwner(d.m) ? (d.m.mode & 0o777) | 0o700 : 0o700;
      const made = mode === 0o700 ? await trees.dst.mkdir(dst, 0o700, true).then(() => false) : await mkdirOwnMode(trees, dst, mode);
      const rec = await trees.dst.lstatRecord(dst);
      // Not the owner expected (a setgid parent, a squashing server): owner-only
      // until the dir-meta phase sets the source's owner and then its mode, as if
      // made 0700; a setgid bit it inherited stays, and so does its effect on what
      // is created inside (their group is set back one by one, as before).
      const got = rec[1]! & 0o7777;
      if (made && keepsOwner && (rec[2] !== d.m.uid || rec[3] !== d.m.gid) && (got & 0o5077) !== 0) await trees.dst.chmod(dst, 0o700 | (got & 0o2000));
      return rec;
    });
    if (((st[1] ?? 0) & 0o170000) !== 0o040000) throw Object.assign(new Error('exists and is not a directory'), { code: 'EEXIST' });
    report?.add(existed ? ACTION.upToDate : ACTION.copied, d.r, d.p);
    if (layout && trees.native) {
      await tracked('set layout of', dst, () => copyLayoutBeneath(trees.native!, trees.src, srcOf(roots, d), trees.dst, dst, layout.name)).catch((err) => {
        errors.report('set layout of', errPath(err, dst), err);
      });
    }
    return true;
  } catch (err) {
    errors.report('create directory', dst, err);
    return false;
  }
}

/**
 * `existing`: directories DST had when walked (--update): nothing to create. `made`:
 * directories the walk made already (their dirKey; walk-copy.ts), named there if that failed.
 */
function mkdirTask(lists: WalkLists, maker: DirMaker, existing: Set<string> | null, made: Set<string> | null, throttle: Throttle | null): Task<Entry[]> {
  return {
    name: 'mkdir',
    concurrency: 4,
    seed() {},
    source: () => batches(lists.dirs(), () => 0, 128),
    ready: throttle ? () => (throttle.active ? throttle.idle() : null) : undefined,
    async process(list, ctx) {
      if (throttle?.active) await throttle.take(0, list.length); // one operation per directory (--max-ops)
      const one = async (d: Entry): Promise<void> => {
        if (made?.has(dirKey(d.r, d.p))) {
          ctx.count('dirs');
          return;
        }
        if (existing?.has(dirKey(d.r, d.p))) {
          ctx.count('dirs');
          maker.report?.add(ACTION.upToDate, d.r, d.p);
          return;
        }
        ctx.count(await makeDirectory(maker, d) ? 'dirs' : 'errors');
      };
      // Shallower first: a directory is made before its children in the batch, which then
      // find it (a child first would make it owner-only on the way, and cost a chmod later).
      for (const level of byDepth(list)) await forEachLimit(level, 8, one);
    },
    isItem: (x): x is Entry[] => Array.isArray(x) && x.every((e) => typeof e === 'object' && e !== null && (e as Entry).k === 'd' && isBuf((e as Entry).p)),
  };
}
