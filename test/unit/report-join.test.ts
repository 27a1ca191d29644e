/** --report's parts: sorted runs of binary records (report-part.ts) merged by path bytes into one file (report-join.ts). */
import { appendFileSync, existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ACTION, ReportPart } from '../../src/report/report-part.js';
import { joinParts } from '../../src/report/report-join.js';
import { rng } from '../helpers/rng.js';

const roots = [{ src: Buffer.from('/s'), dst: Buffer.from('/d') }];
let dir = '';
afterEach(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
  dir = '';
});

/** Random names of any bytes but '/' and NUL, some several components deep. */
function names(n: number, seed: number): Buffer[] {
  const r = rng(seed);
  return Array.from({ length: n }, () => {
    const parts = Array.from({ length: 1 + r(3) }, () => Buffer.from(Array.from({ length: 1 + r(24) }, () => {
      const c = 1 + r(255);
      return c === 0x2f ? 0x61 : c;
    })));
    return Buffer.from(parts.map((p) => p.toString('latin1')).join('/'), 'latin1');
  });
}

describe('report parts and their join', () => {
  it('parts of several runs each merge into one file sorted by path bytes, every record once; the parts are removed', () => {
    dir = mkdtempSync(join(tmpdir(), 'report-unit-'));
    const file = join(dir, 'report.json');
    // 2 x 10,000 records of ~50 bytes in runs of 16 KiB: dozens of runs per part
    const all = names(20_000, 5);
    const parts = [0, 1].map((r) => {
      const p = new ReportPart(`${file}.part-r${r}`, roots, 16 * 1024);
      for (let i = r; i < all.length; i += 2) p.add(i % 7 === 0 ? ACTION.failed : ACTION.copied, 0, all[i]!, i % 7 === 0 ? 'cannot copy: Permission denied (EACCES)' : '');
      p.close();
      return p.path;
    });
    expect(readFileSync(parts[0]!).length).toBeGreaterThan(20 * 16 * 1024);
    const lines = joinParts(file, parts, 'json');
    expect(lines).toBe(all.length);
    const got = readFileSync(file, 'utf8').split('\n').slice(0, -1).map((l) => JSON.parse(l) as { action: string; path?: string; pathHex?: string; error: string | null });
    const keys = got.map((o) => (o.path !== undefined ? Buffer.from(o.path) : Buffer.from(o.pathHex!, 'hex')));
    let outOfOrder = 0;
    for (let i = 1; i < keys.length; i++) if (Buffer.compare(keys[i - 1]!, keys[i]!) > 0) outOfOrder++;
    expect(outOfOrder).toBe(0);
    const sorted = [...all].sort(Buffer.compare);
    expect(keys.every((k, i) => k.equals(sorted[i]!))).toBe(true);
    expect(got.filter((o) => o.action === 'failed').every((o) => o.error === 'cannot copy: Permission denied (EACCES)')).toBe(true);
    expect(got.filter((o) => o.action === 'failed').length).toBe(all.filter((_, i) => i % 7 === 0).length);
    expect(readdirSync(dir)).toEqual(['report.json']);
  });

  it('text lines escape names as showPath does; a run cut short (a rank killed while writing) is left out', () => {
    dir = mkdtempSync(join(tmpdir(), 'report-unit-'));
    const file = join(dir, 'report.txt');
    const p = new ReportPart(`${file}.part-r0`, [{ src: Buffer.from('/s/a'), dst: Buffer.from('/d/a') }, { src: Buffer.from('/s/b'), dst: Buffer.from('/d/b') }]);
    p.add(ACTION.copied, 1, Buffer.from('new\nline'));
    p.add(ACTION.excluded, 0, Buffer.from([0x78, 0xff]));
    p.add(ACTION.copied, 0, Buffer.alloc(0));
    p.failed('open', Buffer.from('/s/b/x\ty'), 'Permission denied (EACCES)');
    p.failed('read the list', 'list.txt', 'No such file or directory (ENOENT)');
    p.close();
    // half a run appended: its header says more bytes than follow
    appendFileSync(p.path, Buffer.from([0x46, 0x52, 0x50, 0x54, 0xff, 0, 0, 0, 0x2b]));
    joinParts(file, [p.path], 'text');
    expect(readFileSync(file, 'utf8')).toBe([
      '+ a',
      'x a/x\\xff',
      '+ b/new\\nline',
      '! b/x\\ty\tcannot open: Permission denied (EACCES)',
      '! list.txt\tcannot read the list: No such file or directory (ENOENT)',
      '',
    ].join('\n'));
    expect(existsSync(p.path)).toBe(false);
  });
});
