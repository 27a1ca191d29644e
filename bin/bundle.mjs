#!/usr/bin/env node
// Bundles each tool's ES modules (dist/cli/fcp.js, dist/cli/fsum.js and the ~90 modules
// they import) into one CommonJS file beside it, dist/cli/<tool>.bundle.cjs, and records
// which files went in: dist/cli/<tool>.bundle.json. Run by `npm run build` after tsc.
//
// Why: every rank loads the whole program before it can connect, and Node's ES module
// loader pays per module (resolve, read through the thread pool, parse, link): one file
// instead of ~90 cuts a rank's startup by ~50 ms of CPU (node 20, a one-tiny-file copy,
// -np 2: 0.53 -> 0.42 CPU s; -np 8: 2.21 -> 1.84), which with many ranks on few cores
// is the time to start the job. bin/entry.js runs the bundle only while every file in it
// is unchanged since (so a plain `tsc` falls back to the modules, never to stale code).
//
// Kept out of the bundle, loaded as before: Node's modules, the packages (zeromq,
// better-sqlite3, msgpackr, commander, xxhash-wasm), and dist's CommonJS modules (*.cjs):
// bin/preamble.js loads the self-launch before the program, and the program must share
// that instance (the ranks it started), not hold a copy.
//
// Never fails the build: without rolldown (an install without dev dependencies) it says
// so and exits 0; the tools then run from the modules.
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { bundleSnapshot } from './snapshot-bundle.mjs';

const root = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
const TOOLS = ['fcp', 'fsum'];

let rolldown;
try {
  rolldown = await import('rolldown');
} catch {
  console.warn('fcp: rolldown not installed; the tools run from their modules (slower startup)');
  process.exit(0);
}

const external = (id) => id.startsWith('node:') || id.endsWith('.cjs') || !(id.startsWith('.') || path.isAbsolute(id));

for (const tool of TOOLS) {
  const input = path.join(root, 'dist', 'cli', `${tool}.js`);
  const out = path.join(root, 'dist', 'cli', `${tool}.bundle.cjs`);
  const manifest = path.join(root, 'dist', 'cli', `${tool}.bundle.json`);
  // An old manifest must not vouch for a bundle being rewritten.
  fs.rmSync(manifest, { force: true });
  const bundle = await rolldown.rolldown({ input, platform: 'node', external, logLevel: 'warn' });
  const { output } = await bundle.write({ file: out, format: 'cjs', strict: true, sourcemap: false });
  await bundle.close();
  if (output.length !== 1) throw new Error(`${tool}: expected one output file, got ${output.map((o) => o.fileName).join(', ')}`);
  const inputs = output[0].moduleIds
    .filter((id) => path.isAbsolute(id))
    .map((id) => {
      const st = fs.statSync(id);
      return [path.relative(root, id), st.mtimeMs, st.size];
    });
  const tmp = `${manifest}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, `${JSON.stringify({ bundle: path.relative(root, out), inputs })}\n`);
  fs.renameSync(tmp, manifest);
  console.log(`${path.relative(root, out)}: ${inputs.length} modules`);
}

// The tools' startup snapshots (see snapshot.js): the file each is built from, then the
// blob for this node and user. A snapshot that cannot be built is said and skipped: the
// ranks then start without one.
const snapshot = createRequire(import.meta.url)('./snapshot.js');
for (const tool of TOOLS) {
  try {
    const n = await bundleSnapshot(rolldown, root, tool);
    const blob = snapshot.buildSnapshot(tool, root);
    console.log(`${tool}: startup snapshot of ${n} modules: ${blob}`);
  } catch (err) {
    console.warn(`fcp: ${tool}: no startup snapshot (ranks start without one): ${err.message}`);
  }
}
