/**
 * The order a rank's checkpoint keeps with a data sync (rank-store.ts): records of
 * finished work reach SQLite only after a sync that started after they were buffered has
 * returned; a failed sync drops them (a resume redoes that work) and later ones go on;
 * closing writes only what a sync covered. Real SQLite; the sync is the store's injected
 * function, resolved or failed by the test.
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { RankStore } from '../../src/checkpoint/rank-store.js';
import { openDb } from '../../src/checkpoint/schema.js';
import type { Entry } from '../../src/model/entry.js';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'durable-store-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const file = (name: string): Entry => ({
  r: 0, p: Buffer.from(name), k: 'f',
  m: { mode: 0o100644, uid: 0, gid: 0, atime: [1, 0], mtime: [2, 0], size: 10, ino: 1, dev: 1, nlink: 1 },
});

/** The paths of the done rows committed in the store's file, as another process would read them. */
function committed(path: string): string[] {
  const db = openDb(path, true);
  try {
    return (db.prepare('SELECT path FROM done ORDER BY rowid').pluck().all() as Buffer[]).map((b) => b.toString());
  } finally {
    db.close();
  }
}

/** A sync the test ends: each call waits for resolve() or fail(). */
function controlledSync() {
  const calls: { resolve: () => void; reject: (e: Error) => void }[] = [];
  const fn = () => new Promise<void>((resolve, reject) => calls.push({ resolve, reject }));
  return { fn, calls };
}

const tick = () => new Promise((r) => setImmediate(r));

/** Commit, and let the sync it starts (the first of `sync`'s calls) return. */
async function commitSynced(store: RankStore, sync: ReturnType<typeof controlledSync>): Promise<void> {
  const p = store.commit();
  await tick();
  sync.calls[0]!.resolve();
  await p;
}

describe('rank store with a data sync', () => {
  it('commits done records only after the sync that covers them returned; records buffered meanwhile wait for the next', async () => {
    const path = join(dir, 'r0.db');
    const sync = controlledSync();
    const store = new RankStore(path, sync.fn);
    store.doneWork(file('a'), -1, 10);
    const first = store.commit();
    await tick();
    expect(sync.calls).toHaveLength(1);
    store.doneWork(file('b'), -1, 10); // written while the sync runs: not covered by it
    store.flush(); // a synchronous flush (walk records, a stop) writes no unsynced record
    expect(committed(path)).toEqual([]);
    sync.calls[0]!.resolve();
    await first;
    expect(committed(path)).toEqual(['a']);
    const second = store.commit();
    await tick();
    sync.calls[1]!.resolve();
    await second;
    expect(committed(path)).toEqual(['a', 'b']);
    store.close();
  });

  it('a failed sync drops the records it should have covered, says so, and later records are committed', async () => {
    const path = join(dir, 'r0.db');
    const sync = controlledSync();
    const store = new RankStore(path, sync.fn);
    const failures: string[] = [];
    store.onSyncFailed = (err) => failures.push(err.message);
    store.doneWork(file('lost'), -1, 10);
    const p = store.commit();
    await tick();
    sync.calls[0]!.reject(Object.assign(new Error('EIO: i/o error, syncfs'), { code: 'EIO' }));
    await p;
    expect(failures).toEqual(['EIO: i/o error, syncfs']);
    store.doneWork(file('kept'), -1, 10);
    const q = store.commit();
    await tick();
    sync.calls[1]!.resolve();
    await q;
    expect(committed(path)).toEqual(['kept']);
    store.close();
  });

  it('close writes what a sync covered and drops what none did', async () => {
    const path = join(dir, 'r0.db');
    const sync = controlledSync();
    const store = new RankStore(path, sync.fn);
    store.doneWork(file('synced'), -1, 10);
    await commitSynced(store, sync);
    store.doneWork(file('unsynced'), -1, 10);
    store.close();
    expect(committed(path)).toEqual(['synced']);
  });

  it('without a data sync (--no-sync) a flush commits done records at once', () => {
    const path = join(dir, 'r0.db');
    const store = new RankStore(path, null);
    store.doneWork(file('x'), -1, 10);
    store.flush();
    expect(committed(path)).toEqual(['x']);
    store.close();
  });
});

describe('rank store file: created by the first flush, not by a job that ends before it', () => {
  it('no file until the first flush; the meta set before goes in with the first records', async () => {
    const path = join(dir, 'r0.db');
    const sync = controlledSync();
    const store = new RankStore(path, sync.fn);
    store.setMeta('roots', 'R');
    store.listing(0, Buffer.from(''), Buffer.from('a\0'), new Float64Array(16), 1);
    store.doneWork(file('a'), -1, 10);
    expect(existsSync(path)).toBe(false);
    await commitSynced(store, sync);
    expect(committed(path)).toEqual(['a']);
    const db = openDb(path, true);
    try {
      expect(db.prepare("SELECT v FROM meta WHERE k = 'roots'").pluck().get()).toBe('R');
      expect(db.prepare('SELECT count(*) FROM listings').pluck().get()).toBe(1);
      expect(db.pragma('user_version', { simple: true })).toBe(1);
    } finally {
      db.close();
    }
    store.close();
  });

  it('finish syncs even with nothing to record; without a file yet it writes none, and close(false) leaves none', async () => {
    const path = join(dir, 'r0.db');
    const sync = controlledSync();
    const store = new RankStore(path, sync.fn);
    store.setMeta('roots', 'R');
    store.doneWork(file('a'), -1, 10);
    const p = store.finish();
    await tick();
    expect(sync.calls).toHaveLength(1);
    sync.calls[0]!.resolve();
    await p;
    expect(existsSync(path)).toBe(false);
    store.close(false);
    expect(existsSync(path)).toBe(false);
  });

  it('finish without a file yet, then close(true) (the checkpoint is kept): the records the end sync covered are written', async () => {
    const path = join(dir, 'r0.db');
    const sync = controlledSync();
    const store = new RankStore(path, sync.fn);
    store.setMeta('roots', 'R');
    store.doneWork(file('a'), -1, 10);
    store.doneWork(file('b'), -1, 10);
    const p = store.finish();
    await tick();
    sync.calls[0]!.resolve();
    await p;
    expect(existsSync(path)).toBe(false);
    store.close(true);
    expect(committed(path)).toEqual(['a', 'b']);
    expect(sync.calls).toHaveLength(1); // covered by the end sync: not synced again
  });

  it('finish with a file already written: the last records go into it at once, as a commit would', async () => {
    const path = join(dir, 'r0.db');
    const sync = controlledSync();
    const store = new RankStore(path, sync.fn);
    store.doneWork(file('a'), -1, 10);
    await commitSynced(store, sync);
    store.doneWork(file('b'), -1, 10);
    const q = store.finish();
    await tick();
    sync.calls[1]!.resolve();
    await q;
    expect(committed(path)).toEqual(['a', 'b']);
    store.close(false);
    expect(committed(path)).toEqual(['a', 'b']);
  });

  it('a failed end sync writes nothing it should have covered, even when the checkpoint is kept', async () => {
    const path = join(dir, 'r0.db');
    const sync = controlledSync();
    const store = new RankStore(path, sync.fn);
    const failures: string[] = [];
    store.onSyncFailed = (err) => failures.push(err.message);
    store.doneWork(file('lost'), -1, 10);
    const p = store.finish();
    await tick();
    sync.calls[0]!.reject(new Error('EIO'));
    await p;
    store.close(true);
    expect(failures).toEqual(['EIO']);
    expect(committed(path)).toEqual([]);
  });
});
