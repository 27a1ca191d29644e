/**
 * Connections from outside the job are refused before they can send a single frame.
 *
 * ZeroMQ asks a ZAP handler (RFC 27: a ROUTER socket bound to inproc://zeromq.zap.01 in
 * the socket's context) about every incoming connection of a socket that has a ZAP
 * domain, passing the peer's IP address. With the NULL mechanism (no CURVE keys to hand
 * out: the job's secret in every message is the authentication) that address is all
 * there is to decide on, and it is enough: once the rendezvous is done the job's
 * addresses are known, and each rank connects from the address it published (see
 * zmq-transport.ts), so anything else is not the job. zeromq.js 6 has no ZAP handler of
 * its own but offers the pieces (`zapDomain`, `zapEnforceDomain`, Router, inproc); the
 * alternative, dropping messages "from an unknown sender", is not possible: a PULL
 * socket does not say which connection a message came from.
 *
 * Requests that arrive before the job's addresses are known wait for them (a peer may
 * connect as soon as it has read our endpoint). A rank bound to a wildcard address
 * (`--bind 0.0.0.0`) cannot tell its peers' addresses: then every address is admitted,
 * and the secret alone keeps strangers out.
 */
import { Router, type ZmqContext } from '../util/cjs-deps.js';

export const ZAP_DOMAIN = 'fcp';
const ZAP_ENDPOINT = 'inproc://zeromq.zap.01';

/** The IP address in an endpoint or a ZAP request, in one spelling ("::ffff:1.2.3.4" is "1.2.3.4"). */
export function normalizeAddress(a: string): string {
  const bare = a.replace(/^\[/, '').replace(/\]$/, '').toLowerCase();
  return bare.startsWith('::ffff:') && bare.includes('.') ? bare.slice(7) : bare;
}

/** The host part of tcp://HOST:PORT (brackets of IPv6 removed). */
export function endpointHost(endpoint: string): string {
  const m = /^tcp:\/\/(\[[^\]]+\]|[^:/]+):\d+$/.exec(endpoint);
  if (!m) throw new Error(`not a tcp endpoint: ${endpoint}`);
  return normalizeAddress(m[1]!);
}

export const isWildcard = (host: string) => host === '0.0.0.0' || host === '::' || host === '*';

export class AddressGate {
  /** Connections refused because they came from an address outside the job. */
  refused = 0;
  private allowed: Set<string> | 'any' | null = null;
  private known: () => void = () => {};
  private readonly ready = new Promise<void>((r) => (this.known = r));

  private constructor(private readonly router: Router) {}

  /** Start answering ZAP requests of sockets in `context` (bind before the socket that uses it). */
  static async start(context: ZmqContext): Promise<AddressGate> {
    const router = new Router({ context, linger: 0 });
    await router.bind(ZAP_ENDPOINT);
    const gate = new AddressGate(router);
    void gate.serve();
    return gate;
  }

  /** The job's addresses (from its endpoints); 'any' when some rank listens on a wildcard. */
  admit(endpoints: string[]): void {
    const hosts = endpoints.map(endpointHost);
    this.allowed = hosts.some(isWildcard) ? 'any' : new Set(hosts);
    this.known();
  }

  private async serve(): Promise<void> {
    try {
      for await (const frames of this.router) {
        // [routing id, empty, version, request id, domain, address, identity, mechanism, credentials...]
        if (frames.length < 8) continue;
        const [id, empty, version, requestId, , address] = frames as Buffer[];
        if (this.allowed === null) await this.ready;
        const allowed = this.allowed as Set<string> | 'any' | null;
        if (allowed === null) break; // closed before the job's addresses were known
        const ok = allowed === 'any' || allowed.has(normalizeAddress(address!.toString('latin1')));
        if (!ok) this.refused++;
        await this.router.send([id!, empty!, version!, requestId!, ok ? '200' : '400', ok ? 'OK' : 'not an address of this job', '', '']);
      }
    } catch {
      // closed (the transport is shutting down)
    }
  }

  close(): void {
    this.known(); // release a request still waiting
    this.router.close();
  }
}
