#include "snapshotter/temp_dir.h"

#include <stdlib.h>

#include <filesystem>
#include <system_error>

namespace berth::snapshotter {

TempDir::TempDir() {
  std::string templ = "/tmp/berth-snapshotter-XXXXXX";
  if (::mkdtemp(templ.data()) == nullptr) std::abort();
  path_ = templ;
}

// Whatever a test mounted below is unmounted by then (its MountGuards go
// first), so this removes only the test's own files.
TempDir::~TempDir() {
  std::error_code error;
  std::filesystem::remove_all(path_, error);
}

}  // namespace berth::snapshotter
