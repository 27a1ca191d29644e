/**
 * A hard-link farm (rsnapshot-style: thousands of files with several names each, spread
 * over directories and so over ranks): every group is recreated as one inode, and
 * `fcp --signature` equals fsum SRC, although no rank learns every group (each group's
 * names go to an owner rank, in bounded rounds: see copy/hardlinks.ts). Tiny rounds
 * (fcp --test-exchange-round) make the exchanges take many rounds; also without the addon,
 * with spilled lists, after a stop and --resume, and with --update=checksum.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, linkSync, lstatSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { lastJson, repoRoot, run, scratch, sleep, startGroup, until } from '../helpers/run.js';
import { envWith, failureLines, fcp, fcpBin, treecmp } from '../helpers/trees.js';

const fsum = join(repoRoot, 'bin/fsum.js');
const DIRS = 20;
const GROUPS = 3000;

interface Summary { files: number; bytes: number; errors: number; signature: string | null; filesUpToDate: number; filesSkipped: number; spilled: { listRanks: number } }

let work: { dir: string; cleanup: () => void };
let src: string;
let want: string;
/** data bytes with each inode counted once */
let uniqueBytes = 0;
let names = 0;

const dir = (d: number) => join(src, `d${String(d).padStart(2, '0')}`);

beforeAll(async () => {
  work = scratch('hardlink-farm');
  src = join(work.dir, 'src');
  for (let d = 0; d < DIRS; d++) mkdirSync(dir(d), { recursive: true });
  // Group i: a file in one directory and one or two more names in far ones.
  for (let i = 0; i < GROUPS; i++) {
    const first = join(dir(i % DIRS), `f${i}`);
    const size = 1 + ((i * 37) % 2000);
    writeFileSync(first, randomBytes(size));
    linkSync(first, join(dir((i * 7 + 3) % DIRS), `l${i}a`));
    names += 2;
    if (i % 3 === 0) {
      linkSync(first, join(dir((i * 13 + 5) % DIRS), `l${i}b`));
      names++;
    }
    uniqueBytes += size;
  }
  // A chunked file with two names (at --chunk-size 1M), and files with one name.
  writeFileSync(join(dir(5), 'big'), randomBytes(3 * 1024 * 1024 + 5));
  linkSync(join(dir(5), 'big'), join(dir(11), 'big-too'));
  uniqueBytes += 3 * 1024 * 1024 + 5;
  names += 2;
  for (let i = 0; i < 200; i++) {
    writeFileSync(join(dir(i % DIRS), `plain${i}`), randomBytes(i));
    uniqueBytes += i;
    names++;
  }
  const ref = await run(process.execPath, [fsum, src, '-np', '2', '--json'], { timeoutMs: 60_000 });
  expect(ref.code, ref.stderr).toBe(0);
  want = lastJson<{ signature: string }>(ref.stdout).signature;
  expect(want).toMatch(/^[0-9a-f]{32}$/);
}, 120_000);

afterAll(() => work?.cleanup());

/** Every group one inode in DST, with as many names as in SRC. */
function expectGroups(dst: string): void {
  for (let i = 0; i < GROUPS; i += 7) {
    const a = lstatSync(join(dst, `d${String(i % DIRS).padStart(2, '0')}`, `f${i}`));
    const b = lstatSync(join(dst, `d${String((i * 7 + 3) % DIRS).padStart(2, '0')}`, `l${i}a`));
    expect(b.ino).toBe(a.ino);
    expect(a.nlink).toBe(i % 3 === 0 ? 3 : 2);
  }
  expect(lstatSync(join(dst, 'd05', 'big')).ino).toBe(lstatSync(join(dst, 'd11', 'big-too')).ino);
}

async function copyAndCheck(dst: string, args: string[], env: Record<string, string> = {}, cmpFlags: string[] = []): Promise<Summary> {
  const r = await fcp([src, dst, '--chunk-size', '1M', '--signature', '--json', ...args], { env: envWith(env) });
  expect(r.code, r.stderr).toBe(0);
  expect(failureLines(r.stderr), r.stderr).toEqual([]);
  const out = lastJson<Summary>(r.stdout);
  expect(out.signature).toBe(want);
  expect(out.files).toBe(names);
  expect(out.bytes).toBe(uniqueBytes); // a group's data counts once
  const cmp = await treecmp(src, dst, cmpFlags);
  expect(cmp.lines, cmp.output).toEqual([]);
  expect(cmp.code).toBe(0);
  expectGroups(dst);
  return out;
}

describe('hard-link farm', () => {
  it(`${GROUPS} groups of 2-3 names over ${DIRS} directories at -np 3: links kept, signature equals fsum`, async () => {
    await copyAndCheck(join(work.dir, 'np3'), ['-np', '3']);
  });

  it('tiny exchange rounds (many rounds), spilled file lists, -np 3', async () => {
    const out = await copyAndCheck(join(work.dir, 'tiny'), ['-np', '3', '--mem-limit', '1M', '--test-exchange-round', '7']);
    // (lists spill past 1,000 entries at this budget; the walk shares ~7,400 unevenly)
    expect(out.spilled.listRanks).toBeGreaterThan(0); // hard-linked names were read back from SQLite
  });

  it('without the addon, tiny rounds, -np 3', async () => {
    // the fallback keeps times to about a microsecond: mtimes are not compared here
    await copyAndCheck(join(work.dir, 'nonative'), ['-np', '3', '--unsafe-paths', '--test-exchange-round', '50'], { FCP_NO_NATIVE: '1' }, ['--no-mtime', '--no-xattr']);
  });

  it('at -np 1 and at -np 5', async () => {
    await copyAndCheck(join(work.dir, 'np1'), ['-np', '1']);
    await copyAndCheck(join(work.dir, 'np5'), ['-np', '5', '--test-exchange-round', '100']);
  });

  it('stopped mid-copy and resumed at another -np: links kept, signature equals fsum', async () => {
    const dst = join(work.dir, 'resumed');
    const job = startGroup(process.execPath, [fcpBin, src, dst, '-np', '3', '--chunk-size', '1M', '--checkpoint-interval', '0.2', '-q', '--test-slow-copy-ms', '2000', '--test-exchange-round', '64'], { env: envWith({}) });
    // Stop once files are landing in DST (the links phase comes after the copy); not
    // the large file's part file, which is there from the start of the copy phase.
    const landed = () => existsSync(dst) && readdirSync(dst).some((d) => readdirSync(join(dst, d)).some((n) => !n.startsWith('.fcp-part')));
    await until(landed);
    await sleep(300);
    job.kill('SIGTERM');
    expect(await job.exited, job.stderr()).toBe(4);
    const out = await copyAndCheck(dst, ['--resume', '-np', '2', '--test-exchange-round', '13']);
    expect(out.filesSkipped).toBeGreaterThan(0); // the first run's files were not copied again
  });

  it('a subtree whose files have their other names outside it: plain copies, signature equals fsum of the subtree', async () => {
    const sub = join(src, 'd03');
    const ref = await run(process.execPath, [fsum, sub, '--json'], { timeoutMs: 60_000 });
    expect(ref.code, ref.stderr).toBe(0);
    const dst = join(work.dir, 'sub');
    const r = await fcp([sub, dst, '-np', '3', '--signature', '--json', '--test-exchange-round', '16'], { env: envWith({}) });
    expect(r.code, r.stderr).toBe(0);
    const out = lastJson<Summary>(r.stdout);
    expect(out.signature).toBe(lastJson<{ signature: string }>(ref.stdout).signature);
    expect(out.files).toBe(readdirSync(sub).length);
    const cmp = await treecmp(sub, dst);
    expect(cmp.lines, cmp.output).toEqual([]);
    expect(cmp.code).toBe(0);
  });

  it('--update=checksum over a finished copy: nothing rewritten, signature from both runs equals fsum', async () => {
    const dst = join(work.dir, 'update');
    await copyAndCheck(dst, ['-np', '3']);
    const out = await copyAndCheck(dst, ['--update=checksum', '-np', '2', '--test-exchange-round', '31']);
    expect(out.filesUpToDate).toBeGreaterThan(GROUPS);
  });
});
