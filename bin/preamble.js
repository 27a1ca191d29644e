// What every fcp tool (bin/fcp.js, bin/fsum.js) does first, before any other module loads.
//
// CommonJS on purpose (bin/package.json): Node reads an ES module entry point through the
// libuv thread pool, so by the time an ESM script's first line runs the pool exists with
// its default 4 threads and UV_THREADPOOL_SIZE is ignored (seen: 11 threads in the
// process instead of 23). A CommonJS entry loads synchronously, so the setting below
// still applies; the tools themselves (dist/, ES modules) are imported afterwards.
'use strict';

/** Set the process up, start local ranks early (-np N without a launcher), then load `entry`. */
exports.run = function run(entry) {
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
  // With -np N and no launcher, start the other ranks before loading the rest of the
  // tool, so their startup overlaps ours: synchronously, from CommonJS modules, before
  // Node sets up its ES module loader for the program (that alone costs 20-40 ms).
  try {
    const { detectLauncher } = require('../dist/launch/env.cjs');
    const { spawnEarly } = require('../dist/launch/self-launch.cjs');
    if (!process.env.FCP_NO_EARLY) spawnEarly(process.argv.slice(2), detectLauncher().kind === 'none');
  } catch (err) {
    fail(err);
  }
  import(entry).catch(fail);
};

function fail(err) {
  process.stderr.write(`${require('node:path').basename(process.argv[1] || 'fcp')}: cannot start: ${err && err.stack ? err.stack : err}\n`);
  process.exit(1);
}
