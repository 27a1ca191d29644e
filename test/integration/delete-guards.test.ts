/**
 * The guards of --delete (copy/delete-guards.ts): an empty SRC is refused before anything
 * is written (unless --delete-from-empty), a walk of SRC with errors never deletes,
 * --max-delete N and P% delete nothing when more would go, and --dry-run says the same.
 * Real rank processes on real trees, at -np 1 and -np 3.
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isRoot, lastJson, repoRoot, run, scratch, toolsDir } from '../helpers/run.js';

const fcp = join(repoRoot, 'bin/fcp.js');
let work: { dir: string; cleanup: () => void };

interface Summary { deleted: number; deleteRefused: string | null; errors: number; filesCopied: number }
interface DryRunSummary { delete: number; deleteRefused: string | null }

const mktree = (profile: string, dir: string, ...extra: string[]) => {
  const r = spawnSync('python3', [join(toolsDir, 'mktree'), profile, dir, ...extra], { encoding: 'utf8' });
  expect(r.status, r.stderr).toBe(0);
};
const treecmp = (a: string, b: string) => spawnSync('python3', [join(toolsDir, 'treecmp'), a, b], { encoding: 'utf8' });
const fcpRun = (args: string[], prefix: string[] = []) =>
  prefix.length > 0 ? run(prefix[0]!, [...prefix.slice(1), process.execPath, fcp, ...args], { timeoutMs: 120_000 }) : run(process.execPath, [fcp, ...args], { timeoutMs: 120_000 });

/** Every entry with its type, size, mode and ns mtime, and every file's bytes. */
function snapshot(dir: string): string {
  return spawnSync('sh', ['-c', `cd '${dir}' && find . -printf '%y %s %m %T@ %p\\n' | sort && find . -type f -print0 | sort -z | xargs -0 -r cat | md5sum`], { encoding: 'utf8' }).stdout;
}
const entriesBelow = (dir: string) => Number(spawnSync('sh', ['-c', `find '${dir}' -mindepth 1 | wc -l`], { encoding: 'utf8' }).stdout.trim());

/** SRC (a small tree), DST a faithful copy of it with five extra entries. */
const EXTRAS = ['extra-1', 'extra-2', 'd000/extra-3', 'extra-dir', 'extra-dir/x'];
function copyWithExtras(name: string): { src: string; dst: string } {
  const src = join(work.dir, `${name}-src`);
  const dst = join(work.dir, `${name}-dst`);
  mktree('small', src, '--files', '60');
  expect(spawnSync('cp', ['-a', src, dst]).status).toBe(0);
  writeFileSync(join(dst, 'extra-1'), '1');
  writeFileSync(join(dst, 'extra-2'), '2');
  writeFileSync(join(dst, 'd000', 'extra-3'), '3');
  mkdirSync(join(dst, 'extra-dir'));
  writeFileSync(join(dst, 'extra-dir', 'x'), 'x');
  return { src, dst };
}
const extrasLeft = (dst: string) => EXTRAS.filter((e) => existsSync(join(dst, e)));

beforeAll(() => {
  work = scratch('deleteguard');
}, 60_000);
afterAll(() => work?.cleanup());

for (const np of ['1', '3']) {
  describe(`--delete guards at -np ${np}`, () => {
    it('refuses an empty SRC while DST has entries: one line, exit 5, DST and its parent untouched', async () => {
      const src = join(work.dir, `empty-${np}`);
      const dst = join(work.dir, `empty-${np}-dst`);
      mkdirSync(src);
      mktree('small', dst, '--files', '40');
      const before = snapshot(dst);
      const beside = readdirSync(work.dir).sort();
      const r = await fcpRun(['--delete', src, dst, '-np', np]);
      expect(r.code, r.stderr).toBe(5);
      expect(r.stderr.trim().split('\n')).toEqual([
        `fcp: not deleting: SRC '${src}' is empty and DST '${dst}' is not; nothing was copied (--delete-from-empty deletes everything in DST)`,
      ]);
      expect(r.stdout).toBe('');
      expect(snapshot(dst)).toBe(before);
      expect(readdirSync(work.dir).sort()).toEqual(beside); // no checkpoint or lock left beside DST

      const j = await fcpRun(['--delete', src, dst, '-np', np, '--json']);
      expect(j.code, j.stderr).toBe(5);
      expect(lastJson<Summary>(j.stdout).deleteRefused).toMatch(/is empty and DST .* is not/);
      expect(lastJson<Summary>(j.stdout).deleted).toBe(0);
      expect(snapshot(dst)).toBe(before);
    });

    it('--delete-from-empty lets an empty SRC empty DST', async () => {
      const src = join(work.dir, `fromempty-${np}`);
      const dst = join(work.dir, `fromempty-${np}-dst`);
      mkdirSync(src);
      mktree('small', dst, '--files', '40');
      const n = entriesBelow(dst);
      expect(n).toBeGreaterThan(40);
      const r = await fcpRun(['--delete', '--delete-from-empty', src, dst, '-np', np, '--json']);
      expect(r.code, r.stderr).toBe(0);
      expect(lastJson<Summary>(r.stdout).deleted).toBe(n);
      expect(readdirSync(dst)).toEqual([]);
    });

    it('--max-delete N: one entry over the count deletes nothing (the copy still runs), at the count deletes them', async () => {
      const { src, dst } = copyWithExtras(`maxn-${np}`);
      writeFileSync(join(src, 'new-in-src'), 'copied anyway');
      const r = await fcpRun(['--delete', '--max-delete', '4', src, dst, '-np', np, '--json']);
      expect(r.code, r.stderr).toBe(5);
      expect(r.stderr).toContain('fcp: not deleting: 5 entries would be deleted, more than --max-delete 4\n');
      expect(lastJson<Summary>(r.stdout).deleted).toBe(0);
      expect(extrasLeft(dst)).toEqual(EXTRAS);
      expect(readFileSync(join(dst, 'new-in-src'), 'utf8')).toBe('copied anyway');

      const ok = await fcpRun(['--delete', '--max-delete', '5', src, dst, '-np', np, '--json']);
      expect(ok.code, ok.stderr).toBe(0);
      expect(lastJson<Summary>(ok.stdout).deleted).toBe(5);
      expect(lastJson<Summary>(ok.stdout).deleteRefused).toBeNull();
      expect(extrasLeft(dst)).toEqual([]);
      expect(treecmp(src, dst).status).toBe(0);
    });

    it('--max-delete P% is a share of the entries found in DST', async () => {
      const { src, dst } = copyWithExtras(`maxp-${np}`);
      const n = entriesBelow(dst);
      const exact = (100 * EXTRAS.length) / n;
      const below = String(Number((exact - 0.5).toFixed(1)));
      const above = String(Math.ceil(exact));
      const r = await fcpRun(['--delete', '--max-delete', `${below}%`, src, dst, '-np', np]);
      expect(r.code, r.stderr).toBe(5);
      expect(r.stderr).toContain(`fcp: not deleting: 5 entries would be deleted, more than --max-delete ${below}% of the ${n} entries in DST\n`);
      expect(extrasLeft(dst)).toEqual(EXTRAS);
      const ok = await fcpRun(['--delete', '--max-delete', `${above}%`, src, dst, '-np', np, '--json']);
      expect(ok.code, ok.stderr).toBe(0);
      expect(lastJson<Summary>(ok.stdout).deleted).toBe(5);
      expect(treecmp(src, dst).status).toBe(0);
    });

    it('a walk of SRC with an error copies the rest but deletes nothing (exit 5); the dry run says the same', async () => {
      // An unreadable directory: root reads anything, so the copy runs as nobody on a tree nobody owns.
      const base = join(work.dir, `walkerr-${np}`);
      mkdirSync(base);
      const { src, dst } = { src: join(base, 'src'), dst: join(base, 'dst') };
      mktree('small', src, '--files', '30');
      expect(spawnSync('cp', ['-a', src, dst]).status).toBe(0);
      writeFileSync(join(dst, 'extra'), 'x');
      mkdirSync(join(src, 'locked'));
      writeFileSync(join(src, 'locked', 'f'), 'unreadable');
      writeFileSync(join(src, 'new-in-src'), 'copied anyway');
      const asUser = isRoot ? ['setpriv', '--reuid=nobody', '--regid=nogroup', '--clear-groups'] : [];
      if (isRoot) {
        chmodSync(work.dir, 0o755);
        expect(spawnSync('chown', ['-R', 'nobody:nogroup', base]).status).toBe(0);
      }
      chmodSync(join(src, 'locked'), 0o000);
      try {
        const dry = await fcpRun(['--dry-run', '--delete', src, dst, '-np', np], asUser);
        expect(dry.code, dry.stderr).toBe(5);
        expect(dry.stderr).toContain('fcp: dry run: not deleting: the walk of SRC had 1 error\n');
        expect(dry.stdout).not.toContain('would delete');

        const r = await fcpRun(['--delete', src, dst, '-np', np], asUser);
        expect(r.code, r.stderr).toBe(5);
        expect(r.stderr).toContain(`fcp: cannot read directory '${join(src, 'locked')}': Permission denied (EACCES)\n`);
        expect(r.stderr).toContain('fcp: not deleting: the walk of SRC had 1 error\n');
        expect(readFileSync(join(dst, 'extra'), 'utf8')).toBe('x');
        expect(readFileSync(join(dst, 'new-in-src'), 'utf8')).toBe('copied anyway');
      } finally {
        chmodSync(join(src, 'locked'), 0o755);
      }
    });

    it('--dry-run lists what would be deleted and says a guard would refuse, with exit 5 and nothing written', async () => {
      const { src, dst } = copyWithExtras(`dry-${np}`);
      const before = snapshot(dst);
      const r = await fcpRun(['--dry-run', '--delete', '--max-delete', '2', src, dst, '-np', np, '--json']);
      expect(r.code, r.stderr).toBe(5);
      const lines = r.stdout.split('\n').filter((l) => l.startsWith('would delete '));
      expect(lines.sort()).toEqual([`'${join(dst, 'd000', 'extra-3')}'`, `'${join(dst, 'extra-1')}'`, `'${join(dst, 'extra-2')}'`,
        `'${join(dst, 'extra-dir')}/'`, `'${join(dst, 'extra-dir', 'x')}'`].map((p) => `would delete ${p}`).sort());
      expect(r.stderr).toContain('fcp: dry run: not deleting: 5 entries would be deleted, more than --max-delete 2\n');
      expect(lastJson<DryRunSummary>(r.stdout).delete).toBe(5);
      expect(lastJson<DryRunSummary>(r.stdout).deleteRefused).toMatch(/^5 entries would be deleted/);
      expect(snapshot(dst)).toBe(before);

      const empty = join(work.dir, `dry-empty-${np}`);
      mkdirSync(empty);
      const e = await fcpRun(['--dry-run', '--delete', empty, dst, '-np', np]);
      expect(e.code, e.stderr).toBe(5);
      expect(e.stderr).toContain(`fcp: dry run: not deleting: SRC '${empty}' is empty and DST '${dst}' is not`);
      expect(snapshot(dst)).toBe(before);

      const ok = await fcpRun(['--dry-run', '--delete', '--max-delete', '5', src, dst, '-np', np]);
      expect(ok.code, ok.stderr).toBe(0);
      expect(ok.stderr).not.toContain('not deleting');
      expect(snapshot(dst)).toBe(before);
    });
  });
}

describe('--delete in bounded memory', () => {
  it('counts and deletes exactly the extras when DST\'s lists spill past the budget (-np 2, --mem-limit 1M)', async () => {
    const src = join(work.dir, 'spill-src');
    const dst = join(work.dir, 'spill-dst');
    mktree('small', src, '--files', '1500');
    expect(spawnSync('cp', ['-a', src, dst]).status).toBe(0);
    // 2,400 extras: more than a rank keeps in memory (1,000 entries a list at this budget).
    for (let d = 0; d < 4; d++) {
      mkdirSync(join(dst, `extra-${d}`));
      for (let f = 0; f < 599; f++) writeFileSync(join(dst, `extra-${d}`, `f${f}`), '');
    }
    const over = await fcpRun(['--delete', '--max-delete', '2399', '--mem-limit', '1M', src, dst, '-np', '2']);
    expect(over.code, over.stderr).toBe(5);
    expect(over.stderr).toContain('fcp: not deleting: 2400 entries would be deleted, more than --max-delete 2399\n');
    expect(readdirSync(join(dst, 'extra-3')).length).toBe(599);
    const r = await fcpRun(['--delete', '--max-delete', '2400', '--mem-limit', '1M', src, dst, '-np', '2', '--json']);
    expect(r.code, r.stderr).toBe(0);
    expect(lastJson<Summary>(r.stdout).deleted).toBe(2400);
    expect(treecmp(src, dst).status).toBe(0);
  });
});

describe('--delete removes only what it counted', () => {
  it('an extra directory that holds an excluded entry is kept, with that entry (-np 3)', async () => {
    const { src, dst } = copyWithExtras('protect');
    writeFileSync(join(dst, 'extra-dir', 'keep.tmp'), 'excluded: protected');
    const r = await fcpRun(['--delete', '--exclude', '*.tmp', src, dst, '-np', '3', '--json']);
    expect(r.code, r.stderr).toBe(0);
    expect(readFileSync(join(dst, 'extra-dir', 'keep.tmp'), 'utf8')).toBe('excluded: protected');
    expect(readdirSync(join(dst, 'extra-dir'))).toEqual(['keep.tmp']);
    expect(extrasLeft(dst)).toEqual(['extra-dir']);
    expect(lastJson<Summary>(r.stdout).deleted).toBe(4); // extra-1, extra-2, extra-3, extra-dir/x
  });
});

describe('--delete guard options', () => {
  it('are usage errors (exit 2, one line) without --delete or with a bad value', async () => {
    const src = join(work.dir, 'opt-src');
    mkdirSync(src);
    for (const [args, line] of [
      [['--max-delete', '3'], "fcp: --max-delete is a guard of --delete, which is not given"],
      [['--delete-from-empty'], "fcp: --delete-from-empty is a guard of --delete, which is not given"],
      [['--delete', '--max-delete', '3x'], "--max-delete must be a number of entries (100) or a percentage of DST's entries (10%), not '3x'"],
      [['--delete', '--max-delete', '150%'], "not '150%'"],
    ] as const) {
      const r = await fcpRun([...args, src, join(work.dir, 'opt-dst')]);
      expect(r.code, r.stderr).toBe(2);
      expect(r.stderr).toContain(line);
      expect(existsSync(join(work.dir, 'opt-dst'))).toBe(false);
    }
  });
});
