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
 */
import { createHash, randomBytes } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import { hostname, networkInterfaces } from 'node:os';
import { join } from 'node:path';
import { SECRET_BYTES } from '../transport/secret.cjs';
import { RendezvousTimeout, type PeerInfo } from './peers.cjs';

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

export interface RendezvousResult { secret: Buffer; peers: PeerInfo[]; jobDir: string }

const secretTag = (secret: Buffer) => createHash('sha256').update(secret).digest('hex').slice(0, 16);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function writeAtomic(path: string, data: string | Buffer, mode: number): Promise<void> {
  const tmp = `${path}.${process.pid}.tmp`;
  await fsp.writeFile(tmp, data, { mode });
  await fsp.chmod(tmp, mode); // the umask may have narrowed or widened nothing, but be explicit
  await fsp.rename(tmp, path);
}

async function readSecret(jobDir: string): Promise<Buffer | null> {
  try {
    const b = await fsp.readFile(join(jobDir, 'secret'));
    return b.length === SECRET_BYTES ? b : null;
  } catch {
    return null;
  }
}

export function jobDirFor(dir: string, jobKey: string): string {
  return join(dir, `.fcp-rendezvous-${jobKey.replace(/[^A-Za-z0-9._-]/g, '_')}`);
}

export async function rendezvous(opts: RendezvousOptions): Promise<RendezvousResult> {
  const jobDir = jobDirFor(opts.dir, opts.jobKey);
  await fsp.mkdir(jobDir, { recursive: true, mode: 0o700 });
  const deadline = Date.now() + opts.timeoutMs;

  let secret = opts.secret ?? null;
  if (!secret && opts.rank === 0) {
    secret = randomBytes(SECRET_BYTES);
    // Remove what an older job with the same key left behind, then publish the new secret.
    for (const name of await fsp.readdir(jobDir)) if (name.startsWith('rank-')) await fsp.rm(join(jobDir, name), { force: true });
    await writeAtomic(join(jobDir, 'secret'), secret, 0o600);
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
        await writeAtomic(join(jobDir, `rank-${opts.rank}`), JSON.stringify({ ...self, tag }), 0o600);
        published = tag;
      }
      for (let r = 0; r < opts.size; r++) {
        if (peers.has(r)) continue;
        try {
          const info = JSON.parse(await fsp.readFile(join(jobDir, `rank-${r}`), 'utf8')) as PeerInfo & { tag: string };
          if (info.tag === tag && info.rank === r && typeof info.endpoint === 'string' && info.endpoint.startsWith('tcp://')) {
            peers.set(r, { rank: r, endpoint: info.endpoint, host: String(info.host), pid: Number(info.pid) });
          }
        } catch {
          // not there yet (or being renamed into place)
        }
      }
      if (peers.size === opts.size) break;
    }
    if (Date.now() > deadline) {
      const missing: number[] = [];
      for (let r = 0; r < opts.size; r++) if (!peers.has(r)) missing.push(r);
      throw new RendezvousTimeout(missing, opts.timeoutMs, jobDir);
    }
    await sleep(delay);
    delay = Math.min(250, delay * 2);
  }
  return { secret: secret!, peers: [...peers.values()].sort((a, b) => a.rank - b.rank), jobDir };
}

/** Remove the job's rendezvous folder once every rank has read it (rank 0, after the first barrier). */
export async function removeJobDir(jobDir: string): Promise<void> {
  await fsp.rm(jobDir, { recursive: true, force: true });
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
