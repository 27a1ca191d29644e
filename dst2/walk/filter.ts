/**
 * --exclude / --include rules, evaluated like rsync's filter rules:
 *
 * - Rules are checked in the order given on the command line (--exclude-from files
 *   expand in place); the FIRST rule that matches decides. No rule matches: included.
 * - A pattern is matched against the path relative to its SRC root (the root itself is
 *   never filtered). A pattern containing '/' (other than a trailing one) is anchored:
 *   it must match the whole relative path (a leading '/' is allowed and ignored). A
 *   pattern without '/' matches the last component (the name) at any depth.
 * - A trailing '/' makes the rule match directories only.
 * - Wildcards: '*' any run of characters but '/', '**' any run including '/', '?' one
 *   character but '/', '[...]' a character class ('[!...]' negated). '\' escapes.
 * - An excluded directory is not walked: nothing below it is copied, whatever later rules
 *   say (as rsync).
 *
 * Paths are bytes; patterns are UTF-8; matching is on bytes via latin1 strings.
 */
export interface FilterRule {
  include: boolean;
  /** the original pattern, for messages */
  pattern: string;
  dirOnly: boolean;
  anchored: boolean;
  re: RegExp;
}

function globToRegExp(glob: string): string {
  let out = '';
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i]!;
    if (c === '\\' && i + 1 < glob.length) {
      out += escapeRe(glob[++i]!);
    } else if (c === '*') {
      if (glob[i + 1] === '*') {
        // '**/' also matches no directory at all ('a/**/b' matches 'a/b')
        if (glob[i + 2] === '/') {
          out += '(?:.*/)?';
          i += 2;
        } else {
          out += '.*';
          i++;
        }
      } else out += '[^/]*';
    } else if (c === '?') out += '[^/]';
    else if (c === '[') {
      const end = glob.indexOf(']', i + 2);
      if (end < 0) {
        out += '\\[';
        continue;
      }
      let cls = glob.slice(i + 1, end);
      const neg = cls.startsWith('!') || cls.startsWith('^');
      if (neg) cls = cls.slice(1);
      out += `[${neg ? '^' : ''}${cls.replace(/\\/g, '\\\\').replace(/]/g, '\\]')}]`;
      i = end;
    } else out += escapeRe(c);
  }
  return out;
}

function escapeRe(c: string): string {
  return /[.*+?^${}()|[\]\\/]/.test(c) ? `\\${c}` : c;
}

export function makeRule(include: boolean, pattern: string): FilterRule {
  let p = pattern;
  const dirOnly = p.endsWith('/') && p.length > 1;
  if (dirOnly) p = p.slice(0, -1);
  const anchored = p.includes('/');
  if (p.startsWith('/')) p = p.slice(1);
  // Patterns are UTF-8 text; paths are compared as latin1 strings of their bytes.
  const bytes = Buffer.from(p, 'utf8').toString('latin1');
  const re = new RegExp(`^${globToRegExp(bytes)}$`, 's');
  return { include, pattern, dirOnly, anchored, re };
}

export class PathFilter {
  constructor(readonly rules: FilterRule[]) {}

  get empty(): boolean {
    return this.rules.length === 0;
  }

  /** Is this entry (root-relative path, directory or not) excluded? */
  excludes(rel: Buffer, isDir: boolean): boolean {
    if (this.rules.length === 0 || rel.length === 0) return false;
    const path = rel.toString('latin1');
    const name = path.slice(path.lastIndexOf('/') + 1);
    for (const r of this.rules) {
      if (r.dirOnly && !isDir) continue;
      if (r.re.test(r.anchored ? path : name)) return !r.include;
    }
    return false;
  }
}

/** Rules from --exclude-from FILE: one pattern a line; blank lines and '#' comments are skipped. */
export function patternsFromFile(text: string): string[] {
  return text.split('\n').map((l) => l.replace(/\r$/, '')).filter((l) => l.trim() !== '' && !l.startsWith('#'));
}
