/**
 * Rendezvous through a directory every rank can reach (a shared file system on a
 * cluster, a private temp dir for `-np N`): each rank publishes its endpoint in a file,
 * and waits until it has read every other rank's. Works across hosts, needs no MPI,
 * and tolerates ranks that start seconds apart.
 *
 * The job secret is either given by the launcher's environment (self-launch) or created
 * by rank 0 and published as a 0600 file, so only the job's user (or root) can read it.
 * Each endpoint file carries a short hash of the secret, so files left by an older job
 * with the same key are recognised as stale and ignored.
 *
 * The job's folder is a PrivateDir (private-dir.ts): created 0700, and refused when it
 * exists but belongs to another user, is writable by group or others, or is a symlink.
 * Refusing (rather than falling back to a private name) because the ranks, possibly on
 * different hosts, must find the same folder without talking to each other: any name
 * they can compute, another user can compute and create first; only ownership tells.
 * Every file read from it is checked the same way, so the secret and the endpoints are
 * never taken from a file another user could have written.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import { hostname, networkInterfaces } from 'node:os';
import { join } from 'node:path';
import { SECRET_BYTES } from '../transport/secret.cjs';
import { RendezvousTimeout, type PeerInfo } from './peers.cjs';
import { PrivateDir } from './private-dir.js';

export { PrivateDirRefused } from './private-dir.js';

export interface RendezvousOptions {
  /** Directory that holds the per-job rendezvous folder. */
  dir: string;
  jobKey: string;
  rank: number;
  size: number;
  endpoint: string;
  timeoutMs: number;
  /** Secret handed over by the launcher (self-launch); otherwise rank 0 makes one. */
  secret?: Buffer;
}

export interface RendezvousResult { secret: Buffer; peers: PeerInfo[]; jobDir: PrivateDir }

const secretTag = (secret: Buffer) => createHash('sha256').update(secret).digest('hex').slice(0, 16);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function readSecret(dir: PrivateDir): Promise<Buffer | null> {
  const b = await dir.read('secret');
  return b && b.length === SECRET_BYTES ? b : null;
}

async function readPeer(dir: PrivateDir, r: number, tag: string): Promise<PeerInfo | null> {
  const b = await dir.read(`rank-${r}`);
  if (!b) return null;
  try {
    const info = JSON.parse(b.toString('utf8')) as PeerInfo & { tag: string };
    if (info.tag === tag && info.rank === r && typeof info.endpoint === 'string' && info.endpoint.startsWith('tcp://')) {
      return { rank: r, endpoint: info.endpoint, host: String(info.host), pid: Number(info.pid) };
    }
  } catch {
    // being written by an older fcp that did not rename into place: read again next round
  }
  return null;
}

export function jobDirFor(dir: string, jobKey: string): string {
  return join(dir, `.fcp-rendezvous-${jobKey.replace(/[^A-Za-z0-9._-]/g, '_')}`);
}

export async function rendezvous(opts: RendezvousOptions): Promise<RendezvousResult> {
  // The parent is the user's choice (--rendezvous, DST's parent): created if missing, as before.
  await mkdir(opts.dir, { recursive: true });
  const jobDir = PrivateDir.open(jobDirFor(opts.dir, opts.jobKey));
  try {
    return await meet(jobDir, opts);
  } catch (err) {
    jobDir.close();
    throw err;
  }
}

async function meet(jobDir: PrivateDir, opts: RendezvousOptions): Promise<RendezvousResult> {
  const deadline = Date.now() + opts.timeoutMs;
  let secret = opts.secret ?? null;
  if (!secret && opts.rank === 0) {
    secret = randomBytes(SECRET_BYTES);
    // Remove what an older job with the same key left behind, then publish the new secret.
    for (const name of await jobDir.list()) if (name.startsWith('rank-')) await jobDir.remove(name);
    await jobDir.write('secret', secret);
  }

  const self: PeerInfo = { rank: opts.rank, endpoint: opts.endpoint, host: hostname(), pid: process.pid };
  let published: string | null = null;
  const peers = new Map<number, PeerInfo>();
  let delay = 20;
  for (;;) {
    if (!opts.secret && opts.rank !== 0) {
      // Re-read every round: a file from an older job may have been replaced by rank 0 since.
      const s = await readSecret(jobDir);
      if (s) secret = s;
    }
    if (secret) {
      const tag = secretTag(secret);
      if (published !== tag) {
        await jobDir.write(`rank-${opts.rank}`, JSON.stringify({ ...self, tag }));
        published = tag;
      }
      for (let r = 0; r < opts.size; r++) {
        if (peers.has(r)) continue;
        const p = await readPeer(jobDir, r, tag);
        if (p) peers.set(r, p);
      }
      if (peers.size === opts.size) break;
    }
    if (Date.now() > deadline) {
      const missing: number[] = [];
      for (let r = 0; r < opts.size; r++) if (!peers.has(r)) missing.push(r);
      throw new RendezvousTimeout(missing, opts.timeoutMs, jobDir.path);
    }
    await sleep(delay);
    delay = Math.min(250, delay * 2);
  }
  return { secret: secret!, peers: [...peers.values()].sort((a, b) => a.rank - b.rank), jobDir };
}

/** Remove the job's rendezvous folder once every rank has read it (rank 0, after the first barrier). */
export async function removeJobDir(jobDir: PrivateDir): Promise<void> {
  await jobDir.removeAll();
}

/**
 * The address to bind: `--bind` (an address or an interface name), else loopback when
 * every rank is on this host, else the first non-internal IPv4 address.
 */
export function chooseBindAddress(bind: string | undefined, allLocal: boolean): string {
  const ifaces = networkInterfaces();
  if (bind) {
    const byName = ifaces[bind]?.find((a) => a.family === 'IPv4') ?? ifaces[bind]?.[0];
    return byName ? byName.address : bind;
  }
  if (allLocal) return '127.0.0.1';
  for (const list of Object.values(ifaces)) {
    for (const a of list ?? []) if (a.family === 'IPv4' && !a.internal) return a.address;
  }
  return '127.0.0.1';
}
