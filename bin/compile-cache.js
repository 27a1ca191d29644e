// Node's on-disk compile cache (Node >= 22.1: module.enableCompileCache) for fcp's own
// modules and its dependencies, in a directory only this user (and root) can write.
//
// Why: every rank loads and compiles ~100 modules before it can connect; with the cache
// V8 reuses their code from the previous run instead of compiling again. Node 24, 20
// modules' worth of `fcp --version` (CPU, median of 15, alternated): 145 -> 130 ms a rank.
// Node 20 has no such API: there this does nothing.
//
// Why the checks: the cache holds compiled code that the next run executes without
// compiling it from our sources, so whoever can write into the cache directory can make
// fcp run their code, as root when root runs fcp. The directory is used only if its real
// path (no symbolic links left) and every directory above it are owned by this user or
// root and not writable by group or others (a sticky directory such as /tmp excepted,
// where nobody can rename what is ours), and it itself is ours with mode 0700. Anything
// else (a HOME of another user under sudo, a shared cache directory) runs without the
// cache, silently: it only costs time. NODE_DISABLE_COMPILE_CACHE=1 turns it off too.
'use strict';

const fs = require('node:fs');
const path = require('node:path');
const os = require('node:os');

/** fcp's cache directory `name`: $XDG_CACHE_HOME/fcp/NAME, else ~/.cache/fcp/NAME. */
function fcpCacheDir(name, env = process.env) {
  const xdg = env.XDG_CACHE_HOME;
  const base = xdg && path.isAbsolute(xdg) ? xdg : path.join(os.homedir(), '.cache');
  return path.join(base, 'fcp', name);
}

/** Where the cache lives: $XDG_CACHE_HOME/fcp/compile-cache, else ~/.cache/fcp/compile-cache. */
function compileCacheDir(env = process.env) {
  return fcpCacheDir('compile-cache', env);
}

/**
 * Why `dir` (an existing directory) must not hold code this process will run, or null when
 * it is safe: see above. `uid` is the effective uid of the process.
 */
function unsafeReason(dir, uid) {
  const real = fs.realpathSync(dir);
  const own = fs.lstatSync(real);
  if (!own.isDirectory()) return `${real} is not a directory`;
  if (own.uid !== uid) return `${real} is owned by uid ${own.uid}`;
  if (own.mode & 0o077) return `${real} has mode 0${(own.mode & 0o777).toString(8)}, not 0700`;
  for (let p = path.dirname(real); ; p = path.dirname(p)) {
    const st = fs.lstatSync(p);
    if (!st.isDirectory()) return `${p} is not a directory`;
    if (st.uid !== uid && st.uid !== 0) return `${p} is owned by uid ${st.uid}`;
    if (st.mode & 0o022 && !(st.mode & 0o1000)) return `${p} is writable by group or others`;
    if (p === path.dirname(p)) return null;
  }
}

/** Enable the compile cache in the user's private cache directory; the directory used, or null. */
function enableCompileCache() {
  const mod = require('node:module');
  if (typeof mod.enableCompileCache !== 'function' || typeof process.geteuid !== 'function') return null;
  try {
    const dir = compileCacheDir();
    // Created 0700 (each missing level); an existing one is checked, never chmod'ed.
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
    if (unsafeReason(dir, process.geteuid()) !== null) return null;
    const real = fs.realpathSync(dir);
    const r = mod.enableCompileCache(real);
    return r && r.directory ? r.directory : null;
  } catch {
    return null; // no home, a read-only file system...: run without the cache
  }
}

module.exports = { fcpCacheDir, compileCacheDir, unsafeReason, enableCompileCache };
