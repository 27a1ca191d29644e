// The main function of a tool's startup snapshot (see snapshot.js): what a rank started
// from it runs once Node has deserialized the heap, in place of bin/<tool>.js.
//
// Bundled into dist/cli/<tool>.snapshot.cjs by bin/bundle.mjs, with the tool's modules;
// evaluated once, by `node --build-snapshot`, which only registers the function below.
'use strict';

const v8 = require('node:v8');
const preamble = require('./preamble.js');
const { detectLauncher } = require('../dist/launch/env.cjs');
const { guardChildStartup } = require('../dist/launch/self-launch.cjs');

/**
 * Register `start` (load the native dependencies, run the tool on process.argv) as the
 * snapshot's main function, behind the same set-up as bin/preamble.js gives a rank.
 */
exports.startFromSnapshot = function startFromSnapshot(start) {
  v8.startupSnapshot.setDeserializeMainFunction(() => {
    preamble.setUp();
    try {
      // Only rank 0 starts ranks from a snapshot, so this is a self-launched rank: it
      // leaves quietly if rank 0 goes away before the program watches it.
      if (detectLauncher().kind === 'self') guardChildStartup();
      start();
    } catch (err) {
      preamble.fail(err);
    }
  });
};
