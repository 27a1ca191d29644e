/**
 * Start a Runtime on the real transport: bind a ZeroMQ socket, exchange endpoints with
 * the other ranks (rendezvous directory or the self-launch channel), connect, and pass
 * a first barrier. The runtime itself knows only the Transport interface.
 */
import { EXIT, Runtime, type RuntimeOptions } from '../engine/runtime.js';
import { ZmqTransport } from '../transport/zmq-transport.js';
import type { LaunchInfo } from './env.cjs';
import type { PeerInfo } from './peers.cjs';
import { chooseBindAddress, removeJobDir, rendezvous } from './rendezvous.js';

export interface RuntimeConfig extends RuntimeOptions {
  launch: LaunchInfo;
  /** Where ranks publish their endpoints (a directory every rank can reach). */
  rendezvousDir: string;
  /** Address or interface name to bind; default: loopback when all ranks are local, else the first non-internal IPv4. */
  bind?: string;
  /** Secret handed over by the launcher (self-launch). */
  secret?: Buffer;
  startupTimeoutMs?: number;
  /** Test hook: delay work messages by a random 0..N ms. */
  delayWorkMs?: number;
  /** Test hook: abort messages (and requests for one) leave this many ms late. */
  delayAbortMs?: number;
  /**
   * Exchange endpoints some other way than the rendezvous directory (self-launch uses the
   * IPC channel between rank 0 and its children: no polling of files).
   */
  exchange?: (endpoint: string) => Promise<PeerInfo[]>;
}

/** Bind, rendezvous, connect and pass a first barrier; every rank returns with all peers reachable. */
export async function startRuntime(cfg: RuntimeConfig): Promise<Runtime> {
  const { rank, size } = cfg.launch;
  if (size === 1) {
    const rt = new Runtime(cfg, rank, size, null);
    rt.handleSignals();
    return rt;
  }
  const bindAddress = chooseBindAddress(cfg.bind, cfg.launch.allLocal);
  const { transport, endpoint } = await ZmqTransport.bind({ rank, size, bindAddress, delayWorkMs: cfg.delayWorkMs, delayAbortMs: cfg.delayAbortMs });
  const rt = new Runtime(cfg, rank, size, transport);
  rt.endpoint = endpoint;
  rt.handleSignals();
  const startupTimeoutMs = cfg.startupTimeoutMs ?? 60_000;
  let rdv;
  try {
    rdv = cfg.exchange && cfg.secret
      ? { secret: cfg.secret, peers: await cfg.exchange(endpoint), jobDir: null }
      : await rendezvous({
        dir: cfg.rendezvousDir, jobKey: cfg.launch.jobKey ?? 'default', rank, size, endpoint,
        timeoutMs: startupTimeoutMs, secret: cfg.secret,
      });
  } catch (err) {
    transport.close(0);
    throw err;
  }
  rt.setPeers(rdv.peers);
  transport.start(rdv.peers.map((p) => p.endpoint), rdv.secret);
  // Everyone must hear everyone's first message before work starts: a barrier through
  // the tree proves the connections work, within the startup timeout.
  const timer = setTimeout(() => {
    void rt.abort(`could not reach every rank over TCP within ${Math.round(startupTimeoutMs / 1000)} s (bound to ${bindAddress}; see --bind)`, EXIT.ABORTED);
  }, startupTimeoutMs);
  await rt.collectives.barrier();
  clearTimeout(timer);
  if (rank === 0 && rdv.jobDir) await removeJobDir(rdv.jobDir).catch(() => {});
  else rdv.jobDir?.close();
  rt.startHeartbeats();
  return rt;
}
