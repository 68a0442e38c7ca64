// The conformance suite every Snapshotter implementation runs (as
// containerd's SnapshotterSuite): the behaviour snapshotter.h promises,
// checked through real mounts. An implementation's test instantiates it:
//
//   INSTANTIATE_TEST_SUITE_P(Native, SnapshotterSuite,
//                            ::testing::Values(SuiteParam{"native", [](const std::string& root) {
//                              return NewNativeSnapshotter(root);
//                            }}),
//                            SuiteParamName);
//
// Each case gets its own temporary directory under /tmp holding the root and
// the mountpoints; every mount is held by a MountGuard, so it is unmounted
// even when an assertion fails, and the directory is removed afterwards.
// Needs root (it mounts).
#ifndef BERTH_SNAPSHOTTER_SNAPSHOTTER_SUITE_H_
#define BERTH_SNAPSHOTTER_SNAPSHOTTER_SUITE_H_

#include <functional>
#include <memory>
#include <ostream>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "gtest/gtest.h"
#include "snapshotter/mount.h"
#include "snapshotter/snapshotter.h"
#include "base/temp_dir.h"

namespace berth::snapshotter {

using SnapshotterFactory =
    std::function<absl::StatusOr<std::unique_ptr<Snapshotter>>(const std::string& root)>;

struct SuiteParam {
  std::string name;  // for test names: [A-Za-z0-9_]
  SnapshotterFactory factory;
  // The longest key it takes: kMaxKeyLength through InNamespace.
  size_t max_key_length = kMaxStoredKeyLength;
};

std::string SuiteParamName(const ::testing::TestParamInfo<SuiteParam>& info);
void PrintTo(const SuiteParam& param, std::ostream* os);

// Mounts as test failures show them.
void PrintTo(const Mount& mount, std::ostream* os);

class SnapshotterSuite : public ::testing::TestWithParam<SuiteParam> {
 protected:
  void SetUp() override;
  void TearDown() override;

  // Closes the snapshotter and opens a new one on the same root, as a
  // restart after a crash would.
  void Reopen();

  // Mounts `mounts` on a fresh directory named `name` beside the root.
  absl::StatusOr<MountGuard> MountAt(const std::vector<Mount>& mounts, const std::string& name);

  // Prepares `key` on `parent`, mounts it, runs `write` with the mountpoint,
  // unmounts, and commits it as `name`.
  absl::Status CommitLayer(const std::string& name, const std::string& parent,
                           const std::function<absl::Status(const std::string& dir)>& write);

  // Builds `layers` snapshots: a committed bottom layer holding a file,
  // empty committed layers over it and an active snapshot on top; reads the
  // file through the top and through a view of the committed chain.
  void CheckDeepChain(int layers);

  // The names in <root>/snapshots, once background removals are done.
  std::vector<std::string> SnapshotDirs() const;

  TempDir dir_;        // holds root_ and the mountpoints; goes last
  std::string root_;   // the snapshotter's root
  std::unique_ptr<Snapshotter> sn_;
};

}  // namespace berth::snapshotter

#endif  // BERTH_SNAPSHOTTER_SNAPSHOTTER_SUITE_H_
