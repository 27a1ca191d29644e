#!/usr/bin/env python3
"""The machine's idle CPU during one run of a command, split at the moment a path appears.

    python3 bench/idle-split.py DST -- CMD [ARGS...]

e.g. `python3 bench/idle-split.py /disk/dst -- node bin/fcp.js /disk/src /disk/dst -np 2 --quiet --no-sync`
(DST must not exist before). Prints the wall time and, before and after DST appears (for a
copy: before and after anything was written), the idle CPU seconds of the whole machine
(/proc/stat idle + iowait) against all its CPU seconds. Used for the durability cost in the
README: idle CPU after the first write is all that could hide the kernel's writeback of the
copy; idle CPU before it (startup) cannot, as nothing is written yet. Samples every 2 ms.
"""
import os
import subprocess
import sys
import time


def stat():
    """(idle + iowait, all) CPU time of the machine so far, in USER_HZ ticks."""
    with open('/proc/stat') as f:
        v = [int(x) for x in f.readline().split()[1:]]
    return v[3] + v[4], sum(v[:8])


def main(argv):
    if len(argv) < 3 or argv[1] != '--':
        sys.exit(__doc__)
    dst, cmd = argv[0], argv[2:]
    if os.path.lexists(dst):
        sys.exit(f'idle-split: {dst} exists already')
    t0 = time.monotonic()
    i0, a0 = stat()
    proc = subprocess.Popen(cmd)
    seen = None
    while proc.poll() is None:
        time.sleep(0.002)
        if seen is None and os.path.lexists(dst):
            seen = (time.monotonic() - t0, *stat())
    t1 = time.monotonic() - t0
    i1, a1 = stat()
    if proc.returncode != 0:
        sys.exit(f'idle-split: the command failed (exit {proc.returncode})')
    ts, i_s, a_s = seen if seen else (t1, i1, a1)
    print(f'wall {t1:.3f} s; before {dst} appeared: {ts:.3f} s, idle {(i_s - i0) / 100:.2f} of {(a_s - a0) / 100:.2f} CPU s; '
          f'after: {t1 - ts:.3f} s, idle {(i1 - i_s) / 100:.2f} of {(a1 - a_s) / 100:.2f} CPU s')


if __name__ == '__main__':
    main(sys.argv[1:])
