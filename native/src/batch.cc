// Batched per-file work on the libuv thread pool.
//
// Why: trees of many small files are decided by per-file overhead. Each Node fs call
// costs a promise, a thread-pool round trip and several microseconds of main-thread time;
// a small file needs about ten of them (open, read, write, close, chown, chmod, xattrs,
// times...). Doing a whole batch of files (or of lstats) in one worker costs one round
// trip per batch, runs at syscall speed, and several batches run in parallel on the pool.
// For the same reason the batch computes fsum's digests itself (hashing on): per file,
// three SHA-256s and 128-bit sums cost ~10 us of main-thread JS (BigInt, node:crypto, GC)
// but well under 1 us here, off the main thread.
//
//   copyFiles(roots: Buffer[] /* src0, dst0, src1, dst1, ...: one pair per root */,
//             rels: Buffer[] /* per file: path relative to its root, '' for the root itself */,
//             nums: Float64Array /* 10 per file: root index, size, mode, uid, gid, atimeSec,
//             atimeNsec, mtimeSec, mtimeNsec, blocks (st_blocks from the walk, -1 unknown) */,
//             flags: number, cursor?: Int32Array /* length 1, starting at 0 */, layout?: Buffer)
//     -> Promise<{ status: Float64Array /* 3 per file: -errno or 0, op, holeBytes */,
//                  digests: Buffer /* 16 per file */, entrySum: Buffer /* 16 */,
//                  layoutErrors: Float64Array /* 1 per file: -errno when DST refused its layout */ }>
//     cursor: before file i the worker moves it from i to i+1 (compare-and-swap), so JS
//     sees which file the batch is on (cursor - 1); JS may swap in -1 to take the files
//     not yet started (a file hung in the file system must not hold back the others):
//     the worker then stops, and those files get status -ECANCELED.
//     Paths are joined here as src/paths.ts joinPath does (root + '/' + rel, just the root
//     when rel is empty), so JS builds no path Buffers for files that copy fine.
//     flags (F_* in constants.h): CHOWN, XATTRS, SPARSE keep holes (skip all-zero 4 KiB blocks, and look
//     for holes with SEEK_DATA in files whose blocks do not cover their size), HASH,
//     UPDATE (skip a destination that is a regular file of the same size and mtime:
//     status 0, op OP_UP_TO_DATE),
//     WRITEBACK (start writing files of 1 MiB or more back at once),
//     LAYOUT (--layout copy, see layout.h: the destination is opened
//     with O_LOV_DELAY_CREATE and gets the source's `layout` attribute before its first
//     write; refused, the file is still copied and layoutErrors says why). The attribute
//     named `layout` (and Lustre's) is never copied with the other xattrs.
//     Hashing: digests holds each file's content digest (src/checksum/hasher.ts: sizeTerm
//     plus the sum of its leaf terms, 128-bit big-endian), zeros for files that failed or
//     were up to date; entrySum is the sum mod 2^128 of the entry digests
//     (src/checksum/entry-digest.ts: kind 'f', no metadata, root index, rel, size,
//     content) of the files copied, up-to-date ones left out. Without hashing both are zeros.
//   copyChunk(src, dst, off, len, flags) -> Promise<{ status: Float64Array [-errno, op, holes],
//             partial: Buffer /* 16: sum of the terms of the leaves in [off, off+len) */ }>
//   statAt(dir: Buffer, names: Buffer[] | Buffer /* or packed, each NUL-terminated */) -> Promise<Float64Array /* 15 per name */>
//     -errno or 0, mode, uid, gid, size, nlink, devHi, devLo, inoHi, inoLo, atimeS, atimeNs, mtimeS, mtimeNs,
//     blocks (st_blocks, 512-byte units)
//     The directory is opened with O_NOFOLLOW|O_DIRECTORY and names are stat'ed relative to it
//     (fstatat, AT_SYMLINK_NOFOLLOW): a directory swapped for a symlink is not followed.
//   scanDir(dir: Buffer, maxNames) -> Promise<{ names, stats, fd }>: open + getdents64 + lstat
//     of a directory's first names in one job (see ScanDirWorker)
//   sha256(data: Uint8Array) -> Buffer: the SHA-256 used above, exported for tests.
//   hashRange([anchor,] path, off, len) -> Promise<{ status: Float64Array [-errno, op], partial: Buffer }>
//     fsum's partial digest of a range (see HashRangeWorker)
//   hashFiles(anchors: Int32Array, paths: Buffer[], sizes: Float64Array[, digestRoots: Int32Array, rels: Buffer[]])
//     -> Promise<{ status: Float64Array, digests: Buffer[, entries: Buffer] }>: fsum's content (and entry)
//     digests of whole files (HashFilesWorker)

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#ifndef _FILE_OFFSET_BITS
#define _FILE_OFFSET_BITS 64
#endif

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <initializer_list>
#include <string>
#include <vector>

#include <napi.h>

#include "beneath.h"
#include "constants.h"
#include "layout.h"
#include "sha256.h"
#include "xattrs.h"

namespace {

using fcp::PutU32BE;
using fcp::PutU64BE;
using fcp::Sha256;
using fcp::U128;
// The table shared with TypeScript (constants.h): OP_*, F_*, ERR_*, kCopyNums, kStatFields...
using namespace fcp;

// ----- XXH64 (same algorithm and output as xxhash-wasm's h64) -----------------------

constexpr uint64_t P1 = 0x9E3779B185EBCA87ULL, P2 = 0xC2B2AE3D27D4EB4FULL, P3 = 0x165667B19E3779F9ULL,
                   P4 = 0x85EBCA77C2B2AE63ULL, P5 = 0x27D4EB2F165667C5ULL;
inline uint64_t rotl(uint64_t x, int r) { return (x << r) | (x >> (64 - r)); }
inline uint64_t rd64(const unsigned char* p) { uint64_t v; memcpy(&v, p, 8); return v; }
inline uint32_t rd32(const unsigned char* p) { uint32_t v; memcpy(&v, p, 4); return v; }
inline uint64_t round1(uint64_t acc, uint64_t in) { acc += in * P2; acc = rotl(acc, 31); return acc * P1; }
inline uint64_t merge(uint64_t acc, uint64_t v) { acc ^= round1(0, v); return acc * P1 + P4; }

uint64_t xxh64(const unsigned char* p, size_t len, uint64_t seed) {
  const unsigned char* end = p + len;
  uint64_t h;
  if (len >= 32) {
    uint64_t v1 = seed + P1 + P2, v2 = seed + P2, v3 = seed, v4 = seed - P1;
    const unsigned char* limit = end - 32;
    do {
      v1 = round1(v1, rd64(p)); v2 = round1(v2, rd64(p + 8));
      v3 = round1(v3, rd64(p + 16)); v4 = round1(v4, rd64(p + 24));
      p += 32;
    } while (p <= limit);
    h = rotl(v1, 1) + rotl(v2, 7) + rotl(v3, 12) + rotl(v4, 18);
    h = merge(h, v1); h = merge(h, v2); h = merge(h, v3); h = merge(h, v4);
  } else {
    h = seed + P5;
  }
  h += (uint64_t)len;
  while (p + 8 <= end) { h ^= round1(0, rd64(p)); h = rotl(h, 27) * P1 + P4; p += 8; }
  if (p + 4 <= end) { h ^= (uint64_t)rd32(p) * P1; h = rotl(h, 23) * P2 + P3; p += 4; }
  while (p < end) { h ^= (*p) * P5; h = rotl(h, 11) * P1; p++; }
  h ^= h >> 33; h *= P2; h ^= h >> 29; h *= P3; h ^= h >> 32;
  return h;
}

// ----- fsum's digests (src/checksum/hasher.ts and entry-digest.ts are the spec) -----------

/** leafTerm(i, leaf) = first 16 bytes of sha256(u64be(i) || u64be(xxh64(leaf))). */
U128 leafTerm(uint64_t index, uint64_t xxh) {
  unsigned char b[16];
  PutU64BE(b, index);
  PutU64BE(b + 8, xxh);
  Sha256 h;
  h.Update(b, sizeof b);
  return fcp::First128(h);
}

/** sizeTerm(size) = first 16 bytes of sha256("fsum-size" || u64be(size)). */
U128 sizeTerm(uint64_t size) {
  unsigned char b[8];
  PutU64BE(b, size);
  Sha256 h;
  h.Update("fsum-size", 9);
  h.Update(b, sizeof b);
  return fcp::First128(h);
}

/**
 * A regular file's entry digest without --meta: sha256 over "fsum-entry-1\0", u8 flags 0,
 * u32 root, u32 length + the path relative to the root, 'f', u64 size, 16 bytes content.
 */
U128 fileEntryDigest(uint32_t root, const std::string& rel, uint64_t size, const U128& content) {
  static const char kTag[] = "fsum-entry-1";  // + its terminating NUL, part of the tag
  unsigned char head[1 + 4 + 4];
  head[0] = 0;
  PutU32BE(head + 1, root);
  PutU32BE(head + 5, (uint32_t)rel.size());
  unsigned char tail[1 + 8 + 16];
  tail[0] = 'f';
  PutU64BE(tail + 1, size);
  content.Store(tail + 9);
  Sha256 h;
  h.Update(kTag, sizeof kTag);
  h.Update(head, sizeof head);
  h.Update(rel.data(), rel.size());
  h.Update(tail, sizeof tail);
  return fcp::First128(h);
}

// ----- copying one file ----------------------------------------------------------------

constexpr size_t kBuf = kLeafBytes;  // one hash leaf; also the I/O size
constexpr size_t kBlock = 4096;    // hole granularity
// F_WRITEBACK: written data is handed to writeback in steps of this much, as it is written
// (a chunk or a large file is not left dirty until its end: the device writes while the
// copy goes on, and the dirty pages stay few).
constexpr int64_t kWritebackStep = 8 << 20;
// Ops (OP_*), flags (F_*), fcp's errnos (ERR_*), kCopyNums, kStatFields: constants.h.
constexpr int F_DENSE = 1 << 16;  // internal, never passed in: this file has no holes (see copyOne)
static_assert((F_DENSE & (F_CHOWN | F_XATTRS | F_SPARSE | F_HASH | F_UPDATE | F_WRITEBACK | F_REPORT | F_LAYOUT)) == 0, "F_DENSE is a flag of its own");

struct FileJob {
  uint32_t root;
  std::string rel;  // relative to the root; '' is the root itself
  int64_t size;
  uint32_t mode, uid, gid;
  int64_t as, ans, ms, mns;
  int64_t blocks;  // st_blocks when the walk saw the file, -1 unknown
  int err = 0;
  int op = OP_NONE;
  int64_t holes = 0;
  U128 content;  // F_HASH: the sum of its leaf terms while copying, then + sizeTerm
  int layoutErr = 0;  // F_LAYOUT: -errno when DST refused the source's layout (copied with its default)
};

/** src/paths.ts joinPath: parent + '/' + name, without a doubled slash; either may be empty. */
void joinPath(std::string& out, const std::string& parent, const std::string& name) {
  if (parent.empty()) { out = name; return; }
  out = parent;
  if (name.empty()) return;
  if (parent.back() != '/') out += '/';
  out += name;
}

bool allZero(const char* p, size_t n) {
  static const char zero[kBlock] = {0};
  return memcmp(p, zero, n) == 0;
}

int writeAll(int fd, const char* p, size_t n, int64_t off) {
  while (n > 0) {
    ssize_t w = pwrite(fd, p, n, off);
    if (w < 0) { if (errno == EINTR) continue; return -errno; }
    p += w; n -= (size_t)w; off += w;
  }
  return 0;
}

/**
 * Give the new, empty dfd the layout of sfd (attribute `name`) before its first byte: 0,
 * or -errno when the destination refuses it. A source without one sets nothing.
 */
int copyLayout(int sfd, int dfd, const std::string& name) {
  std::vector<char> value;
  ssize_t v = fcp::GetXattr(fcp::XattrFile(sfd, false), name.c_str(), &value);
  if (v < 0) return 0;  // ENODATA, ENOTSUP: no layout to copy; the destination's default applies
  return fcp::XattrFile(dfd, false).Set(name.c_str(), value.data(), (size_t)v) < 0 ? -errno : 0;
}

/** XXH64 of `n` zero bytes (a hole leaf), for the two sizes that occur: a full leaf, or the last one. */
uint64_t zeroLeafHash(size_t n) {
  static const std::vector<unsigned char> zeros(kBuf, 0);
  static const uint64_t full = xxh64(zeros.data(), kBuf, 0);
  return n == kBuf ? full : xxh64(zeros.data(), n, 0);
}

/**
 * Copy [off, off+len) of sfd to the same offsets of dfd in leaf-sized pieces: read, hash
 * the leaf (F_HASH: its term is added to `sum`), write runs of non-zero 4 KiB blocks
 * (F_SPARSE: zero blocks and whole-leaf holes found with SEEK_DATA are not written, so
 * they stay holes; the caller gives the destination its size). Holes are hashed as the
 * zeros they read as. With F_HASH off0 must be a multiple of kBuf: pieces are then leaves,
 * piece k being leaf off0 / kBuf + k. With F_WRITEBACK, every kWritebackStep written is handed
 * to writeback at once (see startWriteback); the caller hands over the rest.
 */
void copyData(int sfd, int dfd, int64_t off0, int64_t len, int flags, std::vector<char>& buf, U128& sum,
              int64_t& holes, bool& skipped, int& err, int& op, bool* atEof = nullptr) {
  auto fail = [&](int e, int o) { if (!err) { err = e; op = o; } };
  int64_t end = off0 + len;
  int64_t nextData = -1;  // where SEEK_DATA said data resumes (sparse sources)
  int64_t wbFrom = off0;  // F_WRITEBACK: what is written from here on was not handed to writeback yet
  for (int64_t off = off0; off < end && !err;) {
    size_t want = (size_t)std::min<int64_t>((int64_t)kBuf, end - off);
    if ((flags & F_SPARSE) && !(flags & F_DENSE)) {
      if (nextData < off) {
        off_t d = lseek(sfd, off, SEEK_DATA);
        nextData = d >= 0 ? (int64_t)d : (errno == ENXIO ? end : off);  // EINVAL etc.: treat as data
      }
      if (nextData >= off + (int64_t)want) {
        // A whole leaf of hole: nothing to read or write.
        if (flags & F_HASH) sum += leafTerm((uint64_t)off / kBuf, zeroLeafHash(want));
        holes += (int64_t)want;
        skipped = true;
        off += (int64_t)want;
        continue;
      }
    }
    // atEof: the last piece asks for one byte more, so its read also tells whether the
    // file ends where the walk saw it end (a short read of a regular file is its end):
    // one read instead of a second probe per small file.
    size_t ask = want + (atEof && off + (int64_t)want == end && want < buf.size() ? 1 : 0);
    size_t got = 0;
    while (got < want) {
      ssize_t r = pread(sfd, buf.data() + got, ask - got, off + (int64_t)got);
      if (r < 0) { if (errno == EINTR) continue; fail(-errno, OP_READ); break; }
      if (r == 0) { fail(ERR_SHRANK, OP_CHANGED); break; }
      got += (size_t)r;
    }
    if (err) break;
    if (got > want) { fail(ERR_GREW, OP_CHANGED); break; }
    if (ask > want) *atEof = true;
    if (flags & F_HASH) sum += leafTerm((uint64_t)off / kBuf, xxh64(reinterpret_cast<unsigned char*>(buf.data()), got, 0));
    if (flags & F_SPARSE) {
      // Write runs of non-zero 4 KiB blocks; skip all-zero ones (they stay holes).
      size_t runStart = 0;
      bool inRun = false;
      for (size_t b = 0; b < got; b += kBlock) {
        size_t n = std::min(kBlock, got - b);
        bool zero = n == kBlock && allZero(buf.data() + b, n);
        if (zero) {
          holes += (int64_t)n;
          skipped = true;
          if (inRun) { int e = writeAll(dfd, buf.data() + runStart, b - runStart, off + (int64_t)runStart); if (e) { fail(e, OP_WRITE); break; } inRun = false; }
        } else if (!inRun) { runStart = b; inRun = true; }
      }
      if (inRun && !err) { int e = writeAll(dfd, buf.data() + runStart, got - runStart, off + (int64_t)runStart); if (e) fail(e, OP_WRITE); }
    } else {
      int e = writeAll(dfd, buf.data(), got, off);
      if (e) fail(e, OP_WRITE);
    }
    off += (int64_t)got;
    if ((flags & F_WRITEBACK) && !err && off - wbFrom >= kWritebackStep) {
      sync_file_range(dfd, wbFrom, off - wbFrom, SYNC_FILE_RANGE_WRITE);  // a hint: errors surface at the syncs
      wbFrom = off;
    }
  }
}

// F_WRITEBACK: start writing what was just written to the disk or servers now, without
// waiting (sync_file_range WRITE), so the checkpoint's syncfs finds less left to write and
// the device works while the copy goes on. Files of kWritebackMin or more only: a call per
// small file was tried on a local disk and made a durable copy of 20,000 small files on
// ext4 about 20 % slower (alternated runs), and on a network file system each would be a
// write RPC of its own, where the sync's pass batches them.
constexpr int64_t kWritebackMin = 1 << 20;
void startWriteback(int fd, int64_t size, int flags) {
  if ((flags & F_WRITEBACK) && size >= kWritebackMin) {
    sync_file_range(fd, 0, 0, SYNC_FILE_RANGE_WRITE);  // a hint: errors surface at the syncs
  }
}

/**
 * Open p: beneath the directory fd `anchor` without following any symlink in it
 * (fcp::OpenBeneath: openat2, one system call), or, anchor -1 (the path form kept for
 * tests and benches), p as a whole with O_NOFOLLOW. Returns the fd or -errno.
 */
int openSide(int anchor, const std::string& p, int flags, mode_t mode = 0) {
  if (anchor >= 0) return fcp::OpenBeneath(anchor, p.c_str(), flags, mode);
  int fd = open(p.c_str(), flags | O_NOFOLLOW | O_CLOEXEC, mode);
  return fd < 0 ? -errno : fd;
}

/** Open a source for reading, with O_NOATIME where allowed (it needs ownership). */
int openSource(int anchor, const std::string& p) {
  int fd = openSide(anchor, p, O_RDONLY | O_NOATIME);
  return fd == -EPERM ? openSide(anchor, p, O_RDONLY) : fd;
}

/** lstat p (beneath anchor when >= 0, never following a symlink). */
int lstatSide(int anchor, const std::string& p, struct stat* st) {
  if (anchor < 0) return lstat(p.c_str(), st) < 0 ? -errno : 0;
  int fd = fcp::OpenBeneath(anchor, p.c_str(), O_PATH);
  if (fd < 0) return fd;
  int r = fstat(fd, st) < 0 ? -errno : 0;
  close(fd);
  return r;
}

/**
 * Did the create already give the new file the source's owner and mode? Then its chown and
 * chmod are useless requests (on a parallel file system each is a round trip; FUSE sends a
 * getattr before a chown, so two). Root creating a file for a root:root source, the file
 * is usually root:root already, and at umask 0 its mode is the create mode, (mode & 0777) |
 * 0200, which is the source's unless that lacks owner write or has setuid/setgid/sticky.
 * Asked of the file itself, not worked out from euid, umask and the parent: a setgid
 * parent, a grpid mount, a squashing server, a default ACL or a FUSE daemon may each decide
 * otherwise, and a wrong guess would be a wrong owner or mode in DST. Asked right after the
 * create and before any write, for the owner and mode only: FUSE answers from the
 * attributes the create returned (no request; a write or setxattr would invalidate them),
 * and a Lustre client needs no size glimpse for it. Failing, both stay false: chown and
 * chmod as always.
 */
void createdRight(int fd, const FileJob& j, bool* ownerRight, bool* modeRight) {
  struct statx sx;
  if (statx(fd, "", AT_EMPTY_PATH, STATX_UID | STATX_GID | STATX_MODE, &sx) < 0) return;
  if ((sx.stx_mask & (STATX_UID | STATX_GID)) == (STATX_UID | STATX_GID)) *ownerRight = sx.stx_uid == j.uid && sx.stx_gid == j.gid;
  if (sx.stx_mask & STATX_MODE) *modeRight = (sx.stx_mode & 07777) == (j.mode & 07777);
}

void copyOne(FileJob& j, int srcAnchor, const std::string& src, int dstAnchor, const std::string& dst, int flags, const std::string& layout, std::vector<char>& buf) {
  if (flags & F_UPDATE) {
    // --update: a regular file of the same size and mtime (to the ns) is left alone, unread.
    struct stat ds;
    if (lstatSide(dstAnchor, dst, &ds) == 0 && S_ISREG(ds.st_mode) && ds.st_size == j.size && ds.st_mtim.tv_sec == j.ms && ds.st_mtim.tv_nsec == j.mns) {
      j.op = OP_UP_TO_DATE;
      return;
    }
  }
  int sfd = openSource(srcAnchor, src);
  if (sfd < 0) { j.err = sfd; j.op = OP_OPEN_SRC; return; }
  // O_EXCL first (the same one call for a new file), and only an existing one is opened a
  // second time to truncate it: --report tells new files from replaced ones by it, and a
  // file this call created may be spared its chown and chmod (createdRight).
  bool replaced = false;
  int dfd = openSide(dstAnchor, dst, O_WRONLY | O_CREAT | O_EXCL | ((flags & F_LAYOUT) ? fcp::kLovDelayCreate : 0), (j.mode & 0777) | 0200);
  bool created = dfd >= 0;
  if (dfd == -EEXIST) {
    replaced = (flags & F_REPORT) != 0;
    dfd = openSide(dstAnchor, dst, O_WRONLY | O_CREAT | O_TRUNC | ((flags & F_LAYOUT) ? fcp::kLovDelayCreate : 0), (j.mode & 0777) | 0200);
  }
  if (dfd < 0) { j.err = dfd; j.op = OP_OPEN_DST; close(sfd); return; }
  bool ownerRight = false, modeRight = false;
  if (created) createdRight(dfd, j, &ownerRight, &modeRight);
  // --layout copy: on the file without objects yet, before any write (Lustre ignores a
  // layout set later). Refused (a pool DST lacks): the data goes on with DST's default.
  if (flags & F_LAYOUT) j.layoutErr = copyLayout(sfd, dfd, layout);
  auto fail = [&](int e, int op) { if (!j.err) { j.err = e; j.op = op; } };
  bool skipped = false, atEof = false;
  // Holes are looked for only where there may be some, as cp does: in a file whose blocks
  // do not cover its size (a whole-file hole, or any, needs fewer blocks than bytes/512).
  // A dense file saves its SEEK_DATA; its zero blocks are still not written.
  int dataFlags = j.blocks >= 0 && j.blocks * 512 >= j.size ? (flags | F_DENSE) : flags;
  copyData(sfd, dfd, 0, j.size, dataFlags, buf, j.content, j.holes, skipped, j.err, j.op, &atEof);
  if (!j.err && !atEof) {
    // Grown since the walk? One more read tells (a file is copied as it was when stat'ed),
    // unless the last read already did.
    char c;
    ssize_t r = pread(sfd, &c, 1, j.size);
    if (r > 0) fail(ERR_GREW, OP_CHANGED);
  }
  if (!j.err && skipped && ftruncate(dfd, j.size) < 0) fail(-errno, OP_TRUNCATE);
  if (!j.err && j.size > 0) startWriteback(dfd, j.size, flags);
  if (!j.err && (flags & F_CHOWN) && !ownerRight && fchown(dfd, j.uid, j.gid) < 0) fail(-errno, OP_CHOWN);
  if (!j.err && (flags & F_XATTRS)) { int e = fcp::CopyXattrs(fcp::XattrFile(sfd, false), fcp::XattrFile(dfd, false), false, layout); if (e) fail(e, OP_XATTR); }
  if (!j.err && !modeRight && fchmod(dfd, j.mode & 07777) < 0) fail(-errno, OP_CHMOD);
  if (!j.err) {
    struct timespec ts[2];
    ts[0].tv_sec = (time_t)j.as; ts[0].tv_nsec = (long)j.ans;
    ts[1].tv_sec = (time_t)j.ms; ts[1].tv_nsec = (long)j.mns;
    if (futimens(dfd, ts) < 0) fail(-errno, OP_UTIMES);
  }
  if (close(dfd) < 0) fail(-errno, OP_CLOSE);  // NFS reports write errors here
  close(sfd);
  if (!j.err && replaced) j.op = OP_REPLACED;
}

bool bytesOf(Napi::Value v, std::string* out) {
  if (!v.IsTypedArray()) return false;
  Napi::Uint8Array a = v.As<Napi::Uint8Array>();
  out->assign(reinterpret_cast<const char*>(a.Data()), a.ByteLength());
  return out->find('\0') == std::string::npos;
}

/** Has a '..' component (src/walk/entry.ts hasDotDot without the leading-slash test). */
bool hasDotDot(const std::string& p) {
  for (size_t k = 0; k < p.size();) {
    size_t e = p.find('/', k);
    if (e == std::string::npos) e = p.size();
    if (e - k == 2 && p[k] == '.' && p[k + 1] == '.') return true;
    k = e + 1;
  }
  return false;
}

/** An integer in [lo, hi] (NaN and fractions fail), safe to cast to int64_t. */
bool isInt(double d, double lo, double hi) { return d >= lo && d <= hi && d == std::trunc(d); }

/**
 * The directory of the files being copied, opened once (O_PATH, beneath the anchor) for a
 * run of files in it, so that each file's open resolves its own name only. Resolving the
 * whole path from the anchor for every file made the kernel look the directories on the
 * way up again whenever its name cache had expired (on FUSE after entry_timeout; a
 * parallel file system's client after losing a lock): requests shared by no file.
 */
class ParentDir {
 public:
  ~ParentDir() { if (fd_ >= 0) close(fd_); }
  /**
   * The fd to resolve `name` beneath for path `p` beneath `anchor`: the parent's, or the
   * anchor itself with the whole path (no parent, the path form, or a parent that did
   * not open: the file's own open then fails as it always did).
   */
  int At(int anchor, const std::string& p, std::string& name) {
    size_t slash = p.rfind('/');
    if (anchor < 0 || slash == std::string::npos || slash == 0) { name = p; return anchor; }
    if (!tried_ || anchor != anchor_ || dir_.size() != slash || p.compare(0, slash, dir_) != 0) {
      if (fd_ >= 0) close(fd_);
      dir_.assign(p, 0, slash);
      anchor_ = anchor;
      tried_ = true;
      fd_ = fcp::OpenBeneath(anchor, dir_.c_str(), O_PATH | O_DIRECTORY);
      if (fd_ < 0) fd_ = -1;
    }
    if (fd_ < 0) { name = p; return anchor; }
    name.assign(p, slash + 1, std::string::npos);
    return fd_;
  }

 private:
  std::string dir_;
  int anchor_ = -1, fd_ = -1;
  bool tried_ = false;
};

class CopyFilesWorker : public Napi::AsyncWorker {
 public:
  CopyFilesWorker(Napi::Env env, std::vector<int>&& anchors, std::vector<std::string>&& roots, std::vector<FileJob>&& jobs, int flags, std::string&& layout)
      : Napi::AsyncWorker(env, "fcp:copyFiles"), deferred_(Napi::Promise::Deferred::New(env)), anchors_(std::move(anchors)), roots_(std::move(roots)),
        jobs_(std::move(jobs)), flags_(flags), layout_(std::move(layout)) {}
  Napi::Promise Promise() { return deferred_.Promise(); }

  /** The shared cursor (see copyFiles' header comment); kept alive while the job runs. */
  void SetCursor(Napi::Int32Array cursor) {
    cursorRef_ = Napi::Persistent(cursor.As<Napi::Object>());
    cursor_ = cursor.Data();
  }

  void Execute() override {
    // One buffer per pool thread for the process's life: a fresh one per batch cost a
    // zero-fill and page faults of kBuf bytes (a few µs a file in batches of small files).
    thread_local std::vector<char> buf(kBuf);
    std::string src, dst, srcName, dstName;
    ParentDir srcDir, dstDir;
    for (size_t i = 0; i < jobs_.size(); i++) {
      auto& j = jobs_[i];
      // Claim file i (cursor i -> i+1) unless JS took the rest of the batch (cursor -1):
      // a file hung in the kernel must not hold back the files after it.
      if (cursor_) {
        int32_t expect = (int32_t)i;
        if (!__atomic_compare_exchange_n(cursor_, &expect, (int32_t)i + 1, false, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST)) {
          for (size_t k = i; k < jobs_.size(); k++) { jobs_[k].err = -ECANCELED; jobs_[k].op = OP_NONE; }
          break;
        }
      }
      joinPath(src, roots_[2 * j.root], j.rel);
      joinPath(dst, roots_[2 * j.root + 1], j.rel);
      // Beneath the roots' anchors (no symlink followed in any component), or by whole path.
      int sa = anchors_.empty() ? -1 : anchors_[2 * j.root], da = anchors_.empty() ? -1 : anchors_[2 * j.root + 1];
      sa = srcDir.At(sa, src, srcName);
      da = dstDir.At(da, dst, dstName);
      copyOne(j, sa, srcName, da, dstName, flags_, layout_, buf);
      if (!(flags_ & F_HASH)) continue;
      if (j.err || j.op == OP_UP_TO_DATE) { j.content = U128(); continue; }  // not read: no digest
      j.content += sizeTerm((uint64_t)j.size);
      entrySum_ += fileEntryDigest(j.root, j.rel, (uint64_t)j.size, j.content);
    }
  }

  void OnOK() override {
    Napi::Env env = Env();
    Napi::HandleScope scope(env);
    size_t n = jobs_.size();
    Napi::Float64Array status = Napi::Float64Array::New(env, n * 3);
    Napi::Buffer<unsigned char> digests = Napi::Buffer<unsigned char>::New(env, n * 16);
    Napi::Float64Array layoutErrors = Napi::Float64Array::New(env, n);
    for (size_t i = 0; i < n; i++) {
      auto& j = jobs_[i];
      layoutErrors[i] = j.layoutErr;
      status[i * 3] = j.err;
      status[i * 3 + 1] = j.op;
      status[i * 3 + 2] = (double)j.holes;
      j.content.Store(digests.Data() + i * 16);
    }
    Napi::Buffer<unsigned char> entrySum = Napi::Buffer<unsigned char>::New(env, 16);
    entrySum_.Store(entrySum.Data());
    Napi::Object out = Napi::Object::New(env);
    out.Set("status", status);
    out.Set("digests", digests);
    out.Set("entrySum", entrySum);
    out.Set("layoutErrors", layoutErrors);
    deferred_.Resolve(out);
  }

 private:
  Napi::Promise::Deferred deferred_;
  std::vector<int> anchors_;        // srcFd0, dstFd0, ...; empty: roots_ are whole paths
  std::vector<std::string> roots_;  // src0, dst0, src1, dst1, ...: paths beneath the anchors
  std::vector<FileJob> jobs_;
  int flags_;
  std::string layout_;  // the layout attribute's name (layout.h): set at create with F_LAYOUT, never after the data
  U128 entrySum_;
  Napi::ObjectReference cursorRef_;
  int32_t* cursor_ = nullptr;
};

Napi::Value CopyFiles(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto fail = [&](const char* msg, bool range = false) {
    if (range) Napi::RangeError::New(env, msg).ThrowAsJavaScriptException();
    else Napi::TypeError::New(env, msg).ThrowAsJavaScriptException();
    return env.Undefined();
  };
  // copyFiles(anchors: Int32Array, roots, rels, nums, flags): roots relative to the anchors;
  // copyFiles(roots, rels, nums, flags): roots are whole paths (tests, benches).
  std::vector<int> anchors;
  size_t a0 = 0;
  if (info.Length() > 0 && info[0].IsTypedArray() && info[0].As<Napi::TypedArray>().TypedArrayType() == napi_int32_array) {
    Napi::Int32Array fds = info[0].As<Napi::Int32Array>();
    for (size_t i = 0; i < fds.ElementLength(); i++) {
      if (fds[i] < 0) return fail("copyFiles: anchors must be open directory fds");
      anchors.push_back(fds[i]);
    }
    a0 = 1;
  }
  if (info.Length() < a0 + 4 || !info[a0].IsArray() || !info[a0 + 1].IsArray() || !info[a0 + 2].IsTypedArray() || !info[a0 + 3].IsNumber()) {
    return fail("copyFiles([anchors: Int32Array,] roots: Buffer[], rels: Buffer[], nums: Float64Array, flags: number)");
  }
  Napi::Array rootArr = info[a0].As<Napi::Array>();
  Napi::Array rels = info[a0 + 1].As<Napi::Array>();
  Napi::TypedArray ta = info[a0 + 2].As<Napi::TypedArray>();
  if (a0 && anchors.size() != rootArr.Length()) return fail("copyFiles: one anchor per root path");
  size_t n = rels.Length();
  if (rootArr.Length() % 2 != 0) return fail("copyFiles: roots come in pairs (src, dst)");
  if (ta.TypedArrayType() != napi_float64_array || ta.ElementLength() != n * (size_t)kCopyNums) return fail("copyFiles: 10 numbers per file");
  size_t nRoots = rootArr.Length() / 2;
  std::vector<std::string> roots(rootArr.Length());
  for (uint32_t i = 0; i < rootArr.Length(); i++) {
    if (!bytesOf(rootArr.Get(i), &roots[i])) return fail("copyFiles: roots must be Buffers without NUL bytes");
    if (a0 && ((!roots[i].empty() && roots[i][0] == '/') || hasDotDot(roots[i]))) return fail("copyFiles: roots beneath anchors must be relative, without '..'");
  }
  Napi::Float64Array nums = ta.As<Napi::Float64Array>();
  std::vector<FileJob> jobs(n);
  for (size_t i = 0; i < n; i++) {
    FileJob& j = jobs[i];
    if (!bytesOf(rels.Get(i), &j.rel)) return fail("copyFiles: relative paths must be Buffers without NUL bytes");
    // What the walk produces and isEntry() accepts from peers: never absolute, no '..'.
    if (!j.rel.empty() && j.rel[0] == '/') return fail("copyFiles: relative paths must not start with '/'");
    if (hasDotDot(j.rel)) return fail("copyFiles: relative paths must not have '..' components");
    const double* v = nums.Data() + i * kCopyNums;
    constexpr double kMaxSafe = 9007199254740991.0, kU32 = 4294967295.0;
    if (!isInt(v[0], 0, (double)nRoots - 1)) return fail("copyFiles: root index out of range", true);
    if (!isInt(v[1], 0, kMaxSafe) || !isInt(v[2], 0, kU32) || !isInt(v[3], 0, kU32) || !isInt(v[4], 0, kU32) ||
        !isInt(v[5], -kMaxSafe, kMaxSafe) || !isInt(v[6], 0, 999999999) || !isInt(v[7], -kMaxSafe, kMaxSafe) || !isInt(v[8], 0, 999999999) ||
        !isInt(v[9], -1, kMaxSafe)) {
      return fail("copyFiles: size, mode, ids, seconds, nanoseconds or blocks out of range", true);
    }
    j.root = (uint32_t)v[0];
    j.size = (int64_t)v[1]; j.mode = (uint32_t)v[2]; j.uid = (uint32_t)v[3]; j.gid = (uint32_t)v[4];
    j.as = (int64_t)v[5]; j.ans = (int64_t)v[6]; j.ms = (int64_t)v[7]; j.mns = (int64_t)v[8];
    j.blocks = (int64_t)v[9];
  }
  Napi::Int32Array cursor;
  if (info.Length() > a0 + 4 && !info[a0 + 4].IsUndefined()) {
    if (!info[a0 + 4].IsTypedArray() || info[a0 + 4].As<Napi::TypedArray>().TypedArrayType() != napi_int32_array ||
        info[a0 + 4].As<Napi::TypedArray>().ElementLength() != 1) {
      return fail("copyFiles: cursor must be an Int32Array of length 1");
    }
    cursor = info[a0 + 4].As<Napi::Int32Array>();
    if (cursor[0] != 0) return fail("copyFiles: cursor must start at 0", true);
  }
  std::string layout;
  if (info.Length() > a0 + 5 && !info[a0 + 5].IsUndefined() && !bytesOf(info[a0 + 5], &layout)) return fail("copyFiles: layout must be an attribute name (Buffer)");
  int flags = info[a0 + 3].As<Napi::Number>().Int32Value() & 0xffff;
  if ((flags & F_LAYOUT) && layout.empty()) return fail("copyFiles: the layout flag needs the layout attribute's name");
  auto* w = new CopyFilesWorker(env, std::move(anchors), std::move(roots), std::move(jobs), flags, std::move(layout));
  if (!cursor.IsEmpty()) w->SetCursor(cursor);
  Napi::Promise p = w->Promise();
  w->Queue();
  return p;
}

/** What copyChunk and hashRange resolve with: { status: Float64Array, partial: Buffer (16 bytes, big-endian) }. */
Napi::Object statusAndPartial(Napi::Env env, std::initializer_list<double> status, const U128& partial) {
  Napi::Float64Array st = Napi::Float64Array::New(env, status.size());
  size_t i = 0;
  for (double v : status) st[i++] = v;
  Napi::Buffer<unsigned char> p = Napi::Buffer<unsigned char>::New(env, 16);
  partial.Store(p.Data());
  Napi::Object out = Napi::Object::New(env);
  out.Set("status", st);
  out.Set("partial", p);
  return out;
}

// ----- copyChunk: one chunk of a large file, into its part file ---------------------------
// copyChunk(src: Buffer, dst: Buffer, off, len, flags) -> Promise<{ status: Float64Array [err, op, holes],
// partial: Buffer }>. The destination exists (its owner created it with its final size). With
// F_HASH, partial is the sum of the terms of the chunk's leaves (16 bytes big-endian), which
// the file's owner adds up with the other chunks' and the size term; off must then be a
// multiple of the leaf size.

class CopyChunkWorker : public Napi::AsyncWorker {
 public:
  CopyChunkWorker(Napi::Env env, int srcAnchor, std::string&& src, int dstAnchor, std::string&& dst, int64_t off, int64_t len, int flags)
      : Napi::AsyncWorker(env, "fcp:copyChunk"), deferred_(Napi::Promise::Deferred::New(env)), srcAnchor_(srcAnchor), dstAnchor_(dstAnchor),
        src_(std::move(src)), dst_(std::move(dst)), off_(off), len_(len), flags_(flags) {}
  Napi::Promise Promise() { return deferred_.Promise(); }

  void Execute() override {
    int sfd = openSource(srcAnchor_, src_);
    if (sfd < 0) { err_ = sfd; op_ = OP_OPEN_SRC; return; }
    int dfd = openSide(dstAnchor_, dst_, O_WRONLY);
    if (dfd < 0) { err_ = dfd; op_ = OP_OPEN_DST; close(sfd); return; }
    posix_fadvise(sfd, off_, len_, POSIX_FADV_SEQUENTIAL);
    std::vector<char> buf(kBuf);
    bool skipped = false;
    copyData(sfd, dfd, off_, len_, flags_, buf, partial_, holes_, skipped, err_, op_);
    if (!err_ && (flags_ & F_WRITEBACK)) sync_file_range(dfd, off_, len_, SYNC_FILE_RANGE_WRITE);
    // Huge copies: do not let the source's pages crowd out everything else in the cache.
    if (len_ >= (64 << 20)) posix_fadvise(sfd, off_, len_, POSIX_FADV_DONTNEED);
    if (close(dfd) < 0 && !err_) { err_ = -errno; op_ = OP_CLOSE; }
    close(sfd);
  }

  void OnOK() override {
    Napi::Env env = Env();
    Napi::HandleScope scope(env);
    deferred_.Resolve(statusAndPartial(env, {(double)err_, (double)op_, (double)holes_}, partial_));
  }

 private:
  Napi::Promise::Deferred deferred_;
  int srcAnchor_, dstAnchor_;  // -1: src_/dst_ are whole paths
  std::string src_, dst_;
  int64_t off_, len_;
  int flags_;
  int err_ = 0, op_ = OP_NONE;
  int64_t holes_ = 0;
  U128 partial_;
};

Napi::Value CopyChunk(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string src, dst;
  // copyChunk(srcAnchor, src, dstAnchor, dst, off, len, flags) (paths beneath the anchors),
  // or copyChunk(src, dst, off, len, flags) (whole paths).
  bool at = info.Length() > 0 && info[0].IsNumber();
  int sa = -1, da = -1;
  size_t k = at ? 4 : 2;
  bool ok = at ? info.Length() >= 7 && info[2].IsNumber() && bytesOf(info[1], &src) && bytesOf(info[3], &dst)
               : info.Length() >= 5 && bytesOf(info[0], &src) && bytesOf(info[1], &dst);
  if (!ok || !info[k].IsNumber() || !info[k + 1].IsNumber() || !info[k + 2].IsNumber()) {
    Napi::TypeError::New(env, "copyChunk([srcAnchor,] src: Buffer, [dstAnchor,] dst: Buffer, off: number, len: number, flags: number)").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  if (at) {
    sa = info[0].As<Napi::Number>().Int32Value();
    da = info[2].As<Napi::Number>().Int32Value();
    if (sa < 0 || da < 0 || (!src.empty() && src[0] == '/') || (!dst.empty() && dst[0] == '/')) {
      Napi::TypeError::New(env, "copyChunk: anchors are directory fds, paths relative to them").ThrowAsJavaScriptException();
      return env.Undefined();
    }
  }
  int64_t off = info[k].As<Napi::Number>().Int64Value(), len = info[k + 1].As<Napi::Number>().Int64Value();
  if (off < 0 || len < 0) {
    Napi::RangeError::New(env, "copyChunk: negative offset or length").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  int flags = info[k + 2].As<Napi::Number>().Int32Value() & 0xffff;
  if ((flags & F_HASH) && off % (int64_t)kBuf != 0) {
    // Leaf terms are numbered from the file's start: a chunk must start on a leaf.
    Napi::RangeError::New(env, "copyChunk: hashing needs an offset that is a multiple of 1 MiB").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  auto* w = new CopyChunkWorker(env, sa, std::move(src), da, std::move(dst), off, len, flags);
  Napi::Promise p = w->Promise();
  w->Queue();
  return p;
}

// ----- hashRange: fsum's partial digest of a range of one file -----------------------------
// hashRange([anchor,] path: Buffer, off, len) -> Promise<{ status: Float64Array [-errno, op],
// partial: Buffer /* 16: sum of the terms of the leaves in [off, off+len), big-endian */ }>.
// off must be a multiple of the leaf size. Why here and not in JS: fsum's large files were
// read through fs.read (one thread-pool round trip per buffer) and hashed on the main
// thread, so each rank hashed and read in turn; here reading and hashing run together on
// the pool, one job per range, and the main thread only adds up the partials. The leaf is
// read into a buffer reused by the pool thread (no allocation, no page faults per job).
// Errors: OP_OPEN_SRC, OP_READ, OP_CHANGED with ERR_SHRANK when the file ends before off+len.

/** Add the leaf terms of [off0, off0+len) of fd to sum, reading through buf (one leaf). */
void hashFd(int fd, int64_t off0, int64_t len, std::vector<unsigned char>& buf, U128& sum, int& err, int& op) {
  int64_t end = off0 + len;
  for (int64_t off = off0; off < end;) {
    size_t want = (size_t)std::min<int64_t>((int64_t)kBuf, end - off);
    size_t got = 0;
    while (got < want) {
      ssize_t r = pread(fd, buf.data() + got, want - got, off + (int64_t)got);
      if (r < 0) { if (errno == EINTR) continue; err = -errno; op = OP_READ; return; }
      if (r == 0) { err = ERR_SHRANK; op = OP_CHANGED; return; }
      got += (size_t)r;
    }
    sum += leafTerm((uint64_t)off / kBuf, xxh64(buf.data(), got, 0));
    off += (int64_t)got;
  }
}

/** The leaf buffer of this pool thread, kept for its next hashing job. */
std::vector<unsigned char>& leafBuffer() {
  thread_local std::vector<unsigned char> buf(kBuf);
  return buf;
}

class HashRangeWorker : public Napi::AsyncWorker {
 public:
  HashRangeWorker(Napi::Env env, int anchor, std::string&& path, int64_t off, int64_t len)
      : Napi::AsyncWorker(env, "fcp:hashRange"), deferred_(Napi::Promise::Deferred::New(env)), anchor_(anchor),
        path_(std::move(path)), off_(off), len_(len) {}
  Napi::Promise Promise() { return deferred_.Promise(); }

  void Execute() override {
    int fd = openSource(anchor_, path_);
    if (fd < 0) { err_ = fd; op_ = OP_OPEN_SRC; return; }
    posix_fadvise(fd, off_, len_, POSIX_FADV_SEQUENTIAL);
    hashFd(fd, off_, len_, leafBuffer(), partial_, err_, op_);
    close(fd);
  }

  void OnOK() override {
    Napi::Env env = Env();
    Napi::HandleScope scope(env);
    deferred_.Resolve(statusAndPartial(env, {(double)err_, (double)op_}, partial_));
  }

 private:
  Napi::Promise::Deferred deferred_;
  int anchor_;  // -1: path_ is a whole path
  std::string path_;
  int64_t off_, len_;
  int err_ = 0, op_ = OP_NONE;
  U128 partial_;
};

Napi::Value HashRange(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string path;
  bool at = info.Length() > 0 && info[0].IsNumber();
  size_t k = at ? 2 : 1;
  bool ok = info.Length() >= k + 2 && bytesOf(info[k - 1], &path) && info[k].IsNumber() && info[k + 1].IsNumber();
  if (!ok) {
    Napi::TypeError::New(env, "hashRange([anchor,] path: Buffer, off: number, len: number)").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  int anchor = -1;
  if (at) {
    anchor = info[0].As<Napi::Number>().Int32Value();
    if (anchor < 0 || (!path.empty() && path[0] == '/')) {
      Napi::TypeError::New(env, "hashRange: the anchor is a directory fd, the path relative to it").ThrowAsJavaScriptException();
      return env.Undefined();
    }
  }
  int64_t off = info[k].As<Napi::Number>().Int64Value(), len = info[k + 1].As<Napi::Number>().Int64Value();
  if (off < 0 || len < 0 || off % (int64_t)kBuf != 0) {
    // Leaf terms are numbered from the file's start: a range must start on a leaf.
    Napi::RangeError::New(env, "hashRange: the offset must be a non-negative multiple of 1 MiB, the length non-negative").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  auto* w = new HashRangeWorker(env, anchor, std::move(path), off, len);
  Napi::Promise p = w->Promise();
  w->Queue();
  return p;
}

// ----- hashFiles: fsum's content digests of a batch of whole files -------------------------
// hashFiles(anchors: Int32Array /* per file: directory fd, or -1 for a whole path */,
//           paths: Buffer[], sizes: Float64Array)
//   -> Promise<{ status: Float64Array /* 2 per file: -errno or 0, op */, digests: Buffer /* 16 per file */ }>
// Each file's content digest (sizeTerm(size) + its leaf terms, src/checksum/hasher.ts) with
// the size the walk saw; a file that ends sooner fails with ERR_SHRANK (OP_CHANGED). Why: small
// files on local file systems cost fsum ~40 us each of main-thread work (open, read,
// close, xxh64, three SHA-256s in JS); here a batch is one thread-pool job at syscall speed.
// hashFiles(anchors, paths, sizes, digestRoots: Int32Array, rels: Buffer[]) also returns
// entries: Buffer /* 16 per file, zeros where it failed */, each file's entry digest without
// --meta (fileEntryDigest: its root index in the signature, its path relative to the root):
// that SHA-256 in JS (createHash per file) was most of the main thread's time per small file.

class HashFilesWorker : public Napi::AsyncWorker {
 public:
  /** digestRoots and rels empty: no entry digests. */
  HashFilesWorker(Napi::Env env, std::vector<int>&& anchors, std::vector<std::string>&& paths, std::vector<int64_t>&& sizes,
                  std::vector<uint32_t>&& digestRoots, std::vector<std::string>&& rels)
      : Napi::AsyncWorker(env, "fcp:hashFiles"), deferred_(Napi::Promise::Deferred::New(env)), anchors_(std::move(anchors)),
        paths_(std::move(paths)), sizes_(std::move(sizes)), digestRoots_(std::move(digestRoots)), rels_(std::move(rels)),
        status_(paths_.size() * 2, 0), digests_(paths_.size()), entries_(rels_.empty() ? 0 : paths_.size()) {}
  Napi::Promise Promise() { return deferred_.Promise(); }

  void Execute() override {
    std::vector<unsigned char>& buf = leafBuffer();
    for (size_t i = 0; i < paths_.size(); i++) {
      int err = 0, op = OP_NONE;
      int fd = openSource(anchors_[i], paths_[i]);
      if (fd < 0) {
        err = fd;
        op = OP_OPEN_SRC;
      } else {
        U128 sum = sizeTerm((uint64_t)sizes_[i]);
        hashFd(fd, 0, sizes_[i], buf, sum, err, op);
        close(fd);
        if (!err) {
          digests_[i] = sum;
          if (!entries_.empty()) entries_[i] = fileEntryDigest(digestRoots_[i], rels_[i], (uint64_t)sizes_[i], sum);
        }
      }
      status_[2 * i] = err;
      status_[2 * i + 1] = op;
    }
  }

  void OnOK() override {
    Napi::Env env = Env();
    Napi::HandleScope scope(env);
    size_t n = paths_.size();
    Napi::Float64Array status = Napi::Float64Array::New(env, 2 * n);
    for (size_t i = 0; i < 2 * n; i++) status[i] = status_[i];
    Napi::Buffer<unsigned char> digests = Napi::Buffer<unsigned char>::New(env, 16 * n);
    for (size_t i = 0; i < n; i++) digests_[i].Store(digests.Data() + 16 * i);
    Napi::Object out = Napi::Object::New(env);
    out.Set("status", status);
    out.Set("digests", digests);
    if (!entries_.empty()) {
      Napi::Buffer<unsigned char> entries = Napi::Buffer<unsigned char>::New(env, 16 * n);
      for (size_t i = 0; i < n; i++) entries_[i].Store(entries.Data() + 16 * i);
      out.Set("entries", entries);
    }
    deferred_.Resolve(out);
  }

 private:
  Napi::Promise::Deferred deferred_;
  std::vector<int> anchors_;
  std::vector<std::string> paths_;
  std::vector<int64_t> sizes_;
  std::vector<uint32_t> digestRoots_;
  std::vector<std::string> rels_;
  std::vector<double> status_;
  std::vector<U128> digests_;
  std::vector<U128> entries_;
};

Napi::Value HashFiles(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto usage = [&]() {
    Napi::TypeError::New(env, "hashFiles(anchors: Int32Array, paths: Buffer[], sizes: Float64Array[, digestRoots: Int32Array, rels: Buffer[]]), one of each per file").ThrowAsJavaScriptException();
    return env.Undefined();
  };
  if (info.Length() < 3 || !info[0].IsTypedArray() || !info[1].IsArray() || !info[2].IsTypedArray()) return usage();
  if (info[0].As<Napi::TypedArray>().TypedArrayType() != napi_int32_array || info[2].As<Napi::TypedArray>().TypedArrayType() != napi_float64_array) return usage();
  Napi::Int32Array a = info[0].As<Napi::Int32Array>();
  Napi::Array p = info[1].As<Napi::Array>();
  Napi::Float64Array z = info[2].As<Napi::Float64Array>();
  size_t n = p.Length();
  if (a.ElementLength() != n || z.ElementLength() != n) return usage();
  // With entry digests: a signature root index (>= 0) and a path relative to the root per file.
  std::vector<uint32_t> digestRoots;
  std::vector<std::string> rels;
  if (info.Length() > 3 && !info[3].IsUndefined()) {
    if (info.Length() < 5 || !info[3].IsTypedArray() || info[3].As<Napi::TypedArray>().TypedArrayType() != napi_int32_array || !info[4].IsArray()) return usage();
    Napi::Int32Array dr = info[3].As<Napi::Int32Array>();
    Napi::Array r = info[4].As<Napi::Array>();
    if (dr.ElementLength() != n || r.Length() != n) return usage();
    digestRoots.resize(n);
    rels.resize(n);
    for (size_t i = 0; i < n; i++) {
      if (dr[i] < 0 || !bytesOf(r.Get(i), &rels[i])) return usage();
      digestRoots[i] = (uint32_t)dr[i];
    }
  }
  std::vector<int> anchors(n);
  std::vector<std::string> paths(n);
  std::vector<int64_t> sizes(n);
  for (size_t i = 0; i < n; i++) {
    anchors[i] = a[i];
    double size = z[i];
    if (!bytesOf(p.Get(i), &paths[i]) || !(size >= 0 && size <= 9007199254740991.0) || std::floor(size) != size) return usage();
    if (anchors[i] >= 0 && !paths[i].empty() && paths[i][0] == '/') {
      Napi::TypeError::New(env, "hashFiles: paths beneath an anchor are relative to it").ThrowAsJavaScriptException();
      return env.Undefined();
    }
    sizes[i] = (int64_t)size;
  }
  auto* w = new HashFilesWorker(env, std::move(anchors), std::move(paths), std::move(sizes), std::move(digestRoots), std::move(rels));
  Napi::Promise pr = w->Promise();
  w->Queue();
  return pr;
}

// ----- statAt ----------------------------------------------------------------------------


// lstat `name` relative to the directory dfd into o[0..14] (o[0] = -errno on failure).
void statInto(int dfd, const char* name, double* o) {
  struct stat st;
  if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0) { o[0] = -errno; return; }
  uint64_t dev = (uint64_t)st.st_dev, ino = (uint64_t)st.st_ino;
  o[0] = 0;
  o[1] = st.st_mode; o[2] = st.st_uid; o[3] = st.st_gid; o[4] = (double)st.st_size; o[5] = (double)st.st_nlink;
  o[6] = (double)(dev >> 32); o[7] = (double)(dev & 0xffffffffu); o[8] = (double)(ino >> 32); o[9] = (double)(ino & 0xffffffffu);
  o[10] = (double)st.st_atim.tv_sec; o[11] = (double)st.st_atim.tv_nsec; o[12] = (double)st.st_mtim.tv_sec; o[13] = (double)st.st_mtim.tv_nsec;
  o[14] = (double)st.st_blocks;
}

class StatAtWorker : public Napi::AsyncWorker {
 public:
  StatAtWorker(Napi::Env env, int anchor, std::string&& dir, std::vector<std::string>&& names)
      : Napi::AsyncWorker(env, "fcp:statAt"), deferred_(Napi::Promise::Deferred::New(env)), anchor_(anchor), dir_(std::move(dir)), names_(std::move(names)),
        out_(names_.size() * kStatFields, 0.0) {}
  Napi::Promise Promise() { return deferred_.Promise(); }

  void Execute() override {
    int dfd = openSide(anchor_, dir_, O_PATH | O_DIRECTORY);
    for (size_t i = 0; i < names_.size(); i++) {
      double* o = out_.data() + i * kStatFields;
      if (dfd < 0) { o[0] = dfd; continue; }
      statInto(dfd, names_[i].c_str(), o);
    }
    if (dfd >= 0) close(dfd);
  }

  void OnOK() override {
    Napi::Env env = Env();
    Napi::HandleScope scope(env);
    Napi::Float64Array a = Napi::Float64Array::New(env, out_.size());
    memcpy(a.Data(), out_.data(), out_.size() * sizeof(double));
    deferred_.Resolve(a);
  }

 private:
  Napi::Promise::Deferred deferred_;
  int anchor_;  // -1: dir_ is a whole path
  std::string dir_;
  std::vector<std::string> names_;
  std::vector<double> out_;
};

Napi::Value StatAt(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string dir;
  // statAt(anchor, dir, names) (dir relative to the anchor) or statAt(dir, names).
  size_t a0 = info.Length() > 0 && info[0].IsNumber() ? 1 : 0;
  int anchor = a0 ? info[0].As<Napi::Number>().Int32Value() : -1;
  // names: an array of Buffers, or one Buffer of NUL-terminated names (as scanDir and
  // readNames give them: one argument to convert instead of one per name).
  bool packed = info.Length() >= a0 + 2 && info[a0 + 1].IsTypedArray();
  if (info.Length() < a0 + 2 || !bytesOf(info[a0], &dir) || !(packed || info[a0 + 1].IsArray()) || (a0 && (anchor < 0 || (!dir.empty() && dir[0] == '/')))) {
    Napi::TypeError::New(env, "statAt([anchor: number,] dir: Buffer, names: Buffer[] | Buffer)").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  std::vector<std::string> names;
  if (packed) {
    Napi::Uint8Array buf = info[a0 + 1].As<Napi::Uint8Array>();
    std::string all(reinterpret_cast<const char*>(buf.Data()), buf.ByteLength());
    if (!all.empty() && all.back() != '\0') {
      Napi::TypeError::New(env, "statAt: packed names must each end with a NUL").ThrowAsJavaScriptException();
      return env.Undefined();
    }
    for (size_t s = 0; s < all.size();) {
      size_t e = all.find('\0', s);
      names.emplace_back(all, s, e - s);
      s = e + 1;
    }
  } else {
    Napi::Array arr = info[a0 + 1].As<Napi::Array>();
    names.resize(arr.Length());
    for (uint32_t i = 0; i < arr.Length(); i++) {
      if (!bytesOf(arr.Get(i), &names[i])) names[i].clear();
    }
  }
  for (const std::string& n : names) {
    if (n.empty() || n.find('/') != std::string::npos || n.find('\0') != std::string::npos) {
      Napi::TypeError::New(env, "statAt: names must be non-empty Buffers without '/' or NUL").ThrowAsJavaScriptException();
      return env.Undefined();
    }
  }
  auto* w = new StatAtWorker(env, anchor, std::move(dir), std::move(names));
  Napi::Promise p = w->Promise();
  w->Queue();
  return p;
}

// ----- readNames: stream a directory ------------------------------------------------------
// readNames(fd, bufBytes) -> Promise<Buffer | null>: the next names of an open directory (one
// getdents64 call, '.' and '..' left out), NUL-separated; null at the end. A directory of
// millions of entries is read as a stream of such batches, never as one array.

struct LinuxDirent64 { uint64_t d_ino; int64_t d_off; unsigned short d_reclen; unsigned char d_type; char d_name[]; };

class ReadNamesWorker : public Napi::AsyncWorker {
 public:
  ReadNamesWorker(Napi::Env env, int fd, size_t bytes)
      : Napi::AsyncWorker(env, "fcp:readNames"), deferred_(Napi::Promise::Deferred::New(env)), fd_(fd), buf_(bytes) {}
  Napi::Promise Promise() { return deferred_.Promise(); }
  void Execute() override {
    for (;;) {
      long n = syscall(SYS_getdents64, fd_, buf_.data(), buf_.size());
      if (n < 0) { if (errno == EINTR) continue; err_ = -errno; return; }
      if (n == 0) { end_ = true; return; }
      for (long off = 0; off < n;) {
        auto* d = reinterpret_cast<LinuxDirent64*>(buf_.data() + off);
        off += d->d_reclen;
        if (strcmp(d->d_name, ".") == 0 || strcmp(d->d_name, "..") == 0) continue;
        out_.append(d->d_name, strlen(d->d_name) + 1);
      }
      if (!out_.empty()) return;  // a batch of only '.' and '..': read on
    }
  }
  void OnOK() override {
    Napi::Env env = Env();
    Napi::HandleScope scope(env);
    if (err_) {
      Napi::Error e = Napi::Error::New(env, std::string("getdents64 failed: ") + strerror(-err_));
      e.Set("errno", Napi::Number::New(env, err_));
      e.Set("syscall", Napi::String::New(env, "getdents64"));
      deferred_.Reject(e.Value());
    } else if (end_ && out_.empty()) {
      deferred_.Resolve(env.Null());
    } else {
      deferred_.Resolve(Napi::Buffer<char>::Copy(env, out_.data(), out_.size()));
    }
  }
 private:
  Napi::Promise::Deferred deferred_;
  int fd_;
  std::vector<char> buf_;
  std::string out_;
  int err_ = 0;
  bool end_ = false;
};

Napi::Value ReadNames(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsNumber() || !info[1].IsNumber()) {
    Napi::TypeError::New(env, "readNames(fd: number, bufBytes: number)").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  int64_t bytes = info[1].As<Napi::Number>().Int64Value();
  if (bytes < 4096 || bytes > (64 << 20)) bytes = 65536;
  auto* w = new ReadNamesWorker(env, info[0].As<Napi::Number>().Int32Value(), (size_t)bytes);
  Napi::Promise p = w->Promise();
  w->Queue();
  return p;
}

// ----- scanDir: open, read and lstat a directory in one job ---------------------------------
// scanDir(dir, maxNames) -> Promise<{ names: Buffer, stats: Float64Array, fd: number }>
// Why: most directories are small, and reading one with open + readNames + close + statAt
// costs five thread-pool round trips. This reads whole getdents64 batches until at least
// maxNames names or the end, lstats them relative to the directory, and returns them
// NUL-separated with 14 numbers each (as statAt). fd is -1 when the directory was read to
// the end (and closed); otherwise it is still open, positioned after the returned names,
// for the caller to stream the rest with readNames and close. The directory is opened with
// O_NOFOLLOW: a directory swapped for a symlink is not followed.

class ScanDirWorker : public Napi::AsyncWorker {
 public:
  ScanDirWorker(Napi::Env env, int anchor, std::string&& dir, size_t maxNames)
      : Napi::AsyncWorker(env, "fcp:scanDir"), deferred_(Napi::Promise::Deferred::New(env)), anchor_(anchor), dir_(std::move(dir)), max_(maxNames) {}
  Napi::Promise Promise() { return deferred_.Promise(); }
  void Execute() override {
    fd_ = openSide(anchor_, dir_, O_RDONLY | O_DIRECTORY);
    if (fd_ < 0) { err_ = fd_; fd_ = -1; syscall_ = "open"; return; }
    std::vector<char> buf(32768);
    size_t count = 0;
    bool end = false;
    while (count < max_) {
      long n = syscall(SYS_getdents64, fd_, buf.data(), buf.size());
      if (n < 0) {
        if (errno == EINTR) continue;
        err_ = -errno; syscall_ = "getdents64";
        close(fd_); fd_ = -1;
        return;
      }
      if (n == 0) { end = true; break; }
      for (long off = 0; off < n;) {
        auto* d = reinterpret_cast<LinuxDirent64*>(buf.data() + off);
        off += d->d_reclen;
        if (strcmp(d->d_name, ".") == 0 || strcmp(d->d_name, "..") == 0) continue;
        names_.append(d->d_name, strlen(d->d_name) + 1);
        count++;
      }
    }
    stats_.assign(count * kStatFields, 0.0);
    size_t i = 0;
    for (size_t s = 0; s < names_.size(); i++) {
      statInto(fd_, names_.c_str() + s, stats_.data() + i * kStatFields);
      s += strlen(names_.c_str() + s) + 1;
    }
    if (end) { close(fd_); fd_ = -1; }
  }
  void OnOK() override {
    Napi::Env env = Env();
    Napi::HandleScope scope(env);
    if (err_) {
      Napi::Error e = Napi::Error::New(env, std::string(syscall_) + " failed: " + strerror(-err_));
      e.Set("errno", Napi::Number::New(env, err_));
      e.Set("syscall", Napi::String::New(env, syscall_));
      deferred_.Reject(e.Value());
      return;
    }
    Napi::Object o = Napi::Object::New(env);
    o.Set("names", Napi::Buffer<char>::Copy(env, names_.data(), names_.size()));
    Napi::Float64Array a = Napi::Float64Array::New(env, stats_.size());
    if (!stats_.empty()) memcpy(a.Data(), stats_.data(), stats_.size() * sizeof(double));
    o.Set("stats", a);
    o.Set("fd", Napi::Number::New(env, fd_));
    deferred_.Resolve(o);
  }
 private:
  Napi::Promise::Deferred deferred_;
  int anchor_;  // -1: dir_ is a whole path
  std::string dir_;
  size_t max_;
  int fd_ = -1;
  int err_ = 0;
  const char* syscall_ = "";
  std::string names_;
  std::vector<double> stats_;
};

Napi::Value ScanDir(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string dir;
  // scanDir(anchor, dir, maxNames) (dir relative to the anchor, '' the anchor) or scanDir(dir, maxNames).
  size_t a0 = info.Length() > 0 && info[0].IsNumber() ? 1 : 0;
  int anchor = a0 ? info[0].As<Napi::Number>().Int32Value() : -1;
  if (info.Length() < a0 + 2 || !bytesOf(info[a0], &dir) || (!a0 && dir.empty()) || !info[a0 + 1].IsNumber() ||
      (a0 && (anchor < 0 || (!dir.empty() && dir[0] == '/')))) {
    Napi::TypeError::New(env, "scanDir([anchor: number,] dir: Buffer, maxNames: number)").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  int64_t maxNames = info[a0 + 1].As<Napi::Number>().Int64Value();
  if (maxNames < 1 || maxNames > (1 << 20)) maxNames = 512;
  auto* w = new ScanDirWorker(env, anchor, std::move(dir), (size_t)maxNames);
  Napi::Promise p = w->Promise();
  w->Queue();
  return p;
}

Napi::Value Xxh64(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsTypedArray()) {
    Napi::TypeError::New(env, "xxh64(data: Uint8Array, seed?: number)").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  Napi::Uint8Array a = info[0].As<Napi::Uint8Array>();
  uint64_t seed = info.Length() > 1 && info[1].IsNumber() ? (uint64_t)info[1].As<Napi::Number>().Int64Value() : 0;
  return Napi::BigInt::New(env, xxh64(a.Data(), a.ByteLength(), seed));
}

Napi::Value Sha256Export(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsTypedArray() || info[0].As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array) {
    Napi::TypeError::New(env, "sha256(data: Uint8Array)").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  Napi::Uint8Array a = info[0].As<Napi::Uint8Array>();
  Sha256 h;
  h.Update(a.Data(), a.ByteLength());
  unsigned char d[32];
  h.Final(d);
  return Napi::Buffer<unsigned char>::Copy(env, d, sizeof d);
}

}  // namespace

void RegisterBatch(Napi::Env env, Napi::Object exports) {
  exports.Set("copyFiles", Napi::Function::New(env, CopyFiles, "copyFiles"));
  exports.Set("statAt", Napi::Function::New(env, StatAt, "statAt"));
  exports.Set("xxh64", Napi::Function::New(env, Xxh64, "xxh64"));
  exports.Set("readNames", Napi::Function::New(env, ReadNames, "readNames"));
  exports.Set("scanDir", Napi::Function::New(env, ScanDir, "scanDir"));
  exports.Set("copyChunk", Napi::Function::New(env, CopyChunk, "copyChunk"));
  exports.Set("hashRange", Napi::Function::New(env, HashRange, "hashRange"));
  exports.Set("hashFiles", Napi::Function::New(env, HashFiles, "hashFiles"));
  exports.Set("sha256", Napi::Function::New(env, Sha256Export, "sha256"));
}
