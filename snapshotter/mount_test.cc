// MountAll and MountGuard, against the kernel.
#include "snapshotter/mount.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cerrno>
#include <fstream>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "base/status_matchers.h"
#include "base/unique_fd.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "base/temp_dir.h"

namespace berth::snapshotter {
namespace {

// Whether `path` is a mountpoint in this mount namespace.
bool IsMounted(const std::string& path) {
  std::ifstream mountinfo("/proc/self/mountinfo");
  std::string line;
  while (std::getline(mountinfo, line)) {
    std::vector<std::string> fields = absl::StrSplit(line, ' ');
    if (fields.size() > 4 && fields[4] == path) return true;
  }
  return false;
}

bool Touch(const std::string& path) {
  return UniqueFd(::open(path.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644)).valid();
}

class MountTest : public ::testing::Test {
 protected:
  void SetUp() override {
    for (const char* sub : {"/src", "/target"}) {
      ASSERT_EQ(::mkdir((dir_.path() + sub).c_str(), 0755), 0);
    }
  }

  std::string Path(absl::string_view sub) const { return absl::StrCat(dir_.path(), sub); }

  TempDir dir_;
};

TEST_F(MountTest, ReadOnlyBindIsRemountedReadOnly) {
  absl::StatusOr<MountGuard> guard =
      MountAll({Mount{"bind", Path("/src"), "", {"ro", "rbind"}}}, Path("/target"));
  ASSERT_THAT(guard, IsOk());
  EXPECT_FALSE(Touch(Path("/target/f")));
  EXPECT_EQ(errno, EROFS);
  EXPECT_TRUE(Touch(Path("/src/f"))) << "the source stays writable";
  EXPECT_EQ(::access(Path("/target/f").c_str(), F_OK), 0);
}

TEST_F(MountTest, GuardUnmountsWhenItGoes) {
  {
    absl::StatusOr<MountGuard> guard =
        MountAll({Mount{"bind", Path("/src"), "", {"rw", "rbind"}}}, Path("/target"));
    ASSERT_THAT(guard, IsOk());
    EXPECT_TRUE(IsMounted(Path("/target")));
    EXPECT_TRUE(Touch(Path("/target/written")));
    MountGuard moved = *std::move(guard);
    EXPECT_TRUE(IsMounted(Path("/target")));
  }
  EXPECT_FALSE(IsMounted(Path("/target")));
  EXPECT_EQ(::access(Path("/src/written").c_str(), F_OK), 0);
}

TEST_F(MountTest, FlagsAndDataAreSeparated) {
  absl::StatusOr<MountGuard> guard = MountAll(
      {Mount{"tmpfs", "berth-test", "", {"nosuid", "nodev", "size=1m", "mode=0710"}}},
      Path("/target"));
  ASSERT_THAT(guard, IsOk());
  struct statvfs vfs;
  ASSERT_EQ(::statvfs(Path("/target").c_str(), &vfs), 0);
  EXPECT_TRUE(vfs.f_flag & ST_NOSUID);
  EXPECT_TRUE(vfs.f_flag & ST_NODEV);
  EXPECT_EQ(vfs.f_blocks * vfs.f_frsize, 1u << 20);
  struct stat st;
  ASSERT_EQ(::stat(Path("/target").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0710u);
}

// A failure halfway leaves nothing mounted.
TEST_F(MountTest, FailureUnmountsWhatWasMounted) {
  absl::StatusOr<MountGuard> guard =
      MountAll({Mount{"bind", Path("/src"), "", {"rbind"}},
                Mount{"overlay", "overlay", "", {"lowerdir=" + Path("/missing")}}},
               Path("/target"));
  EXPECT_THAT(guard, StatusIs(absl::StatusCode::kNotFound));
  EXPECT_THAT(guard.status().message(), ::testing::HasSubstr("mount overlay"));
  EXPECT_FALSE(IsMounted(Path("/target")));
}

TEST_F(MountTest, TargetsMayNotLeaveTheMountpoint) {
  EXPECT_THAT(MountAll({Mount{"bind", Path("/src"), "../escape", {"rbind"}}}, Path("/target")),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_FALSE(IsMounted(Path("/escape")));
}

// More lowerdir than a page: mounted from the lowers' common directory, on a
// thread of its own, so this thread's working directory never moves.
TEST_F(MountTest, OverlayOptionsLongerThanAPage) {
  ASSERT_EQ(::mkdir(Path("/layers").c_str(), 0755), 0);
  std::vector<std::string> lowers;
  for (int i = 0; i < 200; ++i) {
    std::string lower = Path(absl::StrCat("/layers/layer-number-", i));
    ASSERT_EQ(::mkdir(lower.c_str(), 0755), 0);
    lowers.push_back(lower);
  }
  ASSERT_TRUE(Touch(lowers.back() + "/bottom"));
  for (const char* sub : {"/upper", "/work"}) ASSERT_EQ(::mkdir(Path(sub).c_str(), 0755), 0);
  Mount overlay{"overlay",
                "overlay",
                "",
                {"lowerdir=" + absl::StrJoin(lowers, ":"), "upperdir=" + Path("/upper"),
                 "workdir=" + Path("/work")}};
  ASSERT_GT(absl::StrJoin(overlay.options, ",").size(), 4096u);
  char before[4096];
  ASSERT_NE(::getcwd(before, sizeof(before)), nullptr);
  absl::StatusOr<MountGuard> guard = MountAll({overlay}, Path("/target"));
  ASSERT_THAT(guard, IsOk());
  EXPECT_EQ(::access(Path("/target/bottom").c_str(), F_OK), 0);
  char after[4096];
  ASSERT_NE(::getcwd(after, sizeof(after)), nullptr);
  EXPECT_STREQ(before, after);
}

}  // namespace
}  // namespace berth::snapshotter
