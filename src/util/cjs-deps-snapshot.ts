/**
 * cjs-deps.ts for a startup snapshot (bin/snapshot.js swaps it in when it bundles a tool):
 * the same exports, but
 *  - commander and msgpackr are imported, so the bundler puts their code in the snapshot
 *    (while it is built only Node's own modules can be required), already evaluated;
 *  - zeromq and better-sqlite3 hold native addons, which a snapshot cannot: zeromq is
 *    required by loadRuntimeDeps(), which the snapshot's main function calls first thing
 *    in every rank started from it, and better-sqlite3 on first use, as in cjs-deps.ts.
 * msgpackr's optional native extractor stays unloaded (MSGPACKR_NATIVE_ACCELERATION_DISABLED
 * is set while the snapshot is built, see bin/preamble.js for why).
 */
import { createRequire } from 'node:module';
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { Packr } from 'msgpackr';
import type * as ZmqNS from 'zeromq';
import type BetterSqlite3 from 'better-sqlite3';
import type * as Deps from './cjs-deps.js';

export { Command, CommanderError, InvalidArgumentError, Option, Packr };

// Live bindings: the bundle's modules read them after loadRuntimeDeps() has set them.
export let Push: typeof Deps.Push;
export let Pull: typeof Deps.Pull;
export let Router: typeof Deps.Router;
export let ZmqContext: typeof Deps.ZmqContext;

let require: NodeJS.Require | null = null;

/** Load the native dependencies (zeromq now; better-sqlite3 on first use): once, in the rank, before its program runs. */
export function loadRuntimeDeps(): void {
  // import.meta.url is the snapshot bundle's path, fixed when the snapshot was built (its key holds the path).
  require ??= createRequire(import.meta.url);
  const zmq = require('zeromq') as typeof ZmqNS;
  Push = zmq.Push;
  Pull = zmq.Pull;
  Router = zmq.Router;
  ZmqContext = zmq.Context;
}

let sqlite: typeof BetterSqlite3 | null = null;

/** better-sqlite3's Database constructor, required on the first `new Sqlite(...)` (see cjs-deps.ts). */
export const Sqlite = function Sqlite(...args: ConstructorParameters<typeof BetterSqlite3>) {
  if (!require) throw new Error('loadRuntimeDeps() was not called');
  sqlite ??= require('better-sqlite3') as typeof BetterSqlite3;
  return new sqlite(...args);
} as unknown as typeof BetterSqlite3;
