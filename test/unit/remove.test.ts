/** util/remove.ts: plain unlink/rmdir removal, with rmSync's result for anything unexpected. */
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { removeFile, removeFlatDir } from '../../src/util/remove.js';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'ckpt-remove-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

describe('remove', () => {
  it('removeFile unlinks a file, and a file already gone is fine; a directory is an error', () => {
    const f = join(dir, 'f');
    writeFileSync(f, 'x');
    removeFile(f);
    expect(existsSync(f)).toBe(false);
    expect(() => removeFile(f)).not.toThrow();
    mkdirSync(join(dir, 'd'));
    expect(() => removeFile(join(dir, 'd'))).toThrow(/EISDIR|EPERM/);
  });

  it('removeFlatDir removes a directory of files, one with a subdirectory too, and one already gone is fine', () => {
    const flat = join(dir, 'flat');
    mkdirSync(flat);
    for (const n of ['lock', 'g1-r0.db', 'reserve-r0']) writeFileSync(join(flat, n), n);
    removeFlatDir(flat);
    expect(existsSync(flat)).toBe(false);
    expect(() => removeFlatDir(flat)).not.toThrow();
    const deep = join(dir, 'deep');
    mkdirSync(join(deep, 'sub', 'subsub'), { recursive: true });
    writeFileSync(join(deep, 'a'), 'a');
    writeFileSync(join(deep, 'sub', 'subsub', 'b'), 'b');
    removeFlatDir(deep);
    expect(existsSync(deep)).toBe(false);
  });
});

describe('removeFlatDir with the names it likely holds', () => {
  it('removes them and the directory; others in it (not named) go too', () => {
    const d = join(dir, 'ck');
    mkdirSync(d);
    writeFileSync(join(d, 'lock'), '{}');
    removeFlatDir(d, ['lock']);
    expect(existsSync(d)).toBe(false);
    mkdirSync(d);
    for (const n of ['lock', 'g1-r0.db', 'merged.db']) writeFileSync(join(d, n), n);
    removeFlatDir(d, ['lock', 'not-there']);
    expect(existsSync(d)).toBe(false);
  });
});
