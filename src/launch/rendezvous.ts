/**
 * Rendezvous through a directory every rank can reach (a shared file system on a
 * cluster): each rank publishes its endpoint in a file; rank 0 reads them all and writes
 * the list, which the others read. Works across hosts, needs no MPI, and tolerates ranks
 * that start seconds apart.
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

/** The list rank 0 writes once every rank has published (see meet). */
const PEERS = 'peers';

/**
 * Every rank's endpoint from rank 0's list, or null while there is none of this job (its
 * tag), or it does not list each rank once with an endpoint, and this rank as it published.
 */
async function readPeers(dir: PrivateDir, tag: string, size: number, self: PeerInfo): Promise<PeerInfo[] | null> {
  const b = await dir.read(PEERS);
  if (!b) return null;
  try {
    const list = JSON.parse(b.toString('utf8')) as { tag?: unknown; peers?: unknown };
    if (list.tag !== tag || !Array.isArray(list.peers) || list.peers.length !== size) return null;
    const peers: PeerInfo[] = [];
    for (const [r, x] of (list.peers as unknown[]).entries()) {
      const p = x as Partial<PeerInfo>;
      if (typeof p !== 'object' || p === null || p.rank !== r || typeof p.endpoint !== 'string' || !p.endpoint.startsWith('tcp://')) return null;
      peers.push({ rank: r, endpoint: p.endpoint, host: String(p.host), pid: Number(p.pid) });
    }
    return peers[self.rank]!.endpoint === self.endpoint ? peers : null;
  } catch {
    return null; // being written: read again next round (files are renamed into place)
  }
}

/** Read the files of the ranks `peers` does not have yet into it. */
async function readMissing(dir: PrivateDir, tag: string, size: number, peers: Map<number, PeerInfo>): Promise<void> {
  for (let r = 0; r < size; r++) {
    if (peers.has(r)) continue;
    const p = await readPeer(dir, r, tag);
    if (p) peers.set(r, p);
  }
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

/**
 * Polls of the folder: the first after FIRST_POLL_MS, doubling to at most MAX_POLL_MS. Only
 * rank 0 reads the ranks' files (each poll, those still missing); the others each read one
 * file a poll, the list rank 0 writes once it has them all. So the folder sees about one
 * read per rank per poll however many ranks there are (every rank reading every other's
 * file made that N per rank), and a short poll costs little (it was 250 ms at most). On the
 * simulated cluster, 4 nodes: 12.44 charged requests per copied entry against 12.78.
 */
const FIRST_POLL_MS = 5;
const MAX_POLL_MS = 50;

async function meet(jobDir: PrivateDir, opts: RendezvousOptions): Promise<RendezvousResult> {
  const deadline = Date.now() + opts.timeoutMs;
  let secret = opts.secret ?? null;
  if (!secret && opts.rank === 0) {
    secret = randomBytes(SECRET_BYTES);
    // Remove what an older job with the same key left behind, then publish the new secret.
    for (const name of await jobDir.list()) if (name.startsWith('rank-') || name === PEERS) await jobDir.remove(name);
    await jobDir.write('secret', secret);
  }

  const self: PeerInfo = { rank: opts.rank, endpoint: opts.endpoint, host: hostname(), pid: process.pid };
  let published: string | null = null;
  const peers = new Map<number, PeerInfo>([[opts.rank, self]]);
  let delay = FIRST_POLL_MS;
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
      if (opts.rank === 0) {
        await readMissing(jobDir, tag, opts.size, peers);
        if (peers.size === opts.size) {
          const all = [...peers.values()].sort((a, b) => a.rank - b.rank);
          await jobDir.write(PEERS, JSON.stringify({ tag, peers: all }));
          return { secret, peers: all, jobDir };
        }
      } else {
        const all = await readPeers(jobDir, tag, opts.size, self);
        if (all) return { secret, peers: all, jobDir };
      }
    }
    if (Date.now() > deadline) {
      // Which ranks never published (rank 0 knows; the others look once, now).
      if (secret && opts.rank !== 0) await readMissing(jobDir, secretTag(secret), opts.size, peers);
      const missing: number[] = [];
      for (let r = 0; r < opts.size; r++) if (!peers.has(r)) missing.push(r);
      throw new RendezvousTimeout(missing, opts.timeoutMs, jobDir.path);
    }
    await sleep(delay);
    delay = Math.min(MAX_POLL_MS, delay * 2);
  }
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
