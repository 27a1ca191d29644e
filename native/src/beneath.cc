// Resolution beneath a root: every operation on SRC and DST names its entry by a directory
// fd opened once per root (an "anchor", see src/copy/beneath.ts) and a path relative to it,
// and no symlink is followed in any component of that path.
//
// Why: a path opened whole (open("/dst/a/b/f", O_NOFOLLOW)) is protected only in its last
// component. Users write to the trees during the copy; a directory swapped for a symlink
// between the walk and the copy would make fcp, as root, read from or write to anywhere.
//
// The N-API functions here (all but openAnchor run on the thread pool and return a
// Promise; errors are Node-shaped: code, errno, syscall):
//   openAnchor(path) -> fd           the trusted root directory itself, followed, O_PATH
//   closeFd(fd)
//   openAt(anchor, rel, flags, mode) -> fd          (and openAtSync, on the calling thread)
//   lstatAt(anchor, rel, cached?) -> Float64Array(15, statAt's layout); cached: what the kernel
//     holds, never a request (statx AT_STATX_DONT_SYNC)
//   readlinkAt(anchor, rel) -> Buffer
//   symlinkAt(target, anchor, rel), linkAt(a1, rel1, a2, rel2), renameAt(a1, rel1, a2, rel2)
//   unlinkAt(anchor, rel, dir), removeTreeAt(anchor, rel)
//   mkdirAt(anchor, rel, mode, parents), mkfifoAt(anchor, rel, mode)
//   chmodAt(anchor, rel, mode), chownAt(anchor, rel, uid, gid),
//   utimensAt(anchor, rel, aS, aNs, mS, mNs)                 never following the last component
//   copyXattrsAt(srcAnchor, srcRel, dstAnchor, dstRel, symlink, layout?)   layout attributes left out (layout.h)
//   copyLayoutAt(srcAnchor, srcRel, dstAnchor, dstRel, layout) -> boolean  set one (false: the source has none)
//   resolveMode(walk?: boolean) -> 'openat2' | 'walk'        test hook

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#ifndef _FILE_OFFSET_BITS
#define _FILE_OFFSET_BITS 64
#endif

#include "beneath.h"
#include "layout.h"
#include "xattrs.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <atomic>
#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include <napi.h>
#include <uv.h>

#ifndef SYS_openat2
#define SYS_openat2 437
#endif
#ifndef SYS_fchmodat2
#define SYS_fchmodat2 452
#endif

namespace fcp {

namespace {
std::atomic<bool> g_walk{false};      // openat2 missing (ENOSYS) or forced off
std::atomic<bool> g_noChmod2{false};  // fchmodat2 missing

/** A component-by-component walk: openat(O_PATH | O_NOFOLLOW | O_DIRECTORY) per directory. */
int OpenByWalk(int dirfd, const char* rel, int flags, mode_t mode) {
  std::string p(rel);
  if (!p.empty() && p[0] == '/') return -ELOOP;  // absolute: not beneath
  std::vector<std::string> parts;
  for (size_t k = 0; k <= p.size();) {
    size_t e = p.find('/', k);
    if (e == std::string::npos) e = p.size();
    std::string c = p.substr(k, e - k);
    if (c == "..") return -ELOOP;  // as RESOLVE_BENEATH (EXDEV), reported as an escape
    if (!c.empty() && c != ".") parts.push_back(c);
    k = e + 1;
  }
  if (parts.empty()) {
    int fd = openat(dirfd, ".", flags | O_CLOEXEC, mode);
    return fd < 0 ? -errno : fd;
  }
  int cur = dirfd;
  for (size_t i = 0; i + 1 < parts.size(); i++) {
    int fd = openat(cur, parts[i].c_str(), O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    int e = errno;
    if (fd < 0 && e == ENOTDIR) {
      // O_DIRECTORY|O_NOFOLLOW on a symlink says ENOTDIR: tell a symlink apart.
      struct stat st;
      if (fstatat(cur, parts[i].c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(st.st_mode)) e = ELOOP;
    }
    if (cur != dirfd) close(cur);
    if (fd < 0) return -e;
    cur = fd;
  }
  int fd = openat(cur, parts.back().c_str(), flags | O_NOFOLLOW | O_CLOEXEC, mode);
  int e = errno;
  if (cur != dirfd) close(cur);
  return fd < 0 ? -e : fd;
}
}  // namespace

void ForceWalkResolution(bool on) { g_walk = on; }

namespace {
int OpenBeneathRaw(int dirfd, const char* rel, int flags, mode_t mode) {
  if (!g_walk.load(std::memory_order_relaxed)) {
    struct open_how how;
    memset(&how, 0, sizeof how);
    how.flags = (uint64_t)(flags | O_NOFOLLOW | O_CLOEXEC);
    how.mode = (flags & (O_CREAT | O_TMPFILE)) ? mode : 0;
    how.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;
    const char* p = *rel ? rel : ".";
    for (int attempt = 0;; attempt++) {
      long fd = syscall(SYS_openat2, dirfd, p, &how, sizeof how);
      if (fd >= 0) return (int)fd;
      // EAGAIN: a concurrent rename made the kernel give up on a '..' check; try again.
      if (errno == EINTR || (errno == EAGAIN && attempt < 8)) continue;
      if (errno == ENOSYS) { g_walk = true; break; }
      // EXDEV: the path left dirfd. Both mean the tree changed under us.
      return errno == EXDEV ? -ELOOP : -errno;
    }
  }
  return OpenByWalk(dirfd, rel, flags, mode);
}
}  // namespace

int OpenBeneath(int dirfd, const char* rel, int flags, mode_t mode) {
  int fd = OpenBeneathRaw(dirfd, rel, flags, mode);
  if (fd != -ENOTDIR || !(flags & O_DIRECTORY)) return fd;
  // O_DIRECTORY | O_NOFOLLOW on a symlink says ENOTDIR: a directory that became a
  // symlink is ELOOP like any other (only on this error path: no cost otherwise).
  int p = OpenBeneathRaw(dirfd, rel, O_PATH, 0);
  if (p < 0) return p == -ELOOP ? p : fd;
  struct stat st;
  bool link = fstat(p, &st) == 0 && S_ISLNK(st.st_mode);
  close(p);
  return link ? -ELOOP : fd;
}

ParentAt::~ParentAt() {
  if (owned && fd >= 0) close(fd);
}

int ResolveParent(int dirfd, const std::string& rel, ParentAt* out) {
  size_t slash = rel.rfind('/');
  if (slash == std::string::npos) {
    out->fd = dirfd;
    out->owned = false;
    out->name = rel.empty() ? "." : rel;
    return 0;
  }
  std::string dir = rel.substr(0, slash);
  out->name = rel.substr(slash + 1);
  if (out->name.empty() || out->name == "..") return -EINVAL;
  int fd = OpenBeneath(dirfd, dir.c_str(), O_PATH | O_DIRECTORY);
  if (fd < 0) return fd;
  out->fd = fd;
  out->owned = true;
  return 0;
}

}  // namespace fcp

namespace {

using fcp::OpenBeneath;
using fcp::ParentAt;
using fcp::ResolveParent;

// ----- the operations: plain functions returning >= 0 or -errno ------------------------

int RemoveTree(int dirfd, const char* name) {
  if (unlinkat(dirfd, name, 0) == 0) return 0;
  if (errno != EISDIR && errno != EPERM) return errno == ENOENT ? 0 : -errno;
  int fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return errno == ENOENT ? 0 : -errno;
  DIR* d = fdopendir(fd);
  if (!d) { int e = errno; close(fd); return -e; }
  int err = 0;
  std::vector<std::string> names;
  while (struct dirent* de = readdir(d)) {
    if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0) continue;
    names.emplace_back(de->d_name);
  }
  for (auto& n : names) {
    int e = RemoveTree(fd, n.c_str());
    if (e && !err) err = e;
  }
  closedir(d);
  if (err) return err;
  return unlinkat(dirfd, name, AT_REMOVEDIR) < 0 && errno != ENOENT ? -errno : 0;
}

int MkdirParents(int anchor, const std::string& rel, mode_t mode) {
  // Component by component from the anchor: mkdirat, then open it O_NOFOLLOW (a symlink
  // in its place is refused: ELOOP).
  int cur = anchor;
  int err = 0;
  for (size_t k = 0; k < rel.size() && !err;) {
    size_t e = rel.find('/', k);
    if (e == std::string::npos) e = rel.size();
    std::string c = rel.substr(k, e - k);
    k = e + 1;
    if (c.empty() || c == ".") continue;
    if (c == "..") { err = -ELOOP; break; }
    if (mkdirat(cur, c.c_str(), mode) < 0 && errno != EEXIST) { err = -errno; break; }
    int fd = openat(cur, c.c_str(), O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    int en = errno;
    if (fd < 0 && en == ENOTDIR) {
      struct stat st;
      if (fstatat(cur, c.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(st.st_mode)) en = ELOOP;
    }
    if (cur != anchor) close(cur);
    cur = -1;
    if (fd < 0) { err = -en; break; }
    cur = fd;
  }
  if (cur >= 0 && cur != anchor) close(cur);
  return err;
}

int ChmodAt(int pfd, const char* name, mode_t mode) {
  if (!fcp::g_noChmod2) {
    if (syscall(SYS_fchmodat2, pfd, name, mode, AT_SYMLINK_NOFOLLOW) == 0) return 0;
    if (errno != ENOSYS) return -errno;
    fcp::g_noChmod2 = true;
  }
  // Older kernels: pin the entry with O_PATH | O_NOFOLLOW, refuse a symlink, chmod the inode.
  int fd = openat(pfd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return -errno;
  struct stat st;
  int r = 0;
  if (fstat(fd, &st) < 0) r = -errno;
  else if (S_ISLNK(st.st_mode)) r = -EOPNOTSUPP;
  else {
    char p[64];
    snprintf(p, sizeof p, "/proc/self/fd/%d", fd);
    if (chmod(p, mode) < 0) r = -errno;
  }
  close(fd);
  return r;
}

// ----- N-API ---------------------------------------------------------------------------

bool Bytes(Napi::Value v, std::string* out) {
  if (!v.IsTypedArray()) return false;
  Napi::TypedArray t = v.As<Napi::TypedArray>();
  if (t.TypedArrayType() != napi_uint8_array) return false;
  Napi::Uint8Array a = v.As<Napi::Uint8Array>();
  out->assign(reinterpret_cast<const char*>(a.Data()), a.ByteLength());
  return out->find('\0') == std::string::npos;
}

/** A relative path beneath an anchor: not absolute (a leading '/' is refused by the kernel anyway). */
bool Rel(Napi::Value v, std::string* out) { return Bytes(v, out) && (out->empty() || (*out)[0] != '/'); }

bool Int(Napi::Value v, int64_t* out, double lo, double hi) {
  if (!v.IsNumber()) return false;
  double d = v.As<Napi::Number>().DoubleValue();
  if (!(d >= lo && d <= hi) || d != std::trunc(d)) return false;
  *out = (int64_t)d;
  return true;
}

Napi::Error ErrnoError(Napi::Env env, int err, const char* syscall) {
  const char* code = uv_err_name(err);
  Napi::Error e = Napi::Error::New(env, std::string(code) + ": " + uv_strerror(err) + ", " + syscall);
  e.Set("errno", Napi::Number::New(env, err));
  e.Set("code", Napi::String::New(env, code));
  e.Set("syscall", Napi::String::New(env, syscall));
  return e;
}

enum class Out { None, Number, Bytes, Stat };

/** One *At operation on the thread pool: `run` fills err (-errno) and syscall, or the result. */
class AtWorker : public Napi::AsyncWorker {
 public:
  struct Result {
    int err = 0;
    const char* syscall = "";
    double num = 0;
    std::string bytes;
    double stat[fcp::kStatFields] = {0};
  };
  AtWorker(Napi::Env env, Out out, std::function<void(Result&)>&& run)
      : Napi::AsyncWorker(env, "fcp:at"), deferred_(Napi::Promise::Deferred::New(env)), out_(out), run_(std::move(run)) {}
  Napi::Promise Promise() { return deferred_.Promise(); }
  void Execute() override { run_(r_); }
  void OnOK() override {
    Napi::Env env = Env();
    Napi::HandleScope scope(env);
    if (r_.err) { deferred_.Reject(ErrnoError(env, r_.err, r_.syscall).Value()); return; }
    switch (out_) {
      case Out::None: deferred_.Resolve(env.Undefined()); break;
      case Out::Number: deferred_.Resolve(Napi::Number::New(env, r_.num)); break;
      case Out::Bytes: deferred_.Resolve(Napi::Buffer<char>::Copy(env, r_.bytes.data(), r_.bytes.size())); break;
      case Out::Stat: {
        Napi::Float64Array a = Napi::Float64Array::New(env, fcp::kStatFields);
        memcpy(a.Data(), r_.stat, sizeof r_.stat);
        deferred_.Resolve(a);
        break;
      }
    }
  }
 private:
  Napi::Promise::Deferred deferred_;
  Out out_;
  std::function<void(Result&)> run_;
  Result r_;
};

Napi::Value Queue(Napi::Env env, Out out, std::function<void(AtWorker::Result&)>&& run) {
  auto* w = new AtWorker(env, out, std::move(run));
  Napi::Promise p = w->Promise();
  w->Queue();
  return p;
}

Napi::Value Usage(Napi::Env env, const char* sig) {
  Napi::TypeError::New(env, sig).ThrowAsJavaScriptException();
  return env.Undefined();
}

constexpr double kFdMax = 2147483647.0;

/** (anchor, rel) from args i, i+1. */
bool AnchorRel(const Napi::CallbackInfo& info, size_t i, int* fd, std::string* rel) {
  int64_t v;
  if (info.Length() < i + 2 || !Int(info[i], &v, 0, kFdMax) || !Rel(info[i + 1], rel)) return false;
  *fd = (int)v;
  return true;
}

/** Resolve the parent or fail the result with the resolution's errno. */
#define PARENT_OR_FAIL(anchor, rel, p, r)                            \
  ParentAt p;                                                        \
  if (int e_ = ResolveParent(anchor, rel, &p)) { r.err = e_; r.syscall = "openat2"; return; }

Napi::Value OpenAnchor(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string path;
  if (info.Length() < 1 || !Bytes(info[0], &path) || path.empty()) return Usage(env, "openAnchor(path: Buffer)");
  int fd = open(path.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) { ErrnoError(env, -errno, "open").ThrowAsJavaScriptException(); return env.Undefined(); }
  return Napi::Number::New(env, fd);
}

Napi::Value CloseFd(const Napi::CallbackInfo& info) {
  int64_t fd;
  if (info.Length() < 1 || !Int(info[0], &fd, 0, kFdMax)) return Usage(info.Env(), "closeFd(fd: number)");
  close((int)fd);
  return info.Env().Undefined();
}

Napi::Value OpenAt(const Napi::CallbackInfo& info) {
  int a; std::string rel; int64_t flags, mode;
  if (!AnchorRel(info, 0, &a, &rel) || !Int(info[2], &flags, 0, kFdMax) || !Int(info[3], &mode, 0, 07777))
    return Usage(info.Env(), "openAt(anchor: number, rel: Buffer, flags: number, mode: number)");
  return Queue(info.Env(), Out::Number, [=](AtWorker::Result& r) {
    int fd = OpenBeneath(a, rel.c_str(), (int)flags, (mode_t)mode);
    if (fd < 0 && fd == -EPERM && (flags & O_NOATIME)) fd = OpenBeneath(a, rel.c_str(), (int)(flags & ~O_NOATIME), (mode_t)mode);
    if (fd < 0) { r.err = fd; r.syscall = "openat2"; return; }
    r.num = fd;
  });
}

// openAtSync: the same on the calling thread (fsum hashes small local files synchronously).
Napi::Value OpenAtSync(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int a; std::string rel; int64_t flags, mode;
  if (!AnchorRel(info, 0, &a, &rel) || !Int(info[2], &flags, 0, kFdMax) || !Int(info[3], &mode, 0, 07777))
    return Usage(env, "openAtSync(anchor: number, rel: Buffer, flags: number, mode: number)");
  int fd = OpenBeneath(a, rel.c_str(), (int)flags, (mode_t)mode);
  if (fd == -EPERM && (flags & O_NOATIME)) fd = OpenBeneath(a, rel.c_str(), (int)(flags & ~O_NOATIME), (mode_t)mode);
  if (fd < 0) { ErrnoError(env, fd, "openat2").ThrowAsJavaScriptException(); return env.Undefined(); }
  return Napi::Number::New(env, fd);
}

Napi::Value LstatAt(const Napi::CallbackInfo& info) {
  int a; std::string rel;
  if (!AnchorRel(info, 0, &a, &rel) || (info.Length() > 2 && !info[2].IsUndefined() && !info[2].IsBoolean()))
    return Usage(info.Env(), "lstatAt(anchor: number, rel: Buffer, cached?: boolean)");
  bool cached = info.Length() > 2 && info[2].IsBoolean() && info[2].As<Napi::Boolean>().Value();
  return Queue(info.Env(), Out::Stat, [=](AtWorker::Result& r) {
    PARENT_OR_FAIL(a, rel, p, r);
    if (cached) {
      // What the kernel already holds (AT_STATX_DONT_SYNC): no getattr request for
      // attributes it marked stale (FUSE marks a directory's after each create in it).
      struct statx sx;
      if (statx(p.fd, p.name.c_str(), AT_SYMLINK_NOFOLLOW | AT_STATX_DONT_SYNC, STATX_BASIC_STATS, &sx) < 0) { r.err = -errno; r.syscall = "statx"; return; }
      uint64_t dev = (uint64_t)makedev(sx.stx_dev_major, sx.stx_dev_minor), ino = sx.stx_ino;  // as st_dev
      double* o = r.stat;
      o[1] = sx.stx_mode; o[2] = sx.stx_uid; o[3] = sx.stx_gid; o[4] = (double)sx.stx_size; o[5] = (double)sx.stx_nlink;
      o[6] = (double)(dev >> 32); o[7] = (double)(dev & 0xffffffffu); o[8] = (double)(ino >> 32); o[9] = (double)(ino & 0xffffffffu);
      o[10] = (double)sx.stx_atime.tv_sec; o[11] = (double)sx.stx_atime.tv_nsec; o[12] = (double)sx.stx_mtime.tv_sec; o[13] = (double)sx.stx_mtime.tv_nsec;
      o[14] = (double)sx.stx_blocks;
      return;
    }
    struct stat st;
    if (fstatat(p.fd, p.name.c_str(), &st, AT_SYMLINK_NOFOLLOW) < 0) { r.err = -errno; r.syscall = "lstat"; return; }
    uint64_t dev = (uint64_t)st.st_dev, ino = (uint64_t)st.st_ino;
    double* o = r.stat;
    o[1] = st.st_mode; o[2] = st.st_uid; o[3] = st.st_gid; o[4] = (double)st.st_size; o[5] = (double)st.st_nlink;
    o[6] = (double)(dev >> 32); o[7] = (double)(dev & 0xffffffffu); o[8] = (double)(ino >> 32); o[9] = (double)(ino & 0xffffffffu);
    o[10] = (double)st.st_atim.tv_sec; o[11] = (double)st.st_atim.tv_nsec; o[12] = (double)st.st_mtim.tv_sec; o[13] = (double)st.st_mtim.tv_nsec;
    o[14] = (double)st.st_blocks;
  });
}

Napi::Value ReadlinkAt(const Napi::CallbackInfo& info) {
  int a; std::string rel;
  if (!AnchorRel(info, 0, &a, &rel)) return Usage(info.Env(), "readlinkAt(anchor: number, rel: Buffer)");
  return Queue(info.Env(), Out::Bytes, [=](AtWorker::Result& r) {
    PARENT_OR_FAIL(a, rel, p, r);
    std::vector<char> buf(4096);
    for (;;) {
      ssize_t n = readlinkat(p.fd, p.name.c_str(), buf.data(), buf.size());
      if (n < 0) { r.err = -errno; r.syscall = "readlink"; return; }
      if ((size_t)n < buf.size()) { r.bytes.assign(buf.data(), (size_t)n); return; }
      buf.resize(buf.size() * 4);
    }
  });
}

Napi::Value SymlinkAt(const Napi::CallbackInfo& info) {
  int a; std::string rel, target;
  if (info.Length() < 3 || !Bytes(info[0], &target) || !AnchorRel(info, 1, &a, &rel)) return Usage(info.Env(), "symlinkAt(target: Buffer, anchor: number, rel: Buffer)");
  return Queue(info.Env(), Out::None, [=](AtWorker::Result& r) {
    PARENT_OR_FAIL(a, rel, p, r);
    if (symlinkat(target.c_str(), p.fd, p.name.c_str()) < 0) { r.err = -errno; r.syscall = "symlink"; }
  });
}

Napi::Value TwoPaths(const Napi::CallbackInfo& info, bool rename) {
  int a1, a2; std::string r1, r2;
  if (!AnchorRel(info, 0, &a1, &r1) || !AnchorRel(info, 2, &a2, &r2))
    return Usage(info.Env(), rename ? "renameAt(a1, rel1, a2, rel2)" : "linkAt(a1, rel1, a2, rel2)");
  return Queue(info.Env(), Out::None, [=](AtWorker::Result& r) {
    PARENT_OR_FAIL(a1, r1, p1, r);
    PARENT_OR_FAIL(a2, r2, p2, r);
    // linkat without AT_SYMLINK_FOLLOW links the entry itself, never what it points to.
    int rc = rename ? renameat(p1.fd, p1.name.c_str(), p2.fd, p2.name.c_str()) : linkat(p1.fd, p1.name.c_str(), p2.fd, p2.name.c_str(), 0);
    if (rc < 0) { r.err = -errno; r.syscall = rename ? "rename" : "link"; }
  });
}
Napi::Value LinkAt(const Napi::CallbackInfo& info) { return TwoPaths(info, false); }
Napi::Value RenameAt(const Napi::CallbackInfo& info) { return TwoPaths(info, true); }

Napi::Value UnlinkAt(const Napi::CallbackInfo& info) {
  int a; std::string rel;
  if (!AnchorRel(info, 0, &a, &rel) || info.Length() < 3) return Usage(info.Env(), "unlinkAt(anchor: number, rel: Buffer, dir: boolean)");
  bool dir = info[2].ToBoolean().Value();
  return Queue(info.Env(), Out::None, [=](AtWorker::Result& r) {
    PARENT_OR_FAIL(a, rel, p, r);
    if (unlinkat(p.fd, p.name.c_str(), dir ? AT_REMOVEDIR : 0) < 0) { r.err = -errno; r.syscall = dir ? "rmdir" : "unlink"; }
  });
}

Napi::Value RemoveTreeAt(const Napi::CallbackInfo& info) {
  int a; std::string rel;
  if (!AnchorRel(info, 0, &a, &rel)) return Usage(info.Env(), "removeTreeAt(anchor: number, rel: Buffer)");
  return Queue(info.Env(), Out::None, [=](AtWorker::Result& r) {
    PARENT_OR_FAIL(a, rel, p, r);
    if (int e = RemoveTree(p.fd, p.name.c_str())) { r.err = e; r.syscall = "rm"; }
  });
}

Napi::Value MkdirAt(const Napi::CallbackInfo& info) {
  int a; std::string rel; int64_t mode;
  if (!AnchorRel(info, 0, &a, &rel) || info.Length() < 4 || !Int(info[2], &mode, 0, 07777))
    return Usage(info.Env(), "mkdirAt(anchor: number, rel: Buffer, mode: number, parents: boolean)");
  bool parents = info[3].ToBoolean().Value();
  return Queue(info.Env(), Out::None, [=](AtWorker::Result& r) {
    {
      ParentAt p;
      int e = ResolveParent(a, rel, &p);
      if (e == 0) {
        if (mkdirat(p.fd, p.name.c_str(), (mode_t)mode) == 0 || (parents && errno == EEXIST)) return;
        r.err = -errno; r.syscall = "mkdir";
        return;
      }
      if (!parents || e != -ENOENT) { r.err = e; r.syscall = "openat2"; return; }
    }
    // A parent is missing (another rank creates it, or will): create the path from the anchor.
    if (int e = MkdirParents(a, rel, (mode_t)mode)) { r.err = e; r.syscall = "mkdir"; }
  });
}

Napi::Value MkfifoAt(const Napi::CallbackInfo& info) {
  int a; std::string rel; int64_t mode;
  if (!AnchorRel(info, 0, &a, &rel) || info.Length() < 3 || !Int(info[2], &mode, 0, 07777))
    return Usage(info.Env(), "mkfifoAt(anchor: number, rel: Buffer, mode: number)");
  return Queue(info.Env(), Out::None, [=](AtWorker::Result& r) {
    PARENT_OR_FAIL(a, rel, p, r);
    if (mkfifoat(p.fd, p.name.c_str(), (mode_t)mode) < 0) { r.err = -errno; r.syscall = "mkfifo"; }
  });
}

Napi::Value ChmodAtN(const Napi::CallbackInfo& info) {
  int a; std::string rel; int64_t mode;
  if (!AnchorRel(info, 0, &a, &rel) || info.Length() < 3 || !Int(info[2], &mode, 0, 07777))
    return Usage(info.Env(), "chmodAt(anchor: number, rel: Buffer, mode: number)");
  return Queue(info.Env(), Out::None, [=](AtWorker::Result& r) {
    PARENT_OR_FAIL(a, rel, p, r);
    if (int e = ChmodAt(p.fd, p.name.c_str(), (mode_t)mode)) { r.err = e; r.syscall = "chmod"; }
  });
}

Napi::Value ChownAt(const Napi::CallbackInfo& info) {
  int a; std::string rel; int64_t uid, gid;
  if (!AnchorRel(info, 0, &a, &rel) || info.Length() < 4 || !Int(info[2], &uid, 0, 4294967295.0) || !Int(info[3], &gid, 0, 4294967295.0))
    return Usage(info.Env(), "chownAt(anchor: number, rel: Buffer, uid: number, gid: number)");
  return Queue(info.Env(), Out::None, [=](AtWorker::Result& r) {
    PARENT_OR_FAIL(a, rel, p, r);
    if (fchownat(p.fd, p.name.c_str(), (uid_t)uid, (gid_t)gid, AT_SYMLINK_NOFOLLOW) < 0) { r.err = -errno; r.syscall = "lchown"; }
  });
}

Napi::Value UtimensAt(const Napi::CallbackInfo& info) {
  int a; std::string rel; int64_t as, ans, ms, mns;
  constexpr double kS = 9007199254740991.0;
  if (!AnchorRel(info, 0, &a, &rel) || info.Length() < 6 || !Int(info[2], &as, -kS, kS) || !Int(info[3], &ans, 0, 999999999) ||
      !Int(info[4], &ms, -kS, kS) || !Int(info[5], &mns, 0, 999999999))
    return Usage(info.Env(), "utimensAt(anchor: number, rel: Buffer, atimeSec, atimeNsec, mtimeSec, mtimeNsec)");
  return Queue(info.Env(), Out::None, [=](AtWorker::Result& r) {
    PARENT_OR_FAIL(a, rel, p, r);
    struct timespec ts[2];
    ts[0].tv_sec = (time_t)as; ts[0].tv_nsec = (long)ans;
    ts[1].tv_sec = (time_t)ms; ts[1].tv_nsec = (long)mns;
    if (utimensat(p.fd, p.name.c_str(), ts, AT_SYMLINK_NOFOLLOW) < 0) { r.err = -errno; r.syscall = "utimensat"; }
  });
}

Napi::Value CopyXattrsAt(const Napi::CallbackInfo& info) {
  int sa, da; std::string sr, dr;
  std::string layout;
  if (!AnchorRel(info, 0, &sa, &sr) || !AnchorRel(info, 2, &da, &dr) || info.Length() < 5 ||
      (info.Length() > 5 && !info[5].IsUndefined() && !Bytes(info[5], &layout)))
    return Usage(info.Env(), "copyXattrsAt(srcAnchor, srcRel, dstAnchor, dstRel, symlink: boolean, layout?: Buffer)");
  bool symlink = info[4].ToBoolean().Value();
  return Queue(info.Env(), Out::None, [=](AtWorker::Result& r) {
    int sfd = OpenBeneath(sa, sr.c_str(), O_PATH);
    // (the caller names the source when it is the source that cannot be reached)
    if (sfd < 0) { r.err = sfd; r.syscall = "openat2 source"; return; }
    int dfd = OpenBeneath(da, dr.c_str(), O_PATH);
    if (dfd < 0) { close(sfd); r.err = dfd; r.syscall = "openat2"; return; }
    if (int e = fcp::CopyXattrs(fcp::XattrFile(sfd, true), fcp::XattrFile(dfd, true), symlink, layout)) { r.err = e; r.syscall = "setxattr"; }
    close(sfd);
    close(dfd);
  });
}

// copyLayoutAt: the source's layout attribute onto a destination that has no data yet (a
// large file's new part file, a new directory: its default layout). Resolves true when
// set, false when the source has none (ENODATA, ENOTSUP): DST's default applies.
Napi::Value CopyLayoutAt(const Napi::CallbackInfo& info) {
  int sa, da; std::string sr, dr, name;
  if (!AnchorRel(info, 0, &sa, &sr) || !AnchorRel(info, 2, &da, &dr) || info.Length() < 5 || !Bytes(info[4], &name) || name.empty())
    return Usage(info.Env(), "copyLayoutAt(srcAnchor, srcRel, dstAnchor, dstRel, layout: Buffer)");
  return Queue(info.Env(), Out::Number, [=](AtWorker::Result& r) {
    int sfd = OpenBeneath(sa, sr.c_str(), O_PATH);
    if (sfd < 0) { r.err = sfd; r.syscall = "openat2 source"; return; }
    std::vector<char> value;
    ssize_t v = fcp::GetXattr(fcp::XattrFile(sfd, true), name.c_str(), &value);
    close(sfd);
    if (v < 0) {
      if (v == -ENODATA || v == -ENOTSUP || v == -EOPNOTSUPP) return;  // r.num 0: none
      r.err = (int)v; r.syscall = "getxattr source"; return;
    }
    int dfd = OpenBeneath(da, dr.c_str(), O_PATH);
    if (dfd < 0) { r.err = dfd; r.syscall = "openat2"; return; }
    if (fcp::XattrFile(dfd, true).Set(name.c_str(), value.data(), (size_t)v) < 0) { r.err = -errno; r.syscall = "setxattr"; }
    else r.num = 1;
    close(dfd);
  });
}

Napi::Value ResolveMode(const Napi::CallbackInfo& info) {
  if (info.Length() > 0 && info[0].IsBoolean()) fcp::ForceWalkResolution(info[0].As<Napi::Boolean>().Value());
  return Napi::String::New(info.Env(), fcp::g_walk ? "walk" : "openat2");
}

}  // namespace

void RegisterBeneath(Napi::Env env, Napi::Object exports) {
  exports.Set("openAnchor", Napi::Function::New(env, OpenAnchor, "openAnchor"));
  exports.Set("closeFd", Napi::Function::New(env, CloseFd, "closeFd"));
  exports.Set("openAt", Napi::Function::New(env, OpenAt, "openAt"));
  exports.Set("openAtSync", Napi::Function::New(env, OpenAtSync, "openAtSync"));
  exports.Set("lstatAt", Napi::Function::New(env, LstatAt, "lstatAt"));
  exports.Set("readlinkAt", Napi::Function::New(env, ReadlinkAt, "readlinkAt"));
  exports.Set("symlinkAt", Napi::Function::New(env, SymlinkAt, "symlinkAt"));
  exports.Set("linkAt", Napi::Function::New(env, LinkAt, "linkAt"));
  exports.Set("renameAt", Napi::Function::New(env, RenameAt, "renameAt"));
  exports.Set("unlinkAt", Napi::Function::New(env, UnlinkAt, "unlinkAt"));
  exports.Set("removeTreeAt", Napi::Function::New(env, RemoveTreeAt, "removeTreeAt"));
  exports.Set("mkdirAt", Napi::Function::New(env, MkdirAt, "mkdirAt"));
  exports.Set("mkfifoAt", Napi::Function::New(env, MkfifoAt, "mkfifoAt"));
  exports.Set("chmodAt", Napi::Function::New(env, ChmodAtN, "chmodAt"));
  exports.Set("chownAt", Napi::Function::New(env, ChownAt, "chownAt"));
  exports.Set("utimensAt", Napi::Function::New(env, UtimensAt, "utimensAt"));
  exports.Set("copyXattrsAt", Napi::Function::New(env, CopyXattrsAt, "copyXattrsAt"));
  exports.Set("copyLayoutAt", Napi::Function::New(env, CopyLayoutAt, "copyLayoutAt"));
  exports.Set("resolveMode", Napi::Function::New(env, ResolveMode, "resolveMode"));
}
