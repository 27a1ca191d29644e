/**
 * `-np N` without a launcher: this process becomes rank 0 and starts N-1 local ranks
 * running the same command line. The job secret and a private rendezvous directory are
 * handed to them through the environment (readable only by the same user).
 *
 * Children never outlive the parent: each has an IPC channel to it and stops when that
 * channel closes (parent killed, even by SIGKILL). The parent watches its children: one
 * that dies by a signal or fails without telling the job aborts the job, naming it.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SECRET_BYTES } from '../transport/codec.js';

export interface LocalRanks {
  secret: Buffer;
  rendezvousDir: string;
  jobKey: string;
  children: ChildProcess[];
  /** Resolves with each child's exit code (128+signal for a signal) once all have exited. */
  exited: Promise<number[]>;
  cleanup(): void;
}

export type ChildDeath = (rank: number, pid: number, code: number | null, signal: NodeJS.Signals | null) => void;

export function spawnLocalRanks(np: number, onDeath: ChildDeath): LocalRanks {
  const secret = randomBytes(SECRET_BYTES);
  const rendezvousDir = mkdtempSync(join(tmpdir(), 'fcp-job-'));
  const jobKey = `local-${process.pid}-${randomBytes(4).toString('hex')}`;
  const children: ChildProcess[] = [];
  const exits: Promise<number>[] = [];
  for (let r = 1; r < np; r++) {
    const child = spawn(process.execPath, [...process.execArgv, process.argv[1]!, ...process.argv.slice(2)], {
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      env: {
        ...process.env,
        FCP_RANK: String(r),
        FCP_SIZE: String(np),
        FCP_JOB_ID: jobKey,
        FCP_SECRET: secret.toString('hex'),
        FCP_RENDEZVOUS: rendezvousDir,
        FCP_ALL_LOCAL: '1',
      },
    });
    children.push(child);
    exits.push(
      new Promise<number>((resolve) => {
        child.on('exit', (code, signal) => {
          if (signal || code !== 0) onDeath(r, child.pid ?? -1, code, signal);
          resolve(code ?? 128 + signalNumber(signal));
        });
        child.on('error', () => resolve(127));
      }),
    );
  }
  // If this process goes away in any way Node can see, take the children with it.
  process.on('exit', () => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  });
  return {
    secret,
    rendezvousDir,
    jobKey,
    children,
    exited: Promise.all(exits),
    cleanup: () => rmSync(rendezvousDir, { recursive: true, force: true }),
  };
}

function signalNumber(sig: NodeJS.Signals | null): number {
  const table: Record<string, number> = { SIGHUP: 1, SIGINT: 2, SIGKILL: 9, SIGSEGV: 11, SIGTERM: 15, SIGABRT: 6 };
  return sig ? table[sig] ?? 0 : 0;
}

/** In a self-launched child: stop when the parent's IPC channel closes. */
export function watchParent(onParentGone: () => void): void {
  if (!process.channel) return;
  process.on('disconnect', onParentGone);
  process.channel.unref();
}
