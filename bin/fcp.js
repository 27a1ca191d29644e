#!/usr/bin/env node
// Enough libuv threads to keep many small-file syscalls and large reads in flight at
// once; must be set before the first asynchronous file operation.
process.env.UV_THREADPOOL_SIZE ??= '16';
await import('../dist/cli/fcp.js');
