/**
 * How many whole files go in one copy item (src/copy/plan.ts chooseBatchFiles): enough
 * items per rank that some still wait in a queue to be stolen while the ranks run their
 * first ones, without cutting large trees finer than BATCH_FILES.
 */
import { describe, expect, it } from 'vitest';
import { BATCHES_PER_RANK, BATCH_FILES, MIN_BATCH_FILES, batches, chooseBatchFiles } from '../../src/copy/plan.js';

const items = (files: number, ranks: number) => Math.ceil(files / chooseBatchFiles(files, ranks));

describe('chooseBatchFiles', () => {
  it('keeps BATCH_FILES when every rank gets enough batches of that size', () => {
    expect(chooseBatchFiles(20_000, 2)).toBe(BATCH_FILES);
    expect(chooseBatchFiles(1_000_000, 64)).toBe(BATCH_FILES);
    expect(chooseBatchFiles(BATCH_FILES * BATCHES_PER_RANK * 8, 8)).toBe(BATCH_FILES);
  });

  it('cuts few files per rank finer, into about BATCHES_PER_RANK batches per rank', () => {
    // 2,000 files on 4 nodes × 2 ranks (bench/cluster.mjs): 16 files a batch, 125 items, not 32.
    expect(chooseBatchFiles(2000, 8)).toBe(16);
    expect(items(2000, 8)).toBeGreaterThanOrEqual(8 * BATCHES_PER_RANK - 3);
    for (const ranks of [2, 4, 8, 16, 32]) {
      const size = chooseBatchFiles(3000, ranks);
      expect(size).toBeLessThanOrEqual(BATCH_FILES);
      if (size > MIN_BATCH_FILES && size < BATCH_FILES) expect(items(3000, ranks)).toBeGreaterThanOrEqual(ranks * BATCHES_PER_RANK - ranks);
    }
  });

  it('never goes below MIN_BATCH_FILES, nor fails on an empty tree or zero ranks', () => {
    expect(chooseBatchFiles(100, 64)).toBe(MIN_BATCH_FILES);
    expect(chooseBatchFiles(0, 8)).toBe(MIN_BATCH_FILES);
    expect(chooseBatchFiles(5000, 0)).toBe(BATCH_FILES);
  });

  it('is what batches() cuts the files into', () => {
    const files = Array.from({ length: 2000 }, (_, i) => i);
    const cut = [...batches(files, () => 1, chooseBatchFiles(files.length, 8))];
    expect(cut).toHaveLength(125);
    expect(cut.flat()).toEqual(files);
  });
});
