/** --files-from lines: split from a stream at any chunk boundary, and read as paths relative to SRC. */
import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { listLines, listPath, MAX_LINE, type ListLine } from '../../src/walk/list-lines.js';
import { SeenPaths } from '../../src/walk/seen-paths.js';

async function lines(chunks: Buffer[], sep: 0 | 10): Promise<ListLine[]> {
  const out: ListLine[] = [];
  for await (const l of listLines(Readable.from(chunks), sep)) out.push(l);
  return out;
}

const text = (ls: ListLine[]) => ls.map((l) => ('line' in l ? l.line.toString('latin1') : `#too long ${l.no}`));

describe('listLines', () => {
  it('gives the same lines however the stream is cut', async () => {
    const whole = Buffer.from('a/b\n\nc\xff\nlast', 'latin1');
    for (let cut = 0; cut <= whole.length; cut++) {
      expect(text(await lines([whole.subarray(0, cut), whole.subarray(cut)], 10))).toEqual(['a/b', '', 'c\xff', 'last']);
    }
  });

  it('with NUL separators keeps a newline inside a name', async () => {
    expect(text(await lines([Buffer.from('a\nb\0c\0')], 0))).toEqual(['a\nb', 'c']);
  });

  it('names a line longer than any path and goes on with the next, holding none of it', async () => {
    const long = Buffer.alloc(MAX_LINE * 3, 0x61);
    const ls = await lines([Buffer.from('x\n'), long.subarray(0, MAX_LINE), long.subarray(MAX_LINE), Buffer.from('\ny\n')], 10);
    expect(text(ls)).toEqual(['x', '#too long 2', 'y']);
    expect(ls[2]!.no).toBe(3);
  });
});

describe('listPath', () => {
  const p = (s: string) => {
    const r = listPath(Buffer.from(s, 'latin1'));
    return r.kind === 'path' ? r.p.toString('latin1') : r.kind;
  };
  it("takes leading '/' and './' as relative to SRC and drops empty and '.' components", () => {
    expect(p('/a/b')).toBe('a/b');
    expect(p('./a//./b/')).toBe('a/b');
    expect(p('///x')).toBe('x');
    expect(p('.')).toBe('');
    expect(p('/')).toBe('');
    expect(p('\xff\xfe')).toBe('\xff\xfe');
    expect(p('...')).toBe('...');
  });
  it("refuses '..' components; an empty line is blank", () => {
    expect(p('..')).toBe('dotdot');
    expect(p('a/../b')).toBe('dotdot');
    expect(p('a/..')).toBe('dotdot');
    expect(p('')).toBe('blank');
  });
});

describe('SeenPaths', () => {
  it('says how a path was seen before: new, as a parent, listed', () => {
    const s = new SeenPaths();
    const a = Buffer.from('a');
    expect(s.mark(a, false)).toBe('new');
    expect(s.mark(a, false)).toBe('parent');
    expect(s.mark(a, true)).toBe('parent');
    expect(s.mark(a, false)).toBe('listed');
    expect(s.mark(a, true)).toBe('listed');
    // past the in-memory map: the database answers
    for (let i = 0; i < 20000; i++) s.mark(Buffer.from(`d${i}`), i % 2 === 0);
    expect(s.mark(Buffer.from('d2'), true)).toBe('listed');
    expect(s.mark(Buffer.from('d3'), false)).toBe('parent');
    expect(s.mark(Buffer.from('d20000'), false)).toBe('new');
    s.close();
  });
});
