#!/usr/bin/env node
// Enough libuv threads to keep many small-file syscalls and large reads in flight at
// once; must be set before the first asynchronous file operation.
process.env.UV_THREADPOOL_SIZE ??= '16';
// Keep the heap near what is live. fcp's live heap is small and bounded (--mem-limit), but
// it allocates a lot per file, and V8 by default lets the heap grow to ~4x the live size
// between full collections: on 300,000 files a rank's heap reached 130 MB for ~15 MB
// live. This flag makes V8 grow it less (it is read when V8 sizes the heap, so setting it
// here, before any work, takes effect). Peak RSS at -np 2 on 300,000 files: 267 -> 155
// MiB, time within noise (see README, bench/scale.mjs).
(await import('node:v8')).setFlagsFromString('--optimize-for-size');
// msgpackr's optional native string extractor speeds up decoding long strings; fcp's
// messages are numbers and short Buffers, and loading it (with its libc detection) costs
// each rank several milliseconds of startup.
process.env.MSGPACKR_NATIVE_ACCELERATION_DISABLED ??= 'true';
// With -np N and no launcher, start the other ranks before loading the rest of fcp, so
// their startup overlaps ours.
const { spawnEarly } = await import('../dist/launch/self-launch.js');
const { detectLauncher } = await import('../dist/launch/env.js');
if (!process.env.FCP_NO_EARLY) spawnEarly(process.argv.slice(2), detectLauncher().kind === 'none');
await import('../dist/cli/fcp.js');
