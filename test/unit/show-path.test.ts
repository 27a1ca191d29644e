/** showPath: how every path is printed (stderr, logs, dry-run lines), as `ls -b` escapes names. */
import { describe, expect, it } from 'vitest';
import { showPath } from '../../src/model/paths.js';

describe('showPath', () => {
  it('prints plain and UTF-8 names as they are', () => {
    expect(showPath('/data/run 1/été.h5')).toBe('/data/run 1/été.h5');
    expect(showPath(Buffer.from('/data/日本/x'))).toBe('/data/日本/x');
  });

  it('escapes newline, tab, other control bytes, DEL and backslash, so a name cannot forge a line', () => {
    expect(showPath(Buffer.from('a\nfcp: cannot x'))).toBe('a\\nfcp: cannot x');
    expect(showPath('a\tb')).toBe('a\\tb');
    expect(showPath(Buffer.from([0x61, 0x01, 0x1b, 0x7f, 0x0d]))).toBe('a\\x01\\x1b\\x7f\\x0d');
    expect(showPath('back\\slash')).toBe('back\\\\slash');
  });

  it('escapes bytes that are not UTF-8, and C1 controls, byte by byte', () => {
    expect(showPath(Buffer.from([0x61, 0xff, 0xfe, 0x62]))).toBe('a\\xff\\xfeb');
    expect(showPath(Buffer.from([0xc3]))).toBe('\\xc3'); // a truncated sequence
    expect(showPath(Buffer.from([0xc2, 0x85]))).toBe('\\xc2\\x85'); // U+0085 NEXT LINE
    expect(showPath(Buffer.from([0xed, 0xa0, 0x80]))).toBe('\\xed\\xa0\\x80'); // a surrogate
  });

  it('gives different names different printed forms (escaping is not ambiguous)', () => {
    const names = [Buffer.from('a\\n'), Buffer.from('a\n'), Buffer.from('a\\x0a'), Buffer.from([0x61, 0x5c, 0x5c])];
    expect(new Set(names.map((n) => showPath(n))).size).toBe(names.length);
  });
});
