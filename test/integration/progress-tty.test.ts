/**
 * The progress line on a real terminal (a pseudo-terminal, run-on-pty.py): fcp and fsum
 * read through latfs, which sleeps in every request, so the copy takes a few seconds and
 * the line is redrawn several times. The terminal's bytes are captured and checked:
 * redraws in place on one line, never wider than the terminal (also after a resize), a
 * percent and the phase's name, the summary on a clean line, Ctrl-C leaving no partial
 * line; and no line at all when stdout is not a terminal.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dist, run, scratch, sleep } from '../helpers/run.js';
import { envWith, fcpBin, tree, treecmp } from '../helpers/trees.js';
import { onPty, redraws, startsClean } from '../helpers/pty.js';
import { mountLatfs, type LatfsMount } from '../helpers/latfs.js';
import { displayWidth } from '../../src/progress/text-width.js';

const work = scratch('progress-tty');
let mount: LatfsMount | null = null;
let src = '';
let local = '';

beforeAll(async () => {
  local = tree('small'); // 3,000 files in 30 directories
  // 2 ms a metadata request: a copy of the tree takes a few seconds
  mount = await mountLatfs(dirname(local), ['--meta-us', '2000', '--data-us', '200'], 'progress-tty-latfs');
  src = mount.path(basename(local));
});

afterAll(async () => {
  await mount?.unmount();
  work.cleanup();
});

/** the line's texts must fit: `cols` less one (a terminal wraps when its last column is written) */
const fits = (texts: string[], cols: number) => texts.filter((t) => displayWidth(t) > cols - 1);

describe('progress line on a terminal', () => {
  it('redraws one line in place within the terminal width (also after a resize), with phase and percent; the summary ends on a clean line', async () => {
    const dst = join(work.dir, 'dst-line');
    // (copy items slowed to 1.5 s: the walk copies as it goes, and the copy would end with the walk, before a line with every file found)
    const p = onPty(process.execPath, [fcpBin, src, dst, '-np', '2', '--test-slow-copy-ms', '1500'], { cols: 60, resizeTo: 40, env: envWith() });
    await p.waitFor(/\rcopying \[[#.]+\] +\d+\.\d%/, 60_000);
    p.resize();
    await sleep(300); // SIGWINCH, 'resize', a redraw
    const resizedAt = p.output.length;
    const r = await p.done;
    expect(r.code, r.output).toBe(0);
    expect((await treecmp(local, dst)).code).toBe(0);

    const out = r.output;
    const summaryAt = out.indexOf('fcp: 3,000 files');
    expect(summaryAt, out).toBeGreaterThan(0);
    const before = out.slice(0, summaryAt);
    // every redraw is on the one line: nothing before the summary ends a line
    expect(before).not.toMatch(/\n/);
    const draws = redraws(before).filter((d) => d.text !== '');
    expect(draws.length).toBeGreaterThanOrEqual(3);
    expect(draws.some((d) => /^walking/.test(d.text))).toBe(true);
    // 59 columns: the phase, a bar, percent, bytes of the total, rate and ETA (files need 80)
    expect(draws.some((d) => /^copying \[[#.]+\] \d+\.\d% [\d.]+( [KMG]?i?B)?\/[\d.]+ [KMG]?i?B [\d.]+ [KMG]?i?B\/s ETA (\d+s|\d+m\d\ds)$/.test(d.text)), JSON.stringify(draws)).toBe(true);
    expect(fits(draws.map((d) => d.text), 60)).toEqual([]);
    expect(fits(draws.filter((d) => d.at >= resizedAt).map((d) => d.text), 40)).toEqual([]);
    // at most 10 redraws a second
    expect(draws.length).toBeLessThanOrEqual(10 * (r.ms / 1000) + 2);
    // the line is erased, then the summary on its own line ends the output
    expect(before.endsWith('\r\x1b[K')).toBe(true);
    expect(startsClean(out, summaryAt)).toBe(true);
    expect(out.slice(summaryAt)).toMatch(/^fcp: 3,000 files[^\r\n]*, 0 errors\r\n$/);
  });

  it('Ctrl-C leaves no partial line: the stop and "progress is saved" messages start on a clean line, and the line does not come back', async () => {
    const dst = join(work.dir, 'dst-intr');
    const p = onPty(process.execPath, [fcpBin, src, dst, '-np', '2', '--test-slow-copy-ms', '1500'], { cols: 80, env: envWith() });
    // 80 columns: the files done of the total too
    await p.waitFor(/\rcopying .*\d+\.\d% .* [\d,]+\/3,000 files .*\/s ETA /, 60_000);
    p.type('\x03');
    const r = await p.done;
    expect(r.code, r.output).toBe(4);
    const out = r.output;
    const stopped = out.indexOf('fcp: stopped by SIGINT');
    const saved = out.indexOf('fcp: progress is saved in ');
    expect(stopped, out).toBeGreaterThan(0);
    expect(saved).toBeGreaterThan(stopped);
    // the last bytes before each message: an erase of the line, or a line end
    expect(out.slice(0, stopped)).toMatch(/(\r\x1b\[K|\n)$/);
    expect(out.slice(0, saved)).toMatch(/(\r\x1b\[K|\n)$/);
    expect(startsClean(out, stopped)).toBe(true); // also the terminal's echo of ^C is gone
    expect(startsClean(out, saved)).toBe(true);
    // nothing drawn after the messages: the terminal is left on a clean line
    expect(out.slice(saved)).toMatch(/^fcp: progress is saved in [^\r\n]*; resume with: fcp --resume [^\r\n]*\r\n$/);
    // and it resumes (the interrupted copy was not lost)
    const again = await run(process.execPath, [fcpBin, '--resume', src, dst, '-np', '2'], { env: envWith(), timeoutMs: 120_000 });
    expect(again.code, again.stderr).toBe(0);
    expect((await treecmp(local, dst)).code).toBe(0);
  });

  it("an entry's error line starts on a clean line, not after the line's text", async () => {
    const esrc = join(work.dir, 'src-errors');
    mkdirSync(join(esrc, 'd'), { recursive: true });
    for (let i = 0; i < 50; i++) writeFileSync(join(esrc, 'd', `f${i}`), 'x'.repeat(i));
    // a socket: fcp does not copy sockets, so it is one failed entry, reported by rank 0 (-np 1)
    const sock = join(esrc, 'd', 'daemon.sock');
    expect(spawnSync('python3', ['-c', 'import socket,sys; s=socket.socket(socket.AF_UNIX); s.bind(sys.argv[1])', sock]).status).toBe(0);
    const p = onPty(process.execPath, [fcpBin, esrc, join(work.dir, 'dst-errors'), '--no-checkpoint'], { cols: 80, env: envWith() });
    const r = await p.done;
    expect(r.code, r.output).toBe(1);
    const at = r.output.indexOf('fcp: cannot create ');
    expect(at, r.output).toBeGreaterThan(0);
    expect(redraws(r.output.slice(0, at)).filter((d) => d.text !== '').length).toBeGreaterThan(0); // the line was shown
    expect(r.output.slice(0, at)).toMatch(/(\r\x1b\[K|\n)$/);
    expect(startsClean(r.output, at)).toBe(true);
    const summaryAt = r.output.indexOf('fcp: 50 files');
    expect(r.output.slice(summaryAt)).toMatch(/^fcp: 50 files[^\r\n]*, 1 error\r\n$/);
    expect(startsClean(r.output, summaryAt)).toBe(true);
  });

  it("with -np 2 the other rank's error lines start on a clean line too", async () => {
    const esrc = join(work.dir, 'src-errors2');
    for (let d = 0; d < 20; d++) {
      mkdirSync(join(esrc, `d${d}`), { recursive: true });
      for (let i = 0; i < 50; i++) writeFileSync(join(esrc, `d${d}`, `f${i}`), 'x'.repeat(i));
      const sock = join(esrc, `d${d}`, 's.sock');
      expect(spawnSync('python3', ['-c', 'import socket,sys; s=socket.socket(socket.AF_UNIX); s.bind(sys.argv[1])', sock]).status).toBe(0);
    }
    const r = await onPty(process.execPath, [fcpBin, esrc, join(work.dir, 'dst-errors2'), '-np', '2', '--no-checkpoint'], { cols: 80, env: envWith() }).done;
    expect(r.code, r.output).toBe(1);
    const at = [...r.output.matchAll(/fcp: cannot create /g)].map((m) => m.index);
    expect(at.length, r.output).toBe(20);
    for (const i of at) expect(startsClean(r.output, i), JSON.stringify(r.output.slice(Math.max(0, i - 200), i))).toBe(true);
    // rank 0 may still erase a line another rank already erased: harmless, the summary starts clean
    const summaryAt = r.output.indexOf('fcp: 1,000 files');
    expect(r.output.slice(summaryAt), r.output.slice(-600)).toMatch(/^fcp: 1,000 files[^\r\n]*, 20 errors\r\n$/);
    expect(startsClean(r.output, summaryAt)).toBe(true);
  });

  it('fsum shows its own phases (walking, hashing) and ends with its summary on a clean line', async () => {
    const p = onPty(process.execPath, [dist('cli/fsum.js'), src, '-np', '2'], { cols: 70, env: envWith() });
    const r = await p.done;
    expect(r.code, r.output).toBe(0);
    const summaryAt = r.output.indexOf('fsum: 3,000 files');
    expect(summaryAt, r.output).toBeGreaterThan(0);
    const draws = redraws(r.output.slice(0, summaryAt)).filter((d) => d.text !== '');
    expect(draws.some((d) => /^hashing .*\d+\.\d%/.test(d.text)), JSON.stringify(draws)).toBe(true);
    expect(fits(draws.map((d) => d.text), 70)).toEqual([]);
    expect(r.output.slice(summaryAt)).toMatch(/^fsum: 3,000 files[^\r\n]*\r\n$/);
    expect(startsClean(r.output, summaryAt)).toBe(true);
  });

  it('--progress json on a terminal prints the JSON lines only, no line drawn', async () => {
    const dst = join(work.dir, 'dst-json');
    const p = onPty(process.execPath, [fcpBin, local, dst, '--progress', 'json', '--json'], { cols: 60, env: envWith() });
    const r = await p.done;
    expect(r.code, r.output).toBe(0);
    expect(r.output).not.toMatch(/\x1b|\r(?!\n)/);
    const lines = r.output.trim().split('\r\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines[lines.length - 1]).toHaveProperty('files', 3000);
    for (const l of lines.slice(0, -1)) expect(['walk', 'copy']).toContain(l.progress);
    // fsum --json: no line either, the JSON alone
    const f = await onPty(process.execPath, [dist('cli/fsum.js'), local, '--json'], { cols: 60, env: envWith() }).done;
    expect(f.code, f.output).toBe(0);
    expect(f.output).not.toMatch(/\x1b|\r(?!\n)/);
    expect(JSON.parse(f.output.trim().split('\r\n').pop()!)).toHaveProperty('files', 3000);
  });
});

describe('progress when stdout is not a terminal', () => {
  it('prints no line (auto): stdout holds only the summary', async () => {
    const dst = join(work.dir, 'dst-pipe');
    const r = await run(process.execPath, [fcpBin, src, dst, '-np', '2'], { env: envWith(), timeoutMs: 120_000 });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^fcp: 3,000 files[^\n]*\n$/);
    expect(r.stdout + r.stderr).not.toMatch(/\x1b|\r/);
  });
});
