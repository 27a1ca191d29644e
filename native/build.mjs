#!/usr/bin/env node
// Builds the optional fcp_native addon (run by `npm install`).
// Never fails the install: on any problem it prints one warning line and exits 0;
// fcp then runs on pure Node (see src/native/loader.ts).
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const nativeDir = path.dirname(fileURLToPath(import.meta.url));
const root = path.dirname(nativeDir);
const addonPath = path.join(nativeDir, 'build', 'Release', 'fcp_native.node');
const logPath = path.join(nativeDir, 'build', 'build.log');
const TIMEOUT_MS = 10 * 60 * 1000;

function warn(reason) {
  console.warn(
    `fcp: native addon not built (${reason}); falling back to pure Node: holes via zero detection, no xattrs, times to ~1 µs`,
  );
  process.exit(0);
}

function rel(p) {
  const r = path.relative(process.cwd(), p);
  return r && !r.startsWith('..') ? r : p;
}

/** node-gyp's CLI script: the project's (or a hoisted) copy first, then npm's bundled one. */
function findNodeGyp() {
  const candidates = [];
  try {
    candidates.push(createRequire(path.join(root, 'package.json')).resolve('node-gyp/bin/node-gyp.js'));
  } catch {
    /* not installed as a dependency */
  }
  if (process.env.npm_config_node_gyp) candidates.push(process.env.npm_config_node_gyp);
  const prefix = path.dirname(path.dirname(process.execPath));
  candidates.push(
    path.join(prefix, 'lib', 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'),
    path.join(path.dirname(process.execPath), 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'),
  );
  return candidates.find((c) => c && fs.existsSync(c)) ?? null;
}

/**
 * node-gyp downloads headers unless told where they are. npm passes its `nodedir`
 * config as npm_config_nodedir; when run by hand, use the headers installed next to
 * this node binary (e.g. /usr/include/node for /usr/bin/node) if their version matches.
 */
function localNodedir() {
  if (process.env.npm_config_nodedir) return null;
  const prefix = path.dirname(path.dirname(process.execPath));
  try {
    const h = fs.readFileSync(path.join(prefix, 'include', 'node', 'node_version.h'), 'utf8');
    const v = ['MAJOR', 'MINOR', 'PATCH'].map((k) => h.match(new RegExp(`#define NODE_${k}_VERSION (\\d+)`))?.[1]);
    return v.join('.') === process.versions.node ? prefix : null;
  } catch {
    return null;
  }
}

function main() {
  if (process.env.FCP_SKIP_NATIVE_BUILD === '1') warn('FCP_SKIP_NATIVE_BUILD=1');
  if (process.platform !== 'linux') warn(`platform ${process.platform} is not supported`);
  const nodeGyp = findNodeGyp();
  if (!nodeGyp) warn('node-gyp not found');

  const args = [nodeGyp, 'rebuild', '--jobs=max'];
  const nodedir = localNodedir();
  if (nodedir) args.push(`--nodedir=${nodedir}`);
  const started = Date.now();
  const r = spawnSync(process.execPath, args, {
    cwd: nativeDir,
    encoding: 'utf8',
    timeout: TIMEOUT_MS,
    maxBuffer: 64 * 1024 * 1024,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const log = `$ ${process.execPath} ${args.join(' ')}\n${r.stdout ?? ''}${r.stderr ?? ''}`;
  try {
    fs.mkdirSync(path.dirname(logPath), { recursive: true });
    fs.writeFileSync(logPath, log);
  } catch {
    /* best effort */
  }
  const where = `log in ${rel(logPath)}`;
  if (r.error) warn(`node-gyp failed to run: ${r.error.code ?? r.error.message}; ${where}`);
  if (r.status !== 0) warn(`node-gyp exited with ${r.status ?? r.signal}; ${where}`);
  if (!fs.existsSync(addonPath)) warn(`${rel(addonPath)} missing after build; ${where}`);

  // Make sure what we built actually loads in this node.
  try {
    const addon = createRequire(import.meta.url)(addonPath);
    if (typeof addon.copyFileRange !== 'function') throw new Error('unexpected exports');
  } catch (e) {
    warn(`built addon does not load: ${e instanceof Error ? e.message.split('\n')[0] : e}`);
  }
  console.log(`fcp: native addon built in ${((Date.now() - started) / 1000).toFixed(1)} s (${rel(addonPath)})`);
}

try {
  main();
} catch (e) {
  warn(e instanceof Error ? e.message.split('\n')[0] : String(e));
}
