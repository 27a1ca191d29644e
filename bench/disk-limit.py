#!/usr/bin/env python3
"""disk-limit: write BYTES of data into the new file OUT and make them durable, as fast as the disk allows.

usage: python3 bench/disk-limit.py OUT BYTES [--at-end]

The physical limit bench/copy.mjs --sync-cost sets against fcp: a tree's bytes on stable
storage, with no source to read and no files, directories or metadata to create. The
data is an 8 MiB block of random bytes (so no layer below can compress or deduplicate it),
changed in one byte per piece, written from memory into one file:

  default   writeback of each 8 MiB is started as soon as it is written (sync_file_range
            WRITE) and the piece two steps behind is waited for, so the device writes while
            the next pieces are written and few pages are ever dirty; fdatasync at the end
  --at-end  everything written first, then one fdatasync (as dd conv=fdatasync)

No tool copying these bytes onto this disk durably can be faster than the faster of the two.
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
    at_end = "--at-end" in argv
    args = [a for a in argv if a != "--at-end"]
    if len(args) != 2 or not args[1].isdigit():
        print(__doc__, file=sys.stderr)
        return 2
    out, total = args[0], int(args[1])
    block = bytearray(os.urandom(STEP))
    fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    off = 0
    while off < total:
        n = min(STEP, total - off)
        block[0] = (block[0] + 1) & 0xFF  # every piece differs from the last
        view = memoryview(block)[:n]
        while view:
            view = view[os.write(fd, view):]
        if not at_end:
            sync_range(fd, off, n, WRITE)
            if off >= 2 * STEP:
                sync_range(fd, off - 2 * STEP, STEP, WAIT_BEFORE | WRITE | WAIT_AFTER)
        off += n
    os.fdatasync(fd)
    os.close(fd)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
