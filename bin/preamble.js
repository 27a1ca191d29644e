// What every fcp tool (bin/fcp.js, bin/fsum.js) does first, before any other module loads.
//
// CommonJS on purpose (bin/package.json): Node reads an ES module entry point through the
// libuv thread pool, so by the time an ESM script's first line runs the pool exists with
// its default 4 threads and UV_THREADPOOL_SIZE is ignored (seen: 11 threads in the
// process instead of 23). A CommonJS entry loads synchronously, so the setting below
// still applies; the tools themselves are loaded afterwards (their CommonJS bundle, else
// their ES modules in dist/).
'use strict';

/** Set the process up, start local ranks early (-np N without a launcher), then load `entry`. */
exports.run = function run(entry) {
  setUp();
  // With -np N and no launcher, start the other ranks before loading the rest of the
  // tool, so their startup overlaps ours: synchronously, from CommonJS modules, before
  // the program loads (with ES modules, Node's loader for them alone costs 20-40 ms). They
  // start from the tool's startup snapshot when there is a valid one (see snapshot.js).
  try {
    const { detectLauncher } = require('../dist/launch/env.cjs');
    const { spawnEarly, guardChildStartup } = require('../dist/launch/self-launch.cjs');
    const kind = detectLauncher().kind;
    if (kind === 'self') guardChildStartup();
    const name = require('node:path').basename(entry, '.js');
    if (!process.env.FCP_NO_EARLY) spawnEarly(process.argv.slice(2), kind === 'none', () => require('./snapshot.js').snapshotArgs(name));
  } catch (err) {
    fail(err);
  }
  // The tool's bundle (one CommonJS file instead of ~90 ES modules) while it is current:
  // see entry.js. Else the modules.
  let chosen = entry;
  try {
    chosen = require('./entry.js').chooseEntry(entry);
  } catch {
    // the modules, then
  }
  if (!chosen.endsWith('.cjs')) {
    import(chosen).catch(fail);
    return;
  }
  try {
    require(chosen);
  } catch (err) {
    fail(err);
  }
};

/**
 * What every process of a tool does first, whether it loads the program (run) or starts
 * from a startup snapshot (snapshot-main.js).
 */
function setUp() {
  lastResort();
  // Reuse V8's compiled code of the previous run, from a private directory (Node >= 22.1;
  // see compile-cache.js for why the directory is checked first). Before any other module.
  require('./compile-cache.js').enableCompileCache();
  // Enough libuv threads to keep many small-file syscalls, directory reads and large
  // reads in flight at once (the walk runs 8 items at a time, the copy 4 batches).
  process.env.UV_THREADPOOL_SIZE ??= '16';
  // V8 flags for bounded heap growth and later TurboFan, only those this V8 has (a flag
  // V8 does not know costs an error line on stderr per rank): see v8-flags.js.
  require('./v8-flags.js').applyV8Flags();
  // msgpackr's optional native string extractor speeds up decoding long strings; fcp's
  // messages are numbers and short Buffers, and loading it (with its libc detection)
  // costs each rank several milliseconds of startup.
  process.env.MSGPACKR_NATIVE_ACCELERATION_DISABLED ??= 'true';
}
exports.setUp = setUp;

const tool = () => require('node:path').basename(process.argv[1] || 'fcp').replace(/\.js$/, '');

/** One line for the user, whatever went wrong: never a multi-line stack trace. */
function oneLine(err) {
  const msg = err instanceof Error ? `${err.message}${err.code ? ` (${err.code})` : ''}` : String(err);
  const at = err instanceof Error && /\n\s+at (.*)/.exec(err.stack || '');
  // eslint-disable-next-line no-control-regex
  return `${msg}${at ? ` [at ${at[1]}]` : ''}`.replace(/[\x00-\x1f\x7f]/g, (c) => (c === '\n' ? '\\n' : `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`));
}

/**
 * The tool's own modules did not load (an install broken or being rebuilt): exit 3, as for
 * an internal error. Not 1, which tells a script that some entries failed and were named.
 */
function fail(err) {
  process.stderr.write(`${tool()}: cannot start: ${oneLine(err)}\n`);
  process.exit(3);
}
exports.fail = fail;

/**
 * The last resort: whatever escapes the tool's own handling ends the process with one
 * line and exit 3 (the job is aborted; a checkpoint, if any, is resumable). A closed
 * stdout or stderr (EPIPE: the reader went away) ends it quietly, as for cat.
 */
function lastResort() {
  const die = (err) => {
    // A collective that learnt of an abort: the runtime prints its reason and exits itself.
    if (err && err.constructor && err.constructor.name === 'JobAborted') return;
    if (err && err.code === 'EPIPE') process.exit(3);
    try { process.stderr.write(`${tool()}: internal error: ${oneLine(err)}\n`); } catch { /* stderr is gone */ }
    process.exit(3);
  };
  process.on('uncaughtException', die);
  process.on('unhandledRejection', die);
  for (const s of [process.stdout, process.stderr]) s.on('error', (err) => (err && err.code === 'EPIPE' ? process.exit(3) : die(err)));
}
