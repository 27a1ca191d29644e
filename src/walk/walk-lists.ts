/**
 * The entries one rank found in the walk, kept for the phases after it (create
 * directories, copy, links, directory metadata). In memory for now; the scale issue moves
 * them to the rank's SQLite store past a memory budget, behind this same interface.
 */
import { depthOf } from '../copy/paths.js';
import type { Entry } from './entry.js';

export class WalkLists {
  readonly dirs: Entry[] = [];
  readonly files: Entry[] = [];
  /** symlinks, FIFOs, sockets, devices */
  readonly others: Entry[] = [];

  add(e: Entry): void {
    if (e.k === 'd') this.dirs.push(e);
    else if (e.k === 'f') this.files.push(e);
    else this.others.push(e);
  }

  /** Deepest directory level held here (-1 when none). */
  maxDirDepth(): number {
    let m = -1;
    for (const d of this.dirs) m = Math.max(m, depthOf(d.p));
    return m;
  }

  dirsAtDepth(depth: number): Entry[] {
    return this.dirs.filter((d) => depthOf(d.p) === depth);
  }
}
