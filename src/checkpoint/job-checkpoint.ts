/**
 * The checkpoint's life in a job: rank 0 takes the lock and (on --resume) merges earlier
 * runs' records; every rank then opens its own store and, on resume, the merged view.
 * Rank 0 keeps the lock fresh; the stores commit every interval (records of finished
 * work after a data sync, see rank-store.ts) and when the job stops.
 */
import { showPath } from '../model/paths.js';
import { FcpError, causeOf } from '../errors.js';
import type { Runtime } from '../engine/runtime.js';
import type { Root } from '../model/entry.js';
import { CheckpointDir, describeRoots } from './checkpoint-dir.js';
import { RankStore } from './rank-store.js';
import { ResumeState } from './resume-state.js';
import { SCHEMA_VERSION, openDb, schemaVersionOf } from './schema.js';
import { SpaceReserve } from './reserve.js';
import { join } from 'node:path';

export interface CheckpointOptions {
  dir: string;
  intervalMs: number;
  resume: boolean;
  /** false: no records (and so nothing to resume), but the lock is still taken */
  enabled: boolean;
  roots: Root[];
  /** --files-from: the job copies a list (a resume must too, and a list job must not resume a whole copy) */
  list?: boolean;
  /** records a rank buffers before it writes them whatever the interval (default: rank-store.ts FLUSH_ROWS) */
  bufferRows?: number;
}

export interface JobCheckpoint {
  store: RankStore | null;
  resume: ResumeState | null;
  dir: CheckpointDir;
  /** the chunk size an earlier run used (a resume must cut files the same way) */
  earlierChunkSize: number | null;
  /** this run's store file of any rank (they share the checkpoint directory) */
  rankFileOf(rank: number): string;
  /** flush and close this rank's store; `keep` false: the checkpoint goes (see RankStore.close) */
  close(keep?: boolean): void;
  /** give back the space reserved for the checkpoint (a full disk: see reserve.ts) */
  releaseReserve(): void;
  /** when the job stops: awaited before the store is closed (let work in flight be recorded) */
  beforeClose: (() => Promise<void>) | null;
}

/** This job cannot use the checkpoint it found (exit 2, nothing written): the message says what to do. */
export class CheckpointRefused extends FcpError {
  constructor(message: string, code: 'CHECKPOINT_REFUSED' | 'CHECKPOINT_VERSION' = 'CHECKPOINT_REFUSED') {
    super(code, message);
  }
}

interface Setup { error: string | null; merged: string | null; gen: number; code?: 'CHECKPOINT_VERSION' }

/** `syncData`: makes what was written durable before done records are committed (null: --no-sync). */
export async function openCheckpoint(rt: Runtime, o: CheckpointOptions, syncData: (() => Promise<void>) | null = null): Promise<JobCheckpoint> {
  const dir = new CheckpointDir(o.dir, 3 * o.intervalMs + 30_000);
  let setup: Setup = { error: null, merged: null, gen: 1 };
  if (rt.rank === 0) {
    try {
      setup = prepare(dir, o);
    } catch (err) {
      setup = { error: `cannot use checkpoint directory '${showPath(o.dir)}': ${causeOf(err)}`, merged: null, gen: 0 };
    }
  }
  const isSetup = (x: unknown): x is Setup => typeof x === 'object' && x !== null && 'gen' in x;
  setup = await rt.collectives.bcast<Setup>(rt.rank === 0 ? setup : null, isSetup);
  if (setup.error) throw new CheckpointRefused(setup.error, setup.code);

  const store = o.enabled ? new RankStore(dir.rankFile(setup.gen, rt.rank), syncData, o.bufferRows) : null;
  if (store) {
    store.onBroken = (err) => process.stderr.write(`fcp: checkpoint stopped: writing ${showPath(store.path)} failed (${err.message}); the copy goes on, and a later --resume redoes what this rank did since\n`);
  }
  const reserve = store ? new SpaceReserve(join(o.dir, `reserve-r${rt.rank}`)) : null;
  if (store && reserve) store.onFull = () => reserve.release();
  // In every rank's file, with its first records (files are created by their first flush,
  // rank 0's not necessarily first): whichever survives a kill says whose job it was.
  store?.setMeta('roots', describeRoots(o.roots));
  if (o.list) store?.setMeta('filesFrom', '1');
  store?.startInterval(o.intervalMs);
  const resume = setup.merged ? new ResumeState(setup.merged, rt.rank, rt.size) : null;
  const earlier = resume?.meta('chunkSize');
  let lockTimer: NodeJS.Timeout | null = null;
  if (rt.rank === 0) {
    lockTimer = setInterval(() => dir.touchLock(), o.intervalMs);
    lockTimer.unref();
  }
  const ckpt: JobCheckpoint = {
    store,
    resume,
    dir,
    earlierChunkSize: earlier ? Number(earlier) : null,
    rankFileOf: (r) => dir.rankFile(setup.gen, r),
    releaseReserve: () => void reserve?.release(),
    beforeClose: null,
    close(keep = true) {
      if (lockTimer) clearInterval(lockTimer);
      reserve?.release();
      store?.close(keep);
      resume?.close();
    },
  };
  rt.addAbortHook(async () => {
    if (lockTimer) clearInterval(lockTimer);
    await ckpt.beforeClose?.();
    // What this rank finished is recorded once a sync covered it (bounded: the runtime
    // exits after a few seconds of hooks; unsynced records are then dropped, not written).
    await store?.commit();
    reserve?.release();
    store?.close();
    resume?.close();
    // The lock stays: a resume takes over a stale lock, and a second plain fcp is refused.
  });
  return ckpt;
}

function prepare(dir: CheckpointDir, o: CheckpointOptions): Setup {
  const busy = dir.lock();
  if (busy) return { error: busy, merged: null, gen: 0 };
  const earlier = dir.earlierFiles();
  const has = earlier.ranks.length > 0 || earlier.merged !== null;
  // A job killed before its first flush left its lock and no database: still an
  // unfinished job (its partial copy is in DST), which only --resume continues.
  if ((has || dir.tookOverStaleLock) && !o.resume) {
    // Without a database the lock is what marks that job: it stays (stale once we exit).
    if (has) dir.unlock();
    return {
      error: `an unfinished job left a checkpoint in '${showPath(o.dir)}': add --resume to finish it, or remove that directory to start over`,
      merged: null, gen: 0,
    };
  }
  if (!has) return { error: null, merged: null, gen: earlier.maxGen + 1 };
  // Before anything is merged or written: another schema would be misread.
  for (const f of earlier.merged ? [earlier.merged, ...earlier.ranks] : earlier.ranks) {
    const v = schemaVersionOf(f);
    if (v !== null && v !== SCHEMA_VERSION) {
      dir.unlock();
      const d = showPath(o.dir);
      return {
        error: `the checkpoint in '${d}' was written by another version of fcp (schema ${v}, this fcp reads ${SCHEMA_VERSION}): finish it with that version, or remove '${d}' and copy again (--update skips what is done)`,
        merged: null, gen: 0, code: 'CHECKPOINT_VERSION',
      };
    }
  }
  const merged = dir.merge();
  const db = openDb(merged, true);
  const roots = db.prepare("SELECT v FROM meta WHERE k = 'roots'").pluck().get() as string | undefined;
  const list = db.prepare("SELECT v FROM meta WHERE k = 'filesFrom'").pluck().get() === '1';
  db.close();
  // Without its list a resume would copy all of SRC (a day's changes become the whole project).
  if (roots !== undefined && list !== (o.list ?? false)) {
    dir.unlock();
    return {
      error: list
        ? `the checkpoint in '${showPath(o.dir)}' is of a copy with --files-from: resume it with --files-from (the same list), or remove that directory`
        : `the checkpoint in '${showPath(o.dir)}' is of a copy of all of SRC, not of a --files-from list: resume it without --files-from, or remove that directory`,
      merged: null, gen: 0,
    };
  }
  if (roots !== undefined && roots !== describeRoots(o.roots)) {
    dir.unlock();
    return { error: `the checkpoint in '${showPath(o.dir)}' belongs to a copy of other paths; remove it or give --checkpoint-dir`, merged: null, gen: 0 };
  }
  return { error: null, merged, gen: earlier.maxGen + 1 };
}
