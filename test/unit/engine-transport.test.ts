/**
 * The in-process transport keeps the promises transport.ts makes (and no more): every
 * message delivered once and validated; per sender-receiver order kept in 'fifo' mode
 * (as ZeroMQ), not in 'any' mode, where the engine's tests make use of the freedom.
 */
import { describe, expect, it } from 'vitest';
import { InProcessNetwork } from '../../src/engine/in-process-transport.js';
import type { Message } from '../../src/transport/messages.js';
import { SimScheduler } from '../helpers/sim-scheduler.js';

function deliverAll(order: 'fifo' | 'any', seed: number): number[][] {
  const sim = new SimScheduler(seed);
  const net = new InProcessNetwork(3, { scheduler: sim, order, delayMs: () => sim.rand(20) });
  const got: number[][] = [[], [], []];
  for (let r = 0; r < 3; r++) net.transport(r).onMessage(({ from, msg }) => {
    expect(from).toBe(0);
    if (msg.type === 'progress') got[r]!.push(msg.seq);
  });
  for (let seq = 0; seq < 200; seq++) net.transport(0).send(1 + (seq % 2), { type: 'progress', phase: 1, seq, counters: {} });
  while (sim.step()) { /* deliver everything */ }
  expect(net.inFlight).toBe(0);
  return got;
}

describe('in-process transport', () => {
  it("'fifo': each pair's messages arrive once each, in the order sent, whatever the delays", () => {
    const got = deliverAll('fifo', 1);
    expect(got[1]).toEqual(Array.from({ length: 100 }, (_, k) => 2 * k));
    expect(got[2]).toEqual(Array.from({ length: 100 }, (_, k) => 2 * k + 1));
  });

  it("'any': every message arrives once, and some overtake others", () => {
    const got = deliverAll('any', 1);
    expect([...got[1]!].sort((a, b) => a - b)).toEqual(Array.from({ length: 100 }, (_, k) => 2 * k));
    expect(got[1]).not.toEqual([...got[1]!].sort((a, b) => a - b));
  });

  it('a malformed message is refused at the sender, as the wire would drop it; a closed rank receives nothing', () => {
    const sim = new SimScheduler(2);
    const net = new InProcessNetwork(2, { scheduler: sim });
    expect(() => net.transport(0).send(1, { type: 'token', phase: -1 } as unknown as Message)).toThrow(/malformed 'token'/);
    expect(() => net.transport(0).send(2, { type: 'hb' })).toThrow(/no rank 2/);
    let n = 0;
    net.transport(1).onMessage(() => void n++);
    net.transport(0).send(1, { type: 'hb' });
    net.transport(1).close();
    net.transport(0).send(1, { type: 'hb' });
    while (sim.step()) { /* deliver */ }
    expect(n).toBe(0);
  });
});
