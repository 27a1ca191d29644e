// The numbers the addon and the TypeScript share, in one table: the C++ below uses these
// names, the addon exports the table as `constants` (ExportConstants, called from
// fcp_native.cc), TypeScript reads it from there (src/native/loader.ts), and the pure-Node
// fallback's copy (src/native/constants.ts) is checked against it by
// test/unit/native-constants.test.ts. Change a value here, and there.
#pragma once

#include <fcntl.h>
#include <napi.h>

namespace fcp {

// The failing step of a copyFiles/copyChunk/hashRange/hashFiles status (status[1]).
// X(name, value): OP_<name> here, constants.ops.<name> in JavaScript.
#define FCP_OPS(X) \
  X(NONE, 0)       \
  X(OPEN_SRC, 1)   \
  X(OPEN_DST, 2)   \
  X(READ, 3)       \
  X(WRITE, 4)      \
  X(TRUNCATE, 5)   \
  X(CHOWN, 6)      \
  X(XATTR, 7)      \
  X(CHMOD, 8)      \
  X(UTIMES, 9)     \
  X(CLOSE, 10)     \
  X(CHANGED, 11)   \
  X(UP_TO_DATE, 12) /* not a failure: --update found DST up to date, nothing read or written */ \
  X(REPLACED, 13)   /* not a failure: copied over an existing file (F_REPORT) */

// copyFiles/copyChunk flags. X(name, value): F_<name> here, constants.copyFlags.<name> in JavaScript.
#define FCP_COPY_FLAGS(X) \
  X(CHOWN, 1)             \
  X(XATTRS, 2)            \
  X(SPARSE, 4)            \
  X(HASH, 8)              \
  X(UPDATE, 16)           \
  X(WRITEBACK, 32)        \
  X(REPORT, 64)           \
  X(LAYOUT, 512)

// fcp's own "errnos" in status[0] (with OP_CHANGED). X(name, value): ERR_<name> here, constants.errnos.<name> in JavaScript.
#define FCP_ERRNOS(X) \
  X(SHRANK, -1000)    /* the file ended before the size the walk saw */ \
  X(GREW, -1001)      /* the file grew (or its mtime moved) while it was copied */

#define FCP_ENUM_OP(name, value) OP_##name = value,
enum Op { FCP_OPS(FCP_ENUM_OP) };
#undef FCP_ENUM_OP
#define FCP_ENUM_FLAG(name, value) F_##name = value,
enum Flags { FCP_COPY_FLAGS(FCP_ENUM_FLAG) };
#undef FCP_ENUM_FLAG
#define FCP_ENUM_ERRNO(name, value) ERR_##name = value,
enum Errnos { FCP_ERRNOS(FCP_ENUM_ERRNO) };
#undef FCP_ENUM_ERRNO

/** copyFiles' numbers per file (root, size, mode, uid, gid, atime s/ns, mtime s/ns, blocks). */
constexpr int kCopyNums = 10;
/** copyFiles' status numbers per file (-errno, op, hole bytes). */
constexpr int kCopyStatus = 3;
/** Numbers per name of statAt, scanDir and lstatAt (src/walk/entry.ts STAT_RECORD_FIELDS). */
constexpr int kStatFields = 15;
/** One hash leaf (src/checksum/hasher.ts LEAF); also the I/O size. */
constexpr int kLeafBytes = 1 << 20;
/**
 * Lustre's O_LOV_DELAY_CREATE (lustre_user.h: O_NOCTTY | FASYNC): open(O_CREAT) creates the
 * file without objects, so a layout can still be set on it. Other file systems ignore both
 * bits on a regular file.
 */
constexpr int kLovDelayCreate = O_NOCTTY | FASYNC;

/** The table above as the addon's `constants` export (frozen). */
inline void ExportConstants(Napi::Env env, Napi::Object exports) {
  Napi::Object c = Napi::Object::New(env);
  Napi::Object ops = Napi::Object::New(env);
#define FCP_SET(name, value) ops.Set(#name, Napi::Number::New(env, value));
  FCP_OPS(FCP_SET)
#undef FCP_SET
  Napi::Object flags = Napi::Object::New(env);
#define FCP_SET(name, value) flags.Set(#name, Napi::Number::New(env, value));
  FCP_COPY_FLAGS(FCP_SET)
#undef FCP_SET
  Napi::Object errnos = Napi::Object::New(env);
#define FCP_SET(name, value) errnos.Set(#name, Napi::Number::New(env, value));
  FCP_ERRNOS(FCP_SET)
#undef FCP_SET
  c.Set("ops", ops);
  c.Set("copyFlags", flags);
  c.Set("errnos", errnos);
  c.Set("copyNums", Napi::Number::New(env, kCopyNums));
  c.Set("copyStatus", Napi::Number::New(env, kCopyStatus));
  c.Set("statFields", Napi::Number::New(env, kStatFields));
  c.Set("leafBytes", Napi::Number::New(env, kLeafBytes));
  c.Set("oLovDelayCreate", Napi::Number::New(env, kLovDelayCreate));
  for (const char* k : {"ops", "copyFlags", "errnos"}) c.Get(k).As<Napi::Object>().Freeze();
  c.Freeze();
  exports.Set("constants", c);
}

}  // namespace fcp
