// fsum hashes in the addon's thread pool (hashRange, hashFiles) when it is loaded and in
// JavaScript without it (FCP_NO_NATIVE=1): both must give the spec's digests, byte for byte.
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { dist, isRoot, lastJson, node, run, scratch } from '../helpers/run.js';
import { NATIVE_ADDON_PATH } from '../../src/native/loader.js';
import { mountLatfs, unmountAll } from '../helpers/latfs.js';

const MiB = 1024 * 1024;
const area = scratch('fsumspeed-native');
const tree = join(area.dir, 'tree');
const withNative = existsSync(NATIVE_ADDON_PATH);

interface SumOut { signature: string; files: number; errors: number }

beforeAll(() => {
  mkdirSync(join(tree, 'd', 'e'), { recursive: true });
  // sizes around the leaf (1 MiB) and the chunk size used below (2 MiB)
  const sizes = [0, 1, 4095, MiB - 1, MiB, MiB + 1, 2 * MiB, 2 * MiB + 1, 5 * MiB + 12345];
  sizes.forEach((n, i) => writeFileSync(join(tree, i % 2 ? 'd' : 'd/e', `f${i}`), randomBytes(n)));
  for (let i = 0; i < 200; i++) writeFileSync(join(tree, `small${i}`), randomBytes(i * 37));
});
afterAll(() => area.cleanup());

describe.runIf(withNative)('fsum with and without the addon', () => {
  it('gives the same signature and byte-identical sum files at -np 1 and 2, chunked or not', async () => {
    const outs: string[] = [];
    const sigs = new Set<string>();
    for (const noNative of ['0', '1']) {
      for (const np of ['1', '2']) {
        for (const chunk of ['2M', '64M']) {
          const sum = join(area.dir, `sum-${noNative}-${np}-${chunk}`);
          const r = await node('cli/fsum.js', [tree, '-np', np, '--chunk-size', chunk, '-o', sum, '--json'], {
            timeoutMs: 120_000,
            env: { ...process.env, FCP_NO_NATIVE: noNative },
          });
          expect(r.code, r.stderr).toBe(0);
          const out = lastJson<SumOut>(r.stdout);
          expect(out.files).toBe(209);
          sigs.add(out.signature);
          outs.push(`${chunk}:${readFileSync(sum, 'utf8')}`);
        }
      }
    }
    expect(sigs.size).toBe(1);
    // the same chunk size gives the same file, whoever hashed it
    expect(new Set(outs.filter((o) => o.startsWith('2M:'))).size).toBe(1);
    expect(new Set(outs.filter((o) => o.startsWith('64M:'))).size).toBe(1);
  });

  // Root reads anything: drop to nobody to meet a permission error.
  const hasSetpriv = spawnSync('sh', ['-c', 'command -v setpriv']).status === 0;
  // (each of its chunks fails on its own, possibly on different ranks: one line per chunk, as before hashRange)
  it.runIf(!isRoot || hasSetpriv)('an unreadable chunked file is named with open and EACCES, counted, exit 1', async () => {
    const t = join(area.dir, 'perm');
    mkdirSync(t);
    writeFileSync(join(t, 'big'), randomBytes(5 * MiB));
    writeFileSync(join(t, 'ok'), 'ok');
    chmodSync(area.dir, 0o755);
    chmodSync(join(t, 'big'), 0o000);
    const reader = isRoot ? ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups', process.execPath] : [process.execPath];
    const r = await run(reader[0]!, [...reader.slice(1), dist('cli/fsum.js'), t, '-np', '2', '--chunk-size', '1M', '--json'], { timeoutMs: 60_000, cwd: '/' });
    expect(r.code, r.stderr).toBe(1);
    const lines = r.stderr.split('\n').filter(Boolean);
    expect(lines.length).toBeGreaterThan(0);
    expect(new Set(lines)).toEqual(new Set([`fsum: cannot open '${t}/big': Permission denied (EACCES)`]));
    expect(lastJson<SumOut>(r.stdout).errors).toBe(lines.length);
  });
});

// FUSE is not a local file system (sum-task.ts LOCAL_FS): there every whole file and chunk
// is a hashRange job of its own.
describe.runIf(withNative && isRoot)('fsum through latfs (hashRange for every file)', () => {
  afterEach(() => unmountAll());

  it('gives the signature of the same tree on tmpfs; a failed read is named (read, EIO), exit 1', async () => {
    const local = await node('cli/fsum.js', [tree, '--quiet'], { timeoutMs: 60_000 });
    expect(local.code, local.stderr).toBe(0);
    const sig = local.stdout.split(' ')[0];
    const m = await mountLatfs(area.dir, ['--meta-us', '100', '--data-us', '100', '--fail-read', 'tree/d/f*:1536K:EIO'], 'fsumspeed-latfs');
    const ok = await node('cli/fsum.js', [m.path('tree'), '-np', '2', '--chunk-size', '2M', '--quiet'], { timeoutMs: 120_000 });
    expect(ok.code, ok.stderr).toBe(1); // the files under d/ of more than 1.5 MiB fail
    const lines = ok.stderr.split('\n').filter(Boolean);
    // d/ holds f1, f3, f5, f7 (1, 1 MiB - 1, 1 MiB + 1, 2 MiB + 1 bytes): only f7 reaches 1.5 MiB
    expect(new Set(lines)).toEqual(new Set([`fsum: cannot read '${m.path('tree')}/d/f7': Input/output error (EIO)`]));
    await m.unmount();
    const clean = await mountLatfs(area.dir, ['--meta-us', '100', '--data-us', '100'], 'fsumspeed-latfs');
    const same = await node('cli/fsum.js', [clean.path('tree'), '-np', '2', '--chunk-size', '2M', '--quiet'], { timeoutMs: 120_000 });
    expect(same.code, same.stderr).toBe(0);
    expect(same.stdout.split(' ')[0]).toBe(sig);
  });
});
