/**
 * The phases of fsum:
 *
 *   1. walk      distributed, as fcp's (reads only), into the same bounded lists
 *                (walk/walk-lists.ts): past `listBudget` entries a rank's lists spill to
 *                a private scratch store (its listings) and are read back lazily
 *   2. seed      directories and special files need no I/O: their records are made by
 *                the rank that walked them; symlinks in batches, whole files (size <=
 *                chunk) in batches, larger files as chunks of `chunkSize`, all pulled
 *                lazily from the lists by the engine (Task.source) while the queue is short
 *   3. hash      work stealing over those items (sum-task.ts)
 *   4. combine   allgather of the partial digests of chunks (multi-chunk files only, so
 *                few); each file's owner (the rank that walked it) adds them up
 *   5. signature allreduce of the per-root sums of entry digests (hex strings)
 *   6. records   only when a sum file, --check or --compare needs them: each rank keeps
 *                its records in a temporary SQLite table (record-table.ts), then routes
 *                them all to rank 0 with exchange() in bounded rounds, where they land in
 *                a table ordered by (root, path); memory does not grow with the tree
 *
 * The chunk size is fixed (default 64 MiB, a multiple of the 1 MiB leaf), never derived
 * from the number of ranks; the result does not depend on either anyway.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { phaseTimer } from './phase-timer.js';
import { RankStore } from '../checkpoint/rank-store.js';
import type { Runtime } from '../engine/runtime.js';
import { EntryErrors } from '../errors.js';
import { loadNative } from '../native/loader.js';
import { chunksOf } from '../copy/plan.js';
import { walkTask } from '../walk/walk-task.js';
import { WalkLists } from '../walk/walk-lists.js';
import type { Entry } from '../model/entry.js';
import { ProgressLine } from '../progress/progress-line.js';
import { eraseLineBeforeWrites } from '../progress/terminal-line.js';
import { LEAF, MASK128, fileDigest, fromHex, toHex } from '../checksum/hasher.js';
import { makeRecord, isRecordTuple, type SumRecord, type RecordTuple } from '../checksum/records.js';
import { RecordTable } from '../checksum/record-table.js';
import { exchange } from '../engine/exchange.js';
import { reportDrops } from './report-drops.js';
import { walkedEntries, type JobTotals } from './job-totals.js';
import { isChunkPartials, sumTask, type ChunkPartial, type SumItem } from '../checksum/sum-task.js';
import { isLocalFs } from '../checksum/read-files.js';
import { allreduceDigests } from '../checksum/signature.js';
import { openSide } from '../io/side.js';

export const DEFAULT_SUM_CHUNK = 64 * 1024 * 1024;

export interface SumJobOptions {
  /** absolute root paths, by index */
  roots: Buffer[];
  /** a multiple of LEAF */
  chunkSize: number;
  meta: boolean;
  /** root index in the entry digests (default: the root's own index; --compare: 0 for both) */
  digestRoot?: (r: number) => number;
  /** gather every record at rank 0 (in a RecordTable) */
  gather: boolean;
  quiet: boolean;
  /** walk-list entries a rank keeps in memory before they spill to a scratch store (default: no limit) */
  listBudget?: number;
  /**
   * batch whole files on local file systems (default true; see sum-task.ts): with the addon
   * one hashFiles job per batch, without it small files read synchronously while that is fast
   */
  syncSmall?: boolean;
}

/** The fields fcp reports too (job-totals.ts), and the signature's own. */
export interface SumSummary extends JobTotals {
  signature: string;
  /** signature of each root alone */
  rootSignatures: string[];
  leafSize: number;
  meta: boolean;
}

export interface SumJobResult {
  summary: SumSummary;
  /** rank 0 with `gather`: every entry's record, in an ordered table the caller closes; else null */
  records: RecordTable | null;
  exitCode: number;
}


export async function runSumJob(rt: Runtime, opts: SumJobOptions): Promise<SumJobResult> {
  const mark = phaseTimer(rt);
  if (opts.chunkSize % LEAF !== 0 || opts.chunkSize <= 0) throw new Error(`chunk size ${opts.chunkSize} is not a multiple of ${LEAF}`);
  const t0 = process.hrtime.bigint();
  const errors = new EntryErrors('fsum');
  // The walk records its listings (packed batches, cheap) in a private scratch store, as
  // fcp's walk does in its checkpoint; past the budget the lists spill to it as fcp's do
  // there: only directories become rows, files are read back from the listings.
  const scratchDir = mkdtempSync(join(tmpdir(), 'fsum-lists-'));
  const scratch = new RankStore(join(scratchDir, 'lists.db'));
  const dropScratch = () => {
    scratch.close(false); // removed next: what it did not write yet need not be (nor SQLite loaded for it)
    rmSync(scratchDir, { recursive: true, force: true });
  };
  rt.addAbortHook(dropScratch);
  const lists = new WalkLists(scratch, opts.listBudget ?? Infinity, true);
  const uid = process.getuid?.() ?? 0;
  const digestRoot = opts.digestRoot ?? ((r: number) => r);
  const progress = rt.rank === 0 && !opts.quiet && process.stdout.isTTY ? new ProgressLine(process.stdout) : null;
  if (rt.rank !== 0 && !opts.quiet && process.stdout.isTTY) eraseLineBeforeWrites(process.stderr); // the line is rank 0's
  // a stopped job's messages (why, where progress is saved) go on a clean line, and the line stays away
  if (progress) rt.addAbortHook(() => progress.done());
  const chunk = opts.chunkSize;

  // 1. walk
  progress?.phase('walk');
  rt.onProgress((_p, total) => progress?.walk(total.entries ?? 0));
  // SRC is read beneath its roots' anchors (io/side.ts), never through a symlink.
  const native = loadNative();
  const side = openSide(native, opts.roots, (root) => root.length > 1 && root[root.length - 1] === 0x2f);
  rt.addAbortHook(() => side.close());
  const walk = await rt.runPhase(walkTask({ roots: opts.roots.map((src) => ({ src, dst: src })), side, lists, errors, uid, native, store: scratch }));
  const totals = walk.total;
  mark('walk');

  // 2. seed
  // Records are kept only when someone reads them (sum file, --check, --compare), in a
  // temporary table, not the heap; the signature needs only the per-root sums.
  const records = opts.gather ? new RecordTable({ ordered: false }) : null;
  const local = new Array<bigint>(opts.roots.length).fill(0n);
  const record = (x: SumRecord) => {
    if (!x.err) local[x.r] = (local[x.r]! + fromHex(x.dig)) & MASK128;
    records?.add(x);
  };
  const partials: ChunkPartial[] = [];
  for (const d of lists.dirs()) record(makeRecord(d, { digestRoot: digestRoot(d.r), meta: opts.meta }));
  for (const e of lists.others()) if (e.k !== 'l') record(makeRecord(e, { digestRoot: digestRoot(e.r), meta: opts.meta }));
  /** files of more than one chunk, in the order seeded: a chunk names its file by index here (few: one per chunk of data) */
  const large: Entry[] = [];
  function* seedItems(): Generator<SumItem> {
    // Read from the lists as the engine pulls; thieves take the oldest items of the queue.
    let links: Entry[] = [];
    for (const e of lists.others()) {
      if (e.k !== 'l') continue;
      links.push(e);
      if (links.length >= 128) {
        yield { t: 'l', e: links };
        links = [];
      }
    }
    if (links.length > 0) yield { t: 'l', e: links };
    // +4 KiB per file: per-file costs count too, so batches of tiny files stay bounded
    let whole: Entry[] = [];
    let bytes = 0;
    for (const f of lists.files()) {
      if (f.m.size > chunk) {
        const n = large.push(f) - 1;
        let i = 0;
        for (const [o, l] of chunksOf(f.m.size, chunk)) yield { t: 'c', f, o, l, i: i++, w: rt.rank, n };
        continue;
      }
      whole.push(f);
      bytes += f.m.size + 4096;
      if (whole.length >= 64 || bytes >= 16 * 1024 * 1024) {
        yield { t: 'b', f: whole };
        whole = [];
        bytes = 0;
      }
    }
    if (whole.length > 0) yield { t: 'b', f: whole };
  }

  // 3. hash
  progress?.phase('hash');
  const totalBytes = totals.bytes ?? 0;
  rt.onProgress((_p, total) => progress?.copy(total.bytes ?? 0, totalBytes, total.files ?? 0, totals.files ?? 0));
  const hash = await rt.runPhase(sumTask({
    roots: opts.roots, side, native, errors, meta: opts.meta, digestRoot, record, partials, seedItems,
    syncRoots: opts.roots.map((r) => opts.syncSmall !== false && isLocalFs(r)),
  }));

  mark('hash');
  // 4. combine the chunks of large files at their owners
  progress?.phase('combine');
  const all = (await rt.collectives.allgather<ChunkPartial[]>(partials, isChunkPartials)).flat();
  const mine = new Map<number, ChunkPartial[]>();
  for (const p of all) {
    if (p[0] !== rt.rank) continue;
    if (!mine.has(p[1])) mine.set(p[1], []);
    mine.get(p[1])!.push(p);
  }
  let largeDone = 0;
  for (let n = 0; n < large.length; n++) {
    const f = large[n]!;
    const parts = (mine.get(n) ?? []).sort((a, b) => a[2] - b[2]);
    const spans = chunksOf(f.m.size, chunk);
    const ok = parts.length === spans.length && parts.every((p, i) => p[2] === i && p[3] !== '');
    if (!ok) {
      // the rank that hashed the failing chunk reported it
      record(makeRecord(f, { digestRoot: digestRoot(f.r), meta: opts.meta, err: true }));
      continue;
    }
    const content = fileDigest(parts.map((p) => fromHex(p[3])), f.m.size);
    const chunks = spans.map(([o, l], i) => [o, l, parts[i]![3]] as [number, number, string]);
    record(makeRecord(f, { digestRoot: digestRoot(f.r), meta: opts.meta, content, chunks }));
    largeDone++;
  }

  mark('combine');
  // 5. signature
  progress?.phase('signature');
  const rootSums = await allreduceDigests(rt.collectives, local);
  const signature = rootSums.reduce((a, b) => (a + b) & MASK128, 0n);
  const counts = await rt.allreduceCounters({ errors: errors.count, largeDone, listSpilled: lists.isSpilled ? 1 : 0 });
  const filesPerRank = await rt.collectives.allgather<number>((hash.local.files ?? 0) + largeDone, (x): x is number => typeof x === 'number');

  mark('signature');
  // 6. records
  let gathered: RecordTable | null = null;
  if (records) {
    progress?.phase('records');
    const into = rt.rank === 0 ? new RecordTable({ ordered: true }) : null;
    try {
      function* toRoot(): Generator<[number, RecordTuple]> {
        for (const t of records!.tuples()) yield [0, t];
      }
      await exchange<RecordTuple>(rt.collectives, toRoot(), isRecordTuple, (_from, recs) => into!.addTuples(recs));
    } catch (err) {
      into?.close();
      throw err;
    } finally {
      records.close();
    }
    gathered = into;
  }
  if (records) mark('records');
  progress?.done();
  const droppedMessages = await reportDrops(rt, 'fsum');

  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  const summary: SumSummary = {
    signature: toHex(signature),
    rootSignatures: rootSums.map(toHex),
    ...walkedEntries(totals),
    bytes: totalBytes,
    seconds,
    bytesPerSecond: totalBytes / Math.max(seconds, 1e-9),
    errors: counts.errors ?? 0,
    chunkSize: chunk,
    leafSize: LEAF,
    meta: opts.meta,
    droppedMessages,
    spilled: { listRanks: counts.listSpilled ?? 0, queueItems: (walk.total.spilledItems ?? 0) + (hash.total.spilledItems ?? 0) },
    ranks: hash.perRank.map((c, r) => ({
      files: filesPerRank[r] ?? 0,
      bytes: c.bytes ?? 0,
      chunks: c.chunks ?? 0,
      steals: (c.steals ?? 0) + (walk.perRank[r]?.steals ?? 0),
    })),
  };
  side.close();
  dropScratch();
  return { summary, records: gathered, exitCode: summary.errors > 0 ? 1 : 0 };
}
