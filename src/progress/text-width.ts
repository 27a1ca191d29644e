/**
 * Terminal columns of text, so a line is cut to the terminal's width, not its length
 * in UTF-16 units: combining marks take none, East Asian wide characters and emoji two.
 * An approximation of wcwidth(3), good enough for a status line.
 */
const ZERO = /[\p{Mn}\p{Me}\u200b-\u200f\ufe00-\ufe0f]/u;
const WIDE = /[\u1100-\u115f\u2e80-\u303e\u3041-\u33ff\u3400-\u4dbf\u4e00-\u9fff\ua000-\ua4cf\uac00-\ud7a3\uf900-\ufaff\ufe30-\ufe4f\uff00-\uff60\uffe0-\uffe6\u{1f300}-\u{1f64f}\u{1f900}-\u{1f9ff}\u{20000}-\u{3fffd}]/u;

function charWidth(ch: string): number {
  if (ZERO.test(ch)) return 0;
  return WIDE.test(ch) ? 2 : 1;
}

/** Control characters (C0, DEL, C1) would move the cursor or recolour the terminal: shown as '?'. */
export function printable(s: string): string {
  return s.replace(/[\x00-\x1f\x7f-\x9f]/g, '?');
}

export function displayWidth(s: string): number {
  let w = 0;
  for (const ch of s) w += charWidth(ch);
  return w;
}

/** The longest prefix of `s` that fits in `cols` columns. */
export function cutToWidth(s: string, cols: number): string {
  let w = 0;
  let out = '';
  for (const ch of s) {
    const cw = charWidth(ch);
    if (w + cw > cols) break;
    w += cw;
    out += ch;
  }
  return out;
}

/** The longest suffix of `s` that fits in `cols` columns. */
function cutTailToWidth(s: string, cols: number): string {
  const chars = [...s];
  let w = 0;
  let i = chars.length;
  while (i > 0 && w + charWidth(chars[i - 1]!) <= cols) w += charWidth(chars[--i]!);
  return chars.slice(i).join('');
}

/**
 * `s` in at most `cols` columns, cut in the middle ('...') when too wide: a status note
 * keeps its start (what is wrong) and its end (the file's name, for how long).
 */
export function fitMiddle(s: string, cols: number): string {
  if (displayWidth(s) <= cols) return s;
  if (cols <= 3) return cutToWidth(s, cols);
  const head = Math.ceil((cols - 3) / 2);
  return `${cutToWidth(s, head)}...${cutTailToWidth(s, cols - 3 - head)}`;
}
