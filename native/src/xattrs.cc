// See xattrs.h.
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include "xattrs.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/xattr.h>

#include "layout.h"

namespace fcp {

XattrFile::XattrFile(int fd, bool oPath) : fd_(fd), oPath_(oPath) {
  proc_[0] = '\0';
  if (oPath) snprintf(proc_, sizeof proc_, "/proc/self/fd/%d", fd);
}

ssize_t XattrFile::List(char* names, size_t size) const {
  return oPath_ ? listxattr(proc_, names, size) : flistxattr(fd_, names, size);
}

ssize_t XattrFile::Get(const char* name, void* value, size_t size) const {
  return oPath_ ? getxattr(proc_, name, value, size) : fgetxattr(fd_, name, value, size);
}

int XattrFile::Set(const char* name, const void* value, size_t size) const {
  return oPath_ ? setxattr(proc_, name, value, size, 0) : fsetxattr(fd_, name, value, size, 0);
}

ssize_t GetXattr(const XattrFile& f, const char* name, std::vector<char>* value) {
  if (value->empty()) value->resize(4096);
  for (;;) {
    ssize_t v = f.Get(name, value->data(), value->size());
    if (v >= 0) return v;
    if (errno != ERANGE) return -errno;
    value->resize(value->size() * 4);
  }
}

int CopyXattrs(const XattrFile& src, const XattrFile& dst, bool symlink, const std::string& layout) {
  std::vector<char> names(1024), value(4096);
  ssize_t n;
  for (;;) {
    n = src.List(names.data(), names.size());
    if (n >= 0) break;
    if (errno == ERANGE) { names.resize(names.size() * 4); continue; }
    if (errno == ENOTSUP || errno == EOPNOTSUPP) return 0;
    return -errno;
  }
  for (ssize_t i = 0; i < n;) {
    const char* name = names.data() + i;
    i += (ssize_t)strlen(name) + 1;
    if (IsLayoutXattr(name, layout)) continue;
    bool user = strncmp(name, "user.", 5) == 0;
    if (user && symlink) continue;
    ssize_t v = GetXattr(src, name, &value);
    if (v < 0) { if (v == -ENODATA || !user) continue; return (int)v; }
    if (dst.Set(name, value.data(), (size_t)v) < 0 && user) return -errno;
  }
  return 0;
}

}  // namespace fcp
