/**
 * How a rank records small files finished by one native copy batch: one row for the whole
 * batch (up to a few hundred files), not one per file.
 *
 * The row holds what the batch was given and what it gave back, as they are: the relative
 * paths packed NUL-terminated, the batch's numbers (COPY_NUMS per file: root, size, mode,
 * uid, gid, atime s/ns, mtime s/ns, blocks), its status (COPY_STATUS per file: -errno, op, hole
 * bytes) and its content digests (16 bytes per file, or none without hashing), arrays in
 * host byte order. Recording a batch therefore costs no work per file. Whoever needs
 * `done` rows (a resume's merge, --verify) expands them with doneRows.
 */
import { COPY_NUMS, COPY_STATUS, OP_UP_TO_DATE } from '../native/loader.js';
import { doublesOf, unpackNames } from './listing.js';

/**
 * The `done` rows (root, path, off, len, size, mtime_s, mtime_ns, digest) of one batch row:
 * every file copied (with its digest when hashed) or found up to date (no digest: not read).
 */
export function* doneRows(rels: Buffer, numsBlob: Buffer, statusBlob: Buffer, digests: Buffer | null): Generator<[number, Buffer, number, number, number, number, number, string | null]> {
  const paths = unpackNames(rels);
  const nums = doublesOf(numsBlob);
  const status = doublesOf(statusBlob);
  if (nums.length !== paths.length * COPY_NUMS || status.length !== paths.length * COPY_STATUS || (digests && digests.length !== paths.length * 16)) {
    throw new Error(`a done batch of ${paths.length} files has ${nums.length} numbers, ${status.length} status fields`);
  }
  for (let i = 0; i < paths.length; i++) {
    if (status[i * COPY_STATUS] !== 0) continue;
    const o = i * COPY_NUMS;
    const read = status[i * COPY_STATUS + 1] !== OP_UP_TO_DATE;
    const digest = digests && read ? digests.toString('hex', 16 * i, 16 * i + 16) : null;
    yield [nums[o]!, paths[i]!, -1, nums[o + 1]!, nums[o + 1]!, nums[o + 7]!, nums[o + 8]!, digest];
  }
}
