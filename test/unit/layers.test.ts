/**
 * The layers of src/, bottom first: a module may import from its own layer or a lower
 * one, never from a higher one. The test parses every import (static, `export ... from`,
 * dynamic) of every module in src/ and prints each edge that runs back up.
 */
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

const SRC = resolve(__dirname, '../../src');

/** Bottom first. A module belongs to the first layer one of whose prefixes its path (under src/) starts with. */
const LAYERS: { name: string; prefixes: string[] }[] = [
  // the leaf data model, and what every layer may use: errors, small utilities, the table of
  // numbers shared with the addon
  { name: 'model', prefixes: ['model/', 'errors.ts', 'fcp-error.cts', 'util/', 'native/constants.ts'] },
  // the addon's loader, the wire, how ranks find each other
  // (launch/job.ts and start-runtime.ts start a Runtime: they sit with the jobs, above the engine)
  { name: 'platform', prefixes: ['native/', 'transport/', 'launch/env.', 'launch/peers.', 'launch/private-dir.', 'launch/rendezvous.', 'launch/self-launch.'] },
  { name: 'engine', prefixes: ['engine/'] },
  // file system access beneath the roots, and services every tool uses
  { name: 'services', prefixes: ['io/', 'progress/', 'limits/', 'report/'] },
  { name: 'checkpoint', prefixes: ['checkpoint/'] },
  { name: 'walk', prefixes: ['walk/'] },
  { name: 'checksum', prefixes: ['checksum/'] },
  { name: 'copy', prefixes: ['copy/'] },
  { name: 'phases', prefixes: ['phases/', 'jobs/', 'launch/job.ts', 'launch/start-runtime.ts'] },
  { name: 'cli', prefixes: ['cli/'] },
];

function layerOf(rel: string): number {
  const i = LAYERS.findIndex((l) => l.prefixes.some((p) => rel.startsWith(p)));
  if (i < 0) throw new Error(`src/${rel} is in no layer: add it to LAYERS in test/unit/layers.test.ts`);
  return i;
}

function modules(dir: string): string[] {
  return readdirSync(dir).flatMap((n) => {
    const p = join(dir, n);
    if (statSync(p).isDirectory()) return modules(p);
    return /\.c?ts$/.test(n) && !n.endsWith('.d.ts') ? [p] : [];
  });
}

/** Relative specifiers of every import in a module's text (comments stripped first). */
export function importsOf(text: string): string[] {
  const code = text.replace(/\/\*[\s\S]*?\*\//g, '').replace(/^\s*\/\/.*$/gm, '');
  const specs: string[] = [];
  const patterns = [/\b(?:import|export)\s[^;'"]*?\bfrom\s*['"]([^'"]+)['"]/g, /\bimport\s*['"]([^'"]+)['"]/g, /\bimport\(\s*['"]([^'"]+)['"]\s*\)/g];
  for (const re of patterns) for (const m of code.matchAll(re)) specs.push(m[1]!);
  return specs.filter((s) => s.startsWith('.'));
}

function upwardEdges(): string[] {
  const bad: string[] = [];
  for (const file of modules(SRC)) {
    const from = relative(SRC, file);
    for (const spec of importsOf(readFileSync(file, 'utf8'))) {
      const to = relative(SRC, resolve(dirname(file), spec)).replace(/\.js$/, '.ts').replace(/\.cjs$/, '.cts');
      const a = layerOf(from);
      const b = layerOf(to);
      if (b > a) bad.push(`src/${from} (${LAYERS[a]!.name}) imports src/${to} (${LAYERS[b]!.name})`);
    }
  }
  return bad;
}

describe('layers of src/', () => {
  it('the parser finds static, re-exported, side-effect and dynamic imports, and none in comments', () => {
    const text = [
      "import { a } from '../x/a.js';",
      "import type {\n  B,\n} from './b.js';",
      "export { c } from '../c.js';",
      "import './side.js';",
      "const d = await import('../d.js');",
      "// import { e } from '../e.js';",
      "/* import { f } from '../f.js'; */",
      "import { g } from 'node:fs';",
    ].join('\n');
    expect(importsOf(text).sort()).toEqual(['../c.js', '../d.js', '../x/a.js', './b.js', './side.js']);
  });

  it('every module is in a layer, and no import runs back up the layers', () => {
    const bad = upwardEdges();
    expect(bad, `imports that run up the layers:\n  ${bad.join('\n  ')}`).toEqual([]);
  });
});
