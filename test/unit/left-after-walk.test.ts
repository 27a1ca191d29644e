/**
 * Which phases a copy skips after its walk (phases/walk-phase.ts leftAfterWalk): decided
 * from the walk's totals alone, so that every rank skips the same ones.
 */
import { describe, expect, it } from 'vitest';
import { leftAfterWalk } from '../../src/phases/walk-phase.js';

const plainJob = { overlapped: true, resume: false, listed: false, reported: false };

describe('leftAfterWalk', () => {
  it('a walk that copied every file and made every directory leaves nothing', () => {
    expect(leftAfterWalk({ files: 20, handed: 20, dirs: 3 }, plainJob)).toEqual({ dirs: false, copy: false, links: false });
    expect(leftAfterWalk({}, plainJob)).toEqual({ dirs: false, copy: false, links: false });
  });

  it('files not handed on, symlinks or specials leave the copy phase', () => {
    expect(leftAfterWalk({ files: 21, handed: 20 }, plainJob).copy).toBe(true);
    expect(leftAfterWalk({ files: 20, handed: 20, symlinks: 1 }, plainJob).copy).toBe(true);
    expect(leftAfterWalk({ files: 20, handed: 20, specials: 1 }, plainJob).copy).toBe(true);
  });

  it('files --update found up to date count as done', () => {
    const update = { overlapped: false, resume: false, listed: false, reported: false };
    expect(leftAfterWalk({ files: 20, upToDate: 20, dirs: 2, dstDirs: 1 }, update)).toEqual({ dirs: true, copy: false, links: false });
    expect(leftAfterWalk({ files: 20, upToDate: 19, dirs: 2 }, update).copy).toBe(true);
    // every directory there already: no mkdir, unless --report must say so for each
    expect(leftAfterWalk({ files: 20, upToDate: 20, dirs: 2, dstDirs: 2 }, update)).toEqual({ dirs: false, copy: false, links: false });
    expect(leftAfterWalk({ files: 20, upToDate: 20, dirs: 2, dstDirs: 2 }, { ...update, reported: true }).dirs).toBe(true);
  });

  it('a hard-linked file leaves the link plan; a walk that did not make the directories leaves mkdir', () => {
    expect(leftAfterWalk({ files: 2, linked: 2 }, plainJob).links).toBe(true);
    expect(leftAfterWalk({ files: 2, handed: 2, dirs: 3 }, { ...plainJob, overlapped: false }).dirs).toBe(true);
  });

  it('a resume or a list of files keeps every phase, whatever the counts', () => {
    expect(leftAfterWalk({}, { ...plainJob, resume: true })).toEqual({ dirs: true, copy: true, links: true });
    expect(leftAfterWalk({}, { ...plainJob, listed: true })).toEqual({ dirs: true, copy: true, links: true });
  });
});
