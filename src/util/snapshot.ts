/**
 * Whether this process is building a V8 startup snapshot (`node --build-snapshot`, run by
 * bin/snapshot.js over the tool's one-file snapshot bundle), not running a tool.
 *
 * While it builds, the program's modules are evaluated once and their heap is saved for
 * the ranks that rank 0 starts: so nothing evaluated at load may load a native addon
 * (zeromq, better-sqlite3, fcp's own), open a handle, or keep a value of the process it
 * will run in (its environment, pid, host). The few modules that would are asked here.
 */
import { startupSnapshot } from 'node:v8';

// Node 20 answers 1 or 0, later ones true or false.
export const buildingSnapshot = (): boolean => Boolean(startupSnapshot?.isBuildingSnapshot?.());
