/**
 * Integrity during the copy: fcp --signature equals fsum of the source, and --verify
 * catches a destination chunk corrupted between copy and verify.
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { lastJson, repoRoot, run, scratch, toolsDir } from '../helpers/run.js';

const fcp = join(repoRoot, 'bin/fcp.js');
const fsum = join(repoRoot, 'bin/fsum.js');
let work: { dir: string; cleanup: () => void };
let src: string;

beforeAll(() => {
  work = scratch('integrity');
  src = join(work.dir, 'src');
  // mixed: many small files and some of several chunks (at --chunk-size 4M)
  const r = spawnSync('python3', [join(toolsDir, 'mktree'), 'mixed', join(src, 'mixed'), '--files', '300', '--size', '150000000'], { encoding: 'utf8' });
  expect(r.status, r.stderr).toBe(0);
  const f = spawnSync('python3', [join(toolsDir, 'mktree'), 'features', join(src, 'features')], { encoding: 'utf8' });
  expect(f.status, f.stderr).toBe(0);
}, 120_000);

afterAll(() => work?.cleanup());

describe('fcp --signature', () => {
  it('equals fsum SRC at any -np and chunk size, from the bytes the copy read', async () => {
    const ref = await run(process.execPath, [fsum, src, '-np', '2', '--json'], { timeoutMs: 60_000 });
    expect(ref.code, ref.stderr).toBe(0);
    const want = lastJson<{ signature: string }>(ref.stdout).signature;
    expect(want).toMatch(/^[0-9a-f]{32}$/);
    for (const [np, chunk] of [['1', '4M'], ['3', '16M'], ['4', '5M']] as const) {
      const dst = join(work.dir, `sig-${np}`);
      const r = await run(process.execPath, [fcp, src, dst, '-np', np, '--chunk-size', chunk, '--signature', '--json'], { timeoutMs: 60_000 });
      expect(r.code, r.stderr).toBe(0);
      expect(lastJson<{ signature: string }>(r.stdout).signature).toBe(want);
    }
    const human = await run(process.execPath, [fcp, src, join(work.dir, 'sig-h'), '--signature', '-q'], { timeoutMs: 60_000 });
    expect(human.stdout.trim()).toBe(`signature ${want}`);
  });

  it('is refused with --no-hash (exit 2, nothing written)', async () => {
    const r = await run(process.execPath, [fcp, src, join(work.dir, 'nohash'), '--signature', '--no-hash'], { timeoutMs: 30_000 });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--signature needs the hashes/);
  });
});

describe('fcp --verify', () => {
  it('passes on a faithful copy (exit 0, no mismatch)', async () => {
    const r = await run(process.execPath, [fcp, src, join(work.dir, 'v-ok'), '-np', '3', '--chunk-size', '4M', '--verify', '--json'], { timeoutMs: 60_000 });
    expect(r.code, r.stderr).toBe(0);
    expect(lastJson<{ verifyMismatches: number }>(r.stdout).verifyMismatches).toBe(0);
  });

  it('names a chunk corrupted between copy and verify with its byte range, exit 1', async () => {
    // The largest file of the mixed tree has several 4 MiB chunks; flip a byte in the second.
    const big = spawnSync('sh', ['-c', `cd ${join(src, 'mixed')} && find . -type f -printf '%s %P\\n' | sort -n | tail -1`], { encoding: 'utf8' }).stdout.trim().split(' ');
    expect(Number(big[0])).toBeGreaterThan(8 * 2 ** 20);
    const rel = `mixed/${big[1]}`;
    const dst = join(work.dir, 'v-bad');
    const r = await run(process.execPath, [fcp, src, dst, '-np', '2', '--chunk-size', '4M', '--verify', '--json', '--test-corrupt-before-verify', `${rel}:${5 * 2 ** 20 + 17}`], {
      timeoutMs: 60_000,
    });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`verify: '${join(dst, rel)}' bytes 4194304-8388607 differ`);
    expect(r.stderr.match(/verify: /g)).toHaveLength(1);
    expect(lastJson<{ verifyMismatches: number }>(r.stdout).verifyMismatches).toBe(1);
  });

  it('names a corrupted small file', async () => {
    const dst = join(work.dir, 'v-small');
    const r = await run(process.execPath, [fcp, src, dst, '-np', '2', '--verify', '--test-corrupt-before-verify', 'features/plain/file03.txt:10'], {
      timeoutMs: 60_000,
    });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/verify: '.*features\/plain\/file03\.txt' bytes 0-\d+ differ/);
  });
});
