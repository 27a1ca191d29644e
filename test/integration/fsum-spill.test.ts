/**
 * fsum on bounded lists: past the list budget (--mem-limit, shared with fcp) a rank's walk
 * lists spill to a scratch store and the hashing phase reads them back lazily. Signatures
 * and sum files must not notice: 60,000 small files plus a root of symlinks, a FIFO and
 * files of several chunks, hashed with a budget small enough that every rank spills, give
 * byte-identical sum files (and --check finds nothing) at -np 2 and -np 3, compared with
 * a sum made with a budget large enough not to spill.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { lastJson, node, scratch } from '../helpers/run.js';
import { tree } from '../helpers/trees.js';

interface SumJson { signature: string; files: number; symlinks: number; specials: number; errors: number; sumFileEntries: number; spilled: { listRanks: number; queueItems: number } }

const fsum = (args: string[]) => node('cli/fsum.js', args, { timeoutMs: 300_000 });

const area = scratch('fsum-spill');
let small = '';
const extra = join(area.dir, 'extra');
const LINKS = 300;

beforeAll(() => {
  small = tree('small', { files: 60_000 });
  // symlinks in more than one batch of 128, a FIFO, and files of several 1 MiB chunks
  mkdirSync(join(extra, 'links'), { recursive: true });
  for (let i = 0; i < LINKS; i++) symlinkSync(`target/${i}`, join(extra, 'links', `l${i}`));
  execFileSync('mkfifo', [join(extra, 'fifo')]);
  for (let i = 0; i < 3; i++) writeFileSync(join(extra, `big${i}`), randomBytes(2 * 1024 * 1024 + 4096 * i + 1));
}, 600_000);

afterAll(() => area.cleanup());

describe('fsum: walk lists spilled past the list budget', () => {
  it('gives byte-identical sum files at -np 2 and -np 3 as without spilling, and --check finds nothing', async () => {
    const sumOf = async (name: string, np: number, memLimit: string): Promise<{ json: SumJson; text: Buffer }> => {
      const out = join(area.dir, name);
      const r = await fsum([small, extra, '-np', String(np), '--chunk-size', '1M', '--mem-limit', memLimit, '-o', out, '--json']);
      expect(r.code, r.stderr).toBe(0);
      return { json: lastJson<SumJson>(r.stdout), text: readFileSync(out) };
    };
    const ref = await sumOf('ref.sum', 2, '4G');
    expect(ref.json.spilled.listRanks).toBe(0);
    expect(ref.json.errors).toBe(0);
    expect(ref.json.files).toBe(60_000 + 3);
    expect(ref.json.symlinks).toBe(LINKS);
    expect(ref.json.specials).toBe(1);
    expect(ref.json.sumFileEntries).toBeGreaterThan(60_000 + LINKS);

    for (const np of [2, 3]) {
      // 4M: about 1,400 list entries a rank, far below each rank's share of 60,000
      const spilled = await sumOf(`np${np}.sum`, np, '4M');
      expect(spilled.json.spilled.listRanks).toBe(np);
      expect(spilled.json.signature).toBe(ref.json.signature);
      expect(spilled.json.sumFileEntries).toBe(ref.json.sumFileEntries);
      expect(spilled.text.equals(ref.text)).toBe(true);
    }

    const check = await fsum(['--check', join(area.dir, 'ref.sum'), small, extra, '-np', '3', '--mem-limit', '4M', '--json']);
    expect(check.code, check.stderr).toBe(0);
    const c = lastJson<{ differences: number; spilled: { listRanks: number } }>(check.stdout);
    expect(c.differences).toBe(0);
    expect(c.spilled.listRanks).toBe(3);
  }, 600_000);

  it('--mem-limit is refused below 1M in one line (exit 2), and below 4M says which minimums apply', async () => {
    const low = await fsum([extra, '--mem-limit', '512K']);
    expect(low.code).toBe(2);
    expect(low.stderr).toMatch(/^fsum: .*--mem-limit must be at least 1M, not '512K'\n/);
    const floor = await fsum([extra, '--mem-limit', '1M', '-q']);
    expect(floor.code, floor.stderr).toBe(0);
    expect(floor.stderr).toContain('fsum: --mem-limit 1.00 MiB is below 4.00 MiB: each rank still keeps up to 64 work items and 1000 list entries in memory\n');
    expect(floor.stdout).toMatch(/^[0-9a-f]{32} {2}/);
  }, 120_000);
});
