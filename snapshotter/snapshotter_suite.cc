#include "snapshotter/snapshotter_suite.h"

#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <filesystem>
#include <map>
#include <set>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/barrier.h"
#include "absl/time/clock.h"
#include "base/files.h"
#include "base/sha256.h"
#include "base/status.h"
#include "base/status_matchers.h"
#include "base/strings.h"
#include "base/unique_fd.h"
#include "gmock/gmock.h"
#include "image/layer.h"
#include "image/test_layers.h"

namespace berth::snapshotter {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::SizeIs;
using ::testing::UnorderedElementsAre;
using ::testing::UnorderedElementsAreArray;

constexpr absl::StatusCode kInvalidArgument = absl::StatusCode::kInvalidArgument;
constexpr absl::StatusCode kNotFound = absl::StatusCode::kNotFound;
constexpr absl::StatusCode kAlreadyExists = absl::StatusCode::kAlreadyExists;
constexpr absl::StatusCode kFailedPrecondition = absl::StatusCode::kFailedPrecondition;
constexpr absl::StatusCode kUnavailable = absl::StatusCode::kUnavailable;

// ---- Files ----

// The keys Walk reports for `filters`.
std::vector<std::string> WalkKeys(Snapshotter& sn, std::vector<std::string> filters) {
  std::vector<std::string> keys;
  absl::Status status = sn.Walk(
      [&](const Info& info) {
        keys.push_back(info.name);
        return absl::OkStatus();
      },
      filters);
  EXPECT_THAT(status, IsOk());
  std::sort(keys.begin(), keys.end());
  return keys;
}

absl::Status NoWrite(const std::string&) { return absl::OkStatus(); }

// What Update is given: a name and labels (it reads nothing else).
Info LabelsOf(const std::string& name, Labels labels) {
  Info info;
  info.name = name;
  info.labels = std::move(labels);
  return info;
}

}  // namespace

// ---- Fixture ----

std::string SuiteParamName(const ::testing::TestParamInfo<SuiteParam>& info) {
  return info.param.name;
}

void PrintTo(const SuiteParam& param, std::ostream* os) { *os << param.name; }

void PrintTo(const Mount& mount, std::ostream* os) {
  *os << "{type " << mount.type << ", source " << mount.source << ", target \"" << mount.target
      << "\", options " << absl::StrJoin(mount.options, ",") << "}";
}

void SnapshotterSuite::SetUp() {
  root_ = dir_.path() + "/root";
  absl::StatusOr<std::unique_ptr<Snapshotter>> sn = GetParam().factory(root_);
  ASSERT_THAT(sn, IsOk());
  sn_ = *std::move(sn);
}

void SnapshotterSuite::TearDown() {
  if (sn_ != nullptr) {
    EXPECT_THAT(sn_->Close(), IsOk());
  }
  sn_.reset();
}

void SnapshotterSuite::Reopen() {
  ASSERT_THAT(sn_->Close(), IsOk());
  sn_.reset();
  absl::StatusOr<std::unique_ptr<Snapshotter>> sn = GetParam().factory(root_);
  ASSERT_THAT(sn, IsOk());
  sn_ = *std::move(sn);
}

absl::StatusOr<MountGuard> SnapshotterSuite::MountAt(const std::vector<Mount>& mounts,
                                                     const std::string& name) {
  std::string target = absl::StrCat(dir_.path(), "/mnt-", name);
  if (::mkdir(target.c_str(), 0755) != 0 && errno != EEXIST) return ErrnoStatus("mkdir", target);
  return MountAll(mounts, target);
}

absl::Status SnapshotterSuite::CommitLayer(
    const std::string& name, const std::string& parent,
    const std::function<absl::Status(const std::string& dir)>& write) {
  std::string key = absl::StrCat("extract-", name);
  BERTH_ASSIGN_OR_RETURN(std::vector<Mount> mounts, sn_->Prepare(key, parent));
  {
    BERTH_ASSIGN_OR_RETURN(MountGuard guard, MountAt(mounts, "layer"));
    BERTH_RETURN_IF_ERROR(write(absl::StrCat(dir_.path(), "/mnt-layer")));
    BERTH_RETURN_IF_ERROR(guard.Unmount());
  }
  return sn_->Commit(name, key);
}

std::vector<std::string> SnapshotterSuite::SnapshotDirs() const {
  // Removed snapshots' directories are deleted in the background, renamed
  // rm-<id> meanwhile: wait (10 s at most) for those to go.
  std::set<std::string> names;
  for (int i = 0; i < 1000; ++i) {
    names = Names(root_ + "/snapshots");
    if (std::none_of(names.begin(), names.end(),
                     [](const std::string& name) { return absl::StartsWith(name, "rm-"); })) {
      break;
    }
    absl::SleepFor(absl::Milliseconds(10));
  }
  return std::vector<std::string>(names.begin(), names.end());
}

// ---- Lifecycle ----

TEST_P(SnapshotterSuite, PrepareCommitChain) {
  ASSERT_THAT(sn_->Prepare("extract-1", "", {{"stage", "1"}}), IsOk());
  absl::StatusOr<Info> active = sn_->Stat("extract-1");
  ASSERT_THAT(active, IsOk());
  EXPECT_EQ(active->name, "extract-1");
  EXPECT_EQ(active->parent, "");
  EXPECT_EQ(active->kind, Kind::kActive);
  EXPECT_THAT(active->labels, ElementsAre(std::pair<const std::string, std::string>("stage", "1")));

  ASSERT_THAT(sn_->Commit("layer-1", "extract-1"), IsOk());
  EXPECT_THAT(sn_->Stat("extract-1"), StatusIs(kNotFound));
  absl::StatusOr<Info> layer1 = sn_->Stat("layer-1");
  ASSERT_THAT(layer1, IsOk());
  EXPECT_EQ(layer1->kind, Kind::kCommitted);
  EXPECT_EQ(layer1->parent, "");
  EXPECT_GE(layer1->created, active->created);

  ASSERT_THAT(sn_->Prepare("extract-2", "layer-1"), IsOk());
  ASSERT_THAT(sn_->Commit("layer-2", "extract-2"), IsOk());
  ASSERT_THAT(sn_->Prepare("container", "layer-2"), IsOk());
  absl::StatusOr<Info> container = sn_->Stat("container");
  ASSERT_THAT(container, IsOk());
  EXPECT_EQ(container->parent, "layer-2");
  EXPECT_EQ(sn_->Stat("layer-2")->parent, "layer-1");
  // A commit keeps the directory: three snapshots, three directories.
  EXPECT_THAT(SnapshotDirs(), SizeIs(3));
}

TEST_P(SnapshotterSuite, MountsRepeatWhatPrepareAndViewReturned) {
  ASSERT_THAT(CommitLayer("base", "", NoWrite), IsOk());
  ASSERT_THAT(CommitLayer("top", "base", NoWrite), IsOk());
  for (std::string parent : {"", "base", "top"}) {
    SCOPED_TRACE(parent);
    absl::StatusOr<std::vector<Mount>> prepared = sn_->Prepare("active-" + parent, parent);
    ASSERT_THAT(prepared, IsOk());
    EXPECT_EQ(*sn_->Mounts("active-" + parent), *prepared);
    absl::StatusOr<std::vector<Mount>> viewed = sn_->View("view-" + parent, parent);
    ASSERT_THAT(viewed, IsOk());
    EXPECT_EQ(*sn_->Mounts("view-" + parent), *viewed);
  }
}

TEST_P(SnapshotterSuite, FilesAreVisibleThroughAChain) {
  ASSERT_THAT(CommitLayer("l1", "",
                          [](const std::string& dir) {
                            BERTH_RETURN_IF_ERROR(files::WriteFile(dir + "/one", "1"));
                            return files::WriteFile(dir + "/shared", "from l1");
                          }),
              IsOk());
  ASSERT_THAT(CommitLayer("l2", "l1",
                          [](const std::string& dir) {
                            BERTH_RETURN_IF_ERROR(files::WriteFile(dir + "/two", "2"));
                            return files::WriteFile(dir + "/shared", "from l2");
                          }),
              IsOk());
  ASSERT_THAT(
      CommitLayer("l3", "l2",
                  [](const std::string& dir) { return files::WriteFile(dir + "/three", "3"); }),
      IsOk());
  absl::StatusOr<std::vector<Mount>> mounts = sn_->Prepare("rootfs", "l3");
  ASSERT_THAT(mounts, IsOk());
  absl::StatusOr<MountGuard> guard = MountAt(*mounts, "rootfs");
  ASSERT_THAT(guard, IsOk());
  const std::string dir = dir_.path() + "/mnt-rootfs";
  EXPECT_EQ(*files::ReadFile(dir + "/one"), "1");
  EXPECT_EQ(*files::ReadFile(dir + "/two"), "2");
  EXPECT_EQ(*files::ReadFile(dir + "/three"), "3");
  EXPECT_EQ(*files::ReadFile(dir + "/shared"), "from l2");
  // The active snapshot is writable, and its writes stay out of its parents.
  ASSERT_THAT(files::WriteFile(dir + "/four", "4"), IsOk());
  ASSERT_THAT(files::WriteFile(dir + "/one", "changed"), IsOk());
  ASSERT_THAT(guard->Unmount(), IsOk());

  absl::StatusOr<std::vector<Mount>> view = sn_->View("look", "l3");
  ASSERT_THAT(view, IsOk());
  absl::StatusOr<MountGuard> view_guard = MountAt(*view, "look");
  ASSERT_THAT(view_guard, IsOk());
  EXPECT_EQ(*files::ReadFile(dir_.path() + "/mnt-look/one"), "1");
  EXPECT_FALSE(Exists(dir_.path() + "/mnt-look/four"));
}

TEST_P(SnapshotterSuite, ViewsAreReadOnly) {
  ASSERT_THAT(
      CommitLayer("l1", "", [](const std::string& d) { return files::WriteFile(d + "/a", "a"); }),
      IsOk());
  ASSERT_THAT(
      CommitLayer("l2", "l1", [](const std::string& d) { return files::WriteFile(d + "/b", "b"); }),
      IsOk());
  // No parent, one parent and two: three different kinds of mount in overlay.
  for (std::string parent : {"", "l1", "l2"}) {
    SCOPED_TRACE(parent);
    std::string key = "view-" + parent;
    absl::StatusOr<std::vector<Mount>> mounts = sn_->View(key, parent);
    ASSERT_THAT(mounts, IsOk());
    EXPECT_EQ(sn_->Stat(key)->kind, Kind::kView);
    absl::StatusOr<MountGuard> guard = MountAt(*mounts, key);
    ASSERT_THAT(guard, IsOk());
    const std::string dir = absl::StrCat(dir_.path(), "/mnt-", key);
    EXPECT_EQ(Exists(dir + "/a"), !parent.empty());
    EXPECT_EQ(Exists(dir + "/b"), parent == "l2");
    EXPECT_EQ(::mkdir((dir + "/new").c_str(), 0755), -1);
    EXPECT_EQ(errno, EROFS);
  }
}

TEST_P(SnapshotterSuite, DeletedFileIsHiddenFromChildren) {
  ASSERT_THAT(CommitLayer("base", "",
                          [](const std::string& d) {
                            BERTH_RETURN_IF_ERROR(files::WriteFile(d + "/doomed", "x"));
                            return files::WriteFile(d + "/kept", "y");
                          }),
              IsOk());
  ASSERT_THAT(CommitLayer("deleted", "base",
                          [](const std::string& d) {
                            std::string path = d + "/doomed";
                            if (::unlink(path.c_str()) != 0) return ErrnoStatus("unlink", path);
                            return absl::OkStatus();
                          }),
              IsOk());
  for (std::string kind : {"view", "active"}) {
    SCOPED_TRACE(kind);
    std::string key = "child-" + kind;
    absl::StatusOr<std::vector<Mount>> mounts =
        kind == "view" ? sn_->View(key, "deleted") : sn_->Prepare(key, "deleted");
    ASSERT_THAT(mounts, IsOk());
    absl::StatusOr<MountGuard> guard = MountAt(*mounts, key);
    ASSERT_THAT(guard, IsOk());
    const std::string dir = absl::StrCat(dir_.path(), "/mnt-", key);
    EXPECT_FALSE(Exists(dir + "/doomed"));
    EXPECT_THAT(Names(dir), ElementsAre("kept"));
  }
  // The parent still has it.
  absl::StatusOr<std::vector<Mount>> base = sn_->View("base-view", "base");
  ASSERT_THAT(base, IsOk());
  absl::StatusOr<MountGuard> guard = MountAt(*base, "base-view");
  ASSERT_THAT(guard, IsOk());
  EXPECT_EQ(*files::ReadFile(dir_.path() + "/mnt-base-view/doomed"), "x");
}

TEST_P(SnapshotterSuite, ReplacedDirectoryHidesParentContents) {
  ASSERT_THAT(CommitLayer("base", "",
                          [](const std::string& d) {
                            if (::mkdir((d + "/dir").c_str(), 0755) != 0) {
                              return ErrnoStatus("mkdir", d + "/dir");
                            }
                            BERTH_RETURN_IF_ERROR(files::WriteFile(d + "/dir/old1", "1"));
                            return files::WriteFile(d + "/dir/old2", "2");
                          }),
              IsOk());
  ASSERT_THAT(CommitLayer("replaced", "base",
                          [](const std::string& d) {
                            std::error_code error;
                            std::filesystem::remove_all(d + "/dir", error);
                            if (error) return absl::InternalError(error.message());
                            if (::mkdir((d + "/dir").c_str(), 0700) != 0) {
                              return ErrnoStatus("mkdir", d + "/dir");
                            }
                            return files::WriteFile(d + "/dir/new", "n");
                          }),
              IsOk());
  absl::StatusOr<std::vector<Mount>> mounts = sn_->View("look", "replaced");
  ASSERT_THAT(mounts, IsOk());
  absl::StatusOr<MountGuard> guard = MountAt(*mounts, "look");
  ASSERT_THAT(guard, IsOk());
  const std::string dir = dir_.path() + "/mnt-look/dir";
  EXPECT_THAT(Names(dir), ElementsAre("new"));
  struct stat st;
  ASSERT_EQ(::stat(dir.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0700u);
}

// What an image layer may hold survives into the snapshots made on it.
TEST_P(SnapshotterSuite, ContentIsPreservedIntoChildren) {
  const struct timespec kTimes[2] = {{1000000000, 123}, {1234567890, 456789}};
  constexpr off_t kSparseSize = 64 << 20;
  ASSERT_THAT(
      CommitLayer(
          "base", "",
          [&](const std::string& d) {
            auto check = [](int rc, absl::string_view op, const std::string& path) {
              return rc == 0 ? absl::OkStatus() : ErrnoStatus(op, path);
            };
            BERTH_RETURN_IF_ERROR(check(::chmod(d.c_str(), 0751), "chmod", d));
            BERTH_RETURN_IF_ERROR(files::WriteFile(d + "/file", "content", 0640));
            BERTH_RETURN_IF_ERROR(
                check(::chown((d + "/file").c_str(), 1234, 5678), "chown", d + "/file"));
            BERTH_RETURN_IF_ERROR(
                check(::setxattr((d + "/file").c_str(), "user.berth", "u", 1, 0), "setxattr", d));
            BERTH_RETURN_IF_ERROR(check(
                ::setxattr((d + "/file").c_str(), "trusted.berth", "t", 1, 0), "setxattr", d));
            BERTH_RETURN_IF_ERROR(
                check(::utimensat(AT_FDCWD, (d + "/file").c_str(), kTimes, 0), "utimensat", d));
            BERTH_RETURN_IF_ERROR(
                check(::link((d + "/file").c_str(), (d + "/hardlink").c_str()), "link", d));
            BERTH_RETURN_IF_ERROR(files::WriteFile(d + "/setuid", "#!/bin/true\n", 0755));
            BERTH_RETURN_IF_ERROR(check(::chmod((d + "/setuid").c_str(), 04755), "chmod", d));
            BERTH_RETURN_IF_ERROR(
                check(::symlink("/etc/passwd", (d + "/abs").c_str()), "symlink", d));
            BERTH_RETURN_IF_ERROR(
                check(::symlink("../../../../../etc", (d + "/up").c_str()), "symlink", d));
            BERTH_RETURN_IF_ERROR(check(::lchown((d + "/up").c_str(), 7, 8), "lchown", d));
            BERTH_RETURN_IF_ERROR(
                check(::mknod((d + "/null").c_str(), S_IFCHR | 0666, makedev(1, 3)), "mknod", d));
            BERTH_RETURN_IF_ERROR(  // past the umask
                check(::chmod((d + "/null").c_str(), 0666), "chmod", d));
            BERTH_RETURN_IF_ERROR(check(::mkfifo((d + "/fifo").c_str(), 0600), "mkfifo", d));
            BERTH_RETURN_IF_ERROR(check(::mkdir((d + "/dir").c_str(), 0711), "mkdir", d));
            BERTH_RETURN_IF_ERROR(check(::chown((d + "/dir").c_str(), 42, 43), "chown", d));
            {
              UniqueFd fd(::open((d + "/sparse").c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644));
              if (!fd.valid()) return ErrnoStatus("open", d + "/sparse");
              BERTH_RETURN_IF_ERROR(check(::ftruncate(fd.get(), kSparseSize), "ftruncate", d));
              if (::pwrite(fd.get(), "data", 4, kSparseSize / 2) != 4) {
                return ErrnoStatus("pwrite", d + "/sparse");
              }
            }
            return check(::utimensat(AT_FDCWD, (d + "/dir").c_str(), kTimes, 0), "utimensat", d);
          }),
      IsOk());
  absl::StatusOr<std::vector<Mount>> mounts = sn_->Prepare("child", "base");
  ASSERT_THAT(mounts, IsOk());
  absl::StatusOr<MountGuard> guard = MountAt(*mounts, "child");
  ASSERT_THAT(guard, IsOk());
  const std::string d = dir_.path() + "/mnt-child";
  struct stat st;

  ASSERT_EQ(::stat(d.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0751u) << "the root directory's mode";

  ASSERT_EQ(::lstat((d + "/file").c_str(), &st), 0);
  EXPECT_EQ(*files::ReadFile(d + "/file"), "content");
  EXPECT_EQ(st.st_mode & 07777, 0640u);
  EXPECT_EQ(st.st_uid, 1234u);
  EXPECT_EQ(st.st_gid, 5678u);
  EXPECT_EQ(st.st_mtim.tv_sec, kTimes[1].tv_sec);
  EXPECT_EQ(st.st_mtim.tv_nsec, kTimes[1].tv_nsec);
  EXPECT_EQ(st.st_nlink, 2u);
  EXPECT_EQ(Xattr(d + "/file", "user.berth"), "u");
  EXPECT_EQ(Xattr(d + "/file", "trusted.berth"), "t");
  struct stat link_st;
  ASSERT_EQ(::lstat((d + "/hardlink").c_str(), &link_st), 0);
  EXPECT_EQ(link_st.st_ino, st.st_ino) << "hard links stay one inode";

  ASSERT_EQ(::lstat((d + "/setuid").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 04755u);

  char target[256] = {};
  ASSERT_GT(::readlink((d + "/abs").c_str(), target, sizeof(target) - 1), 0);
  EXPECT_STREQ(target, "/etc/passwd");
  std::fill(std::begin(target), std::end(target), 0);
  ASSERT_GT(::readlink((d + "/up").c_str(), target, sizeof(target) - 1), 0);
  EXPECT_STREQ(target, "../../../../../etc");
  ASSERT_EQ(::lstat((d + "/up").c_str(), &st), 0);
  EXPECT_TRUE(S_ISLNK(st.st_mode));
  EXPECT_EQ(st.st_uid, 7u);

  ASSERT_EQ(::lstat((d + "/null").c_str(), &st), 0);
  EXPECT_TRUE(S_ISCHR(st.st_mode));
  EXPECT_EQ(st.st_rdev, makedev(1, 3));
  EXPECT_EQ(st.st_mode & 07777, 0666u);

  ASSERT_EQ(::lstat((d + "/fifo").c_str(), &st), 0);
  EXPECT_TRUE(S_ISFIFO(st.st_mode));
  EXPECT_EQ(st.st_mode & 07777, 0600u);

  ASSERT_EQ(::lstat((d + "/dir").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0711u);
  EXPECT_EQ(st.st_uid, 42u);
  EXPECT_EQ(st.st_mtim.tv_sec, kTimes[1].tv_sec);

  ASSERT_EQ(::lstat((d + "/sparse").c_str(), &st), 0);
  EXPECT_EQ(st.st_size, kSparseSize);
  EXPECT_LT(st.st_blocks * 512, 1 << 20) << "the holes stay holes";
  UniqueFd sparse(::open((d + "/sparse").c_str(), O_RDONLY | O_CLOEXEC));
  char data[4] = {};
  ASSERT_EQ(::pread(sparse.get(), data, 4, kSparseSize / 2), 4);
  EXPECT_EQ(std::string(data, 4), "data");
}

// ---- Removal ----

TEST_P(SnapshotterSuite, RemoveRefusesParentsWithChildrenAndRemovesNothing) {
  ASSERT_THAT(CommitLayer("base", "", NoWrite), IsOk());
  ASSERT_THAT(CommitLayer("mid", "base", NoWrite), IsOk());
  ASSERT_THAT(sn_->Prepare("top", "mid"), IsOk());
  ASSERT_THAT(sn_->View("look", "base"), IsOk());
  const std::vector<std::string> dirs = SnapshotDirs();
  ASSERT_THAT(dirs, SizeIs(4));

  absl::Status status = sn_->Remove("base");
  EXPECT_THAT(status, StatusIs(kFailedPrecondition));
  EXPECT_THAT(status.message(), HasSubstr(Quote("base")));
  EXPECT_THAT(sn_->Remove("mid"), StatusIs(kFailedPrecondition));
  for (const char* key : {"base", "mid", "top", "look"}) EXPECT_THAT(sn_->Stat(key), IsOk());
  EXPECT_EQ(SnapshotDirs(), dirs);

  // Children first, then it goes.
  ASSERT_THAT(sn_->Remove("top"), IsOk());
  ASSERT_THAT(sn_->Remove("mid"), IsOk());
  EXPECT_THAT(sn_->Remove("base"), StatusIs(kFailedPrecondition));  // the view
  ASSERT_THAT(sn_->Remove("look"), IsOk());
  ASSERT_THAT(sn_->Remove("base"), IsOk());
  EXPECT_THAT(SnapshotDirs(), IsEmpty());
  EXPECT_THAT(WalkKeys(*sn_, {}), IsEmpty());
}

TEST_P(SnapshotterSuite, RemoveDeletesTheDirectoryWithItsContents) {
  ASSERT_THAT(CommitLayer("full", "",
                          [](const std::string& d) {
                            if (::mkdir((d + "/a").c_str(), 0) != 0) return ErrnoStatus("mkdir", d);
                            return files::WriteFile(d + "/f", std::string(100000, 'x'));
                          }),
              IsOk());
  ASSERT_THAT(SnapshotDirs(), SizeIs(1));
  ASSERT_THAT(sn_->Remove("full"), IsOk());
  EXPECT_THAT(SnapshotDirs(), IsEmpty());
  EXPECT_THAT(sn_->Stat("full"), StatusIs(kNotFound));
  // The key is free again.
  EXPECT_THAT(sn_->Prepare("full", ""), IsOk());
}

// ---- Applied layers ----
// Image layers applied the way the Diff service applies them (whichever
// directory the snapshot's mounts lead to, with the whiteout form that
// directory needs), then read through views of the chain.

// Prepares `name`'s extraction snapshot on `parent`, applies `tar`
// (compressed as `compression`) to its mounts and commits it as `name`;
// the diff ID must be the tar's digest.
absl::Status ApplyAndCommit(Snapshotter& sn, const std::string& scratch, const std::string& name,
                            const std::string& parent, const std::string& tar,
                            image::Compression compression) {
  const std::string key = "extract-" + name;
  BERTH_ASSIGN_OR_RETURN(std::vector<Mount> mounts, sn.Prepare(key, parent));
  std::string compressed = compression == image::Compression::kGzip   ? image::Gzip(tar)
                           : compression == image::Compression::kZstd ? image::Zstd(tar)
                                                                      : tar;
  std::unique_ptr<image::ByteSource> source = image::StringSource(compressed);
  BERTH_ASSIGN_OR_RETURN(std::unique_ptr<MountedTree> tree,
                         MountedTree::Open(mounts, scratch, true));
  BERTH_ASSIGN_OR_RETURN(image::ApplyResult applied,
                         image::ApplyLayerToTree(*source, compression, *tree));
  if (applied.diff_id != Sha256Digest(tar)) {
    return absl::InternalError(absl::StrCat("diff ID ", applied.diff_id, " is not the tar's"));
  }
  return sn.Commit(name, key);
}

TEST_P(SnapshotterSuite, AppliedLayersStackAsTheImageSays) {
  using image::Dir;
  using image::File;
  image::TarEntry keep = File("etc/keep", "kept");
  keep.xattrs = {{"user.note", "noted"}};
  keep.uid = 1000;
  const std::string base = image::MakeTar({Dir("etc"), File("etc/motd", "hello"), keep,
                                           image::Hardlink("etc/motd-link", "etc/motd"),
                                           image::Symlink("etc/alias", "motd"), Dir("var"),
                                           Dir("var/cache", 0700), File("var/cache/old", "old")});
  // Deletes etc/motd (its hard link stays), replaces var/cache wholesale.
  const std::string change = image::MakeTar(
      {Dir("etc"), File("etc/.wh.motd"), File("etc/added", "two"), Dir("var/cache", 0700),
       File("var/cache/.wh..wh..opq"), File("var/cache/new", "new")});
  const std::string again = image::MakeTar({Dir("etc"), File("etc/motd", "again")});
  const std::string scratch = dir_.path();
  ASSERT_THAT(ApplyAndCommit(*sn_, scratch, "l1", "", base, image::Compression::kNone), IsOk());
  ASSERT_THAT(ApplyAndCommit(*sn_, scratch, "l2", "l1", change, image::Compression::kGzip), IsOk());
  ASSERT_THAT(ApplyAndCommit(*sn_, scratch, "l3", "l2", again, image::Compression::kZstd), IsOk());

  absl::StatusOr<std::vector<Mount>> mounts = sn_->View("look-l2", "l2");
  ASSERT_THAT(mounts, IsOk());
  absl::StatusOr<MountGuard> guard = MountAt(*mounts, "l2");
  ASSERT_THAT(guard, IsOk());
  const std::string l2 = dir_.path() + "/mnt-l2";
  EXPECT_THAT(Names(l2 + "/etc"), UnorderedElementsAre("added", "alias", "keep", "motd-link"));
  EXPECT_EQ(*files::ReadFile(l2 + "/etc/motd-link"), "hello");
  EXPECT_EQ(*files::ReadFile(l2 + "/etc/added"), "two");
  EXPECT_EQ(std::filesystem::read_symlink(l2 + "/etc/alias"), "motd");
  EXPECT_EQ(Xattr(l2 + "/etc/keep", "user.note"), "noted");
  struct stat st;
  ASSERT_EQ(::stat((l2 + "/etc/keep").c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, 1000u);
  EXPECT_THAT(Names(l2 + "/var/cache"), ElementsAre("new"));
  ASSERT_EQ(::stat((l2 + "/var/cache").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0700u);

  mounts = sn_->View("look-l3", "l3");
  ASSERT_THAT(mounts, IsOk());
  guard = MountAt(*mounts, "l3");
  ASSERT_THAT(guard, IsOk());
  const std::string l3 = dir_.path() + "/mnt-l3";
  EXPECT_EQ(*files::ReadFile(l3 + "/etc/motd"), "again");
  EXPECT_EQ(*files::ReadFile(l3 + "/etc/motd-link"), "hello") << "a separate file now";
  EXPECT_THAT(Names(l3 + "/var/cache"), ElementsAre("new"));
}

// A layer that breaks halfway fails with InvalidArgument naming the stream;
// its extraction snapshot is removed like any other and leaves nothing.
TEST_P(SnapshotterSuite, ABrokenLayerFailsAndItsSnapshotGoes) {
  const std::string tar = image::MakeTar({image::File("big", std::string(1 << 20, 'x'))});
  std::string gzip = image::Gzip(tar);
  gzip.resize(gzip.size() / 2);
  absl::StatusOr<std::vector<Mount>> mounts = sn_->Prepare("extract", "");
  ASSERT_THAT(mounts, IsOk());
  std::unique_ptr<image::ByteSource> source = image::StringSource(gzip);
  absl::StatusOr<std::unique_ptr<MountedTree>> tree = MountedTree::Open(*mounts, dir_.path(), true);
  ASSERT_THAT(tree, IsOk());
  absl::StatusOr<image::ApplyResult> applied =
      image::ApplyLayerToTree(*source, image::Compression::kGzip, **tree);
  tree->reset();
  EXPECT_THAT(applied, StatusIs(kInvalidArgument));
  EXPECT_THAT(applied.status().message(), HasSubstr("gzip"));
  ASSERT_THAT(sn_->Remove("extract"), IsOk());
  EXPECT_THAT(SnapshotDirs(), IsEmpty());
  EXPECT_THAT(Names(dir_.path()), ElementsAre("root")) << "nothing mounted or left beside it";
}

// ---- Concurrency ----

TEST_P(SnapshotterSuite, ConcurrentPreparesOfOneKeyExactlyOneWins) {
  ASSERT_THAT(
      CommitLayer("base", "", [](const std::string& d) { return files::WriteFile(d + "/f", "x"); }),
      IsOk());
  constexpr int kThreads = 16;
  absl::Barrier barrier(kThreads);
  std::atomic<int> ok = 0, exists = 0, other = 0;
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&] {
      barrier.Block();
      absl::StatusOr<std::vector<Mount>> result = sn_->Prepare("contended", "base");
      if (result.ok()) {
        ++ok;
      } else if (absl::IsAlreadyExists(result.status())) {
        ++exists;
      } else {
        ++other;
        ADD_FAILURE() << result.status();
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(ok, 1);
  EXPECT_EQ(exists, kThreads - 1);
  EXPECT_EQ(other, 0);
  EXPECT_THAT(SnapshotDirs(), SizeIs(2)) << "no directory left by the losers";
  EXPECT_THAT(sn_->Cleanup(), IsOk());
  EXPECT_THAT(SnapshotDirs(), SizeIs(2));
}

TEST_P(SnapshotterSuite, ConcurrentPreparesOnOneParentAllSucceed) {
  ASSERT_THAT(
      CommitLayer("base", "", [](const std::string& d) { return files::WriteFile(d + "/f", "x"); }),
      IsOk());
  constexpr int kThreads = 16;
  absl::Barrier barrier(kThreads);
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&, i] {
      barrier.Block();
      std::string key = absl::StrCat("child-", i);
      EXPECT_THAT(sn_->Prepare(key, "base"), IsOk());
      EXPECT_THAT(sn_->Commit(absl::StrCat("committed-", i), key), IsOk());
      // Removal beside the others' creation and Cleanup.
      EXPECT_THAT(sn_->Cleanup(), IsOk());
      if (i % 2 == 0) {
        EXPECT_THAT(sn_->Remove(absl::StrCat("committed-", i)), IsOk());
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_THAT(WalkKeys(*sn_, {"parent==base"}), SizeIs(kThreads / 2));
  EXPECT_THAT(SnapshotDirs(), SizeIs(1 + kThreads / 2));
}

// ---- Walk, labels, usage ----

TEST_P(SnapshotterSuite, WalkWithFilters) {
  ASSERT_THAT(sn_->Prepare("a1", ""), IsOk());
  ASSERT_THAT(sn_->Commit("layer1", "a1", {{"a", "b"}, {"containerd.io/gc.root", "1"}}), IsOk());
  ASSERT_THAT(sn_->Prepare("a2", "layer1"), IsOk());
  ASSERT_THAT(sn_->Commit("layer2", "a2", {{"a", "c"}}), IsOk());
  ASSERT_THAT(sn_->Prepare("act", "layer2", {{"a", "b"}}), IsOk());
  ASSERT_THAT(sn_->View("view", "layer1"), IsOk());

  EXPECT_THAT(WalkKeys(*sn_, {}), ElementsAre("act", "layer1", "layer2", "view"));
  EXPECT_THAT(WalkKeys(*sn_, {"kind==committed"}), ElementsAre("layer1", "layer2"));
  EXPECT_THAT(WalkKeys(*sn_, {"kind==active"}), ElementsAre("act"));
  EXPECT_THAT(WalkKeys(*sn_, {"labels.a==b"}), ElementsAre("act", "layer1"));
  EXPECT_THAT(WalkKeys(*sn_, {"labels.\"containerd.io/gc.root\""}), ElementsAre("layer1"));
  EXPECT_THAT(WalkKeys(*sn_, {"name~=^layer"}), ElementsAre("layer1", "layer2"));
  EXPECT_THAT(WalkKeys(*sn_, {"parent==layer1"}), ElementsAre("layer2", "view"));
  EXPECT_THAT(WalkKeys(*sn_, {"parent!=layer1"}), ElementsAre("act", "layer1"));
  EXPECT_THAT(WalkKeys(*sn_, {"kind==committed,labels.a==c"}), ElementsAre("layer2"));
  EXPECT_THAT(WalkKeys(*sn_, {"kind==view", "name==act"}), ElementsAre("act", "view"));

  EXPECT_THAT(sn_->Walk([](const Info&) { return absl::OkStatus(); }, {"name==foo,"}),
              StatusIs(kInvalidArgument));
  int calls = 0;
  EXPECT_THAT(sn_->Walk(
                  [&](const Info&) {
                    ++calls;
                    return absl::CancelledError("enough");
                  },
                  {}),
              StatusIs(absl::StatusCode::kCancelled));
  EXPECT_EQ(calls, 1);
  // The function may call back in.
  EXPECT_THAT(sn_->Walk([&](const Info& info) { return sn_->Stat(info.name).status(); }), IsOk());
}

TEST_P(SnapshotterSuite, LabelsThroughPrepareCommitAndUpdate) {
  using L = Labels;
  ASSERT_THAT(sn_->Prepare("k", "", {{"x", "1"}, {"y", "2"}, {"empty", ""}}), IsOk());
  EXPECT_EQ(sn_->Stat("k")->labels, (L{{"x", "1"}, {"y", "2"}}));

  // Commit's labels replace the active snapshot's.
  ASSERT_THAT(sn_->Commit("c", "k", {{"z", "3"}}), IsOk());
  absl::StatusOr<Info> committed = sn_->Stat("c");
  ASSERT_THAT(committed, IsOk());
  EXPECT_EQ(committed->labels, (L{{"z", "3"}}));

  struct Step {
    const char* name;
    Labels given;
    std::vector<std::string> paths;
    Labels after;
  };
  const Step steps[] = {
      {"OneLabelSet", {{"z", "4"}, {"w", "ignored"}}, {"labels.z"}, {{"z", "4"}}},
      {"AnotherAdded", {{"w", "5"}}, {"labels.w"}, {{"z", "4"}, {"w", "5"}}},
      {"AbsentMeansDeleted", {}, {"labels.z"}, {{"w", "5"}}},
      {"EmptyValueDeletes", {{"w", ""}}, {"labels.w"}, {}},
      {"NoPathsReplaceAll", {{"q", "1"}}, {}, {{"q", "1"}}},
      {"LabelsReplacesAll", {{"r", "1"}, {"s", "2"}}, {"labels"}, {{"r", "1"}, {"s", "2"}}},
      {"DottedKey",
       {{"containerd.io/gc.ref.snapshot", "x"}},
       {"labels.containerd.io/gc.ref.snapshot"},
       {{"r", "1"}, {"s", "2"}, {"containerd.io/gc.ref.snapshot", "x"}}},
  };
  absl::Time last = committed->updated;
  for (const Step& step : steps) {
    SCOPED_TRACE(step.name);
    absl::StatusOr<Info> updated = sn_->Update(LabelsOf("c", step.given), step.paths);
    ASSERT_THAT(updated, IsOk());
    EXPECT_EQ(updated->labels, step.after);
    EXPECT_EQ(sn_->Stat("c")->labels, step.after);
    EXPECT_EQ(updated->kind, Kind::kCommitted) << "only labels change";
    EXPECT_EQ(updated->created, committed->created);
    EXPECT_GE(updated->updated, last);
    last = updated->updated;
  }
  const Labels before = sn_->Stat("c")->labels;
  for (const char* path : {"parent", "kind", "name", "labelsx", "created"}) {
    SCOPED_TRACE(path);
    absl::Status status = sn_->Update(LabelsOf("c", {{"a", "b"}}), {path}).status();
    EXPECT_THAT(status, StatusIs(kInvalidArgument));
    EXPECT_THAT(status.message(), HasSubstr(Quote(path)));
  }
  EXPECT_THAT(sn_->Update(LabelsOf("c", {{std::string(4097, 'k'), "v"}}), {}),
              StatusIs(kInvalidArgument));
  EXPECT_EQ(sn_->Stat("c")->labels, before) << "failed updates change nothing";
  EXPECT_THAT(sn_->Update(LabelsOf("missing", {}), {}), StatusIs(kNotFound));
}

TEST_P(SnapshotterSuite, UsageOfACommittedSnapshot) {
  constexpr int64_t kMiB = 1 << 20;
  ASSERT_THAT(
      CommitLayer("big", "",
                  [](const std::string& d) {
                    BERTH_RETURN_IF_ERROR(files::WriteFile(d + "/file", std::string(kMiB, 'x')));
                    // Counted once.
                    if (::link((d + "/file").c_str(), (d + "/again").c_str()) != 0) {
                      return ErrnoStatus("link", d);
                    }
                    return absl::OkStatus();
                  }),
      IsOk());
  absl::StatusOr<Usage> usage = sn_->Usage("big");
  ASSERT_THAT(usage, IsOk());
  EXPECT_GE(usage->size, kMiB);
  EXPECT_LT(usage->size, 2 * kMiB);
  EXPECT_EQ(usage->inodes, 2) << "the root directory and the file";

  // A committed snapshot's usage survives a restart.
  Reopen();
  absl::StatusOr<Usage> reopened = sn_->Usage("big");
  ASSERT_THAT(reopened, IsOk());
  EXPECT_EQ(reopened->size, usage->size);
  EXPECT_EQ(reopened->inodes, usage->inodes);
}

TEST_P(SnapshotterSuite, UsageOfAnActiveSnapshotIsMeasuredNow) {
  absl::StatusOr<std::vector<Mount>> mounts = sn_->Prepare("growing", "");
  ASSERT_THAT(mounts, IsOk());
  absl::StatusOr<Usage> empty = sn_->Usage("growing");
  ASSERT_THAT(empty, IsOk());
  EXPECT_EQ(empty->inodes, 1);
  {
    absl::StatusOr<MountGuard> guard = MountAt(*mounts, "growing");
    ASSERT_THAT(guard, IsOk());
    ASSERT_THAT(files::WriteFile(dir_.path() + "/mnt-growing/f", std::string(256 << 10, 'y')),
                IsOk());
    ASSERT_THAT(files::WriteFile(dir_.path() + "/mnt-growing/g", "z"), IsOk());
  }
  absl::StatusOr<Usage> grown = sn_->Usage("growing");
  ASSERT_THAT(grown, IsOk());
  EXPECT_EQ(grown->inodes, 3);
  EXPECT_GE(grown->size, empty->size + (256 << 10));
}

// ---- Deep chains ----

void SnapshotterSuite::CheckDeepChain(int layers) {
  absl::Time start = absl::Now();
  ASSERT_THAT(
      CommitLayer("layer-0", "",
                  [](const std::string& d) { return files::WriteFile(d + "/bottom", "deep"); }),
      IsOk());
  std::string parent = "layer-0";
  for (int i = 1; i < layers - 1; ++i) {
    std::string key = absl::StrCat("active-", i);
    std::string name = absl::StrCat("layer-", i);
    ASSERT_THAT(sn_->Prepare(key, parent), IsOk()) << i;
    ASSERT_THAT(sn_->Commit(name, key), IsOk()) << i;
    parent = name;
  }
  absl::Time built = absl::Now();
  absl::StatusOr<std::vector<Mount>> mounts = sn_->Prepare("top", parent);
  ASSERT_THAT(mounts, IsOk());
  const std::string& dir = dir_.path();
  {
    absl::StatusOr<MountGuard> guard = MountAt(*mounts, "top");
    ASSERT_THAT(guard, IsOk());
    EXPECT_EQ(*files::ReadFile(dir + "/mnt-top/bottom"), "deep");
    EXPECT_THAT(files::WriteFile(dir + "/mnt-top/top", "t"), IsOk());
  }
  absl::StatusOr<std::vector<Mount>> view = sn_->View("whole", parent);
  ASSERT_THAT(view, IsOk());
  {
    absl::StatusOr<MountGuard> guard = MountAt(*view, "whole");
    ASSERT_THAT(guard, IsOk());
    EXPECT_EQ(*files::ReadFile(dir + "/mnt-whole/bottom"), "deep");
    EXPECT_FALSE(Exists(dir + "/mnt-whole/top"));
  }
  std::fprintf(stderr, "%s, %d layers: built in %s; top and view mounted and read in %s\n",
               GetParam().name.c_str(), layers, absl::FormatDuration(built - start).c_str(),
               absl::FormatDuration(absl::Now() - built).c_str());
}

TEST_P(SnapshotterSuite, ChainOf128Layers) { CheckDeepChain(128); }

// 499 committed layers and an active snapshot: 499 lowers and an upper in
// overlay, near the kernel's limit of 500 lowers.
TEST_P(SnapshotterSuite, ChainOf500Layers) { CheckDeepChain(500); }

// ---- Crashes and restarts ----

TEST_P(SnapshotterSuite, LeftoversOfACrashAreRemovedOnReopen) {
  ASSERT_THAT(
      CommitLayer("keep", "", [](const std::string& d) { return files::WriteFile(d + "/k", "k"); }),
      IsOk());
  const std::vector<std::string> dirs = SnapshotDirs();
  ASSERT_THAT(dirs, SizeIs(1));
  // What a crash leaves: a creation's directory without its row (the next
  // id, and a far one), a removal cut short, and names nobody made.
  int64_t id = 0;
  ASSERT_TRUE(absl::SimpleAtoi(dirs[0], &id));
  const std::string snapshots = root_ + "/snapshots/";
  for (const std::string& name :
       {absl::StrCat(id + 1), std::string("999"), absl::StrCat("rm-", id + 2), std::string("0042"),
        std::string("junk")}) {
    ASSERT_EQ(::mkdir((snapshots + name).c_str(), 0700), 0) << name;
    ASSERT_EQ(::mkdir((snapshots + name + "/fs").c_str(), 0700), 0) << name;
    ASSERT_THAT(files::WriteFile(snapshots + name + "/fs/file", "stray"), IsOk());
  }
  ASSERT_THAT(files::WriteFile(snapshots + "stray-file", ""), IsOk());
  Reopen();
  EXPECT_EQ(SnapshotDirs(), dirs);
  absl::StatusOr<std::vector<Mount>> view = sn_->View("look", "keep");
  ASSERT_THAT(view, IsOk());
  absl::StatusOr<MountGuard> guard = MountAt(*view, "look");
  ASSERT_THAT(guard, IsOk());
  EXPECT_EQ(*files::ReadFile(dir_.path() + "/mnt-look/k"), "k");
}

TEST_P(SnapshotterSuite, CleanupRemovesLeftoversWhileOpen) {
  ASSERT_THAT(sn_->Prepare("keep", ""), IsOk());
  const std::vector<std::string> dirs = SnapshotDirs();
  const std::string stray = root_ + "/snapshots/123456";
  ASSERT_EQ(::mkdir(stray.c_str(), 0700), 0);
  ASSERT_EQ(::mkdir((root_ + "/snapshots/rm-3").c_str(), 0700), 0);
  ASSERT_THAT(sn_->Cleanup(), IsOk());
  EXPECT_EQ(SnapshotDirs(), dirs);
  EXPECT_THAT(sn_->Stat("keep"), IsOk());
}

TEST_P(SnapshotterSuite, ReopenKeepsSnapshots) {
  ASSERT_THAT(
      CommitLayer("base", "", [](const std::string& d) { return files::WriteFile(d + "/f", "1"); }),
      IsOk());
  ASSERT_THAT(sn_->Update(LabelsOf("base", {{"l", "v"}}), {}), IsOk());
  absl::StatusOr<std::vector<Mount>> before = sn_->Prepare("ctr", "base");
  ASSERT_THAT(before, IsOk());
  ASSERT_THAT(sn_->View("look", "base"), IsOk());
  std::map<std::string, Info> infos;
  ASSERT_THAT(sn_->Walk([&](const Info& info) {
    infos[info.name] = info;
    return absl::OkStatus();
  }),
              IsOk());
  Reopen();
  std::map<std::string, Info> reopened;
  ASSERT_THAT(sn_->Walk([&](const Info& info) {
    reopened[info.name] = info;
    return absl::OkStatus();
  }),
              IsOk());
  ASSERT_EQ(reopened.size(), infos.size());
  for (const auto& [key, info] : infos) {
    SCOPED_TRACE(key);
    const Info& again = reopened[key];
    EXPECT_EQ(again.parent, info.parent);
    EXPECT_EQ(again.kind, info.kind);
    EXPECT_EQ(again.labels, info.labels);
    EXPECT_EQ(again.created, info.created);
    EXPECT_EQ(again.updated, info.updated);
  }
  EXPECT_EQ(*sn_->Mounts("ctr"), *before);
  absl::StatusOr<MountGuard> guard = MountAt(*before, "ctr");
  ASSERT_THAT(guard, IsOk());
  EXPECT_EQ(*files::ReadFile(dir_.path() + "/mnt-ctr/f"), "1");
}

// A removed snapshot's directory name is never handed out again, so nothing
// that still refers to the old directory can see a new snapshot there.
TEST_P(SnapshotterSuite, IdsAreNotReusedAfterRemoveAndReopen) {
  ASSERT_THAT(sn_->Prepare("first", ""), IsOk());
  ASSERT_THAT(sn_->Prepare("last", ""), IsOk());
  const std::vector<std::string> dirs = SnapshotDirs();
  ASSERT_THAT(sn_->Remove("last"), IsOk());
  Reopen();
  ASSERT_THAT(sn_->Prepare("new", ""), IsOk());
  std::vector<std::string> now = SnapshotDirs();
  ASSERT_THAT(now, SizeIs(2));
  std::set<std::string> all(dirs.begin(), dirs.end());
  all.insert(now.begin(), now.end());
  EXPECT_THAT(all, SizeIs(3)) << "three snapshots, three different directory names";
}

TEST_P(SnapshotterSuite, SecondOpenOfARootIsUnavailable) {
  absl::StatusOr<std::unique_ptr<Snapshotter>> second = GetParam().factory(root_);
  EXPECT_THAT(second, StatusIs(kUnavailable));
  EXPECT_THAT(sn_->Prepare("still-works", ""), IsOk());
}

TEST_P(SnapshotterSuite, CallsAfterCloseFail) {
  ASSERT_THAT(sn_->Prepare("k", ""), IsOk());
  ASSERT_THAT(sn_->Close(), IsOk());
  EXPECT_THAT(sn_->Stat("k"), StatusIs(kFailedPrecondition));
  EXPECT_THAT(sn_->Prepare("k2", ""), StatusIs(kFailedPrecondition));
  EXPECT_THAT(sn_->Remove("k"), StatusIs(kFailedPrecondition));
  EXPECT_THAT(sn_->Walk([](const Info&) { return absl::OkStatus(); }),
              StatusIs(kFailedPrecondition));
  EXPECT_THAT(sn_->Cleanup(), StatusIs(kFailedPrecondition));
  EXPECT_THAT(sn_->Close(), IsOk()) << "twice is fine";
  // The root is free for the next snapshotter.
  absl::StatusOr<std::unique_ptr<Snapshotter>> next = GetParam().factory(root_);
  ASSERT_THAT(next, IsOk());
  EXPECT_THAT((*next)->Stat("k"), IsOk());
}

// ---- Adversarial input ----

// Keys are data: none of these may name, create or touch a path.
TEST_P(SnapshotterSuite, HostileKeysNeverBecomePaths) {
  const std::vector<std::string> keys = {
      "../../escape",
      "/etc/passwd",
      "a/b/c",
      "..",
      ".",
      std::string("nul\0key", 7),
      "new\nline",
      "sp ace",
      "snapshots/1",
      std::string(GetParam().max_key_length, 'k'),
  };
  for (const std::string& key : keys) {
    SCOPED_TRACE(Quote(key));
    absl::StatusOr<std::vector<Mount>> mounts = sn_->Prepare(key, "");
    ASSERT_THAT(mounts, IsOk());
    for (const Mount& mount : *mounts) {
      EXPECT_TRUE(absl::StartsWith(mount.source, root_ + "/")) << mount.source;
    }
    absl::StatusOr<Info> info = sn_->Stat(key);
    ASSERT_THAT(info, IsOk());
    EXPECT_EQ(info->name, key);
    std::string committed = key + "-committed";
    if (committed.size() <= GetParam().max_key_length) {
      ASSERT_THAT(sn_->Commit(committed, key), IsOk());
      ASSERT_THAT(sn_->View(key, committed), IsOk()) << "the key is free again";
    }
  }
  // A key differing only after a NUL is another key.
  EXPECT_THAT(sn_->Stat(std::string("nul\0kex", 7)), StatusIs(kNotFound));
  EXPECT_THAT(sn_->Stat("nul"), StatusIs(kNotFound));
  EXPECT_THAT(sn_->Prepare(std::string(GetParam().max_key_length + 1, 'k'), ""),
              StatusIs(kInvalidArgument));

  // Only the snapshotter's own names, and one directory per snapshot.
  EXPECT_THAT(Names(dir_.path()), UnorderedElementsAre("root"));
  for (const std::string& name : Names(root_)) {
    EXPECT_TRUE(name == "snapshots" || name == "l" || absl::StartsWith(name, "metadata.db"))
        << name;
  }
  size_t snapshots = 0;
  for (const std::string& name : SnapshotDirs()) {
    int64_t id;
    EXPECT_TRUE(absl::SimpleAtoi(name, &id)) << name;
    ++snapshots;
  }
  EXPECT_EQ(snapshots, 2 * keys.size() - 1);
  for (const std::string& key : keys) ASSERT_THAT(sn_->Remove(key), IsOk()) << Quote(key);
}

struct ErrorCase {
  std::string name;
  std::function<absl::Status(Snapshotter&)> call;
  absl::StatusCode code;
  std::string quoted;  // quoted in the message, if not empty
};

TEST_P(SnapshotterSuite, ErrorCodes) {
  ASSERT_THAT(sn_->Prepare("active", ""), IsOk());
  ASSERT_THAT(sn_->View("view", ""), IsOk());
  ASSERT_THAT(sn_->Prepare("to-commit", ""), IsOk());
  ASSERT_THAT(sn_->Commit("committed", "to-commit"), IsOk());
  ASSERT_THAT(sn_->Prepare("child", "committed"), IsOk());
  const std::string too_long(GetParam().max_key_length + 1, 'x');

  const std::vector<ErrorCase> cases = {
      {"StatMissing", [](Snapshotter& s) { return s.Stat("missing").status(); }, kNotFound,
       "missing"},
      {"StatEmptyKey", [](Snapshotter& s) { return s.Stat("").status(); }, kInvalidArgument, ""},
      {"StatTooLongKey", [&](Snapshotter& s) { return s.Stat(too_long).status(); },
       kInvalidArgument, ""},
      {"PrepareEmptyKey", [](Snapshotter& s) { return s.Prepare("", "").status(); },
       kInvalidArgument, ""},
      {"PrepareExistingActive", [](Snapshotter& s) { return s.Prepare("active", "").status(); },
       kAlreadyExists, "active"},
      {"PrepareExistingCommitted",
       [](Snapshotter& s) { return s.Prepare("committed", "").status(); }, kAlreadyExists,
       "committed"},
      {"PrepareMissingParent", [](Snapshotter& s) { return s.Prepare("new", "nope").status(); },
       kNotFound, "nope"},
      // containerd 1.6: "parent is not committed snapshot": InvalidArgument.
      {"PrepareOnActiveParent", [](Snapshotter& s) { return s.Prepare("new", "active").status(); },
       kInvalidArgument, "active"},
      {"PrepareOnViewParent", [](Snapshotter& s) { return s.Prepare("new", "view").status(); },
       kInvalidArgument, "view"},
      {"ViewExisting", [](Snapshotter& s) { return s.View("view", "").status(); }, kAlreadyExists,
       "view"},
      {"ViewMissingParent", [](Snapshotter& s) { return s.View("new", "nope").status(); },
       kNotFound, "nope"},
      {"ViewOnActiveParent", [](Snapshotter& s) { return s.View("new", "active").status(); },
       kInvalidArgument, "active"},
      {"CommitView", [](Snapshotter& s) { return s.Commit("new", "view"); }, kFailedPrecondition,
       "view"},
      {"CommitCommitted", [](Snapshotter& s) { return s.Commit("new", "committed"); },
       kFailedPrecondition, "committed"},
      {"CommitMissing", [](Snapshotter& s) { return s.Commit("new", "missing"); }, kNotFound,
       "missing"},
      {"CommitToExistingName", [](Snapshotter& s) { return s.Commit("committed", "active"); },
       kAlreadyExists, "committed"},
      {"CommitToItsOwnKey", [](Snapshotter& s) { return s.Commit("active", "active"); },
       kAlreadyExists, "active"},
      {"CommitEmptyName", [](Snapshotter& s) { return s.Commit("", "active"); }, kInvalidArgument,
       ""},
      {"CommitTooLargeLabel",
       [](Snapshotter& s) {
         return s.Commit("new", "active", {{"k", std::string(4096, 'v')}});
       },
       kInvalidArgument, "k"},
      {"PrepareTooLargeLabel",
       [](Snapshotter& s) {
         return s.Prepare("new", "", {{std::string(4097, 'k'), ""}}).status();
       },
       kInvalidArgument, ""},
      {"RemoveMissing", [](Snapshotter& s) { return s.Remove("missing"); }, kNotFound, "missing"},
      {"RemoveParentWithChild", [](Snapshotter& s) { return s.Remove("committed"); },
       kFailedPrecondition, "committed"},
      {"MountsOfCommitted", [](Snapshotter& s) { return s.Mounts("committed").status(); },
       kFailedPrecondition, "committed"},
      {"MountsMissing", [](Snapshotter& s) { return s.Mounts("missing").status(); }, kNotFound,
       "missing"},
      {"UsageMissing", [](Snapshotter& s) { return s.Usage("missing").status(); }, kNotFound,
       "missing"},
      {"UpdateMissing",
       [](Snapshotter& s) { return s.Update(LabelsOf("missing", {}), {}).status(); }, kNotFound,
       "missing"},
      {"UpdateParent",
       [](Snapshotter& s) { return s.Update(LabelsOf("child", {}), {"parent"}).status(); },
       kInvalidArgument, "parent"},
      {"WalkMalformedFilter",
       [](Snapshotter& s) { return s.Walk([](const Info&) { return absl::OkStatus(); }, {"a=b"}); },
       kInvalidArgument, ""},
  };
  for (const ErrorCase& c : cases) {
    SCOPED_TRACE(c.name);
    absl::Status status = c.call(*sn_);
    EXPECT_THAT(status, StatusIs(c.code));
    if (!c.quoted.empty()) {
      EXPECT_THAT(status.message(), HasSubstr(Quote(c.quoted)));
    }
  }
  // Failures changed nothing.
  EXPECT_THAT(WalkKeys(*sn_, {}), ElementsAre("active", "child", "committed", "view"));
  EXPECT_THAT(SnapshotDirs(), SizeIs(4));
}

}  // namespace berth::snapshotter
