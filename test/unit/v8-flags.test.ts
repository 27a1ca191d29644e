import { execFileSync, spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';
import { repoRoot } from '../helpers/run.js';

// bin/v8-flags.js is CommonJS (bin/package.json), loaded by bin/preamble.js before anything else.
const { v8FlagsFor } = createRequire(import.meta.url)('../../bin/v8-flags.js') as {
  v8FlagsFor: (v8Version: string) => string[];
};

/** The flag names the V8 of `node` lists in --v8-options ("  --name (description)"). */
function v8FlagNames(node: string): Set<string> {
  const out = execFileSync(node, ['--v8-options'], { encoding: 'utf8' });
  return new Set([...out.matchAll(/^ {2}(--[a-z0-9-]+) \(/gm)].map((m) => m[1]!));
}

const nameOf = (flag: string) => flag.split('=')[0]!;

describe('V8 flags set at startup', () => {
  it('the V8 running the tests has a checked row, and knows every flag in it', () => {
    const flags = v8FlagsFor(process.versions.v8);
    // An empty list means a V8 nobody checked yet: fcp runs, but without bounded heap
    // growth and later tiering. Check `node --v8-options`, measure, and add a row.
    expect(flags, `no flags for V8 ${process.versions.v8} in bin/v8-flags.js`).not.toEqual([]);
    const known = v8FlagNames(process.execPath);
    expect(known.size).toBeGreaterThan(100);
    for (const flag of flags) expect(known.has(nameOf(flag)), `V8 ${process.versions.v8} lacks ${flag}`).toBe(true);
  });

  it('keeps the heap small and delays TurboFan x15 on every checked V8, by its own flag name', () => {
    expect(v8FlagsFor('11.3.244.8-node.38')).toEqual(['--optimize-for-size', '--interrupt-budget=1000000']);
    for (const v of ['12.4.254.21-node.57', '13.6.233.17-node.63', '14.6.202.34-node.40']) {
      expect(v8FlagsFor(v)).toEqual(['--optimize-for-size', '--invocation-count-for-turbofan=45000']);
    }
  });

  it('sets nothing on a V8 it does not know (no "unrecognized flag" line per rank)', () => {
    expect(v8FlagsFor('10.2.154.26-node.26')).toEqual([]);
    expect(v8FlagsFor('99.0.0')).toEqual([]);
    expect(v8FlagsFor('')).toEqual([]);
  });

  it('setting them on the running V8 prints nothing', () => {
    // In a child process, so the flags do not change this test worker's V8. Before the
    // table, Node 22 and 24 printed "Error: unrecognized flag --interrupt-budget=1000000" here.
    const script = `require(${JSON.stringify(`${repoRoot}/bin/v8-flags.js`)}).applyV8Flags(); process.stdout.write('ok');`;
    const r = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8' });
    expect(r.status).toBe(0);
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe('ok');
  });
});
