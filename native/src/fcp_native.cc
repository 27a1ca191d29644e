// fcp_native: the few Linux syscalls Node's fs module does not expose.
//
// Layout: plain C-style functions (fcp_*) that return >= 0 on success and
// -errno on failure, followed by a thin N-API layer (node-addon-api, C++
// exceptions disabled) that validates arguments and turns -errno into an
// Error shaped like Node's fs errors: { code, errno (negative), syscall, path? }.

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#ifndef _FILE_OFFSET_BITS
#define _FILE_OFFSET_BITS 64
#endif

#include <errno.h>
#include <malloc.h>
#include <fcntl.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cmath>
#include <string>
#include <vector>

#include <napi.h>
#include <uv.h>

#include "constants.h"

// ---------------------------------------------------------------------------
// Plain syscall wrappers: return >= 0 or -errno.
// ---------------------------------------------------------------------------

static int64_t fcp_copy_file_range(int fd_in, int64_t off_in, int fd_out, int64_t off_out, int64_t len) {
  loff_t in = (loff_t)off_in;
  loff_t out = (loff_t)off_out;
  ssize_t n;
  do {
    n = copy_file_range(fd_in, &in, fd_out, &out, (size_t)len, 0);
  } while (n < 0 && errno == EINTR);
  return n < 0 ? -(int64_t)errno : (int64_t)n;
}

static int64_t fcp_lseek(int fd, int64_t off, int whence) {
  off_t r = lseek(fd, (off_t)off, whence);
  return r < 0 ? -(int64_t)errno : (int64_t)r;
}

// llistxattr into a growing buffer (retry on ERANGE: the list may grow between calls).
static int fcp_listxattr(const char* path, std::vector<char>* out) {
  for (int attempt = 0; attempt < 8; attempt++) {
    ssize_t size = llistxattr(path, nullptr, 0);
    if (size < 0) return -errno;
    if (size == 0) {
      out->clear();
      return 0;
    }
    out->resize((size_t)size + 256);
    ssize_t n = llistxattr(path, out->data(), out->size());
    if (n >= 0) {
      out->resize((size_t)n);
      return 0;
    }
    if (errno != ERANGE) return -errno;
  }
  return -ERANGE;
}

static int fcp_getxattr(const char* path, const char* name, std::vector<char>* out) {
  for (int attempt = 0; attempt < 8; attempt++) {
    ssize_t size = lgetxattr(path, name, nullptr, 0);
    if (size < 0) return -errno;
    out->resize((size_t)size + 256);
    ssize_t n = lgetxattr(path, name, out->data(), out->size());
    if (n >= 0) {
      out->resize((size_t)n);
      return 0;
    }
    if (errno != ERANGE) return -errno;
  }
  return -ERANGE;
}

static int fcp_setxattr(const char* path, const char* name, const void* value, size_t len) {
  return lsetxattr(path, name, value, len, 0) < 0 ? -errno : 0;
}

static int fcp_fadvise(int fd, int64_t off, int64_t len, int advice) {
  // posix_fadvise returns the error number instead of setting errno.
  return -posix_fadvise(fd, (off_t)off, (off_t)len, advice);
}

static int fcp_utimens(const char* path, int64_t asec, int64_t ansec, int64_t msec, int64_t mnsec, bool follow) {
  struct timespec ts[2];
  ts[0].tv_sec = (time_t)asec;
  ts[0].tv_nsec = (long)ansec;
  ts[1].tv_sec = (time_t)msec;
  ts[1].tv_nsec = (long)mnsec;
  return utimensat(AT_FDCWD, path, ts, follow ? 0 : AT_SYMLINK_NOFOLLOW) < 0 ? -errno : 0;
}

static int fcp_mkfifo(const char* path, int mode) {
  return mkfifo(path, (mode_t)mode) < 0 ? -errno : 0;
}

// syncfs(2): write back and wait for everything dirty on fd's file system (data, inodes,
// directory entries, the journal), as one call; reports writeback errors since fd was opened.
static int fcp_syncfs(int fd) {
  return syncfs(fd) < 0 ? -errno : 0;
}

// ---------------------------------------------------------------------------
// N-API layer.
// ---------------------------------------------------------------------------

// Node-style fs error: "EXDEV: cross-device link not permitted, copy_file_range".
// err is -errno (which is also libuv's error code on Linux).
static Napi::Error MakeErrnoError(Napi::Env env, int err, const char* syscall, const std::string* path = nullptr) {
  const char* code = uv_err_name(err);
  std::string msg = std::string(code) + ": " + uv_strerror(err) + ", " + syscall;
  if (path != nullptr) msg += " '" + *path + "'";
  Napi::Error e = Napi::Error::New(env, msg);
  e.Set("errno", Napi::Number::New(env, err));
  e.Set("code", Napi::String::New(env, code));
  e.Set("syscall", Napi::String::New(env, syscall));
  // Path as (lossy) UTF-8 text for messages; the bytes themselves stay with the caller.
  if (path != nullptr) e.Set("path", Napi::String::New(env, path->data(), path->size()));
  return e;
}

static void ThrowTypeError(Napi::Env env, const std::string& msg) {
  Napi::TypeError e = Napi::TypeError::New(env, msg);
  e.Set("code", Napi::String::New(env, "ERR_INVALID_ARG_TYPE"));
  e.ThrowAsJavaScriptException();
}

// Byte string argument (Buffer/Uint8Array, or a JS string taken as UTF-8).
// Rejects embedded NULs like Node does. Returns false with a pending exception.
static bool GetBytes(const Napi::CallbackInfo& info, size_t i, const char* what, std::string* out, bool allowNul = false) {
  Napi::Env env = info.Env();
  Napi::Value v = info[i];
  if (v.IsBuffer()) {
    Napi::Buffer<char> b = v.As<Napi::Buffer<char>>();
    out->assign(b.Data(), b.Length());
  } else if (v.IsTypedArray() && v.As<Napi::TypedArray>().TypedArrayType() == napi_uint8_array) {
    Napi::Uint8Array a = v.As<Napi::Uint8Array>();
    out->assign(reinterpret_cast<const char*>(a.Data()), a.ByteLength());
  } else if (v.IsString()) {
    *out = v.As<Napi::String>().Utf8Value();
  } else {
    ThrowTypeError(env, std::string("The \"") + what + "\" argument must be a Buffer or string");
    return false;
  }
  if (!allowNul && out->find('\0') != std::string::npos) {
    Napi::TypeError e = Napi::TypeError::New(env, std::string("The \"") + what + "\" argument must not contain null bytes");
    e.Set("code", Napi::String::New(env, "ERR_INVALID_ARG_VALUE"));
    e.ThrowAsJavaScriptException();
    return false;
  }
  return true;
}

static bool GetInt64(const Napi::CallbackInfo& info, size_t i, const char* what, int64_t* out, int64_t min = 0) {
  Napi::Value v = info[i];
  if (!v.IsNumber()) {
    ThrowTypeError(info.Env(), std::string("The \"") + what + "\" argument must be a number");
    return false;
  }
  double d = v.As<Napi::Number>().DoubleValue();
  // Integers only, within the exactly representable range (NaN fails the first test).
  if (!(d >= (double)min && d <= 9007199254740991.0) || d != std::trunc(d)) {
    Napi::RangeError e = Napi::RangeError::New(info.Env(), std::string("The \"") + what + "\" argument is out of range");
    e.Set("code", Napi::String::New(info.Env(), "ERR_OUT_OF_RANGE"));
    e.ThrowAsJavaScriptException();
    return false;
  }
  *out = (int64_t)d;
  return true;
}

static bool GetFd(const Napi::CallbackInfo& info, size_t i, const char* what, int* fd) {
  int64_t v;
  if (!GetInt64(info, i, what, &v)) return false;
  if (v > 0x7fffffff) {
    Napi::RangeError::New(info.Env(), std::string("The \"") + what + "\" argument is out of range").ThrowAsJavaScriptException();
    return false;
  }
  *fd = (int)v;
  return true;
}

static bool CheckArgs(const Napi::CallbackInfo& info, size_t n, const char* fn) {
  if (info.Length() < n) {
    ThrowTypeError(info.Env(), std::string(fn) + ": expected " + std::to_string(n) + " arguments");
    return false;
  }
  return true;
}

// copyFileRange(fdIn, offIn, fdOut, offOut, len): Promise<number>, on the libuv pool.
class CopyFileRangeWorker : public Napi::AsyncWorker {
 public:
  CopyFileRangeWorker(Napi::Env env, int fdIn, int64_t offIn, int fdOut, int64_t offOut, int64_t len)
      : Napi::AsyncWorker(env, "fcp:copyFileRange"),
        deferred_(Napi::Promise::Deferred::New(env)),
        fdIn_(fdIn), fdOut_(fdOut), offIn_(offIn), offOut_(offOut), len_(len) {}

  Napi::Promise Promise() { return deferred_.Promise(); }

  void Execute() override { result_ = fcp_copy_file_range(fdIn_, offIn_, fdOut_, offOut_, len_); }

  void OnOK() override {
    Napi::Env env = Env();
    Napi::HandleScope scope(env);
    if (result_ < 0) {
      deferred_.Reject(MakeErrnoError(env, (int)result_, "copy_file_range").Value());
    } else {
      deferred_.Resolve(Napi::Number::New(env, (double)result_));
    }
  }

 private:
  Napi::Promise::Deferred deferred_;
  int fdIn_, fdOut_;
  int64_t offIn_, offOut_, len_;
  int64_t result_ = 0;
};

static Napi::Value CopyFileRange(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fdIn, fdOut;
  int64_t offIn, offOut, len;
  if (!CheckArgs(info, 5, "copyFileRange") || !GetFd(info, 0, "fdIn", &fdIn) || !GetInt64(info, 1, "offIn", &offIn) ||
      !GetFd(info, 2, "fdOut", &fdOut) || !GetInt64(info, 3, "offOut", &offOut) || !GetInt64(info, 4, "len", &len))
    return env.Undefined();
  auto* w = new CopyFileRangeWorker(env, fdIn, offIn, fdOut, offOut, len);
  Napi::Promise p = w->Promise();
  w->Queue();
  return p;
}

// syncfs(fd): Promise<void>, on the libuv pool (it waits for the disk or the servers).
class SyncfsWorker : public Napi::AsyncWorker {
 public:
  SyncfsWorker(Napi::Env env, int fd)
      : Napi::AsyncWorker(env, "fcp:syncfs"), deferred_(Napi::Promise::Deferred::New(env)), fd_(fd) {}

  Napi::Promise Promise() { return deferred_.Promise(); }

  void Execute() override { result_ = fcp_syncfs(fd_); }

  void OnOK() override {
    Napi::Env env = Env();
    Napi::HandleScope scope(env);
    if (result_ < 0) deferred_.Reject(MakeErrnoError(env, result_, "syncfs").Value());
    else deferred_.Resolve(env.Undefined());
  }

 private:
  Napi::Promise::Deferred deferred_;
  int fd_;
  int result_ = 0;
};

static Napi::Value Syncfs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd;
  if (!CheckArgs(info, 1, "syncfs") || !GetFd(info, 0, "fd", &fd)) return env.Undefined();
  auto* w = new SyncfsWorker(env, fd);
  Napi::Promise p = w->Promise();
  w->Queue();
  return p;
}

static Napi::Value Seek(const Napi::CallbackInfo& info, int whence, const char* name) {
  Napi::Env env = info.Env();
  int fd;
  int64_t off;
  if (!CheckArgs(info, 2, name) || !GetFd(info, 0, "fd", &fd) || !GetInt64(info, 1, "offset", &off)) return env.Undefined();
  int64_t r = fcp_lseek(fd, off, whence);
  if (r == -ENXIO) return Napi::Number::New(env, -1);
  if (r < 0) {
    MakeErrnoError(env, (int)r, "lseek").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  return Napi::Number::New(env, (double)r);
}

static Napi::Value SeekData(const Napi::CallbackInfo& info) { return Seek(info, SEEK_DATA, "seekData"); }
static Napi::Value SeekHole(const Napi::CallbackInfo& info) { return Seek(info, SEEK_HOLE, "seekHole"); }

static Napi::Value ListXattrs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string path;
  if (!CheckArgs(info, 1, "listXattrs") || !GetBytes(info, 0, "path", &path)) return env.Undefined();
  std::vector<char> list;
  int r = fcp_listxattr(path.c_str(), &list);
  if (r < 0) {
    MakeErrnoError(env, r, "llistxattr", &path).ThrowAsJavaScriptException();
    return env.Undefined();
  }
  Napi::Array out = Napi::Array::New(env);
  uint32_t k = 0;
  size_t start = 0;
  for (size_t i = 0; i < list.size(); i++) {
    if (list[i] == '\0') {
      if (i > start) out.Set(k++, Napi::Buffer<char>::Copy(env, list.data() + start, i - start));
      start = i + 1;
    }
  }
  if (start < list.size()) out.Set(k++, Napi::Buffer<char>::Copy(env, list.data() + start, list.size() - start));
  return out;
}

static Napi::Value GetXattr(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string path, name;
  if (!CheckArgs(info, 2, "getXattr") || !GetBytes(info, 0, "path", &path) || !GetBytes(info, 1, "name", &name))
    return env.Undefined();
  std::vector<char> value;
  int r = fcp_getxattr(path.c_str(), name.c_str(), &value);
  if (r < 0) {
    MakeErrnoError(env, r, "lgetxattr", &path).ThrowAsJavaScriptException();
    return env.Undefined();
  }
  return Napi::Buffer<char>::Copy(env, value.data(), value.size());
}

static Napi::Value SetXattr(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string path, name, value;
  if (!CheckArgs(info, 3, "setXattr") || !GetBytes(info, 0, "path", &path) || !GetBytes(info, 1, "name", &name) ||
      !GetBytes(info, 2, "value", &value, /*allowNul=*/true))
    return env.Undefined();
  int r = fcp_setxattr(path.c_str(), name.c_str(), value.data(), value.size());
  if (r < 0) MakeErrnoError(env, r, "lsetxattr", &path).ThrowAsJavaScriptException();
  return env.Undefined();
}

static Napi::Value Fadvise(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd;
  int64_t off, len;
  if (!CheckArgs(info, 4, "fadvise") || !GetFd(info, 0, "fd", &fd) || !GetInt64(info, 1, "offset", &off) ||
      !GetInt64(info, 2, "len", &len))
    return env.Undefined();
  if (!info[3].IsString()) {
    ThrowTypeError(env, "The \"advice\" argument must be a string");
    return env.Undefined();
  }
  std::string a = info[3].As<Napi::String>().Utf8Value();
  int advice;
  if (a == "normal") advice = POSIX_FADV_NORMAL;
  else if (a == "sequential") advice = POSIX_FADV_SEQUENTIAL;
  else if (a == "random") advice = POSIX_FADV_RANDOM;
  else if (a == "willneed") advice = POSIX_FADV_WILLNEED;
  else if (a == "dontneed") advice = POSIX_FADV_DONTNEED;
  else if (a == "noreuse") advice = POSIX_FADV_NOREUSE;
  else {
    Napi::TypeError e = Napi::TypeError::New(env, "Unknown fadvise advice '" + a + "'");
    e.Set("code", Napi::String::New(env, "ERR_INVALID_ARG_VALUE"));
    e.ThrowAsJavaScriptException();
    return env.Undefined();
  }
  int r = fcp_fadvise(fd, off, len, advice);
  if (r < 0) MakeErrnoError(env, r, "posix_fadvise").ThrowAsJavaScriptException();
  return env.Undefined();
}

static Napi::Value Utimens(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string path;
  int64_t asec, ansec, msec, mnsec;
  const int64_t kMin = INT64_MIN / 2;  // seconds may be negative (before 1970)
  if (!CheckArgs(info, 6, "utimens") || !GetBytes(info, 0, "path", &path) || !GetInt64(info, 1, "atimeSec", &asec, kMin) ||
      !GetInt64(info, 2, "atimeNsec", &ansec) || !GetInt64(info, 3, "mtimeSec", &msec, kMin) ||
      !GetInt64(info, 4, "mtimeNsec", &mnsec))
    return env.Undefined();
  if (ansec > 999999999 || mnsec > 999999999) {
    Napi::RangeError::New(env, "utimens: nanoseconds must be in [0, 1e9)").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  bool follow = info[5].ToBoolean().Value();
  int r = fcp_utimens(path.c_str(), asec, ansec, msec, mnsec, follow);
  if (r < 0) MakeErrnoError(env, r, "utimensat", &path).ThrowAsJavaScriptException();
  return env.Undefined();
}

static Napi::Value Mkfifo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string path;
  int64_t mode;
  if (!CheckArgs(info, 2, "mkfifo") || !GetBytes(info, 0, "path", &path) || !GetInt64(info, 1, "mode", &mode))
    return env.Undefined();
  int r = fcp_mkfifo(path.c_str(), (int)(mode & 07777));
  if (r < 0) MakeErrnoError(env, r, "mkfifo", &path).ThrowAsJavaScriptException();
  return env.Undefined();
}

// fallocate(fd, len): blocks for [0, len) without writing them (mode 0). Why: the
// checkpoint's space reserve (src/checkpoint/reserve.ts) written as zeros is one request
// per page on a FUSE client that writes 4 KiB at a time (1,024 for 4 MiB, per rank);
// allocated, it is one. Throws the errno (EOPNOTSUPP where the file system cannot).
static Napi::Value Fallocate(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd;
  int64_t len;
  if (!CheckArgs(info, 2, "fallocate") || !GetFd(info, 0, "fd", &fd) || !GetInt64(info, 1, "length", &len)) return env.Undefined();
  if (fallocate(fd, 0, 0, (off_t)len) < 0) MakeErrnoError(env, -errno, "fallocate").ThrowAsJavaScriptException();
  return env.Undefined();
}

// exitNow(code): _exit(code), without running exit handlers. Why: libuv joins its
// thread-pool threads at process teardown (a destructor), so process.exit() waits
// forever when a thread is blocked in a request a hung file system never answers; a job
// that has saved its progress must still exit (see src/engine/runtime.ts). stdout and
// stderr are pipes, files or terminals, which Node writes synchronously on Linux.
static Napi::Value ExitNow(const Napi::CallbackInfo& info) {
  int code = info.Length() > 0 && info[0].IsNumber() ? info[0].As<Napi::Number>().Int32Value() : 1;
  _exit(code);
}

void RegisterBatch(Napi::Env env, Napi::Object exports);    // batch.cc
void RegisterBeneath(Napi::Env env, Napi::Object exports);  // beneath.cc

static Napi::Object Init(Napi::Env env, Napi::Object exports) {
  // Each libuv worker that allocates gets its own glibc malloc arena, and an arena keeps
  // what was freed in it: with 16 workers copying batches that is tens of MiB of RSS per
  // rank doing nothing (300,000 files, -np 2: peak 267 -> 226 MiB with MALLOC_ARENA_MAX=2).
  // Workers allocate little and briefly (buffers per batch), so sharing a few arenas costs
  // nothing measurable. Caps arenas created from now on (the addon loads early).
#ifdef M_ARENA_MAX
  mallopt(M_ARENA_MAX, 2);
#endif
  RegisterBatch(env, exports);
  RegisterBeneath(env, exports);
  fcp::ExportConstants(env, exports);
  exports.Set("copyFileRange", Napi::Function::New(env, CopyFileRange, "copyFileRange"));
  exports.Set("seekData", Napi::Function::New(env, SeekData, "seekData"));
  exports.Set("seekHole", Napi::Function::New(env, SeekHole, "seekHole"));
  exports.Set("listXattrs", Napi::Function::New(env, ListXattrs, "listXattrs"));
  exports.Set("getXattr", Napi::Function::New(env, GetXattr, "getXattr"));
  exports.Set("setXattr", Napi::Function::New(env, SetXattr, "setXattr"));
  exports.Set("fadvise", Napi::Function::New(env, Fadvise, "fadvise"));
  exports.Set("utimens", Napi::Function::New(env, Utimens, "utimens"));
  exports.Set("mkfifo", Napi::Function::New(env, Mkfifo, "mkfifo"));
  exports.Set("exitNow", Napi::Function::New(env, ExitNow, "exitNow"));
  exports.Set("syncfs", Napi::Function::New(env, Syncfs, "syncfs"));
  exports.Set("fallocate", Napi::Function::New(env, Fallocate, "fallocate"));
  return exports;
}

NODE_API_MODULE(fcp_native, Init)
