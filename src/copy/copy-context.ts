/**
 * What the copy phase's task works with (built once per job by phases/copy-data-phase.ts),
 * and the options its metadata calls take from it.
 */
import type { TaskContext } from '../engine/task.js';
import type { EntryErrors } from '../errors.js';
import { COPY_FLAGS, type NativeAddon } from '../native/loader.js';
import type { RankStore } from '../checkpoint/rank-store.js';
import type { Root } from '../model/entry.js';
import type { InFlight } from '../io/in-flight.js';
import type { Trees } from '../io/beneath.js';
import type { Retries } from '../io/retry.js';
import type { ReportPart } from '../report/report-part.js';
import type { Throttle } from '../limits/throttle.js';
import type { CopyDigests } from './copy-digests.js';
import type { MetaOptions } from './metadata.js';
import type { Layout } from './layout.js';
import type { DataSync } from './data-sync.js';
import type { CopyItem } from './copy-item.js';

export interface CopyContext {
  roots: Root[];
  /** Every operation on SRC and DST goes through these (beneath the roots, see beneath.ts). */
  trees: Trees;
  native: NativeAddon | null;
  /** chown to the source owner (only root may) */
  chown: boolean;
  errors: EntryErrors;
  /**
   * Large files one of whose chunks failed on this rank: fileKey -> why (error code, and
   * whether it was about the destination). Not printed here: the file's owner names the
   * file once in the finish step, whatever the number of chunks and ranks that failed.
   */
  failed: Map<string, ChunkFailure>;
  /** Checkpoint: finished files and chunks are recorded here. */
  store?: RankStore | null;
  /** Told what was written, so the sync before the checkpoint's commit covers it (data-sync.ts). */
  sync?: DataSync;
  /** Hash what is read (fsum's digests, see copy-digests.ts); null: no hashing. */
  digests: CopyDigests | null;
  /**
   * --update: 'time' leaves a destination file of the same size and ns mtime alone without
   * reading it (dsync's rule); 'checksum' reads both sides and copies only when the content
   * differs (then only the metadata is set). false: every file is copied.
   */
  update: false | 'time' | 'checksum';
  /**
   * Requests in flight, watched for stalls (see in-flight.ts); a native batch stuck on one
   * file hands the files it has not started on as a new item.
   */
  inFlight?: InFlight | null;
  /** --layout (copy/layout.ts): whether files get their source's layout at create, and its attribute's name */
  layout?: Layout;
  /** --retries: entries that fail transiently are enqueued again after a backoff; null: never. */
  retries?: Retries | null;
  /** --report: what happened to each entry (failures come through errors). */
  report?: ReportPart | null;
  /**
   * --bwlimit/--max-ops: this rank's share of the job's rates; an item waits for its turn
   * before it starts (its bytes, and one operation per entry or chunk). null: no limits.
   */
  limits?: Throttle | null;
  /** For tests (fcp's hidden --test-slow-copy-ms): every item waits this long before it starts. */
  slowMs?: number;
  /** This rank's work, cut into items lazily (see phases/copy-data-phase.ts); may count skipped work. */
  seedItems: (ctx: TaskContext<CopyItem>) => AsyncIterable<CopyItem> | Iterable<CopyItem>;
}

export interface ChunkFailure { code: string; onDst: boolean }

export function metaOptions(c: Pick<CopyContext, 'native' | 'chown' | 'trees' | 'layout'>, src: Buffer): MetaOptions {
  return { native: c.native, chown: c.chown, xattrs: c.native !== null, xattrSrc: src, sides: c.trees, layout: c.layout?.name };
}

/**
 * With syncfs before each commit, the addon starts writing data back as it goes (see
 * batch.cc): large files and chunks, every 8 MiB and at their end.
 */
export const writebackFlag = (c: Pick<CopyContext, 'sync'>): number =>
  c.sync?.kind === 'syncfs' ? COPY_FLAGS.WRITEBACK : 0;
