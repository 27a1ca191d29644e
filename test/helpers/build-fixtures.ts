/**
 * vitest global setup: build the test programs (test/fixtures/*.ts) into dist-test/ when
 * they are missing or older than their sources, so `npx vitest run FILE` after a plain
 * `npx tsc -p tsconfig.json` finds them. They are compiled against dist/'s declarations.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../..', import.meta.url));

export default function setup(): void {
  const src = join(root, 'test/fixtures');
  const out = join(root, 'dist-test/fixtures');
  const stale = readdirSync(src).filter((n) => n.endsWith('.ts')).some((n) => {
    const js = join(out, n.replace(/\.ts$/, '.js'));
    return !existsSync(js) || statSync(js).mtimeMs < statSync(join(src, n)).mtimeMs;
  });
  if (!stale) return;
  const tsc = join(root, 'node_modules/.bin/tsc');
  try {
    execFileSync(tsc, ['-p', join(src, 'tsconfig.json')], { stdio: 'inherit' });
  } catch {
    // Only the tests that run a fixture need it: they fail on their own, naming it.
    process.stderr.write('could not build test/fixtures (is dist/ built? npx tsc -p tsconfig.json)\n');
  }
}
