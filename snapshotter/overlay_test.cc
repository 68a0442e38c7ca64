// The conformance suite on overlayfs, and what only overlay promises: its
// mount data, the on-disk form of whiteouts, its depth limit, its links and
// the probe.
#include <fcntl.h>
#include <limits.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <filesystem>
#include <set>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "base/status_matchers.h"
#include "base/unique_fd.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "snapshotter/mount.h"
#include "snapshotter/snapshotter.h"
#include "snapshotter/snapshotter_suite.h"
#include "base/temp_dir.h"
#include "store/sqlite.h"

namespace berth::snapshotter {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::SizeIs;

absl::StatusOr<std::unique_ptr<Snapshotter>> OpenOverlay(const std::string& root) {
  absl::StatusOr<OverlayOptions> options = ProbeOverlay(root);
  if (!options.ok()) return options.status();
  return NewOverlaySnapshotter(root, *options);
}

INSTANTIATE_TEST_SUITE_P(Overlay, SnapshotterSuite,
                         ::testing::Values(SuiteParam{"overlay", OpenOverlay}), SuiteParamName);

// The value of option `name=` in `mount`, or "".
std::string Option(const Mount& mount, absl::string_view name) {
  for (const std::string& option : mount.options) {
    absl::string_view value = option;
    if (absl::ConsumePrefix(&value, name) && absl::ConsumePrefix(&value, "=")) {
      return std::string(value);
    }
  }
  return "";
}

bool Touch(const std::string& path) {
  return UniqueFd(::open(path.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644)).valid();
}

std::vector<std::string> Lowers(const Mount& mount) {
  return absl::StrSplit(Option(mount, "lowerdir"), ':');
}

class OverlayTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = dir_.path() + "/root";
    absl::StatusOr<std::unique_ptr<Snapshotter>> sn = OpenOverlay(root_);
    ASSERT_THAT(sn, IsOk());
    sn_ = *std::move(sn);
  }

  // Prepares `key` on `parent` and commits it as `name`; returns the
  // directory holding its files (its upperdir, or its bind source).
  std::string Layer(const std::string& name, const std::string& parent) {
    absl::StatusOr<std::vector<Mount>> mounts = sn_->Prepare("extract-" + name, parent);
    EXPECT_THAT(mounts, IsOk());
    if (!mounts.ok()) return "";
    EXPECT_THAT(sn_->Commit(name, "extract-" + name), IsOk());
    const Mount& mount = mounts->at(0);
    return mount.type == "bind" ? mount.source : Option(mount, "upperdir");
  }

  // `layers` committed layers named layer-0 … on each other.
  void Chain(int layers) {
    std::string parent;
    for (int i = 0; i < layers; ++i) {
      std::string name = absl::StrCat("layer-", i);
      ASSERT_THAT(sn_->Prepare("a", parent), IsOk()) << i;
      ASSERT_THAT(sn_->Commit(name, "a"), IsOk()) << i;
      parent = name;
    }
  }

  TempDir dir_;
  std::string root_;
  std::unique_ptr<Snapshotter> sn_;
};

TEST_F(OverlayTest, MountDataNamesEachLayerWhileItFits) {
  const std::string fs1 = Layer("l1", "");
  const std::string fs2 = Layer("l2", "l1");
  EXPECT_EQ(fs1, root_ + "/snapshots/1/fs");
  EXPECT_EQ(fs2, root_ + "/snapshots/2/fs");

  absl::StatusOr<std::vector<Mount>> active = sn_->Prepare("ctr", "l2");
  ASSERT_THAT(active, IsOk());
  ASSERT_THAT(*active, SizeIs(1));
  const Mount& overlay = active->at(0);
  EXPECT_EQ(overlay.type, "overlay");
  EXPECT_EQ(overlay.source, "overlay");
  EXPECT_EQ(Option(overlay, "upperdir"), root_ + "/snapshots/3/fs");
  EXPECT_EQ(Option(overlay, "workdir"), root_ + "/snapshots/3/work");
  EXPECT_THAT(Lowers(overlay), ElementsAre(fs2, fs1)) << "nearest parent first";

  // Views: of nothing and of one layer, read-only binds; of two, lowers only.
  EXPECT_THAT(*sn_->View("empty", ""),
              ElementsAre(Mount{"bind", root_ + "/snapshots/4/fs", "", {"ro", "rbind"}}));
  EXPECT_THAT(*sn_->View("one", "l1"), ElementsAre(Mount{"bind", fs1, "", {"ro", "rbind"}}));
  absl::StatusOr<std::vector<Mount>> two = sn_->View("two", "l2");
  ASSERT_THAT(two, IsOk());
  EXPECT_EQ(Option(two->at(0), "upperdir"), "");
  EXPECT_EQ(Option(two->at(0), "workdir"), "");
  EXPECT_THAT(Lowers(two->at(0)), ElementsAre(fs2, fs1));
}

// Past a page of options, lowerdir names the short links in <root>/l, each
// leading to its layer's fs directory.
TEST_F(OverlayTest, DeepChainsNameShortLinks) {
  Chain(128);
  absl::StatusOr<std::vector<Mount>> mounts = sn_->Prepare("top", "layer-127");
  ASSERT_THAT(mounts, IsOk());
  std::vector<std::string> lowers = Lowers(mounts->at(0));
  ASSERT_THAT(lowers, SizeIs(128));
  std::set<std::string> targets;
  for (const std::string& lower : lowers) {
    ASSERT_TRUE(absl::StartsWith(lower, root_ + "/l/")) << lower;
    EXPECT_LE(lower.size() - root_.size() - 3, 6u) << lower;
    char target[PATH_MAX] = {};
    ASSERT_GT(::readlink(lower.c_str(), target, sizeof(target) - 1), 0) << lower;
    EXPECT_TRUE(absl::StartsWith(target, "../snapshots/")) << target;
    targets.insert(target);
  }
  EXPECT_THAT(targets, SizeIs(128));
  // The nearest parent, layer-127, is snapshot 128.
  char target[PATH_MAX] = {};
  ASSERT_GT(::readlink(lowers[0].c_str(), target, sizeof(target) - 1), 0);
  EXPECT_STREQ(target, "../snapshots/128/fs");
  EXPECT_GT(absl::StrJoin(mounts->at(0).options, ",").size(), 4096u)
      << "absolute links still exceed a page; MountAll mounts them relative to <root>/l";
}

// With seven-digit ids even lowerdir relative to <root>/snapshots
// ("1000001/fs:" per layer) overflows a page at 500 layers; the links
// ("lfls:") keep it inside.
TEST_F(OverlayTest, FiveHundredLowersFitWhateverTheIds) {
  ASSERT_THAT(sn_->Prepare("first", ""), IsOk());
  ASSERT_THAT(sn_->Remove("first"), IsOk());
  ASSERT_THAT(sn_->Close(), IsOk());
  {
    absl::StatusOr<store::sqlite::Db> db = store::sqlite::Db::Open(root_ + "/metadata.db");
    ASSERT_THAT(db, IsOk());
    ASSERT_THAT(db->Exec("UPDATE sqlite_sequence SET seq = 1000000 WHERE name = 'snapshots'"),
                IsOk());
  }
  absl::StatusOr<std::unique_ptr<Snapshotter>> sn = OpenOverlay(root_);
  ASSERT_THAT(sn, IsOk());
  sn_ = *std::move(sn);
  Chain(500);
  absl::StatusOr<std::vector<Mount>> mounts = sn_->View("view", "layer-499");
  ASSERT_THAT(mounts, IsOk());
  std::vector<std::string> lowers = Lowers(mounts->at(0));
  ASSERT_THAT(lowers, SizeIs(500));
  char target[PATH_MAX] = {};
  ASSERT_GT(::readlink(lowers[0].c_str(), target, sizeof(target) - 1), 0);
  EXPECT_STREQ(target, "../snapshots/1000500/fs");
  const std::string mnt = dir_.path() + "/mnt";
  ASSERT_EQ(::mkdir(mnt.c_str(), 0755), 0);
  EXPECT_THAT(MountAll(*mounts, mnt), IsOk());
}

TEST_F(OverlayTest, RemoveAndCleanupDropLinks) {
  ASSERT_THAT(sn_->Prepare("a", ""), IsOk());
  ASSERT_THAT(sn_->Prepare("b", ""), IsOk());
  EXPECT_THAT(Names(root_ + "/l"), ElementsAre("1", "2"));
  ASSERT_THAT(sn_->Remove("a"), IsOk());
  // The link goes with the directory, in the background.
  for (int i = 0; i < 1000 && Names(root_ + "/l").size() > 1; ++i) absl::SleepFor(absl::Milliseconds(10));
  EXPECT_THAT(Names(root_ + "/l"), ElementsAre("2"));
  // A creation that crashed after making its link, and a name no id makes.
  ASSERT_EQ(::symlink("../snapshots/7/fs", (root_ + "/l/7").c_str()), 0);
  ASSERT_EQ(::symlink("../snapshots/8/fs", (root_ + "/l/0x").c_str()), 0);
  ASSERT_THAT(sn_->Cleanup(), IsOk());
  EXPECT_THAT(Names(root_ + "/l"), ElementsAre("2"));
}

// The diff code reads layers as overlay wrote them: a deleted file is a 0/0
// character device, a replaced directory carries trusted.overlay.opaque=y.
TEST_F(OverlayTest, WhiteoutsAndOpaqueDirectoriesAreStoredAsOverlayWritesThem) {
  absl::StatusOr<std::vector<Mount>> base = sn_->Prepare("extract-base", "");
  ASSERT_THAT(base, IsOk());
  const std::string mnt = dir_.path() + "/mnt";
  ASSERT_EQ(::mkdir(mnt.c_str(), 0755), 0);
  {
    absl::StatusOr<MountGuard> guard = MountAll(*base, mnt);
    ASSERT_THAT(guard, IsOk());
    ASSERT_EQ(::mkdir((mnt + "/dir").c_str(), 0755), 0);
    ASSERT_TRUE(Touch(mnt + "/dir/old"));
    ASSERT_TRUE(Touch(mnt + "/file"));
  }
  ASSERT_THAT(sn_->Commit("base", "extract-base"), IsOk());
  absl::StatusOr<std::vector<Mount>> change = sn_->Prepare("extract-change", "base");
  ASSERT_THAT(change, IsOk());
  {
    absl::StatusOr<MountGuard> guard = MountAll(*change, mnt);
    ASSERT_THAT(guard, IsOk());
    ASSERT_EQ(::unlink((mnt + "/file").c_str()), 0);
    ASSERT_EQ(::unlink((mnt + "/dir/old").c_str()), 0);
    ASSERT_EQ(::rmdir((mnt + "/dir").c_str()), 0);
    ASSERT_EQ(::mkdir((mnt + "/dir").c_str(), 0755), 0);
  }
  const std::string upper = Option(change->at(0), "upperdir");
  ASSERT_THAT(sn_->Commit("change", "extract-change"), IsOk());
  struct stat st;
  ASSERT_EQ(::lstat((upper + "/file").c_str(), &st), 0);
  EXPECT_TRUE(S_ISCHR(st.st_mode));
  EXPECT_EQ(st.st_rdev, makedev(0, 0));
  char value[8] = {};
  EXPECT_EQ(::lgetxattr((upper + "/dir").c_str(), "trusted.overlay.opaque", value, sizeof(value)),
            1);
  EXPECT_EQ(value[0], 'y');
}

// OVL_MAX_STACK: 500 lowers mount, 501 are refused up front (the kernel would
// say only EINVAL).
TEST_F(OverlayTest, ChainsDeeperThan500LowersAreRefused) {
  Chain(501);
  const std::string mnt = dir_.path() + "/mnt";
  ASSERT_EQ(::mkdir(mnt.c_str(), 0755), 0);
  for (bool view : {true, false}) {
    SCOPED_TRACE(view ? "view" : "active");
    std::string key = view ? "v500" : "p500";
    absl::StatusOr<std::vector<Mount>> mounts =
        view ? sn_->View(key, "layer-499") : sn_->Prepare(key, "layer-499");
    ASSERT_THAT(mounts, IsOk());
    EXPECT_THAT(Lowers(mounts->at(0)), SizeIs(500));
    absl::StatusOr<MountGuard> guard = MountAll(*mounts, mnt);
    EXPECT_THAT(guard, IsOk());
  }
  absl::Status status = sn_->Prepare("too-deep", "layer-500").status();
  EXPECT_THAT(status, StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_THAT(status.message(), HasSubstr("500"));
  EXPECT_THAT(sn_->View("too-deep", "layer-500"),
              StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_THAT(sn_->Stat("too-deep"), StatusIs(absl::StatusCode::kNotFound));
}

TEST(OverlayProbe, WorksHereAndLeavesNothingBehind) {
  TempDir dir;
  absl::StatusOr<OverlayOptions> options = ProbeOverlay(dir.path() + "/root");
  ASSERT_THAT(options, IsOk());
  EXPECT_EQ(options->index_off, ::access("/sys/module/overlay/parameters/index", F_OK) == 0);
  EXPECT_FALSE(options->userxattr) << "root in the initial user namespace";
  EXPECT_THAT(Names(dir.path() + "/root"), IsEmpty());
}

// overlayfs cannot be the upper layer of another overlay.
TEST(OverlayProbe, RefusesOverlayfsAsTheUpperFilesystem) {
  TempDir dir;
  const std::string d = dir.path();
  for (const char* sub : {"/lower", "/upper", "/work", "/merged"}) {
    ASSERT_EQ(::mkdir((d + sub).c_str(), 0755), 0);
  }
  absl::StatusOr<MountGuard> guard =
      MountAll({Mount{"overlay", "overlay", "",
                      {"lowerdir=" + d + "/lower", "upperdir=" + d + "/upper",
                       "workdir=" + d + "/work"}}},
               d + "/merged");
  ASSERT_THAT(guard, IsOk());
  absl::StatusOr<OverlayOptions> options = ProbeOverlay(d + "/merged/root");
  EXPECT_THAT(options, StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_THAT(options.status().message(), HasSubstr("on overlayfs"));
  EXPECT_THAT(Names(d + "/merged/root"), IsEmpty()) << "the probe cleaned up after itself";
}

TEST(OverlaySnapshotter, RefusesRootsOverlayOptionsCannotHold) {
  TempDir dir;
  for (const char* name : {"/a:b", "/a,b", "/a\\b"}) {
    SCOPED_TRACE(name);
    EXPECT_THAT(NewOverlaySnapshotter(dir.path() + name, OverlayOptions{}),
                StatusIs(absl::StatusCode::kInvalidArgument));
  }
}

}  // namespace
}  // namespace berth::snapshotter
