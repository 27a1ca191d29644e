/** --exclude/--include rules (walk/filter.ts), table-driven: each row is one documented rule at work. */
import { describe, expect, it } from 'vitest';
import { makeRule, PathFilter, patternsFromFile } from '../../src/walk/filter.js';

type Rule = [include: boolean, pattern: string];
const ex = (p: string): Rule => [false, p];
const inc = (p: string): Rule => [true, p];

const table: { why: string; rules: Rule[]; path: string; dir?: boolean; excluded: boolean }[] = [
  { why: 'no rules: everything is copied', rules: [], path: 'a/b.txt', excluded: false },
  { why: 'a pattern without / matches the name at any depth', rules: [ex('*.tmp')], path: 'a/b/c.tmp', excluded: true },
  { why: '* does not match other names', rules: [ex('*.tmp')], path: 'a/b/c.tmpx', excluded: false },
  { why: 'a pattern with / is anchored at the SRC root', rules: [ex('a/*.log')], path: 'a/x.log', excluded: true },
  { why: 'anchored: not deeper', rules: [ex('a/*.log')], path: 'b/a/x.log', excluded: false },
  { why: '* does not cross /', rules: [ex('a/*.log')], path: 'a/b/x.log', excluded: false },
  { why: '** crosses /', rules: [ex('a/**.log')], path: 'a/b/c/x.log', excluded: true },
  { why: '**/ also matches no directory', rules: [ex('a/**/x.log')], path: 'a/x.log', excluded: true },
  { why: 'a leading / anchors too', rules: [ex('/top')], path: 'top', excluded: true },
  { why: 'leading /: not deeper', rules: [ex('/top')], path: 'sub/top', excluded: false },
  { why: 'a trailing / matches directories only', rules: [ex('cache/')], path: 'x/cache', dir: true, excluded: true },
  { why: 'a trailing /: not a file of that name', rules: [ex('cache/')], path: 'x/cache', dir: false, excluded: false },
  { why: '? is one character', rules: [ex('f?.dat')], path: 'f1.dat', excluded: true },
  { why: '? is not two', rules: [ex('f?.dat')], path: 'f12.dat', excluded: false },
  { why: 'character class', rules: [ex('f[0-4].dat')], path: 'f3.dat', excluded: true },
  { why: 'character class: outside', rules: [ex('f[0-4].dat')], path: 'f7.dat', excluded: false },
  { why: 'negated class', rules: [ex('f[!0-4].dat')], path: 'f7.dat', excluded: true },
  { why: 'the first matching rule wins: include before exclude', rules: [inc('keep.tmp'), ex('*.tmp')], path: 'd/keep.tmp', excluded: false },
  { why: 'the first matching rule wins: exclude before include', rules: [ex('*.tmp'), inc('keep.tmp')], path: 'd/keep.tmp', excluded: true },
  { why: 'include * then exclude: everything included', rules: [inc('*'), ex('*.tmp')], path: 'x.tmp', excluded: false },
  { why: 'an include alone excludes nothing', rules: [inc('*.c')], path: 'x.h', excluded: false },
  { why: 'backslash escapes a wildcard', rules: [ex('a\\*b')], path: 'a*b', excluded: true },
  { why: 'escaped *: not a wildcard', rules: [ex('a\\*b')], path: 'axb', excluded: false },
  { why: 'dots are literal', rules: [ex('a.b')], path: 'axb', excluded: false },
  { why: 'UTF-8 names match UTF-8 patterns', rules: [ex('ünï*')], path: 'x/ünïcödé', excluded: true },
  { why: 'the root itself is never excluded', rules: [ex('*')], path: '', excluded: false },
];

describe('PathFilter', () => {
  for (const row of table) {
    it(`${row.why}: ${JSON.stringify(row.rules)} on '${row.path}'${row.dir ? ' (dir)' : ''} -> ${row.excluded ? 'excluded' : 'copied'}`, () => {
      const f = new PathFilter(row.rules.map(([i, p]) => makeRule(i, p)));
      expect(f.excludes(Buffer.from(row.path), row.dir ?? false)).toBe(row.excluded);
    });
  }

  it('matches names that are not UTF-8 (bytes)', () => {
    const f = new PathFilter([makeRule(false, 'bad*')]);
    expect(f.excludes(Buffer.from([0x64, 0x2f, 0x62, 0x61, 0x64, 0xff, 0xfe]), false)).toBe(true);
  });

  it('reads --exclude-from files: one pattern a line, # comments and blank lines skipped', () => {
    expect(patternsFromFile('# scratch\n*.tmp\n\ncache/\r\n')).toEqual(['*.tmp', 'cache/']);
  });
});
