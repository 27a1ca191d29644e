// The network-namespace plumbing shared by the lab networks of the tests
// (test/helpers/netns.ts) and of the cluster benchmark (bench/cluster-lab.mjs): hosts
// are namespaces, each with a veth plugged into a bridge in a switch namespace of its
// own, so the machine's own network is never touched. Plain JavaScript with no test
// dependency, so bench/ can use it without vitest and the tests import it from here.

import { spawnSync } from 'node:child_process';

/** Run `ip args`; with check, a failure throws with ip's own message. */
export function ip(args, check = true) {
  const r = spawnSync('ip', args, { encoding: 'utf8' });
  const out = `${r.stdout ?? ''}${r.stderr ?? ''}`;
  if (check && r.status !== 0) throw new Error(`ip ${args.join(' ')} failed (${r.status}): ${out.trim()}`);
  return { status: r.status, out };
}

/**
 * Why this machine cannot make a namespace with a veth pair in it, or null when it can.
 * Creating them is the only real test (a container may forbid either); the probe
 * namespace `name` is deleted again.
 */
export function netnsProbe(name) {
  const r = ip(['netns', 'add', name], false);
  if (r.status !== 0) return `cannot create a network namespace: ${r.out.trim()}`;
  const v = ip(['-n', name, 'link', 'add', 'p0', 'type', 'veth', 'peer', 'name', 'p1'], false);
  ip(['netns', 'del', name], false);
  if (v.status !== 0) return `cannot create a veth pair: ${v.out.trim()}`;
  return null;
}

/**
 * Make the switch namespace `sw` with a bridge br0, and each host's namespace with its
 * loopback up and interface `iface` at host.addr/24, whose veth peer host.port is a port
 * of br0. Throws at the first failure (the caller removes what was made).
 */
export function buildBridgedLab(sw, hosts, iface) {
  ip(['netns', 'add', sw]);
  ip(['-n', sw, 'link', 'set', 'lo', 'up']);
  ip(['-n', sw, 'link', 'add', 'br0', 'type', 'bridge']);
  ip(['-n', sw, 'link', 'set', 'br0', 'up']);
  for (const h of hosts) {
    ip(['netns', 'add', h.ns]);
    ip(['-n', h.ns, 'link', 'set', 'lo', 'up']);
    ip(['link', 'add', iface, 'netns', h.ns, 'type', 'veth', 'peer', 'name', h.port, 'netns', sw]);
    ip(['-n', h.ns, 'addr', 'add', `${h.addr}/24`, 'dev', iface]);
    ip(['-n', h.ns, 'link', 'set', iface, 'up']);
    ip(['-n', sw, 'link', 'set', h.port, 'master', 'br0']);
    ip(['-n', sw, 'link', 'set', h.port, 'up']);
  }
}
