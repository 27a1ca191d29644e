/** fcp's command line: help, version, and the spellings of the rank count. */
import { copyFileSync, readFileSync, writeFileSync, mkdirSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { lastJson, repoRoot, run, scratch, sleep, start } from '../helpers/run.js';
import { envWith, fcp, stderrLines, treecmp } from '../helpers/trees.js';

const OPTIONS = ['--np', '--chunk-size', '--json', '--quiet', '--rendezvous', '--bind', '--job-id', '--startup-timeout', '--heartbeat-timeout', '--version', '--help'];

describe('a tool whose own modules do not load', () => {
  it('says so in one line and exits 3 (aborted), never 1 (which names failed entries) or 2 (usage)', async () => {
    // Seen when dist/ was rewritten (tsc) while fcp started: an import finds a module half
    // written. Here: bin/ as installed, beside the real dist/, with a tool module that throws.
    const work = scratch('cli-cannot-start');
    try {
      const bin = join(work.dir, 'bin');
      mkdirSync(bin);
      for (const f of ['preamble.js', 'compile-cache.js', 'v8-flags.js', 'entry.js', 'package.json']) copyFileSync(join(repoRoot, 'bin', f), join(bin, f));
      symlinkSync(join(repoRoot, 'dist'), join(work.dir, 'dist'));
      symlinkSync(join(repoRoot, 'node_modules'), join(work.dir, 'node_modules'));
      writeFileSync(join(work.dir, 'broken.mjs'), "import { Stopper } from './dist/cli/fcp-command.js';\nconsole.log(Stopper);\n");
      writeFileSync(join(bin, 'fcp.js'), "require('./preamble.js').run('../broken.mjs');\n");
      const r = await run(process.execPath, [join(bin, 'fcp.js'), 'src', 'dst', '--bwlimit', 'fast']);
      expect(r.code, r.stderr).toBe(3);
      expect(stderrLines(r.stderr)).toEqual([expect.stringMatching(/^fcp: cannot start: .*does not provide an export named 'Stopper'/)]);
    } finally {
      work.cleanup();
    }
  });
});

describe('fcp --help and --version', () => {
  it('--help prints usage with every option on stdout, exit 0', async () => {
    const r = await fcp(['--help']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toBe('');
    expect(r.stdout).toMatch(/^Usage: fcp /);
    expect(r.stdout).toContain('SRC... DST');
    for (const o of OPTIONS) expect(r.stdout, o).toMatch(new RegExp(`(^|[\\s,])${o}(?![\\w-])`, 'm'));
    expect(r.stdout).toContain('-np N'); // the MPI spelling is documented
    expect(r.stdout).toMatch(/Exit status/);
  });

  it('-h is --help', async () => {
    const [a, b] = await Promise.all([fcp(['-h']), fcp(['--help'])]);
    expect(a.code).toBe(0);
    expect(a.stdout).toBe(b.stdout);
  });

  it('--version and -V print the package.json version, exit 0', async () => {
    const { version } = JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as { version: string };
    for (const flag of ['--version', '-V']) {
      const r = await fcp([flag]);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout.trim()).toBe(version);
    }
  });
});

describe('fcp: spellings of the rank count', () => {
  for (const spelling of [['-np', '2'], ['--np', '2'], ['-np=2'], ['--np=2'], ['-n', '2']]) {
    it(`${spelling.join(' ')} starts 2 ranks and copies`, async () => {
      const s = scratch('np-spelling');
      try {
        const src = join(s.dir, 'src');
        mkdirSync(join(src, 'sub'), { recursive: true });
        for (let i = 0; i < 50; i++) writeFileSync(join(src, i % 2 ? 'sub' : '', `f${i}`), `file ${i}\n`.repeat(i + 1));
        const dst = join(s.dir, 'dst');
        const r = await fcp([src, dst, ...spelling, '--json'], { env: envWith() });
        expect(r.code, r.stderr).toBe(0);
        const out = lastJson<{ files: number; ranks: unknown[] }>(r.stdout);
        expect(out.ranks).toHaveLength(2);
        expect(out.files).toBe(50);
        const cmp = await treecmp(src, dst);
        expect(cmp.lines, cmp.output).toEqual([]);
      } finally {
        s.cleanup();
      }
    });
  }

  it('options may come before, between and after the paths', async () => {
    const s = scratch('opt-order');
    try {
      const src = join(s.dir, 'src');
      mkdirSync(src);
      writeFileSync(join(src, 'f'), 'x');
      const r = await fcp(['--json', src, '-np', '3', join(s.dir, 'dst'), '--chunk-size', '8M'], { env: envWith() });
      expect(r.code, r.stderr).toBe(0);
      const out = lastJson<{ ranks: unknown[]; chunkSize: number }>(r.stdout);
      expect(out.ranks).toHaveLength(3);
      expect(out.chunkSize).toBe(8 * 1024 * 1024);
    } finally {
      s.cleanup();
    }
  });

  it('--quiet prints nothing on success', async () => {
    const s = scratch('quiet');
    try {
      const src = join(s.dir, 'src');
      mkdirSync(src);
      writeFileSync(join(src, 'f'), 'x');
      const r = await fcp([src, join(s.dir, 'dst'), '--quiet', '-np', '2'], { env: envWith() });
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toBe('');
      expect(stderrLines(r.stderr)).toEqual([]);
      expect(readFileSync(join(s.dir, 'dst', 'f'), 'utf8')).toBe('x');
    } finally {
      s.cleanup();
    }
  });
});

describe('the environment of the ranks rank 0 starts', () => {
  it('has no NODE_EXTRA_CA_CERTS (Node 20 parses that file before any code runs; ranks use no TLS)', async () => {
    const s = scratch('extra-ca');
    try {
      const src = join(s.dir, 'src');
      mkdirSync(src);
      writeFileSync(join(src, 'f'), 'x');
      const bundle = join(s.dir, 'bundle.pem');
      writeFileSync(bundle, '');
      // Slow copy items keep the ranks alive while their environments are read.
      const job = start(process.execPath, [join(repoRoot, 'bin/fcp.js'), src, join(s.dir, 'dst'), '-np', '3', '--json', '--test-slow-copy-ms', '1500'],
        { env: envWith({ NODE_EXTRA_CA_CERTS: bundle }) });
      const pid = job.child.pid!;
      const envOf = (p: number) => readFileSync(`/proc/${p}/environ`, 'utf8').split('\0');
      const ranks = new Map<number, string[]>();
      for (let i = 0; i < 300 && ranks.size < 2; i++) {
        let kids: number[] = [];
        try {
          kids = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
        } catch { /* not yet */ }
        for (const k of kids) {
          try {
            const env = envOf(k);
            if (env.some((v) => v.startsWith('FCP_RANK='))) ranks.set(k, env);
          } catch { /* gone */ }
        }
        await sleep(10);
      }
      expect(envOf(pid)).toContain(`NODE_EXTRA_CA_CERTS=${bundle}`); // rank 0: the user's environment
      const r = await job.done;
      expect(r.code, r.stderr).toBe(0);
      expect(lastJson<{ ranks: unknown[] }>(r.stdout).ranks).toHaveLength(3);
      expect(ranks.size).toBe(2);
      for (const env of ranks.values()) expect(env.filter((v) => v.startsWith('NODE_EXTRA_CA_CERTS='))).toEqual([]);
      expect(readFileSync(join(s.dir, 'dst', 'f'), 'utf8')).toBe('x');
    } finally {
      s.cleanup();
    }
  });
});
