/**
 * A rank's checkpoint puts the job's facts (the chunk size) in its file before fcp leaves a
 * part file in DST (RankStore.ensureFacts), also when the file was created earlier, by a
 * walk's full buffer or the first interval's commit, before the chunk size was chosen. A
 * resume at another -np reads the chunk size from there; without it, it chose another, copied
 * a large file whole and left its part file behind (CI: resume.test.ts, kill at 1.07 s, np 4 -> 2).
 * Real SQLite, read back through a second connection as a resume would.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { RankStore } from '../../src/checkpoint/rank-store.js';
import { openDb } from '../../src/checkpoint/schema.js';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'store-facts-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

/** The job's facts as another process reads them from the store's file now. */
function factsOnDisk(path: string): Record<string, string> {
  const db = openDb(path, true);
  try {
    return Object.fromEntries((db.prepare('SELECT k, v FROM meta').all() as { k: string; v: string }[]).map((r) => [r.k, r.v]));
  } finally {
    db.close();
  }
}

describe('the job facts in a rank checkpoint', () => {
  it('are in the file after ensureFacts when the file does not exist yet', () => {
    const path = join(dir, 'r0.db');
    const store = new RankStore(path);
    store.setMeta('roots', 'r');
    store.setMeta('chunkSize', String(4 << 20));
    store.ensureFacts();
    expect(factsOnDisk(path)).toEqual({ roots: 'r', chunkSize: String(4 << 20) });
    store.close();
  });

  it('are in the file after ensureFacts when the file was created before the chunk size was set', () => {
    const path = join(dir, 'r1.db');
    const store = new RankStore(path);
    store.setMeta('roots', 'r');
    store.flush(); // as a walk's full buffer or the first interval's commit does
    expect(factsOnDisk(path)).toEqual({ roots: 'r' });
    store.setMeta('chunkSize', String(4 << 20)); // the plan, later
    store.ensureFacts(); // before the first part file
    expect(factsOnDisk(path)).toEqual({ roots: 'r', chunkSize: String(4 << 20) });
    store.close();
  });
});
