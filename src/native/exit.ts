/**
 * Leaving the process when a thread may be blocked in a hung file system.
 *
 * process.exit runs Node's teardown, in which libuv joins its thread-pool threads: a
 * thread blocked in a read a hung server never answers holds the process forever (seen:
 * SIGTERM said "progress is saved", and the rank stayed until the file system came back).
 * With the addon, exit listeners run (self-launch kills its ranks there), then _exit.
 */
import type { NativeAddon } from './loader.js';

export function hardExit(native: NativeAddon | null): (code: number) => never {
  return (code) => {
    if (!native) process.exit(code);
    process.exitCode = code;
    try {
      process.emit('exit', code);
    } catch {
      // leaving anyway
    }
    return native.exitNow(code);
  };
}
