import { mkdirSync, mkdtempSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';

// bin/entry.js is CommonJS (bin/package.json), used by bin/preamble.js to pick what to import.
const { chooseEntry } = createRequire(import.meta.url)('../../bin/entry.js') as {
  chooseEntry: (entry: string, binDir?: string) => string;
};

describe('a tool runs its bundle only while every module in it is unchanged', () => {
  let root: string;
  let bin: string;
  const ENTRY = '../dist/cli/t.js';
  const BUNDLE = '../dist/cli/t.bundle.cjs';
  const inputs = ['dist/cli/t.js', 'dist/a/one.js', 'dist/b/two.js'];

  const writeManifest = (extra: Record<string, unknown> = {}) => {
    const rows = inputs.map((p) => {
      const st = statSync(join(root, p));
      return [p, st.mtimeMs, st.size];
    });
    writeFileSync(join(root, 'dist/cli/t.bundle.json'), JSON.stringify({ bundle: 'dist/cli/t.bundle.cjs', inputs: rows, ...extra }));
  };

  beforeEach(() => {
    root = mkdtempSync(join(tmpdir(), 'startup-entry-'));
    bin = join(root, 'bin');
    for (const d of ['bin', 'dist/cli', 'dist/a', 'dist/b']) mkdirSync(join(root, d), { recursive: true });
    for (const p of inputs) writeFileSync(join(root, p), `// ${p}\n`);
    writeFileSync(join(root, 'dist/cli/t.bundle.cjs'), '// all of them\n');
    writeManifest();
  });
  afterEach(() => rmSync(root, { recursive: true, force: true }));

  it('takes the bundle when its manifest matches every module', () => {
    expect(chooseEntry(ENTRY, bin)).toBe(BUNDLE);
  });

  it('takes the modules when one was rewritten since (a plain tsc), even with the same size', () => {
    const p = join(root, 'dist/a/one.js');
    const later = new Date(statSync(p).mtimeMs + 5000);
    utimesSync(p, later, later);
    expect(chooseEntry(ENTRY, bin)).toBe(ENTRY);
  });

  it('takes the modules when one changed size, or is gone', () => {
    writeFileSync(join(root, 'dist/b/two.js'), '// two, longer now\n');
    expect(chooseEntry(ENTRY, bin)).toBe(ENTRY);
    writeManifest();
    expect(chooseEntry(ENTRY, bin)).toBe(BUNDLE);
    rmSync(join(root, 'dist/b/two.js'));
    expect(chooseEntry(ENTRY, bin)).toBe(ENTRY);
  });

  it('takes the modules without a manifest, with a broken one, or when the bundle is missing', () => {
    rmSync(join(root, 'dist/cli/t.bundle.json'));
    expect(chooseEntry(ENTRY, bin)).toBe(ENTRY);
    writeFileSync(join(root, 'dist/cli/t.bundle.json'), '{"bundle": "dist/cli/t.bundle.cjs", "inputs": [');
    expect(chooseEntry(ENTRY, bin)).toBe(ENTRY);
    writeManifest({ inputs: [['dist/a/one.js']] });
    expect(chooseEntry(ENTRY, bin)).toBe(ENTRY);
    writeManifest();
    rmSync(join(root, 'dist/cli/t.bundle.cjs'));
    expect(chooseEntry(ENTRY, bin)).toBe(ENTRY);
  });

  it('never runs a file the manifest names other than the bundle beside the entry', () => {
    writeFileSync(join(root, 'dist/cli/other.js'), '// not ours\n');
    writeManifest({ bundle: 'dist/cli/other.js' });
    expect(chooseEntry(ENTRY, bin)).toBe(ENTRY);
  });
});
