import { chmodSync, chownSync, existsSync, mkdirSync, readdirSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { createRequire } from 'node:module';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { repoRoot } from '../helpers/run.js';

// bin/compile-cache.js is CommonJS (bin/package.json), loaded first thing by bin/preamble.js.
const { compileCacheDir, unsafeReason } = createRequire(import.meta.url)('../../bin/compile-cache.js') as {
  compileCacheDir: (env?: Record<string, string | undefined>) => string;
  unsafeReason: (dir: string, uid: number) => string | null;
};

const uid = process.geteuid!();

describe('the compile cache directory (compiled code the next run executes)', () => {
  let top: string;
  beforeEach(() => {
    top = mkdtempSync(join(tmpdir(), 'startup-cc-'));
    chmodSync(top, 0o700);
  });
  afterEach(() => rmSync(top, { recursive: true, force: true }));

  const mk = (rel: string, mode = 0o700) => {
    const p = join(top, rel);
    mkdirSync(p, { recursive: true });
    chmodSync(p, mode);
    return p;
  };

  it('lives in the XDG cache directory when it is absolute, else in ~/.cache', () => {
    expect(compileCacheDir({ XDG_CACHE_HOME: '/x/cache' })).toBe('/x/cache/fcp/compile-cache');
    expect(compileCacheDir({ XDG_CACHE_HOME: 'relative' })).toBe(join(homedir(), '.cache', 'fcp', 'compile-cache'));
    expect(compileCacheDir({})).toBe(join(homedir(), '.cache', 'fcp', 'compile-cache'));
  });

  it('is used when it is ours, 0700, below directories only we or root can change', () => {
    expect(unsafeReason(mk('a/cache'), uid)).toBeNull();
  });

  it('is refused when group or others can read or write it', () => {
    expect(unsafeReason(mk('a/cache', 0o750), uid)).toMatch(/mode 0750, not 0700/);
    expect(unsafeReason(mk('b/cache', 0o777), uid)).toMatch(/mode 0777/);
  });

  it('is refused below a directory others can write to (they could rename ours away), unless it is sticky', () => {
    const open = mk('open', 0o777);
    const cache = mk('open/cache');
    expect(unsafeReason(cache, uid)).toBe(`${open} is writable by group or others`);
    chmodSync(open, 0o1777);
    expect(unsafeReason(cache, uid)).toBeNull();
  });

  it.runIf(uid === 0)('is refused when it or a directory above it belongs to another user (a HOME kept by sudo)', () => {
    const cache = mk('home/cache');
    chownSync(cache, 4321, 4321);
    expect(unsafeReason(cache, uid)).toMatch(/owned by uid 4321/);
    chownSync(cache, uid, 0);
    const home = join(top, 'home');
    chownSync(home, 4321, 4321);
    expect(unsafeReason(cache, uid)).toBe(`${home} is owned by uid 4321`);
  });

  it('judges the real directory a symbolic link leads to, not the link', () => {
    const real = mk('real/cache');
    symlinkSync(real, join(top, 'link'));
    expect(unsafeReason(join(top, 'link'), uid)).toBeNull();
    chmodSync(real, 0o755);
    expect(unsafeReason(join(top, 'link'), uid)).toMatch(/mode 0755/);
  });

  it('is enabled by the tools on a Node that has the API, in the checked directory, 0700', () => {
    const home = mk('xdg');
    const script = `const r = require(${JSON.stringify(`${repoRoot}/bin/compile-cache.js`)}).enableCompileCache();
      process.stdout.write(JSON.stringify({ r, mode: r ? require('node:fs').statSync(${JSON.stringify(join(home, 'fcp', 'compile-cache'))}).mode & 0o777 : null }));`;
    const env = { ...process.env, XDG_CACHE_HOME: home };
    delete env.NODE_COMPILE_CACHE;
    delete env.NODE_DISABLE_COMPILE_CACHE;
    const r = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', env });
    expect(r.status).toBe(0);
    const out = JSON.parse(r.stdout) as { r: string | null; mode: number | null };
    if (typeof (createRequire(import.meta.url)('node:module') as { enableCompileCache?: unknown }).enableCompileCache === 'function') {
      expect(out.r).toBe(join(home, 'fcp', 'compile-cache'));
      expect(out.mode).toBe(0o700);
    } else {
      expect(out.r).toBeNull(); // Node 20: no compile cache, and nothing created
    }
  });

  it('is not used when the directory above is another user\'s: the tool still runs', () => {
    const shared = mk('shared', 0o777);
    const r = spawnSync(process.execPath, [join(repoRoot, 'bin', 'fcp.js'), '--version'], {
      encoding: 'utf8', env: { ...process.env, XDG_CACHE_HOME: shared },
    });
    expect(r.status).toBe(0);
    expect(r.stderr).toBe('');
    expect(r.stdout.trim()).toMatch(/^\d+\.\d+\.\d+$/);
    // Nothing was cached there (Node >= 22 would have written a directory per Node version).
    const cache = join(shared, 'fcp', 'compile-cache');
    expect(existsSync(cache) ? readdirSync(cache) : []).toEqual([]);
  });
});
