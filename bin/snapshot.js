// V8 startup snapshots of fcp's tools, for the ranks that rank 0 starts itself (-np N).
//
// Why: every rank boots Node, then loads and evaluates the whole program before it can
// connect; with N ranks on few cores that is the time to start the job. A snapshot holds
// the heap of a Node that has already evaluated the program (Node's own modules it uses,
// commander, msgpackr and fcp's modules): a rank started from it deserializes that heap
// instead (`node --snapshot-blob FILE`). Node 20, -np 8, one tiny file: ~30 ms of CPU less
// per started rank (see README, Design: Startup).
//
// What: `dist/cli/<tool>.snapshot.cjs` (one CommonJS file; bin/bundle.mjs makes it, with
// `<tool>.snapshot.json` listing its inputs as for the bundle) is run once by
// `node --build-snapshot`, which writes the blob. Its main function (snapshot-main.js)
// loads what a snapshot cannot hold (the native addons: zeromq, better-sqlite3, fcp's own)
// and runs the tool.
//
// Where: the blob is specific to the exact node binary and to the bundle, and it holds code
// the ranks run: it lives in the user's private cache directory, $XDG_CACHE_HOME/fcp/snapshot
// (else ~/.cache/fcp/snapshot), under the same checks as the compile cache (compile-cache.js:
// ours, mode 0700, no directory above it writable by others), named by a hash of the node
// binary (path, version, size, mtime), the install and the bundle's manifest. `npm run
// build` builds it for the node and user that run the build; `node bin/snapshot.js` builds
// it for another (e.g. root, who runs fcp). Without a valid one, or with FCP_NO_SNAPSHOT=1,
// ranks start as before: it only costs time.
'use strict';

const fs = require('node:fs');
const path = require('node:path');
const { fcpCacheDir, unsafeReason } = require('./compile-cache.js');
const { isCurrent } = require('./entry.js');

const ROOT = path.dirname(__dirname);
const TOOLS = ['fcp', 'fsum'];

/** The tool's snapshot bundle and its manifest (absolute paths). */
function snapshotBundle(tool, root = ROOT) {
  const base = path.join(root, 'dist', 'cli', `${tool}.snapshot`);
  return { file: `${base}.cjs`, manifest: `${base}.json` };
}

/** Where blobs live. */
const snapshotDir = (env = process.env) => fcpCacheDir('snapshot', env);

/**
 * The blob's file name for `tool` under this node binary and install, or null without a
 * current snapshot bundle. Two parts: the install with this node (blobs of an older bundle
 * share it and are replaced), then everything the blob depends on.
 */
function blobName(tool, root = ROOT) {
  const { file, manifest } = snapshotBundle(tool, root);
  if (!isCurrent(manifest, file, root)) return null;
  const crypto = require('node:crypto');
  const hash = (x) => crypto.createHash('sha256').update(JSON.stringify(x)).digest('hex');
  const node = fs.statSync(process.execPath);
  const bundle = fs.statSync(file);
  const install = hash([root, process.execPath]).slice(0, 12);
  const key = hash([process.version, process.arch, process.versions.v8, node.size, node.mtimeMs, file, bundle.size, bundle.mtimeMs,
    fs.readFileSync(manifest, 'utf8')]).slice(0, 20);
  return `${tool}-${install}-${key}.blob`;
}

/**
 * The node arguments that start a rank of `tool` from its snapshot (`--snapshot-blob FILE`),
 * or [] when there is no valid blob for this node binary and install, when it may not be
 * trusted, when the user turned snapshots off (FCP_NO_SNAPSHOT=1), or when rank 0's node
 * runs with options (`execArgv`, NODE_OPTIONS): its ranks get the same, and Node refuses a
 * blob under V8 flags other than those it was built with (none), exiting 14 ("built with
 * different V8 configurations"); preloads and debuggers have no place in a snapshot either.
 * Never throws.
 */
function snapshotArgs(tool, root = ROOT, env = process.env, execArgv = process.execArgv) {
  try {
    if (env.FCP_NO_SNAPSHOT && env.FCP_NO_SNAPSHOT !== '0') return [];
    if (typeof require('node:v8').startupSnapshot?.isBuildingSnapshot !== 'function' || typeof process.geteuid !== 'function') return [];
    if (execArgv.length > 0 || String(env.NODE_OPTIONS ?? '').trim() !== '') return [];
    const name = blobName(tool, root);
    if (!name) return [];
    const dir = snapshotDir(env);
    if (!fs.existsSync(dir) || unsafeReason(dir, process.geteuid()) !== null) return [];
    const blob = path.join(fs.realpathSync(dir), name);
    const st = fs.lstatSync(blob, { throwIfNoEntry: false });
    if (!st || !st.isFile() || st.uid !== process.geteuid() || st.mode & 0o022) return [];
    return ['--snapshot-blob', blob];
  } catch {
    return [];
  }
}

/**
 * Build the blob of `tool` for this node binary (the one running this) into the private
 * cache directory, check that a rank starts from it, and replace the install's older
 * blobs. Returns its path; throws with the reason when it cannot.
 */
function buildSnapshot(tool, root = ROOT, env = process.env) {
  const { spawnSync } = require('node:child_process');
  if (typeof require('node:v8').startupSnapshot?.isBuildingSnapshot !== 'function') throw new Error(`node ${process.version} cannot build startup snapshots`);
  const name = blobName(tool, root);
  if (!name) throw new Error(`${snapshotBundle(tool, root).file} is missing or older than its modules (npm run build)`);
  const dir = snapshotDir(env);
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  const why = unsafeReason(dir, process.geteuid());
  if (why !== null) throw new Error(`not building a snapshot in ${dir}: ${why}`);
  const real = fs.realpathSync(dir);
  const blob = path.join(real, name);
  const tmp = path.join(real, `.${name}.${process.pid}.tmp`);
  try {
    // msgpackr decides at load whether to load its native extractor: not in a snapshot (see preamble.js).
    const buildEnv = { ...env, MSGPACKR_NATIVE_ACCELERATION_DISABLED: 'true', NODE_OPTIONS: '' };
    const version = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')).version;
    /** Build the blob with these node flags; null when it was built and a rank ran from it, else why not. */
    const attempt = (flags) => {
      const built = spawnSync(process.execPath, [...flags, '--snapshot-blob', tmp, '--build-snapshot', snapshotBundle(tool, root).file],
        { env: buildEnv, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
      if (built.status !== 0) return `node --build-snapshot failed (${built.signal ?? `exit ${built.status}`}): ${tail(built.stderr)}`;
      fs.chmodSync(tmp, 0o600);
      // A rank started from it must get as far as the tool's --version (its native addons loaded).
      const ran = spawnSync(process.execPath, ['--snapshot-blob', tmp, path.join(root, 'bin', `${tool}.js`), '--version'],
        { env: { ...env, NODE_OPTIONS: '' }, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
      if (ran.status !== 0 || ran.stdout.trim() !== version) return `a rank started from the snapshot did not run (${ran.signal ?? `exit ${ran.status}`}): ${tail(ran.stderr || ran.stdout)}`;
      return null;
    };
    // Every function compiled into the blob (--no-lazy; the bundle puts the flag back before
    // the blob is written, see snapshot-bundle.mjs): a rank then compiles nothing on first
    // call (-np 16, one tiny file: 9 % less CPU). A node that will not run such a blob
    // (it checks the flags it was built under) gets the plain one.
    const why = attempt(['--no-lazy']) && attempt([]);
    if (why) throw new Error(why);
    fs.renameSync(tmp, blob);
  } finally {
    fs.rmSync(tmp, { force: true });
  }
  // This install's older blobs go; so do the blobs of installs that are gone (each install
  // leaves a note of its directory beside its blobs: CI builds in a new checkout each run).
  const install = name.slice(0, name.lastIndexOf('-') + 1);
  fs.writeFileSync(path.join(real, `${install}root`), root, { mode: 0o600 });
  for (const old of fs.readdirSync(real)) {
    if (old !== name && old.startsWith(install) && old.endsWith('.blob')) fs.rmSync(path.join(real, old), { force: true });
    if (!old.endsWith('-root')) continue;
    const gone = !fs.existsSync(path.join(fs.readFileSync(path.join(real, old), 'utf8'), 'dist', 'cli'));
    if (gone) for (const f of fs.readdirSync(real)) if (f.startsWith(old.slice(0, -'root'.length))) fs.rmSync(path.join(real, f), { force: true });
  }
  return blob;
}

const tail = (s) => String(s ?? '').trim().split('\n').slice(-3).join(' | ');

module.exports = { TOOLS, snapshotBundle, snapshotDir, blobName, snapshotArgs, buildSnapshot };

// node bin/snapshot.js [TOOL...]: build the blobs for this node and user (default: every tool).
// node bin/snapshot.js --path TOOL: print the path of TOOL's valid blob (exit 1 if none), for
// ranks that a launcher starts: `mpirun node --snapshot-blob "$(...)" bin/fcp.js ...`.
if (require.main === module) {
  const args = process.argv.slice(2);
  if (args[0] === '--path') {
    const found = snapshotArgs(args[1] ?? '');
    if (found.length) console.log(found[1]);
    else console.error(`${args[1] ?? '(no tool)'}: no valid startup snapshot for ${process.execPath} ${process.version} (node bin/snapshot.js builds it)`);
    process.exitCode = found.length ? 0 : 1;
  } else {
    let failed = false;
    for (const tool of args.length ? args : TOOLS) {
      try {
        console.log(`${tool}: ${buildSnapshot(tool)}`);
      } catch (err) {
        console.error(`${tool}: no startup snapshot: ${err.message}`);
        failed = true;
      }
    }
    process.exitCode = failed ? 1 : 0;
  }
}
