/**
 * Job-level errors: one FcpError base with stable codes, and one table from code to exit
 * status. Per-entry errors are not FcpErrors (they stay data: path, operation, errno).
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { EXIT, EXIT_OF_CODE, FcpError, UsageError, codeOfExit, exitStatusOf, systemError } from '../../src/errors.js';
import { CheckpointRefused } from '../../src/checkpoint/job-checkpoint.js';
import { JobAborted } from '../../src/engine/runtime.js';
import { PrivateDirRefused } from '../../src/launch/private-dir.js';
import { RendezvousTimeout } from '../../src/launch/peers.cjs';
import { MessageTooLarge } from '../../src/transport/codec.js';
import { SumFileError } from '../../src/checksum/sumfile.js';
import { repoRoot } from '../helpers/run.js';

describe('FcpError', () => {
  it('every job-level error class is an FcpError with its stable code and exit status', () => {
    const cases: [FcpError, string, number][] = [
      [new UsageError('bad'), 'USAGE', 2],
      [new CheckpointRefused('another job'), 'CHECKPOINT_REFUSED', 2],
      [new CheckpointRefused('old schema', 'CHECKPOINT_VERSION'), 'CHECKPOINT_VERSION', 2],
      [new PrivateDirRefused('/x', 'it is a symbolic link'), 'RENDEZVOUS_REFUSED', 2],
      [new RendezvousTimeout([1, 2], 5000, '/tmp/j'), 'RENDEZVOUS_TIMEOUT', 3],
      [new MessageTooLarge('work', 2 ** 30), 'MESSAGE_TOO_LARGE', 3],
      [new SumFileError('line 1: bad'), 'SUM_FILE_INVALID', 2],
      [new JobAborted('rank 1 died', EXIT.ABORTED), 'ABORTED', 3],
      [new JobAborted('stopped by SIGTERM', EXIT.INTERRUPTED), 'STOPPED', 4],
      [new JobAborted('destination full', EXIT.DESTINATION_FULL), 'DEST_FULL', 6],
    ];
    for (const [err, code, status] of cases) {
      expect(err).toBeInstanceOf(FcpError);
      expect(err).toBeInstanceOf(Error);
      expect(err.code, err.constructor.name).toBe(code);
      expect(err.exitStatus, code).toBe(status);
      expect(exitStatusOf(err), code).toBe(status);
      expect(err.name).toBe(err.constructor.name);
    }
  });

  it('keeps its cause', () => {
    const cause = systemError(-13, 'open');
    const err = new UsageError("cannot read --exclude-from 'x': Permission denied (EACCES)", { cause });
    expect(err.cause).toBe(cause);
    expect(err.message).toMatch(/^cannot read/);
  });

  it('codes are stable: the table holds exactly these, each with its exit status', () => {
    expect(EXIT_OF_CODE).toEqual({
      USAGE: 2, CHECKPOINT_REFUSED: 2, CHECKPOINT_VERSION: 2, RENDEZVOUS_REFUSED: 2, RENDEZVOUS_TIMEOUT: 3,
      SUM_FILE_INVALID: 2, MESSAGE_TOO_LARGE: 3, ABORTED: 3, STOPPED: 4, DELETE_REFUSED: 5, DEST_FULL: 6,
    });
    for (const status of Object.values(EXIT)) if (status > 1) expect(EXIT_OF_CODE[codeOfExit(status)]).toBe(status);
  });

  it('anything else (an internal error, a per-entry errno error) ends the job as an abort', () => {
    expect(exitStatusOf(new Error('oops'))).toBe(EXIT.ABORTED);
    expect(exitStatusOf(systemError(-2, 'open'))).toBe(EXIT.ABORTED);
    expect(systemError(-2, 'open')).not.toBeInstanceOf(FcpError);
  });

  it('no error class under src/ extends Error directly, except the per-entry ones (data, not job failures)', () => {
    const perEntry = new Set(['Shrank']); // a file shrank while fsum read it: reported per entry
    const found: string[] = [];
    const walk = (dir: string): void => {
      for (const name of readdirSync(dir)) {
        const p = join(dir, name);
        if (statSync(p).isDirectory()) walk(p);
        else if (/\.c?ts$/.test(name)) {
          for (const m of readFileSync(p, 'utf8').matchAll(/class (\w+) extends Error\b/g)) {
            if (!(p.endsWith('fcp-error.cts') && m[1] === 'FcpError') && !perEntry.has(m[1]!)) found.push(`${p}: ${m[1]}`);
          }
        }
      }
    };
    walk(join(repoRoot, 'src'));
    expect(found).toEqual([]);
  });
});
