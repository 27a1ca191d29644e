// The V8 flags fcp's tools set at startup (bin/preamble.js), chosen by the V8 that runs them.
//
// V8 renames and removes flags between versions, and v8.setFlagsFromString() does not
// throw on a flag it does not know: V8 prints "Error: unrecognized flag ..." on stderr,
// once per rank (seen on Node 22 and 24 with --interrupt-budget, which V8 12 replaced by
// --invocation-count-for-turbofan). Nothing in Node lists V8's flags without starting
// another process, so the flags are keyed by V8 major version, each set checked against
// `node --v8-options` of that V8; a newer V8 gets no flags (fcp runs, only with V8's
// default heap sizing and tiering) until someone checks it and adds a row here.
// test/unit/v8-flags.test.ts fails on a Node whose V8 has no row, or lacks a flag.
'use strict';

// Keep the heap near what is live. fcp's live heap is small and bounded (--mem-limit), but
// it allocates a lot per file, and V8 by default lets the heap grow to ~4x the live size
// between full collections: on 300,000 files a rank's heap reached 130 MB for ~15 MB live.
// This flag makes V8 grow it less (it is read when V8 sizes the heap, so setting it before
// any work takes effect). Peak RSS at -np 2 on 300,000 files: 267 -> 155 MiB, time within
// noise (see README, bench/scale.mjs).
const OPTIMIZE_FOR_SIZE = '--optimize-for-size';

// Optimize hot functions later (V8's default x15). A rank runs for well under a second on
// a small tree, and optimizing (TurboFan) its many short-lived hot functions cost more CPU
// than it saved; on long runs the same functions still get optimized, a little later.
// node bench/cpu.mjs --reps 5 --baseline-root (the same checkout without the flag),
// 20,000 files, -np 2:
//   V8 11 (Node 20): --interrupt-budget (default 67584)            CPU -9%, wall -14%
//   V8 13 (Node 24): --invocation-count-for-turbofan (default 3000) CPU -11%, wall -7%
// (first measured on Node 20: 20,000 files -15% CPU, -13% wall; --small-files 200000 -2% CPU).
const LATER_TURBOFAN_V8_11 = '--interrupt-budget=1000000';
const LATER_TURBOFAN_V8_12 = '--invocation-count-for-turbofan=45000';

/** V8 major version -> the flags to set; every row checked against that V8's --v8-options. */
const FLAGS_BY_V8_MAJOR = new Map([
  [11, [OPTIMIZE_FOR_SIZE, LATER_TURBOFAN_V8_11]], // Node 20 (V8 11.3)
  [12, [OPTIMIZE_FOR_SIZE, LATER_TURBOFAN_V8_12]], // Node 22 (V8 12.4)
  [13, [OPTIMIZE_FOR_SIZE, LATER_TURBOFAN_V8_12]], // Node 24 (V8 13.6)
  [14, [OPTIMIZE_FOR_SIZE, LATER_TURBOFAN_V8_12]], // Node 26 (V8 14.6)
]);

/** The flags for V8 version `v8Version` (as in process.versions.v8); [] for a V8 not checked. */
function v8FlagsFor(v8Version) {
  const major = Number.parseInt(String(v8Version), 10);
  return [...(FLAGS_BY_V8_MAJOR.get(major) ?? [])];
}

/** Set the flags for the running V8. */
function applyV8Flags() {
  const v8 = require('node:v8');
  for (const flag of v8FlagsFor(process.versions.v8)) v8.setFlagsFromString(flag);
}

module.exports = { v8FlagsFor, applyV8Flags };
