/**
 * A job for testing the engine's routed exchange (engine/exchange.ts) alone (no files).
 *
 * Rank r streams counts[r] records [r, seq, payload] to destinations drawn from a hash of
 * (r, seq) (or all to the last rank with --to-last); each receiver checks that a record
 * came from the rank it names, was meant for it, carries its payload intact, and arrived
 * once; and that no sender put more than a round's worth in one round. Rank 0 sums the
 * checks and compares with what every rank can compute up front.
 *
 * usage: node dist/testing/exchange-job.js [--np N] [--counts c0,c1,...] [--round R]
 *          [--to-last] [--json]
 */
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { EXIT } from '../engine/runtime.js';
import { exchange } from '../engine/exchange.js';
import { endJob, startJob } from '../launch/job.js';

type Rec = [src: number, seq: number, payload: Buffer];

function idHash(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 16777619) >>> 0;
  return h;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      np: { type: 'string', default: '1' },
      counts: { type: 'string', default: '1000' },
      round: { type: 'string' },
      'to-last': { type: 'boolean', default: false },
      json: { type: 'boolean', default: false },
    },
  });
  const job = await startJob({ tool: 'exchange', np: Number(values.np), besidePath: join(tmpdir(), 'exchange') });
  const { rt } = job;
  const counts = values.counts!.split(',').map(Number);
  const countOf = (r: number) => counts[r] ?? 0;
  const round = values.round ? Number(values.round) : undefined;
  const destOf = (src: number, seq: number) => (values['to-last'] ? rt.size - 1 : idHash(`${src}/${seq}`) % rt.size);
  const payload = (src: number, seq: number) => Buffer.from(`${src}/${seq}/${'x'.repeat(seq % 7)}`);

  function* stream(): Generator<[number, Rec]> {
    for (let seq = 0; seq < countOf(rt.rank); seq++) yield [destOf(rt.rank, seq), [rt.rank, seq, payload(rt.rank, seq)]];
  }
  const isRec = (x: unknown): x is Rec =>
    Array.isArray(x) && x.length === 3 && Number.isInteger(x[0]) && Number.isInteger(x[1]) && (Buffer.isBuffer(x[2]) || x[2] instanceof Uint8Array);

  const seen = new Set<string>();
  const c = { received: 0, hash: 0, misrouted: 0, duplicates: 0, corrupt: 0, oversized: 0 };
  const stats = await exchange(rt.collectives, stream(), isRec, async (from, recs) => {
    if (round !== undefined && recs.length > round) c.oversized++;
    for (const [src, seq, p] of recs) {
      const id = `${src}/${seq}`;
      c.received++;
      c.hash += idHash(id);
      if (src !== from || destOf(src, seq) !== rt.rank) c.misrouted++;
      if (!Buffer.from(p).equals(payload(src, seq))) c.corrupt++;
      if (seen.has(id)) c.duplicates++;
      seen.add(id);
    }
    // deliver may be asynchronous: the exchange waits for it
    await new Promise((r) => setImmediate(r));
  }, { roundSize: round });
  const total = await rt.allreduceCounters({ ...c, sent: stats.sent });
  const isNum = (x: unknown): x is number => typeof x === 'number';
  const rounds = await rt.collectives.allgather<number>(stats.rounds, isNum);
  if (rt.rank === 0) {
    let expected = 0;
    let expectedHash = 0;
    for (let r = 0; r < rt.size; r++) {
      for (let seq = 0; seq < countOf(r); seq++) {
        expected++;
        expectedHash += idHash(`${r}/${seq}`);
      }
    }
    const n = (k: keyof typeof c | 'sent') => total[k] ?? 0;
    const out = {
      received: n('received'), sent: n('sent'), hash: n('hash'), misrouted: n('misrouted'), duplicates: n('duplicates'),
      corrupt: n('corrupt'), oversized: n('oversized'), expected, expectedHash, rounds,
    };
    if (values.json) process.stdout.write(`${JSON.stringify(out)}\n`);
    else process.stdout.write(`${out.received}/${expected} records in ${rounds[0]} rounds\n`);
    const ok = out.received === expected && out.hash === expectedHash && out.misrouted === 0 && out.duplicates === 0 && out.corrupt === 0 && out.oversized === 0;
    await endJob(job, ok ? EXIT.OK : EXIT.ENTRIES_FAILED);
  }
  await endJob(job, EXIT.OK);
}

main().catch((err) => {
  process.stderr.write(`exchange: ${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(EXIT.ABORTED);
});
