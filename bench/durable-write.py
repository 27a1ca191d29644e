#!/usr/bin/env python3
"""durable-write: copy stdin into the file OUT and make it durable, as fast as the disk allows.

usage: find SRC -type f -print0 | xargs -0 cat | python3 bench/durable-write.py OUT

The physical limit bench/copy.mjs --sync-cost sets against fcp: the tree's bytes, in one
stream, on stable storage. Writeback of each 8 MiB starts as soon as it is written
(sync_file_range WRITE), and the piece two steps behind is waited for, so the disk writes
while the next pieces are read and the dirty pages stay few; fdatasync at the end. This
overlaps writing and writeback, which `dd conv=fdatasync` (everything dirty first, then one
sync) does not: it is a lower bound for any tool that has to put these bytes on this disk,
without the cost of creating files, directories and metadata.
"""
import ctypes
import os
import sys

STEP = 8 << 20
WAIT_BEFORE, WRITE, WAIT_AFTER = 1, 2, 4  # SYNC_FILE_RANGE_* (linux/fs.h)

libc = ctypes.CDLL(None, use_errno=True)
libc.sync_file_range.argtypes = [ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint]


def sync_range(fd, off, n, flags):
    if libc.sync_file_range(fd, off, n, flags) != 0:
        e = ctypes.get_errno()
        raise OSError(e, f"sync_file_range: {os.strerror(e)}")


def main(argv):
    if len(argv) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    fd = os.open(argv[0], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    src = sys.stdin.buffer
    off = 0
    while True:
        b = src.read(STEP)
        if not b:
            break
        view = memoryview(b)
        while view:
            view = view[os.write(fd, view):]
        sync_range(fd, off, len(b), WRITE)
        if off >= 2 * STEP:
            sync_range(fd, off - 2 * STEP, STEP, WAIT_BEFORE | WRITE | WAIT_AFTER)
        off += len(b)
    os.fdatasync(fd)
    os.close(fd)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
