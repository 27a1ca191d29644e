/**
 * One table of the numbers shared by the addon and the TypeScript (native/src/constants.h):
 * the addon exports it as `constants`, loader.ts reads it from there, and the pure-Node
 * fallback's copy (src/native/constants.ts) must hold the same values.
 */
import { spawnSync } from 'node:child_process';
import { constants as fsConstants, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { FALLBACK_CONSTANTS } from '../../src/native/constants.js';
import { COPY_FLAGS, COPY_NUMS, COPY_OPS, COPY_OP_ON_SOURCE, COPY_STATUS, NATIVE_CONSTANTS, OP_REPLACED, OP_UP_TO_DATE, STAT_FIELDS, loadNative, nativeLoadError } from '../../src/native/loader.js';
import { O_LOV_DELAY_CREATE } from '../../src/copy/layout.js';
import { LEAF } from '../../src/checksum/hasher.js';
import { STAT_RECORD_FIELDS } from '../../src/model/entry.js';
import { systemError } from '../../src/errors.js';
import { repoRoot } from '../helpers/run.js';

const native = loadNative();

describe('shared constants', () => {
  it('the addon exports the table, frozen, and the fallback copy holds the same values', () => {
    expect(native, nativeLoadError() ?? '').not.toBeNull();
    expect(native!.constants).toEqual(FALLBACK_CONSTANTS);
    expect(Object.isFrozen(native!.constants)).toBe(true);
    expect(Object.isFrozen(native!.constants.ops)).toBe(true);
  });

  it('the TypeScript reads the addon\'s table', () => {
    expect(NATIVE_CONSTANTS).toBe(native!.constants);
    expect(COPY_FLAGS).toBe(native!.constants.copyFlags);
    expect([COPY_NUMS, COPY_STATUS, STAT_FIELDS, OP_UP_TO_DATE, OP_REPLACED, O_LOV_DELAY_CREATE])
      .toEqual([native!.constants.copyNums, native!.constants.copyStatus, native!.constants.statFields, native!.constants.ops.UP_TO_DATE, native!.constants.ops.REPLACED, native!.constants.oLovDelayCreate]);
  });

  it('without the addon, the fallback copy is used', () => {
    const r = spawnSync(process.execPath, ['--input-type=module', '-e',
      `const m = await import(${JSON.stringify(join(repoRoot, 'dist/native/loader.js'))}); console.log(JSON.stringify([m.loadNative() === null, m.NATIVE_CONSTANTS]))`],
      { env: { ...process.env, FCP_NO_NATIVE: '1' }, encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual([true, FALLBACK_CONSTANTS]);
  });

  it('agrees with the TypeScript\'s own definitions of the same numbers', () => {
    const k = NATIVE_CONSTANTS;
    expect(k.leafBytes).toBe(LEAF);
    expect(k.statFields).toBe(STAT_RECORD_FIELDS);
    expect(k.oLovDelayCreate & fsConstants.O_NOCTTY).toBe(fsConstants.O_NOCTTY); // O_NOCTTY | FASYNC
    expect(new Set(Object.values(k.ops)).size).toBe(Object.keys(k.ops).length);
    expect(Object.values(k.copyFlags).every((f) => f > 0 && (f & (f - 1)) === 0)).toBe(true);
    // every failing step has its verb, the source-side ones are named
    for (const op of ['OPEN_SRC', 'OPEN_DST', 'READ', 'WRITE', 'TRUNCATE', 'CHOWN', 'XATTR', 'CHMOD', 'UTIMES', 'CLOSE', 'CHANGED'] as const) {
      expect(COPY_OPS[k.ops[op]], op).toMatch(/\w/);
    }
    expect([...COPY_OP_ON_SOURCE].sort()).toEqual([k.ops.OPEN_SRC, k.ops.READ, k.ops.CHANGED].sort());
    expect(systemError(k.errnos.SHRANK, 'read').code).toBe('ESHRUNK');
    expect(systemError(k.errnos.GREW, 'copy').code).toBe('ECHANGED');
  });

  it('the native sources name the shared numbers rather than repeat them', () => {
    const dir = join(repoRoot, 'native/src');
    for (const f of readdirSync(dir).filter((n) => /\.(cc|h)$/.test(n) && n !== 'constants.h')) {
      const text = readFileSync(join(dir, f), 'utf8');
      expect(text, f).not.toMatch(/-100[01]\b/);
      expect(text, f).not.toMatch(/enum (Op|Flags)\b/);
      expect(text, f).not.toMatch(/\[15\]|New\(env, 15\)/);
    }
  });
});
