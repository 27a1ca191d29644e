/**
 * The CommonJS dependencies, loaded with require() rather than `import`.
 *
 * Why: importing a CommonJS package from an ES module makes Node scan its source for
 * named exports and wrap it, and every rank pays that before the job can start. Measured
 * here (node -e, min of 5 cold starts, import vs require): commander 16.5 vs 10.6 ms,
 * zeromq 12.3 vs 7.2, better-sqlite3 11.0 vs 4.9, msgpackr 12.8 vs 9.1: ~20 ms of every
 * rank's startup, which is on the critical path of a small copy.
 *
 * Types still come from the packages' own declarations (type-only imports load nothing).
 */
import { createRequire } from 'node:module';
import type * as CommanderNS from 'commander';
import type * as ZmqNS from 'zeromq';
import type * as MsgpackrNS from 'msgpackr';
import type BetterSqlite3 from 'better-sqlite3';

const require = createRequire(import.meta.url);

const commander = require('commander') as typeof CommanderNS;
export const Command = commander.Command;
export type Command = CommanderNS.Command;
export const Option = commander.Option;
export type Option = CommanderNS.Option;
export const CommanderError = commander.CommanderError;
export type CommanderError = CommanderNS.CommanderError;
export const InvalidArgumentError = commander.InvalidArgumentError;
export type InvalidArgumentError = CommanderNS.InvalidArgumentError;

const zmq = require('zeromq') as typeof ZmqNS;
export const Push = zmq.Push;
export type Push = ZmqNS.Push;
export const Pull = zmq.Pull;
export type Pull = ZmqNS.Pull;
export const Router = zmq.Router;
export type Router = ZmqNS.Router;
export const ZmqContext = zmq.Context;
export type ZmqContext = ZmqNS.Context;

export const Packr = (require('msgpackr') as typeof MsgpackrNS).Packr;
export type Packr = MsgpackrNS.Packr;

let sqlite: typeof BetterSqlite3 | null = null;

/**
 * better-sqlite3's Database constructor (its types: `import type Database from 'better-sqlite3'`),
 * required on the first `new Sqlite(...)`: a rank needs it only once it opens a store
 * (checkpoint, spill, tables), after it has connected, so its load (~8 ms of CPU a rank)
 * is off the path every rank takes to the start of the job.
 */
export const Sqlite = function Sqlite(...args: ConstructorParameters<typeof BetterSqlite3>) {
  sqlite ??= require('better-sqlite3') as typeof BetterSqlite3;
  return new sqlite(...args);
} as unknown as typeof BetterSqlite3;
