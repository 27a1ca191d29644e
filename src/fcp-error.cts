/**
 * Job-level failures: the FcpError base class, its stable codes, and the one table that
 * maps each code to the tools' exit status. Import it through errors.ts; it is a module of
 * its own, in CommonJS with no dependencies, only because the self-launch path
 * (launch/peers.cts) is CommonJS and must throw FcpErrors too (see bin/preamble.js).
 *
 * Per-entry failures are not FcpErrors: they stay data (path, operation, errno; see
 * EntryErrors in errors.ts), counted and folded into exit status 1.
 */

/** Exit statuses shared by every tool (fcp --help and fsum --help list them). */
export const EXIT = { OK: 0, ENTRIES_FAILED: 1, USAGE: 2, ABORTED: 3, INTERRUPTED: 4, DELETE_REFUSED: 5, DESTINATION_FULL: 6 } as const;
export type ExitStatus = (typeof EXIT)[keyof typeof EXIT];

/**
 * Every code an FcpError may carry, with the exit status it ends the job with. Codes are
 * stable: scripts and tests may match on them; add new ones, never rename.
 */
export const EXIT_OF_CODE = {
  /** bad command line or arguments; nothing was written */
  USAGE: EXIT.USAGE,
  /** the checkpoint cannot be used by this job (another job's, locked, --files-from mismatch) */
  CHECKPOINT_REFUSED: EXIT.USAGE,
  /** the checkpoint was written by a version of fcp with another checkpoint schema */
  CHECKPOINT_VERSION: EXIT.USAGE,
  /** a rendezvous directory fcp may not trust (owner, mode, a symlink) */
  RENDEZVOUS_REFUSED: EXIT.USAGE,
  /** ranks that never showed up at startup */
  RENDEZVOUS_TIMEOUT: EXIT.ABORTED,
  /** a sum file that fsum cannot read (bad header, a malformed line) */
  SUM_FILE_INVALID: EXIT.USAGE,
  /** a wire message larger than the transport carries */
  MESSAGE_TOO_LARGE: EXIT.ABORTED,
  /** the job was aborted: a rank died or became unreachable */
  ABORTED: EXIT.ABORTED,
  /** stopped as on SIGTERM: a signal, --time-limit, --stall-timeout */
  STOPPED: EXIT.INTERRUPTED,
  /** --delete refused by a guard */
  DELETE_REFUSED: EXIT.DELETE_REFUSED,
  /** the destination is full (ENOSPC, EDQUOT) */
  DEST_FULL: EXIT.DESTINATION_FULL,
} as const satisfies Record<string, ExitStatus>;

export type FcpErrorCode = keyof typeof EXIT_OF_CODE;

export class FcpError extends Error {
  constructor(readonly code: FcpErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }

  /** The exit status this failure ends the job with. */
  get exitStatus(): ExitStatus {
    return EXIT_OF_CODE[this.code];
  }
}

/**
 * The code of a job that ends with this exit status (an abort carries only the status
 * across ranks: see Runtime.abort).
 */
export function codeOfExit(status: number): FcpErrorCode {
  switch (status) {
    case EXIT.USAGE: return 'USAGE';
    case EXIT.INTERRUPTED: return 'STOPPED';
    case EXIT.DELETE_REFUSED: return 'DELETE_REFUSED';
    case EXIT.DESTINATION_FULL: return 'DEST_FULL';
    default: return 'ABORTED';
  }
}
