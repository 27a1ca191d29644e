// Makes a tool's snapshot bundle, dist/cli/<tool>.snapshot.cjs, with its manifest
// (<tool>.snapshot.json, the same form as the bundle's): the one CommonJS file that
// `node --build-snapshot` evaluates to make the tool's startup snapshot (bin/snapshot.js).
//
// While a snapshot is built Node lets the file require only its own modules, so the
// packages fcp loads at startup are put in it too (commander, msgpackr, xxhash-wasm), and
// its CommonJS modules (dist/**/*.cjs, bin/preamble.js) are bundled as well: a rank started
// from the snapshot has no other copy. What holds a native addon (zeromq, better-sqlite3,
// fcp's own) is required after deserializing: util/cjs-deps-snapshot.ts stands in for
// util/cjs-deps.ts, and native/loader.ts leaves its addon alone while the snapshot builds.
import fs from 'node:fs';
import { builtinModules } from 'node:module';
import path from 'node:path';

const NATIVE = new Set(['zeromq', 'better-sqlite3', 'msgpackr-extract']);
const BUILTIN = new Set(builtinModules);
const external = (id) => id.startsWith('node:') || BUILTIN.has(id) || NATIVE.has(id);

/** Write dist/cli/<tool>.snapshot.cjs and its manifest; returns the number of modules in it. */
export async function bundleSnapshot(rolldown, root, tool) {
  const dist = path.join(root, 'dist');
  const out = path.join(dist, 'cli', `${tool}.snapshot.cjs`);
  const manifest = path.join(dist, 'cli', `${tool}.snapshot.json`);
  const cjsDeps = path.join(dist, 'util', 'cjs-deps.js');
  const entryId = `\0fcp-snapshot-entry:${tool}`;
  const abs = (...p) => JSON.stringify(path.join(root, ...p));
  const entry = `
import { startFromSnapshot } from ${abs('bin', 'snapshot-main.js')};
import { runCli, warmUp } from ${abs('dist', 'cli', `${tool}.js`)};
import { loadRuntimeDeps } from ${abs('dist', 'util', 'cjs-deps-snapshot.js')};
import { snapshotConstantsDiffer } from ${abs('dist', 'native', 'loader.js')};
import { setFlagsFromString } from 'node:v8';
warmUp();
startFromSnapshot(() => {
  loadRuntimeDeps();
  const differ = snapshotConstantsDiffer();
  if (differ) throw new Error(differ);
  runCli(process.argv.slice(2));
});
// bin/snapshot.js builds with --no-lazy: every function is compiled while this file loads and
// the blob keeps its bytecode, so a rank compiles none on its first call. The flag is back at
// its default before the blob is written: node refuses a blob built under other V8 flags.
setFlagsFromString('--lazy');
`;
  const plugin = {
    name: 'fcp-snapshot',
    resolveId(source, importer) {
      if (source === entryId) return entryId;
      if (importer && source.startsWith('.') && path.resolve(path.dirname(importer), source) === cjsDeps) return path.join(dist, 'util', 'cjs-deps-snapshot.js');
      return null;
    },
    load(id) {
      return id === entryId ? entry : null;
    },
  };
  fs.rmSync(manifest, { force: true }); // an old manifest must not vouch for a file being rewritten
  const bundle = await rolldown.rolldown({ input: entryId, platform: 'node', external, plugins: [plugin], logLevel: 'warn' });
  // Without comments and whitespace: the snapshot holds every module's source text, and a
  // smaller heap deserializes faster (a rank's --version from the snapshot: ~5 ms of CPU
  // less, 6.3 -> 5.8 MB). Names are kept (no mangling): stack traces and constructor names
  // stay as in the modules.
  const minify = { compress: false, mangle: false, codegen: { removeWhitespace: true } };
  // Strict mode, as fcp's ES modules were (the packages in it are strict code, or classes).
  const { output } = await bundle.write({ file: out, format: 'cjs', strict: true, sourcemap: false, minify });
  await bundle.close();
  if (output.length !== 1) throw new Error(`${tool}: expected one snapshot file, got ${output.map((o) => o.fileName).join(', ')}`);
  const ids = output[0].moduleIds.filter((id) => path.isAbsolute(id));
  if (ids.includes(cjsDeps)) throw new Error(`${tool}: the snapshot bundle holds util/cjs-deps.js (its native dependencies would load while the snapshot is built)`);
  const inputs = ids.map((id) => {
    const st = fs.statSync(id);
    return [path.relative(root, id), st.mtimeMs, st.size];
  });
  const tmp = `${manifest}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, `${JSON.stringify({ bundle: path.relative(root, out), inputs })}\n`);
  fs.renameSync(tmp, manifest);
  return inputs.length;
}
