// A directory under /tmp for one test, removed with everything in it when it
// goes. Under /tmp rather than Bazel's TEST_TMPDIR: overlay mount options
// hold these paths, and the shorter they are the fewer bytes each layer costs.
#ifndef BERTH_SNAPSHOTTER_TEMP_DIR_H_
#define BERTH_SNAPSHOTTER_TEMP_DIR_H_

#include <string>

namespace berth::snapshotter {

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

}  // namespace berth::snapshotter

#endif  // BERTH_SNAPSHOTTER_TEMP_DIR_H_
