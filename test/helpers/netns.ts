/**
 * A small private network for the tests: N network namespaces ("hosts") fcpt-a, fcpt-b,
 * ... each with its own loopback and one veth interface `fcpt0` on 10.231.77.0/24, all
 * plugged into a bridge that lives in a switch namespace of its own (fcpt-sw), so the
 * machine's own network (root namespace, its routes and firewall) is never touched.
 *
 *   fcpt-a: lo, fcpt0 10.231.77.11 ──veth── port-a ┐
 *   fcpt-b: lo, fcpt0 10.231.77.12 ──veth── port-b ├─ br0 (in fcpt-sw)
 *   fcpt-c: lo, fcpt0 10.231.77.13 ──veth── port-c ┘
 *
 * Processes started with `ip netns exec fcpt-X` share the file system (ip netns exec
 * makes a mount namespace only to remount /sys), so /dev/shm scratch dirs and the
 * rendezvous directory are common to all "hosts", as a cluster file system would be.
 *
 * `cut(i)` takes the switch port of host i down: its packets are dropped on the floor,
 * as when a node's cable or switch port dies (the host itself notices nothing at once).
 *
 * One lab at a time per machine (a lock in /run), and names are fixed, so setup first
 * deletes what an earlier, crashed run left behind.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, readlinkSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { buildBridgedLab, ip, netnsProbe } from '../../bench/netns-lab.mjs';
import { isRoot, sleep, start, type RunResult, pidAlive } from './run.js';

export const SUBNET = '10.231.77';
export const IFACE = 'fcpt0';
const SWITCH = 'fcpt-sw';
const LOCK = '/run/fcpt-netns.lock';
const LETTERS = 'abcdefgh';

export interface Host { index: number; ns: string; addr: string; port: string }

export interface NetLab {
  hosts: Host[];
  /** argv that runs `cmd args` inside host i's namespace. */
  wrap(i: number, cmd: string, args: string[]): [string, string[]];
  /** Run a command in host i's namespace and wait for it. */
  exec(i: number, cmd: string, args: string[], timeoutMs?: number): Promise<RunResult>;
  /** Take host i's switch port down (packets to and from it are lost). */
  cut(i: number): void;
  teardown(): void;
}

/** Why this machine cannot build the lab, or null when it can. */
export function netnsUnavailable(): string | null {
  if (!isRoot) return 'network namespaces need root; this test run is not root';
  if (spawnSync('sh', ['-c', 'command -v ip && command -v ss'], { stdio: 'ignore' }).status !== 0) return 'ip/ss not installed (apt-get install iproute2; .ci/run does this)';
  return netnsProbe(`fcpt-probe-${process.pid}`);
}

async function lock(): Promise<void> {
  const deadline = Date.now() + 300_000;
  for (;;) {
    try {
      mkdirSync(LOCK);
      writeFileSync(`${LOCK}/pid`, String(process.pid));
      return;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    let holder = 0;
    try {
      holder = Number(readFileSync(`${LOCK}/pid`, 'utf8'));
    } catch { /* not written yet (or its writer crashed right after mkdir) */ }
    let age = 0;
    try {
      age = Date.now() - statSync(LOCK).mtimeMs;
    } catch { /* released meanwhile */ }
    // The lock of a run that is gone is taken over; a live holder is waited for.
    if ((holder > 0 && !pidAlive(holder)) || (holder === 0 && age > 10_000)) rmSync(LOCK, { recursive: true, force: true });
    else if (Date.now() > deadline) throw new Error(`the netns lab is still held by pid ${holder} (${LOCK})`);
    else await sleep(250);
  }
}

function names(n: number): string[] {
  return [...LETTERS.slice(0, n)].map((l) => `fcpt-${l}`);
}

/** Delete the lab's namespaces (and with them their veths and the bridge); quiet if absent. */
function removeAll(): void {
  const existing = ip(['netns', 'list'], false).out;
  for (const ns of [...names(LETTERS.length), SWITCH]) {
    if (new RegExp(`^${ns}( |$)`, 'm').test(existing)) ip(['netns', 'del', ns], false);
  }
}

export async function setupNetLab(n = 3): Promise<NetLab> {
  if (n < 2 || n > LETTERS.length) throw new Error(`2..${LETTERS.length} hosts`);
  await lock();
  try {
    removeAll(); // leftovers of a crashed run
    const hosts: Host[] = names(n).map((ns, i) => ({ index: i, ns, addr: `${SUBNET}.${11 + i}`, port: `port-${LETTERS[i]}` }));
    buildBridgedLab(SWITCH, hosts, IFACE);
    const lab: NetLab = {
      hosts,
      wrap: (i, cmd, args) => ['ip', ['netns', 'exec', hosts[i]!.ns, cmd, ...args]],
      async exec(i, cmd, args, timeoutMs = 30_000) {
        const [c, a] = lab.wrap(i, cmd, args);
        const { child, done } = start(c, a);
        const t = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
        const r = await done;
        clearTimeout(t);
        return r;
      },
      cut(i) {
        ip(['-n', SWITCH, 'link', 'set', hosts[i]!.port, 'down']);
      },
      teardown() {
        removeAll();
        rmSync(LOCK, { recursive: true, force: true });
      },
    };
    return lab;
  } catch (err) {
    removeAll();
    rmSync(LOCK, { recursive: true, force: true });
    throw err;
  }
}

export interface SocketRow { state: string; local: string; peer: string; pids: number[] }

/** TCP sockets in host i's namespace (`ss -tanpH`), with the pids owning them. */
export async function sockets(lab: NetLab, i: number): Promise<SocketRow[]> {
  const r = await lab.exec(i, 'ss', ['-tanpH']);
  if (r.code !== 0) throw new Error(`ss failed in ${lab.hosts[i]!.ns}: ${r.stderr}`);
  return r.stdout.trim().split('\n').filter(Boolean).map((line) => {
    const f = line.trim().split(/\s+/);
    const pids = [...line.matchAll(/pid=(\d+)/g)].map((m) => Number(m[1]));
    return { state: f[0]!, local: f[3]!, peer: f[4]!, pids };
  });
}

const TCP_STATES: Record<string, string> = { '01': 'ESTAB', '02': 'SYN-SENT', '03': 'SYN-RECV', '06': 'TIME-WAIT', '08': 'CLOSE-WAIT', '0A': 'LISTEN' };

function hexAddr(h: string): string {
  const [a, p] = h.split(':') as [string, string];
  const port = parseInt(p, 16);
  // IPv4: one little-endian word. IPv6: four; only v4-mapped ones matter here.
  const word = a.length === 8 ? a : a.slice(24);
  const bytes = [0, 2, 4, 6].map((k) => parseInt(word.slice(k, k + 2), 16)).reverse();
  return `${bytes.join('.')}:${port}`;
}

/**
 * The TCP sockets process `pid` holds, read straight from /proc (its network namespace's
 * /proc/PID/net/tcp, matched against the socket inodes among its fds): cheap enough to
 * sample every few milliseconds, unlike spawning `ss` in the namespace.
 */
export function procSockets(pid: number): SocketRow[] {
  const inodes = new Set<string>();
  let tables = '';
  try {
    for (const fd of readdirSync(`/proc/${pid}/fd`)) {
      try {
        const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
        if (m) inodes.add(m[1]!);
      } catch { /* closed meanwhile */ }
    }
    tables = readFileSync(`/proc/${pid}/net/tcp`, 'utf8') + readFileSync(`/proc/${pid}/net/tcp6`, 'utf8');
  } catch {
    return []; // the process is gone
  }
  const rows: SocketRow[] = [];
  for (const line of tables.split('\n')) {
    const f = line.trim().split(/\s+/);
    if (f.length < 10 || !/^\d+:$/.test(f[0]!) || !inodes.has(f[9]!)) continue;
    rows.push({ state: TCP_STATES[f[3]!] ?? f[3]!, local: hexAddr(f[1]!), peer: hexAddr(f[2]!), pids: [pid] });
  }
  return rows;
}
