/**
 * fcp SRC... DST: parse (fcp-command.ts) and check (fcp-validate.ts) the command line,
 * run the job (fcp-run.ts), and turn what ends it into the exit status, here only.
 *
 * Exit codes: 0 everything copied; 1 some entries failed (each named on stderr);
 * 2 usage (nothing written); 3 the job was aborted (a rank died, a host was lost);
 * 4 stopped by a signal (SIGINT/SIGTERM), --time-limit or --stall-timeout; 5 --delete
 * refused by a guard (nothing deleted); 6 the destination is full. Job-level failures are
 * FcpErrors; their codes map to these statuses in one table (fcp-error.cts).
 */
import { EXIT, UsageError } from '../errors.js';
import { detectLauncher } from '../launch/env.cjs';
import type { CopySummary } from '../jobs/copy-job.js';
import { copyJson } from './copy-json.js';
import { JsonOnExit, ending } from './json-on-exit.js';
import { parseOrExit } from './options.js';
import { buildCommand, type FcpOptions } from './fcp-command.js';
import { validate, type FcpPlan } from './fcp-validate.js';
import { runFcp } from './fcp-run.js';
import { buildingSnapshot } from '../util/snapshot.js';
import { runToolMain, warmUpTool } from './tool-main.js';

async function main(argv: string[]): Promise<void> {
  const launch = detectLauncher();
  const speaks = launch.rank === 0; // only one rank prints usage errors
  const cmd = buildCommand();
  const json = argv.includes('--json') && !argv.includes('--dry-run');
  parseOrExit(cmd, argv, speaks, (reason) => (json ? copyJson({}, ending(EXIT.USAGE, reason)) : null));
  const opts = cmd.opts<FcpOptions>();
  // --json: rank 0 prints a summary on every exit from here on, however the job ends.
  const jsonOut = opts.json && speaks && !opts.dryRun ? new JsonOnExit<CopySummary>(copyJson) : null;
  let plan: FcpPlan;
  try {
    plan = validate(opts, cmd, argv, speaks);
  } catch (err) {
    // A usage error: one line (from rank 0), exit 2, nothing written.
    if (!(err instanceof UsageError)) throw err;
    if (speaks) process.stderr.write(`fcp: ${err.message}\n`);
    jsonOut?.ended(err.message);
    process.exit(err.exitStatus);
  }
  if (opts.jobId) process.env.FCP_JOB_ID = opts.jobId;
  await runFcp(opts, plan, argv, jsonOut);
}

/** Run fcp with the command line `argv` (the arguments after the script). */
export function runCli(argv: string[]): void {
  runToolMain('fcp', () => main(argv));
}

/** Run once while a startup snapshot is built (see warmUpTool), never in a job. */
export function warmUp(): void {
  warmUpTool(buildCommand(), ['/src', '/dst']);
}

// The program runs when loaded; a startup snapshot (bin/snapshot.js) is built from these
// modules without running them, and its main function calls runCli in each rank it starts.
if (!buildingSnapshot()) runCli(process.argv.slice(2));
