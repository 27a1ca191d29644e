/**
 * Run a command on a real pseudo-terminal (python3's pty module, run-on-pty.py): what it
 * writes is captured as the terminal receives it, input can be typed into it (Ctrl-C is
 * '\x03'), and the terminal can be resized once (the command gets SIGWINCH).
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { repoRoot } from './run.js';

export interface PtyRun {
  /** everything the terminal received so far */
  readonly output: string;
  type(s: string): void;
  /** resize the terminal to the `resizeTo` columns given at the start */
  resize(): void;
  /** resolves once the output (from `from` on) matches `re`; rejects after `timeoutMs` */
  waitFor(re: RegExp, timeoutMs: number, from?: number): Promise<void>;
  /** the command's exit status (128 + signal if killed) and its whole output */
  done: Promise<{ code: number | null; output: string; ms: number }>;
}

export function onPty(cmd: string, args: string[], opts: { cols: number; resizeTo?: number; env?: NodeJS.ProcessEnv; timeoutMs?: number }): PtyRun {
  const t0 = Date.now();
  const helper = join(repoRoot, 'test', 'helpers', 'run-on-pty.py');
  const child = spawn('python3', [helper, String(opts.cols), '24', String(opts.resizeTo ?? opts.cols), cmd, ...args], { stdio: ['pipe', 'pipe', 'inherit'], env: opts.env });
  let output = '';
  const waiters = new Set<() => void>();
  child.stdout.setEncoding('utf8').on('data', (d: string) => {
    output += d;
    for (const w of [...waiters]) w();
  });
  const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 120_000);
  const done = new Promise<{ code: number | null; output: string; ms: number }>((resolve) => {
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, output, ms: Date.now() - t0 });
    });
  });
  return {
    get output() {
      return output;
    },
    type: (s) => child.stdin.write(s),
    resize: () => child.kill('SIGUSR1'),
    waitFor(re, timeoutMs, from = 0) {
      return new Promise((resolve, reject) => {
        const check = () => {
          if (!re.test(output.slice(from))) return;
          waiters.delete(check);
          clearTimeout(t);
          resolve();
        };
        const t = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`no ${re} on the terminal within ${timeoutMs} ms; got: ${JSON.stringify(output.slice(-2000))}`));
        }, timeoutMs);
        waiters.add(check);
        check();
      });
    },
    done,
  };
}

/** The texts of the progress line's redraws: '\r' TEXT '\x1b[K' (an empty TEXT is an erase). */
export function redraws(output: string): { text: string; at: number }[] {
  return [...output.matchAll(/\r([^\r\n\x1b]*)\x1b\[K/g)].map((m) => ({ text: m[1]!, at: m.index }));
}

/**
 * What the terminal's current line holds after `output`: a small model of carriage
 * return, erase to end of line ('\x1b[K') and line feed, enough to tell whether the next
 * text starts on a clean line (nothing on it, cursor at its start).
 */
export function currentLine(output: string): { text: string; col: number } {
  let line: string[] = [];
  let col = 0;
  for (let i = 0; i < output.length; i++) {
    const c = output[i]!;
    if (c === '\n') {
      line = [];
      col = 0;
    } else if (c === '\r') col = 0;
    else if (output.startsWith('\x1b[K', i)) {
      line = line.slice(0, col);
      i += 2;
    } else line[col++] = c;
  }
  return { text: line.join(''), col };
}

/** Does the text at `index` of `output` start on a clean line? */
export const startsClean = (output: string, index: number) => {
  const l = currentLine(output.slice(0, index));
  return l.text === '' && l.col === 0;
};
