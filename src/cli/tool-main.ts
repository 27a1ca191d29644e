/** What fcp and fsum do alike around their main: run it, and warm it up for a startup snapshot. */
import type { Command } from '../util/cjs-deps.js';
import { JobAborted } from '../engine/runtime.js';
import { EXIT, internalErrorLine } from '../errors.js';
import { warmUpCodec } from '../transport/codec.js';
import { normalizeArgv } from './options.js';

/** Run a tool's `main`; an error that escapes it is one line and exit 3. */
export function runToolMain(tool: string, main: () => Promise<void>): void {
  main().catch((err) => {
    // The job is aborting (its reason is printed, its hooks run, then it exits with its code):
    // a collective that was waiting only learned it.
    if (err instanceof JobAborted) return;
    process.stderr.write(internalErrorLine(tool, err));
    process.exit(EXIT.ABORTED);
  });
}

/**
 * Run once while a startup snapshot is built (bin/snapshot-bundle.mjs), never in a job: the
 * tool's command-line parser on `sample` and the wire codec, so that the snapshot holds their
 * compiled code and a rank started from it does not compile them again.
 */
export function warmUpTool(cmd: Command, sample: string[]): void {
  cmd.parse(normalizeArgv(sample), { from: 'user' });
  warmUpCodec();
}
