/**
 * fsum's records go to rank 0 through exchange() in bounded rounds and are kept in
 * temporary tables, not arrays: with rounds of a few records (fsum --test-exchange-round),
 * a sum file of a few thousand entries made at -np 3 is byte-identical to the one made
 * at -np 1 (and to the old in-memory sort), and --check / --compare name exactly what
 * changed.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { node, scratch } from '../helpers/run.js';
import { parseSumFile, writeSumFile } from '../../src/checksum/sumfile.js';

const fsum = (args: string[]) => node('cli/fsum.js', [...args, '--test-exchange-round', '7'], { timeoutMs: 120_000 });
const diffLines = (stdout: string) => stdout.split('\n').filter((l) => /^(differs|missing|extra|unreadable) /.test(l));

const area = scratch('fsum-records');
const tree = join(area.dir, 'tree');
const copy = join(area.dir, 'copy');
const DIRS = 30;
const FILES = 80;

beforeAll(() => {
  for (let d = 0; d < DIRS; d++) {
    const dir = join(tree, `d${String(d).padStart(2, '0')}`);
    mkdirSync(dir, { recursive: true });
    for (let f = 0; f < FILES; f++) writeFileSync(join(dir, `f${String(f).padStart(3, '0')}`), `file ${d} ${f}\n`);
  }
  // names whose byte order matters, and a file of several chunks (--chunk-size 1M)
  writeFileSync(Buffer.from(join(tree, 'd00/f\xff'), 'latin1'), 'latin1 name');
  writeFileSync(join(tree, 'd00/f 1'), 'space');
  writeFileSync(join(tree, 'd00/f'), '');
  writeFileSync(join(tree, 'big'), randomBytes(3 * 1024 * 1024 + 5));
  execFileSync('cp', ['-a', tree, copy]);
});

afterAll(() => area.cleanup());

describe('fsum: records routed in tiny exchange rounds', () => {
  it('writes the same sum file at -np 1 and -np 3; --check and --compare name exactly what changed', async () => {
    const s1 = join(area.dir, 'np1.sum');
    const s3 = join(area.dir, 'np3.sum');
    const r1 = await fsum([tree, '-o', s1, '-np', '1', '--chunk-size', '1M']);
    expect(r1.code, r1.stderr).toBe(0);
    const r3 = await fsum([tree, '-o', s3, '-np', '3', '--chunk-size', '1M']);
    expect(r3.code, r3.stderr).toBe(0);
    const text = readFileSync(s3);
    expect(text.equals(readFileSync(s1))).toBe(true);
    const entries = 1 + DIRS + DIRS * FILES + 3 + 1;
    expect(text.toString('latin1').split('\n')[0]).toMatch(new RegExp(`^fsum 1 leaf=1048576 chunk=1048576 meta=0 roots=1 entries=${entries} `));
    expect(text.toString('latin1')).toContain(' d00/f\\xff\n');
    // the order of the table is the order of the in-memory sort
    const again = join(area.dir, 'again.sum');
    const parsed = parseSumFile(text.toString('latin1'));
    await writeSumFile(again, { chunk: parsed.chunk, meta: parsed.meta, rootPaths: [Buffer.from(tree)], signature: parsed.signature, records: parsed.records.reverse() });
    expect(readFileSync(again).equals(text)).toBe(true);

    const same = await fsum(['--check', s3, tree, '-np', '3']);
    expect(same.code, same.stdout + same.stderr).toBe(0);
    expect(same.stdout).toContain('no differences');
    expect(diffLines(same.stdout)).toEqual([]);

    writeFileSync(join(tree, 'd03/f010'), 'file 9 99\n'); // same size, other content
    unlinkSync(join(tree, 'd17/f042'));
    const expected = [`differs '${tree}/d03/f010': content: bytes 0-9 differ`, `missing '${tree}/d17/f042'`];
    const check = await fsum(['--check', s3, tree, '-np', '3']);
    expect(check.code, check.stderr).toBe(1);
    expect(diffLines(check.stdout)).toEqual(expected);
    expect(check.stdout).toContain('2 differences (1 missing, 0 extra, 1 differing, 0 unreadable)');

    const cmp = await fsum(['--compare', copy, tree, '-np', '3']);
    expect(cmp.code, cmp.stderr).toBe(1);
    expect(diffLines(cmp.stdout)).toEqual(expected);
  });

  it('--check at -np 3: a sum file damaged in the middle (read by rank 0 only) or missing is one line and exit 2', async () => {
    const good = join(area.dir, 'good.sum');
    expect((await fsum([copy, '-o', good, '-np', '1'])).code).toBe(0);
    const lines = readFileSync(good, 'latin1').split('\n');
    lines[40] = `Z${lines[40]!.slice(1)}`; // an entry line's digest, far past the header
    const bad = join(area.dir, 'bad.sum');
    writeFileSync(bad, lines.join('\n'), 'latin1');
    const r = await fsum(['--check', bad, copy, '-np', '3']);
    expect(r.code, r.stdout + r.stderr).toBe(2);
    expect(r.stderr.trim().split('\n')).toEqual([`fsum: '${bad}' is not a valid sum file: line 41: bad digest`]);
    expect(diffLines(r.stdout)).toEqual([]);
    const none = join(area.dir, 'none.sum');
    const m = await fsum(['--check', none, copy, '-np', '3']);
    expect(m.code).toBe(2);
    expect(m.stderr.trim().split('\n')).toEqual([`fsum: cannot read '${none}': No such file or directory (ENOENT)`]);
  });
});
