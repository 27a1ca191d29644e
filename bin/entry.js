// Which file a tool loads: its bundle (dist/cli/<tool>.bundle.cjs, see bin/bundle.mjs)
// while every module that went into it is unchanged, else its modules (dist/cli/<tool>.js).
//
// The check costs a stat per module (~90, well under a millisecond); it is what makes a
// plain `tsc` (which rewrites dist/) fall back to the new modules instead of running the
// stale bundle. A missing or unreadable manifest, a module gone or changed (mtime or
// size): the modules.
'use strict';

const fs = require('node:fs');
const path = require('node:path');

/**
 * The entry to import for `entry` (relative to bin/, e.g. '../dist/cli/fcp.js'): the
 * bundle beside it when its manifest says it is current, else `entry` itself.
 */
function chooseEntry(entry, binDir = __dirname) {
  const modules = path.resolve(binDir, entry);
  const bundle = modules.replace(/\.js$/, '.bundle.cjs');
  if (!isCurrent(modules.replace(/\.js$/, '.bundle.json'), bundle, path.dirname(binDir))) return entry;
  return path.relative(binDir, bundle);
}

/**
 * Whether the manifest at `manifestPath` (written by bin/bundle.mjs) vouches for `output`
 * (an absolute path): it names that file, the file exists, and every input the manifest
 * lists (relative to `root`) still has the mtime and size it had when `output` was made.
 */
function isCurrent(manifestPath, output, root) {
  let manifest;
  try {
    manifest = JSON.parse(fs.readFileSync(manifestPath, 'utf8'));
  } catch {
    return false;
  }
  if (!manifest || !Array.isArray(manifest.inputs) || typeof manifest.bundle !== 'string') return false;
  if (path.resolve(root, manifest.bundle) !== output || !fs.existsSync(output)) return false;
  for (const input of manifest.inputs) {
    if (!Array.isArray(input) || input.length !== 3) return false;
    const st = fs.statSync(path.resolve(root, String(input[0])), { throwIfNoEntry: false });
    if (!st || st.mtimeMs !== input[1] || st.size !== input[2]) return false;
  }
  return true;
}

module.exports = { chooseEntry, isCurrent };
