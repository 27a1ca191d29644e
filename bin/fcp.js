#!/usr/bin/env node
// Enough libuv threads to keep many small-file syscalls and large reads in flight at
// once; must be set before the first asynchronous file operation.
process.env.UV_THREADPOOL_SIZE ??= '16';
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
