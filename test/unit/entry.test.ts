/**
 * Walk entries: the '..' check every entry from a peer goes through, and the stat record
 * layout shared by the addon, the JS fallback and the checkpoint.
 */
import { lstatSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { describe, expect, it } from 'vitest';
import { entryFromStatAt, hasDotDot, isEntry, putStatRecord, STAT_RECORD_FIELDS } from '../../src/model/entry.js';
import { loadNative, STAT_FIELDS } from '../../src/native/loader.js';

const B = (s: string) => Buffer.from(s, 'latin1');

describe('hasDotDot', () => {
  it('finds a .. component anywhere, and an absolute path', () => {
    for (const p of ['..', '../a', 'a/..', 'a/../b', 'a/b/..', '/a', '/', 'a//../b']) expect(hasDotDot(B(p)), p).toBe(true);
  });
  it('leaves names that only contain dots alone', () => {
    for (const p of ['', 'a', '.', './a', 'a/.', '...', 'a/...', '..a', 'a..', 'a/..b/c', 'b../c', '.a./..x', 'a/.../b', '\xff..']) expect(hasDotDot(B(p)), p).toBe(false);
  });
  it('is applied to entries from peers', () => {
    const a = new Float64Array(STAT_RECORD_FIELDS);
    const dir = mkdtempSync(join(tmpdir(), 'fcp-entry-'));
    try {
      putStatRecord(a, 0, lstatSync(dir, { bigint: true }));
      expect(isEntry(entryFromStatAt(0, B('x/y'), a, 0), 1)).toBe(true);
      expect(isEntry(entryFromStatAt(0, B('x/../y'), a, 0), 1)).toBe(false);
    } finally {
      rmSync(dir, { recursive: true });
    }
  });
});

describe('stat records', () => {
  it('the JS fallback writes the layout the addon writes (blocks included)', async () => {
    expect(STAT_FIELDS).toBe(STAT_RECORD_FIELDS);
    const dir = mkdtempSync(join(tmpdir(), 'fcp-entry-'));
    try {
      writeFileSync(join(dir, 'f'), Buffer.alloc(10_000, 1));
      const js = new Float64Array(STAT_RECORD_FIELDS);
      putStatRecord(js, 0, lstatSync(join(dir, 'f'), { bigint: true }));
      const e = entryFromStatAt(0, B('f'), js, 0);
      expect(e.k).toBe('f');
      expect(e.m.size).toBe(10_000);
      expect(e.m.blocks).toBeGreaterThanOrEqual(16);
      const native = loadNative();
      if (native) expect([...(await native.statAt(Buffer.from(dir), [B('f')]))]).toEqual([...js]);
    } finally {
      rmSync(dir, { recursive: true });
    }
  });
});
