/**
 * One line of a terminal, redrawn in place: carriage return, the text, erase to the end
 * of the line. Never wider than the terminal (its width is read again on 'resize'; one
 * column is left free, as terminals wrap when the last one is written).
 *
 * Nothing else may print into the middle of the line: while it is shown, every other
 * write to stdout or stderr of this process (an entry's error, the summary, an abort's
 * reason, "progress is saved") first erases it, and the owner redraws it later below
 * that output. At exit (also process.exit from an abort or a signal) a shown line is
 * erased, so the terminal is left on a clean line.
 */

type Write = NodeJS.WriteStream['write'];

export class TerminalLine {
  private shown = false;
  /** what is shown, so an unchanged line is not written again */
  private text = '';
  private closed = false;
  private readonly ownWrite: Write;
  private readonly restore: (() => void)[] = [];
  private readonly onExit = () => this.erase();
  private readonly onResize = () => this.onChange();

  /**
   * `out`: the terminal the line is drawn on. `others`: streams whose writes must not
   * land in the middle of the line (stderr, when it is the same terminal). `onChange`:
   * called when the line was erased for someone else's output or the terminal was
   * resized, so the owner redraws it.
   */
  constructor(private readonly out: NodeJS.WriteStream, others: NodeJS.WriteStream[], private readonly onChange: () => void) {
    this.ownWrite = out.write;
    for (const s of [out, ...others]) this.guard(s);
    out.on('resize', this.onResize);
    process.on('exit', this.onExit);
  }

  /** Columns a line may take: the terminal's width less one (80 when unknown). */
  get cols(): number {
    return Math.max(1, (this.out.columns || 80) - 1);
  }

  /**
   * Show `text` (already fitted to `cols`) in place of the current line; an unchanged
   * text only when `force` (another process may have erased the line: see below).
   */
  draw(text: string, force = false): void {
    if (this.closed || (this.shown && text === this.text && !force)) return;
    this.ownWrite.call(this.out, `\r${text}\x1b[K`);
    this.shown = true;
    this.text = text;
  }

  /** Erase the line (the cursor stays at the start of the now empty line). */
  erase(): void {
    if (!this.shown) return;
    this.shown = false;
    this.ownWrite.call(this.out, '\r\x1b[K');
  }

  /** Leave the line as it stands and move below it (it is no longer ours to erase). */
  keep(): void {
    if (!this.shown) return;
    this.shown = false;
    this.ownWrite.call(this.out, '\n');
  }

  /** Erase the line and give the streams back. */
  close(): void {
    if (this.closed) return;
    this.erase();
    this.closed = true;
    for (const r of this.restore.splice(0)) r();
    this.out.off('resize', this.onResize);
    process.off('exit', this.onExit);
  }

  private guard(s: NodeJS.WriteStream): void {
    const orig = s.write;
    const erased = (): void => {
      if (!this.shown) return;
      this.erase();
      this.onChange();
    };
    s.write = function (this: NodeJS.WriteStream, ...args: Parameters<Write>) {
      erased();
      return (orig as (...a: unknown[]) => boolean).apply(this, args);
    } as Write;
    this.restore.push(() => {
      s.write = orig;
    });
  }
}

/**
 * Ranks other than 0 share rank 0's terminal (`-np N` without a launcher) but cannot see
 * its line: each of their writes to `s` starts by erasing whatever stands on the current
 * line, so their error lines start clean (rank 0 redraws its line within a second).
 */
export function eraseLineBeforeWrites(s: NodeJS.WriteStream): void {
  if (!s.isTTY) return;
  const orig = s.write;
  s.write = function (this: NodeJS.WriteStream, chunk: unknown, ...rest: unknown[]) {
    // one write, so no other process's output can come between the erase and the text
    const text = typeof chunk === 'string' ? `\r\x1b[K${chunk}` : Buffer.concat([Buffer.from('\r\x1b[K'), chunk as Uint8Array]);
    return (orig as (...a: unknown[]) => boolean).call(this, text, ...rest);
  } as Write;
}
