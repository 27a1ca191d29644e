// A file's layout attribute (Lustre's striping, `lustre.lov`): never copied with the other
// xattrs after the data (Lustre ignores a layout set on a file that has objects: the
// source's striping would be lost without a word), but, with --layout copy, set on the
// new, still empty file before its first byte (see src/copy/layout.ts).
#pragma once

#include <fcntl.h>
#include <string.h>

#include <string>

#include "constants.h"  // kLovDelayCreate

namespace fcp {

/**
 * Is `name` a layout attribute: Lustre's (lustre.lov, and trusted.lov, the same layout as
 * root lists it) or the one the job names (`configured`, a test's user.* stand-in)?
 */
inline bool IsLayoutXattr(const char* name, const std::string& configured) {
  return strcmp(name, "lustre.lov") == 0 || strcmp(name, "trusted.lov") == 0 || (!configured.empty() && configured == name);
}

}  // namespace fcp
