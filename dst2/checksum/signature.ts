/**
 * Collective helpers for 128-bit digests (the runtime's counters are doubles and cannot
 * hold them): digests travel as 32-hex-digit strings.
 */
import type { Collectives } from '../engine/collectives.js';
import { addDigests, fromHex, isHex128, toHex } from './hasher.js';

const isHexList = (n: number) => (x: unknown): x is string[] => Array.isArray(x) && x.length === n && x.every(isHex128);

/** Element-wise sum mod 2^128 of every rank's digests; every rank gets the result. */
export async function allreduceDigests(coll: Collectives, local: bigint[]): Promise<bigint[]> {
  const sum = await coll.allreduce<string[]>(
    local.map(toHex),
    (a, b) => a.map((x, i) => toHex(addDigests(fromHex(x), fromHex(b[i]!)))),
    isHexList(local.length),
  );
  return sum.map(fromHex);
}
