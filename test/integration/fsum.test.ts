/**
 * fsum with real rank processes on real trees: the signature does not depend on -np or
 * the chunk size, equals the signature of an fcp copy, and changes with any change of
 * names, content, size (and, with --meta only, modes). --check and --compare name what
 * differs, down to the chunk's byte range.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, closeSync, ftruncateSync, mkdirSync, openSync, readFileSync, readSync, renameSync, rmSync, symlinkSync, truncateSync, unlinkSync, writeFileSync, writeSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dist, isRoot, lastJson, node, repoRoot, run, scratch, toolsDir } from '../helpers/run.js';

interface SumOut {
  signature: string; signatures?: string[]; files: number; dirs: number; symlinks: number; bytes: number; errors: number;
  chunkSize: number; ranks: unknown[]; differences?: number; missing?: number; extra?: number; differs?: number;
}

const MiB = 1024 * 1024;
const fsum = (args: string[], timeoutMs = 120_000) => node('cli/fsum.js', args, { timeoutMs });
const fcp = (args: string[]) => run(process.execPath, [join(repoRoot, 'bin/fcp.js'), ...args], { timeoutMs: 120_000 });

async function signature(args: string[]): Promise<SumOut> {
  const r = await fsum([...args, '--json']);
  expect(r.code, r.stderr).toBe(0);
  expect(r.stderr).toBe('');
  const out = lastJson<SumOut>(r.stdout);
  expect(out.signature).toMatch(/^[0-9a-f]{32}$/);
  return out;
}

const area = scratch('fsum');
const src = join(area.dir, 'src');
const dst = join(area.dir, 'dst');
let mk = { files: 0, bytes: 0 };
let base = '';
let baseMeta = '';

beforeAll(async () => {
  const out = execFileSync(join(toolsDir, 'mktree'), ['mixed', src, '--files', '800', '--size', '200000000'], { encoding: 'utf8' });
  const m = /files=(\d+) dirs=(\d+) bytes=(\d+)$/.exec(out.trim())!;
  mk = { files: Number(m[1]), bytes: Number(m[3]) };
  const c = await fcp([src, dst, '-np', '2', '--quiet']);
  expect(c.code, c.stderr).toBe(0);
  base = (await signature([src, '-np', '2'])).signature;
  baseMeta = (await signature([src, '-np', '2', '--meta'])).signature;
});

afterAll(() => area.cleanup());

describe('fsum: the signature is a property of the data', () => {
  it('is the same at -np 1, 2, 3 and 7, for any chunk size, and for the fcp copy', async () => {
    const sigs: Record<string, SumOut> = {};
    for (const np of [1, 2, 3, 7]) sigs[`np${np}`] = await signature([src, '-np', String(np)]);
    sigs.chunk3M = await signature([src, '-np', '2', '--chunk-size', '3M']);
    sigs.chunk1M = await signature([src, '-np', '3', '--chunk-size', '1M']);
    sigs.copy = await signature([dst, '-np', '2']);
    // every small file read through the thread pool (the path taken on slow file systems)
    const r = await node('cli/fsum.js', [src, '-np', '2', '--json', '--test-async-reads'], { timeoutMs: 120_000 });
    expect(r.code, r.stderr).toBe(0);
    sigs.asyncReads = lastJson<SumOut>(r.stdout);
    for (const [k, s] of Object.entries(sigs)) {
      expect(s.signature, k).toBe(base);
      expect(s.files, k).toBe(mk.files);
      expect(s.bytes, k).toBe(mk.bytes);
      expect(s.errors, k).toBe(0);
    }
    expect(sigs.np7!.ranks).toHaveLength(7);
    expect(sigs.chunk1M!.chunkSize).toBe(MiB);
    // with --meta too: fcp keeps modes, owners and ns mtimes
    expect(baseMeta).not.toBe(base);
    expect((await signature([dst, '--meta', '-np', '3'])).signature).toBe(baseMeta);
  });

  it('writes byte-identical sum files at -np 1 and -np 3', async () => {
    const a = join(area.dir, 'np1.sum');
    const b = join(area.dir, 'np3.sum');
    const ra = await fsum([src, '-o', a, '-np', '1', '--meta']);
    const rb = await fsum([src, '-o', b, '-np', '3', '--meta']);
    expect(ra.code, ra.stderr).toBe(0);
    expect(rb.code, rb.stderr).toBe(0);
    const text = readFileSync(a, 'latin1');
    expect(readFileSync(b, 'latin1')).toBe(text);
    const lines = text.split('\n');
    expect(lines[0]).toBe(`fsum 1 leaf=1048576 chunk=67108864 meta=1 roots=1 entries=${lines.filter((l) => /^[0-9a-f]{32} /.test(l)).length} signature=${baseMeta}`);
    // the tree's 100 MB file has two chunk lines
    expect(text).toMatch(/ f 100000000 [0-9a-f]{32} .*\n {2}0 67108864 [0-9a-f]{32}\n {2}67108864 32891136 [0-9a-f]{32}\n/);
    const check = await fsum(['--check', a, dst, '-np', '2']);
    expect(check.code, check.stdout + check.stderr).toBe(0);
    expect(check.stdout).toContain('no differences');
  });

  it('changes when a file is renamed, truncated, or (with --meta only) its mode changes', async () => {
    const t = join(area.dir, 'mut');
    execFileSync('cp', ['-a', src, t]);
    const [d0] = execFileSync('find', [t, '-name', 'out*.h5', '-size', '+8k', '-size', '-1000k'], { encoding: 'utf8' }).trim().split('\n');
    const f = d0!;
    expect((await signature([t, '-np', '2'])).signature).toBe(base);

    renameSync(f, `${f}.renamed`);
    expect((await signature([t, '-np', '2'])).signature).not.toBe(base);
    renameSync(`${f}.renamed`, f);
    expect((await signature([t, '-np', '2'])).signature).toBe(base);

    // (the renames changed the directory's mtime: that is a --meta difference of its own)
    const metaBefore = (await signature([t, '-np', '2', '--meta'])).signature;
    expect(metaBefore).not.toBe(baseMeta);
    chmodSync(f, 0o600);
    expect((await signature([t, '-np', '2'])).signature).toBe(base);
    expect((await signature([t, '-np', '2', '--meta'])).signature).not.toBe(metaBefore);
    chmodSync(f, 0o644);
    expect((await signature([t, '-np', '2', '--meta'])).signature).toBe(metaBefore);

    const size = readFileSync(f).length;
    truncateSync(f, size - 1);
    expect((await signature([t, '-np', '2'])).signature).not.toBe(base);
    rmSync(t, { recursive: true, force: true });
  });

  it('with several PATHs, equals the signature of the copies made by fcp A B DIR', async () => {
    const a = join(area.dir, 'ma');
    const b = join(area.dir, 'mb');
    const out = join(area.dir, 'mout');
    for (const [d, n] of [[a, 3], [b, 5]] as const) {
      mkdirSync(join(d, 'sub'), { recursive: true });
      for (let i = 0; i < n; i++) writeFileSync(join(d, 'sub', `f${i}`), randomBytes(1000 * i));
      symlinkSync('sub/f0', join(d, 'link'));
    }
    mkdirSync(out);
    const c = await fcp([a, b, out, '-np', '2', '--quiet']);
    expect(c.code, c.stderr).toBe(0);
    const ab = (await signature([a, b, '-np', '2'])).signature;
    expect((await signature([join(out, 'ma'), join(out, 'mb'), '-np', '3'])).signature).toBe(ab);
    expect((await signature([b, a, '-np', '2'])).signature).not.toBe(ab);
    expect((await signature([a, '-np', '2'])).signature).not.toBe(ab);
  });
});

describe('fsum: --check and --compare name what differs', () => {
  const A = join(area.dir, 'bigA');
  const B = join(area.dir, 'bigB');
  const sums = join(area.dir, 'big.sum');
  const FLIP = 512 * MiB + 4242;

  beforeAll(async () => {
    // 1 GiB, sparse-ish: a random MiB every 32 MiB, holes (zeros) between
    for (const d of [A, B]) mkdirSync(d);
    const a = openSync(join(A, 'big.bin'), 'w');
    ftruncateSync(a, 1024 * MiB);
    for (let off = 0; off < 1024 * MiB; off += 32 * MiB) writeSync(a, randomBytes(MiB), 0, MiB, off);
    closeSync(a);
    // B gets A's bytes (same random blocks) with one byte flipped in the middle
    execFileSync('cp', ['--sparse=always', join(A, 'big.bin'), join(B, 'big.bin')]);
    const fd = openSync(join(B, 'big.bin'), 'r+');
    const one = Buffer.alloc(1);
    readSync(fd, one, 0, 1, FLIP);
    one[0] ^= 0xff;
    writeSync(fd, one, 0, 1, FLIP);
    closeSync(fd);
    const r = await fsum([A, '-o', sums, '-np', '2']);
    expect(r.code, r.stderr).toBe(0);
  }, 120_000);

  const rangeLine = `differs '${join(B, 'big.bin')}': content: bytes 536870912-603979775 differ`;

  it('--check: the 1 GiB file with one flipped byte is named with its chunk\'s byte range, exit 1', async () => {
    const text = readFileSync(sums, 'utf8');
    expect(text.split('\n').filter((l) => l.startsWith('  '))).toHaveLength(16);
    const r = await fsum(['--check', sums, B, '-np', '2']);
    expect(r.code, r.stderr).toBe(1);
    expect(r.stdout.split('\n')).toContain(rangeLine);
    expect(r.stdout.split('\n').filter((l) => /^(differs|missing|extra|unreadable) /.test(l))).toEqual([rangeLine]);
    const same = await fsum(['--check', sums, A, '-np', '2']);
    expect(same.code, same.stdout + same.stderr).toBe(0);
  });

  it('--compare: the same report between two trees hashed in one job, exit 1; identical trees exit 0', async () => {
    const r = await fsum(['--compare', A, B, '-np', '2', '--json']);
    expect(r.code, r.stderr).toBe(1);
    expect(r.stdout.split('\n')).toContain(rangeLine);
    const out = lastJson<SumOut>(r.stdout);
    expect(out.differences).toBe(1);
    expect(out.signatures).toHaveLength(2);
    expect(out.signatures![0]).not.toBe(out.signatures![1]);
    const sigB = await signature([B, '-np', '3']);
    expect(sigB.signature).toBe(out.signatures![1]);
    expect(sigB.signature).not.toBe((await signature([A, '-np', '2'])).signature);

    const same = await fsum(['--compare', src, dst, '--meta', '-np', '3']);
    expect(same.code, same.stdout + same.stderr).toBe(0);
    expect(same.stdout).toContain('no differences');
  });

  it('--check names missing, extra, type, size and target differences', async () => {
    const t = join(area.dir, 'small');
    mkdirSync(join(t, 'd'), { recursive: true });
    writeFileSync(join(t, 'a'), 'aaa');
    writeFileSync(join(t, 'b'), 'bbb');
    writeFileSync(join(t, 'd', 'c with space'), 'ccc');
    symlinkSync('a', join(t, 'l'));
    const s = join(area.dir, 'small.sum');
    expect((await fsum([t, '-o', s])).code).toBe(0);
    unlinkSync(join(t, 'a'));
    unlinkSync(join(t, 'b'));
    symlinkSync('a', join(t, 'b'));
    writeFileSync(join(t, 'd', 'c with space'), 'cccc');
    writeFileSync(join(t, 'new'), '');
    unlinkSync(join(t, 'l'));
    symlinkSync('b', join(t, 'l'));
    const r = await fsum(['--check', s, t, '-np', '2']);
    expect(r.code, r.stderr).toBe(1);
    const lines = r.stdout.split('\n').filter((l) => /^(differs|missing|extra|unreadable) /.test(l));
    expect(lines).toEqual([
      `missing '${t}/a'`,
      `differs '${t}/b': type f -> l`,
      `differs '${t}/d/c with space': size 3 -> 4; content: bytes 0-3 differ`,
      `differs '${t}/l': target`,
      `extra '${t}/new'`,
    ]);
  });
});

// Root reads anything: drop to nobody to meet a permission error.
const hasSetpriv = spawnSync('sh', ['-c', 'command -v setpriv']).status === 0;
const asReader = isRoot ? ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups', process.execPath] : [process.execPath];

describe('fsum: entries that cannot be read', () => {
  it.runIf(!isRoot || hasSetpriv)('names each once on stderr, counts it, exits 1; --check reports it as unreadable', async () => {
    const t = join(area.dir, 'perm');
    mkdirSync(join(t, 'd'), { recursive: true });
    writeFileSync(join(t, 'a'), 'aaa');
    writeFileSync(join(t, 'd', 'b'), 'bbb');
    const s = join(area.dir, 'perm.sum');
    expect((await fsum([t, '-o', s])).code).toBe(0);
    chmodSync(area.dir, 0o755);
    chmodSync(join(t, 'd', 'b'), 0o000);
    const fsumAs = (args: string[]) => run(asReader[0]!, [...asReader.slice(1), dist('cli/fsum.js'), ...args], { timeoutMs: 60_000, cwd: '/' });
    const r = await fsumAs([t, '-np', '2', '--json']);
    expect(r.code, r.stderr).toBe(1);
    expect(r.stderr.split('\n').filter(Boolean)).toEqual([`fsum: cannot open '${t}/d/b': Permission denied (EACCES)`]);
    const out = lastJson<SumOut>(r.stdout);
    expect(out.errors).toBe(1);
    expect(out.files).toBe(2);
    const c = await fsumAs(['--check', s, t, '-np', '2']);
    expect(c.code, c.stderr).toBe(1);
    expect(c.stdout.split('\n').filter((l) => /^(differs|missing|extra|unreadable) /.test(l))).toEqual([`unreadable '${t}/d/b'`]);
    expect(c.stderr.split('\n').filter(Boolean)).toEqual([`fsum: cannot open '${t}/d/b': Permission denied (EACCES)`]);
  });
});

describe('fsum: usage errors exit 2, said once', () => {
  it('refuses bad command lines before starting any work', async () => {
    const tiny = join(area.dir, 'tiny');
    mkdirSync(tiny);
    writeFileSync(join(tiny, 'x'), 'x');
    const sum = join(area.dir, 'tiny.sum');
    expect((await fsum([tiny, '-o', sum])).code).toBe(0);
    const bad: string[][] = [
      [],
      ['--compare', src, '-np', '2'],
      [join(area.dir, 'nope'), '-np', '2'],
      ['--check', join(area.dir, 'nope.sum'), src],
      ['--check', sum, '--chunk-size', '2M', src],
      ['--check', sum, src, dst],
      ['--check', sum, '--meta', src],
      ['--compare', src, dst, '-o', join(area.dir, 'x.sum')],
      [src, '-o', join(area.dir, 'no/such/dir/x.sum')],
      [src, '--chunk-size', 'lots'],
      [src, '-np', '0'],
    ];
    writeFileSync(join(area.dir, 'garbage.sum'), 'fsum 1 leaf=1048576 chunk=67108864 meta=0 roots=1 entries=1 signature=00000000000000000000000000000000\nnot a line\n');
    bad.push(['--check', join(area.dir, 'garbage.sum'), src, '-np', '2']);
    for (const args of bad) {
      const r = await fsum(args);
      expect(r.code, `fsum ${args.join(' ')}: ${r.stderr}`).toBe(2);
      expect(r.stdout).toBe('');
      const said = r.stderr.split('\n').filter((l) => l.startsWith('fsum:') || l.startsWith('error:'));
      expect(said.length, `fsum ${args.join(' ')}: ${r.stderr}`).toBe(1);
    }
  });
});
