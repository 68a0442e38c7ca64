// Layers for tests: tar archives built entry by entry with libarchive's
// writer, compressed with zlib or zstd. Failures are gtest failures.
#ifndef BERTH_IMAGE_TEST_LAYERS_H_
#define BERTH_IMAGE_TEST_LAYERS_H_

#include <archive_entry.h>

#include <cstdint>
#include <ctime>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/string_view.h"

namespace berth::image {

// Every entry's default mtime.
inline constexpr time_t kTime = 1600000000;

struct TarEntry {
  std::string name;
  unsigned type = AE_IFREG;
  std::string data;
  unsigned perm = 0644;
  int64_t uid = 0;
  int64_t gid = 0;
  time_t mtime = kTime;
  long mtime_ns = 0;
  std::string symlink;
  std::string hardlink;
  unsigned major = 0;
  unsigned minor = 0;
  std::vector<std::pair<std::string, std::string>> xattrs;
  // Data regions (offset, length) of a sparse entry; `data` is its whole
  // logical content.
  std::vector<std::pair<int64_t, int64_t>> sparse;
};

TarEntry File(std::string name, std::string data = "", unsigned perm = 0644);
TarEntry Dir(std::string name, unsigned perm = 0755);
TarEntry Symlink(std::string name, std::string target);
TarEntry Hardlink(std::string name, std::string target);
TarEntry Node(std::string name, unsigned type, unsigned major = 0, unsigned minor = 0);

// A PAX tar of `entries`, in order, padded to 10240-byte blocks as tar(1)
// pads (so the bytes after the end-of-archive records are exercised too).
std::string MakeTar(const std::vector<TarEntry>& entries);

std::string Gzip(absl::string_view data);
std::string Zstd(absl::string_view data);

}  // namespace berth::image

#endif  // BERTH_IMAGE_TEST_LAYERS_H_
