// Extended attributes copied from one open file to another: the one loop both the batch
// copy (batch.cc, regular fds) and copyXattrsAt (beneath.cc, O_PATH fds, symlinks too) use.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

namespace fcp {

/**
 * A file whose xattrs are read or written: a readable or writable fd (f*xattr), or an
 * O_PATH fd, which f*xattr refuses (EBADF), through its /proc/self/fd link.
 */
class XattrFile {
 public:
  XattrFile(int fd, bool oPath);
  ssize_t List(char* names, size_t size) const;
  ssize_t Get(const char* name, void* value, size_t size) const;
  int Set(const char* name, const void* value, size_t size) const;

 private:
  int fd_;
  bool oPath_;
  char proc_[40];
};

/**
 * The value of attribute `name` into `value` (grown as needed): its length, or -errno
 * (ENODATA: the file has none).
 */
ssize_t GetXattr(const XattrFile& f, const char* name, std::vector<char>* value);

/**
 * Copy every xattr of src onto dst, except layout attributes (layout.h; `layout` names
 * the job's own): after the data a layout would be ignored, so --layout copy sets it before. user.* must succeed; other namespaces (trusted, security) are best
 * effort, as an unprivileged cp -a would do. `symlink`: user.* are skipped (Linux refuses
 * them on symlinks). 0, or -errno. A source file system without xattrs copies nothing.
 */
int CopyXattrs(const XattrFile& src, const XattrFile& dst, bool symlink, const std::string& layout);

}  // namespace fcp
