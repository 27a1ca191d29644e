/**
 * What the distributed walk (walk-task.ts) works on, needs and hands on: its items, its
 * context (roots, lists, checkpoint, filters, options) and the sink of the copy that
 * overlaps it (phases/walk-copy.ts).
 */
import type { InFlight } from '../io/in-flight.js';
import type { EntryErrors } from '../errors.js';
import type { Entry, Root } from '../model/entry.js';
import type { NativeAddon } from '../native/loader.js';
import type { RankStore } from '../checkpoint/rank-store.js';
import type { ResumeState } from '../checkpoint/resume-state.js';
import type { PathFilter } from './filter.js';
import type { WalkLists } from './walk-lists.js';
import type { Side } from '../io/beneath.js';
import type { FileRun } from '../model/file-run.js';
import type { FileList, ListFlag } from './list-source.js';
import type { Retries } from '../io/retry.js';
import type { ReportPart } from '../report/report-part.js';
import type { Throttle } from '../limits/throttle.js';

/** `a`: the try this item is (absent: the first; n: its n-th retry, see io/retry.ts). */
export type WalkItem =
  | { t: 'd'; r: number; p: Buffer; a?: number }
  | { t: 's'; r: number; p: Buffer; n: Buffer[]; x?: ListFlag; a?: number };

export interface WalkContext {
  roots: Root[];
  lists: WalkLists;
  errors: EntryErrors;
  /** uid of this process; entries owned by others are counted (owner kept only as root) */
  uid: number;
  /** With the addon a batch is stat'ed in one thread-pool job, relative to its directory. */
  native: NativeAddon | null;
  /**
   * The walked roots' side (io/side.ts): with the addon, directories are opened
   * beneath the roots' anchors, never through a symlink in any component.
   */
  side: Side;
  /** Checkpoint: every entry found and every directory completely read is recorded. */
  store?: RankStore | null;
  /** Resume: what earlier runs found (see checkpoint/resume-state.ts). */
  resume?: ResumeState | null;
  /** --exclude/--include: excluded entries are not recorded, excluded directories not read. */
  filter?: PathFilter | null;
  /** A missing root is no error (walking DST for --delete before anything was copied). */
  optionalRoots?: boolean;
  /** Requests in flight, watched for stalls: a directory's item is one (see io/in-flight.ts). */
  inFlight?: InFlight | null;
  /** --files-from: the list seeds the walk instead of the root (see list-source.ts) */
  list?: FileList | null;
  /** --retries: a directory or names whose read or lstat failed transiently are enqueued again after a backoff. */
  retries?: Retries | null;
  /** --report: excluded entries are reported (the walk of SRC only, not --delete's of DST) */
  report?: ReportPart | null;
  /**
   * --update (time rule), with the addon: DST's side. Each batch of names is also stat'ed
   * in DST's directory (one job, one fstatat a name); a regular file of one link that DST
   * has with its size and mtime (model/update-rule.ts) is counted up to date here and
   * recorded as such in the listing (UP_TO_DATE), and never becomes an entry of the lists:
   * an unchanged file costs the copy nothing.
   */
  updateDst?: Side | null;
  /** With updateDst: filled with the dirKey of each directory DST already has as one (mkdir can skip it). */
  dstDirs?: Set<string> | null;
  /** --max-ops: one operation per directory read and per entry lstat'ed (limits/throttle.ts) */
  limits?: Throttle | null;
  /** The copy overlapped with the walk (phases/walk-copy.ts); null: the walk only lists. */
  sink?: WalkSink | null;
}

/**
 * Where the walk hands what the copy can start on before the walk ends: the destinations
 * of the directories it finds (made before they are read, so that their files can be
 * copied as soon as they are listed) and the plain files of each batch it lists.
 */
export interface WalkSink {
  /** plain files larger than this stay in the lists (large files are cut by the plan's chunk size) */
  readonly maxSize: number;
  /** directories just found (recorded in this rank's lists): make their destinations */
  dirs(found: Entry[]): Promise<void>;
  /** plain files of at most maxSize bytes, just listed: copy them (they never enter the lists) */
  files(run: FileRun): void;
}
