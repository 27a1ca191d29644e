import { chmodSync, mkdirSync, mkdtempSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';

// bin/snapshot.js is CommonJS (bin/package.json): rank 0 asks it how to start its ranks.
const { snapshotArgs, blobName } = createRequire(import.meta.url)('../../bin/snapshot.js') as {
  snapshotArgs: (tool: string, root: string, env: NodeJS.ProcessEnv, execArgv?: string[]) => string[];
  blobName: (tool: string, root: string) => string | null;
};

describe('rank 0 starts its ranks from a snapshot blob only while it matches the bundle and is private', () => {
  let root: string;
  let cache: string;
  let blob: string;
  const env = () => ({ XDG_CACHE_HOME: cache });
  const inputs = ['dist/cli/t.js', 'dist/a/one.js'];

  const writeManifest = () => {
    const rows = inputs.map((p) => [p, statSync(join(root, p)).mtimeMs, statSync(join(root, p)).size]);
    writeFileSync(join(root, 'dist/cli/t.snapshot.json'), JSON.stringify({ bundle: 'dist/cli/t.snapshot.cjs', inputs: rows }));
  };

  beforeEach(() => {
    root = mkdtempSync(join(tmpdir(), 'startup-snapshot-'));
    for (const d of ['bin', 'dist/cli', 'dist/a']) mkdirSync(join(root, d), { recursive: true });
    for (const p of inputs) writeFileSync(join(root, p), `// ${p}\n`);
    writeFileSync(join(root, 'dist/cli/t.snapshot.cjs'), '// all of them\n');
    writeManifest();
    cache = join(root, 'cache');
    mkdirSync(join(cache, 'fcp', 'snapshot'), { recursive: true, mode: 0o700 });
    chmodSync(join(cache, 'fcp', 'snapshot'), 0o700);
    blob = join(cache, 'fcp', 'snapshot', blobName('t', root)!);
    writeFileSync(blob, 'blob', { mode: 0o600 });
  });
  afterEach(() => rmSync(root, { recursive: true, force: true }));

  it('names the blob built for this node, install and bundle', () => {
    expect(snapshotArgs('t', root, env(), [])).toEqual(['--snapshot-blob', blob]);
    expect(blobName('t', root)).toMatch(/^t-[0-9a-f]{12}-[0-9a-f]{20}\.blob$/);
  });

  it('none once a module of the bundle changed (a plain tsc), or the manifest is gone: the blob would be stale', () => {
    const p = join(root, 'dist/a/one.js');
    const later = new Date(statSync(p).mtimeMs + 5000);
    utimesSync(p, later, later);
    expect(snapshotArgs('t', root, env(), [])).toEqual([]);
    writeManifest(); // a rebuilt bundle: a new key, and this blob is not its blob
    expect(snapshotArgs('t', root, env(), [])).toEqual([]);
    rmSync(join(root, 'dist/cli/t.snapshot.json'));
    expect(snapshotArgs('t', root, env(), [])).toEqual([]);
  });

  it('none when others could write the blob or its directory, or when turned off', () => {
    chmodSync(blob, 0o620);
    expect(snapshotArgs('t', root, env(), [])).toEqual([]);
    chmodSync(blob, 0o600);
    chmodSync(join(cache, 'fcp', 'snapshot'), 0o750);
    expect(snapshotArgs('t', root, env(), [])).toEqual([]);
    chmodSync(join(cache, 'fcp', 'snapshot'), 0o700);
    expect(snapshotArgs('t', root, { ...env(), FCP_NO_SNAPSHOT: '1' }, [])).toEqual([]);
    expect(snapshotArgs('t', root, env(), [])).toEqual(['--snapshot-blob', blob]);
  });

  it('none when rank 0 runs with node options (its ranks get them, and Node refuses the blob under other V8 flags)', () => {
    for (const a of ['--max-old-space-size=512', '--stack-size=2000', '--require=x', '--import=x', '--inspect', '--cpu-prof'])
      expect(snapshotArgs('t', root, env(), [a]), a).toEqual([]);
    expect(snapshotArgs('t', root, { ...env(), NODE_OPTIONS: '--max-old-space-size=512' }, [])).toEqual([]);
    expect(snapshotArgs('t', root, { ...env(), NODE_OPTIONS: ' ' }, [])).toEqual(['--snapshot-blob', blob]);
  });
});
