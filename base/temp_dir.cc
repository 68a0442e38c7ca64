#include "base/temp_dir.h"

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>

namespace berth {
namespace {

int RemoveEntry(const char* path, const struct stat*, int, struct FTW*) {
  ::remove(path);
  return 0;
}

}  // namespace

TempDir::TempDir() {
  char tmpl[] = "/tmp/berth-test-XXXXXX";
  if (::mkdtemp(tmpl) == nullptr) std::abort();
  path_ = tmpl;
}

// FTW_MOUNT: a mount a test left behind is not descended into, so its
// filesystem's files are never deleted through it.
TempDir::~TempDir() { ::nftw(path_.c_str(), RemoveEntry, 16, FTW_DEPTH | FTW_PHYS | FTW_MOUNT); }

}  // namespace berth
