// A directory under /tmp for one test, removed with everything in it when it
// goes. Under /tmp rather than Bazel's TEST_TMPDIR: sockets (107 bytes) and
// overlay mount options (one page) hold these paths, so shorter is better.
#ifndef BERTH_BASE_TEMP_DIR_H_
#define BERTH_BASE_TEMP_DIR_H_

#include <set>
#include <string>

namespace berth {

// What tests look for in the trees they make.
// Whether anything (a dangling symlink too) is at `path`.
bool Exists(const std::string& path);
// The names in directory `dir`; empty if it cannot be read.
std::set<std::string> Names(const std::string& dir);
// Extended attribute `name` of `path` itself (not a symlink's target), or
// "<none>".
std::string Xattr(const std::string& path, const char* name);

class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

}  // namespace berth

#endif  // BERTH_BASE_TEMP_DIR_H_
