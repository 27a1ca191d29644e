// Path resolution that cannot escape a directory (see beneath.cc).
#pragma once

#include <sys/types.h>

#include <string>

namespace fcp {

/**
 * Open `rel` relative to the directory fd `dirfd`, following no symbolic link in any
 * component (also not the last: a symlink there is ELOOP, or with O_PATH its own fd) and
 * never leaving dirfd ('..' out of it, absolute paths). openat2(RESOLVE_BENEATH |
 * RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS) where the kernel has it, else a walk of
 * openat(O_NOFOLLOW) per component. Returns the fd or -errno; a symlink met on the way
 * (or an escape) is -ELOOP. O_NOFOLLOW and O_CLOEXEC are always added. rel '' is dirfd itself.
 */
int OpenBeneath(int dirfd, const char* rel, int flags, mode_t mode = 0);

/**
 * The directory that holds rel's last component, opened O_PATH beneath dirfd, and that
 * name: for the *at calls. `fd` is dirfd itself (not to be closed) when rel has one
 * component. rel '' names dirfd itself as ".".
 */
struct ParentAt {
  int fd = -1;
  bool owned = false;
  std::string name;
  ~ParentAt();
};
int ResolveParent(int dirfd, const std::string& rel, ParentAt* out);

/** Test hook: resolve by the openat walk even where openat2 exists. */
void ForceWalkResolution(bool on);

}  // namespace fcp
