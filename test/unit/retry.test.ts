import { describe, expect, it } from 'vitest';
import { isTransient, isTransientErrno, Retries, TRANSIENT_CODES } from '../../src/io/retry.js';
import { causeOf, codeOf, systemError } from '../../src/errors.js';

const err = (code: string) => Object.assign(new Error(code), { code });

describe('retry: which errors are transient, and the backoff', () => {
  it('the transient table: EIO, ESTALE, ETIMEDOUT, EAGAIN, ENOTCONN, ECONNRESET; permanent and job-level errors are not in it', () => {
    for (const c of ['EIO', 'ESTALE', 'ETIMEDOUT', 'EAGAIN', 'ENOTCONN', 'ECONNRESET']) expect(isTransient(err(c)), c).toBe(true);
    for (const c of ['ENOENT', 'EACCES', 'EPERM', 'ENOSPC', 'EDQUOT', 'EROFS', 'ELOOP', 'ENOTDIR', 'EISDIR', 'ECHANGED', 'ESHRUNK']) expect(isTransient(err(c)), c).toBe(false);
    expect(TRANSIENT_CODES.size).toBe(6);
  });

  it('native -errno values are classified as their names are (ESTALE, which libuv does not name, included)', () => {
    expect(isTransientErrno(-116)).toBe(true); // ESTALE on Linux
    expect(isTransientErrno(-5)).toBe(true); // EIO
    expect(isTransientErrno(-13)).toBe(false); // EACCES
    expect(isTransientErrno(-1000)).toBe(false); // fcp's ESHRUNK
    expect(systemError(-116, 'open').code).toBe('ESTALE');
  });

  it("Node's error for an errno libuv does not name ('Unknown system error -116') is ESTALE: transient, named so", () => {
    const e = Object.assign(new Error('Unknown system error -116: Unknown system error -116, open'), { code: 'Unknown system error -116', errno: -116 });
    expect(isTransient(e)).toBe(true);
    expect(codeOf(e)).toBe('ESTALE');
    expect(causeOf(e)).toBe('Stale file handle (ESTALE)');
  });

  it('backoff: 0.5 s, 1 s, 2 s ... each within ±25 %, capped at 30 s', () => {
    const low = new Retries(10, 500, () => 0);
    const high = new Retries(10, 500, () => 0.999999);
    expect([0, 1, 2].map((a) => low.delayMs(a))).toEqual([375, 750, 1500]);
    expect([0, 1, 2].map((a) => high.delayMs(a))).toEqual([625, 1250, 2500]);
    expect(high.delayMs(20)).toBe(37500);
  });

  it('N retries per entry, then null; an entry counts once in retried, each try again in retries', () => {
    const r = new Retries(2, 500, () => 0.5);
    expect(r.next(err('EIO'), 0)).toBe(500);
    expect(r.next(err('EIO'), 1)).toBe(1000);
    expect(r.next(err('EIO'), 2)).toBeNull();
    expect(r.next(err('EACCES'), 0)).toBeNull();
    expect(r.nextErrno(-116, 0)).toBe(500);
    expect([r.retried, r.retries]).toEqual([2, 3]);
    expect(new Retries(0).next(err('EIO'), 0)).toBeNull();
  });

  it('run(): tries a failing function again while it fails transiently, rethrows a permanent error at once', async () => {
    const r = new Retries(3, 1);
    let calls = 0;
    await expect(r.run(async () => (++calls < 3 ? Promise.reject(err('ESTALE')) : 'ok'))).resolves.toBe('ok');
    expect(calls).toBe(3);
    calls = 0;
    await expect(r.run(async () => { calls++; throw err('EACCES'); })).rejects.toMatchObject({ code: 'EACCES' });
    expect(calls).toBe(1);
    calls = 0;
    await expect(r.run(async () => { calls++; throw err('EIO'); })).rejects.toMatchObject({ code: 'EIO' });
    expect(calls).toBe(4);
  });

  it('an attempt count from a peer: absent or 1..100', () => {
    expect([undefined, 1, 100].map(Retries.validAttempt)).toEqual([true, true, true]);
    expect([0, -1, 1.5, 101, '1', null].map(Retries.validAttempt)).toEqual([false, false, false, false, false, false]);
  });
});
