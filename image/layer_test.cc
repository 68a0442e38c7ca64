// ApplyLayer and WriteDiff against the kernel: real files, devices, xattrs
// (trusted.* included), overlay mounts. Layers are built here with
// libarchive's writer and compressed with zlib and zstd.
#include "image/layer.h"

#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>
#include <zlib.h>
#include <zstd.h>

#include <cstring>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "base/sha256.h"
#include "base/status_matchers.h"
#include "base/temp_dir.h"
#include "base/unique_fd.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "image/test_layers.h"
#include "snapshotter/mount.h"
#include "store/content_store.h"

namespace berth::image {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::UnorderedElementsAre;

struct ListedEntry {
  std::string name;
  unsigned type = 0;
  std::string hardlink;
  std::string symlink;
  int64_t size = 0;
  std::map<std::string, std::string> xattrs;
};

// The entries of an uncompressed tar.
std::vector<ListedEntry> ListTar(const std::string& tar) {
  std::vector<ListedEntry> out;
  archive* a = archive_read_new();
  archive_read_support_format_tar(a);
  EXPECT_EQ(archive_read_open_memory(a, tar.data(), tar.size()), ARCHIVE_OK);
  archive_entry* entry;
  int r;
  while ((r = archive_read_next_header(a, &entry)) == ARCHIVE_OK || r == ARCHIVE_WARN) {
    ListedEntry e;
    e.name = archive_entry_pathname(entry);
    e.type = archive_entry_filetype(entry);
    if (archive_entry_hardlink(entry) != nullptr) e.hardlink = archive_entry_hardlink(entry);
    if (archive_entry_symlink(entry) != nullptr) e.symlink = archive_entry_symlink(entry);
    e.size = archive_entry_size(entry);
    archive_entry_xattr_reset(entry);
    const char* name;
    const void* value;
    size_t size;
    while (archive_entry_xattr_next(entry, &name, &value, &size) == ARCHIVE_OK) {
      e.xattrs[name] = std::string(static_cast<const char*>(value), size);
    }
    out.push_back(std::move(e));
  }
  EXPECT_EQ(r, ARCHIVE_EOF) << archive_error_string(a);
  archive_read_free(a);
  return out;
}

std::vector<std::string> Names(const std::vector<ListedEntry>& entries) {
  std::vector<std::string> names;
  for (const ListedEntry& e : entries) names.push_back(e.name);
  return names;
}

// ---------------------------------------------------------------- the filesystem

UniqueFd OpenDir(const std::string& path) {
  return UniqueFd(::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
}

bool MakeDir(const std::string& path, mode_t mode = 0755) {
  return ::mkdir(path.c_str(), mode) == 0;
}

bool WriteFile(const std::string& path, absl::string_view data) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << data;
  return static_cast<bool>(out);
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

struct stat Lstat(const std::string& path) {
  struct stat st {};
  EXPECT_EQ(::lstat(path.c_str(), &st), 0) << path << ": " << std::strerror(errno);
  return st;
}

std::string ReadLink(const std::string& path) {
  char buf[4096];
  ssize_t n = ::readlink(path.c_str(), buf, sizeof(buf));
  return n < 0 ? "<none>" : std::string(buf, n);
}

// Everything about a tree a layer can carry, one line per path: type, mode,
// owner, size, device, symlink target, content, every xattr (trusted.overlay
// ones included), mtime seconds for non-directories when `mtimes`, and which
// paths share an inode.
std::map<std::string, std::string> Describe(const std::string& root, bool mtimes = true) {
  std::map<std::string, std::string> out;
  std::map<std::pair<dev_t, ino_t>, std::string> inodes;
  std::vector<std::string> todo = {""};
  while (!todo.empty()) {
    std::string rel = todo.back();
    todo.pop_back();
    DIR* dir = ::opendir((root + "/" + rel).c_str());
    if (dir == nullptr) continue;
    std::vector<std::string> names;
    while (struct dirent* ent = ::readdir(dir)) {
      std::string name = ent->d_name;
      if (name != "." && name != "..") names.push_back(name);
    }
    ::closedir(dir);
    std::sort(names.begin(), names.end());
    for (const std::string& name : names) {
      std::string child = rel.empty() ? name : rel + "/" + name;
      std::string path = root + "/" + child;
      struct stat st = Lstat(path);
      std::string line =
          absl::StrCat("mode=", absl::Hex(st.st_mode), " owner=", st.st_uid, ":", st.st_gid);
      if (S_ISREG(st.st_mode)) {
        auto [it, first] = inodes.try_emplace({st.st_dev, st.st_ino}, child);
        if (!first) absl::StrAppend(&line, " link=", it->second);
        absl::StrAppend(&line, " size=", st.st_size, " content=", Sha256Digest(ReadFile(path)));
      }
      if (S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode)) {
        absl::StrAppend(&line, " dev=", major(st.st_rdev), ",", minor(st.st_rdev));
      }
      if (S_ISLNK(st.st_mode)) absl::StrAppend(&line, " target=", ReadLink(path));
      if (mtimes && !S_ISDIR(st.st_mode)) absl::StrAppend(&line, " mtime=", st.st_mtim.tv_sec);
      char names_buf[4096];
      ssize_t n = ::llistxattr(path.c_str(), names_buf, sizeof(names_buf));
      std::vector<std::string> xattrs;
      for (ssize_t pos = 0; pos < n; pos += std::strlen(names_buf + pos) + 1) {
        xattrs.push_back(names_buf + pos);
      }
      std::sort(xattrs.begin(), xattrs.end());
      for (const std::string& x : xattrs) {
        char value[256];
        ssize_t len = ::lgetxattr(path.c_str(), x.c_str(), value, sizeof(value));
        absl::StrAppend(&line, " ", x, "=",
                        absl::CHexEscape(std::string(value, len < 0 ? 0 : len)));
      }
      out[child] = line;
      if (S_ISDIR(st.st_mode)) todo.push_back(child);
    }
  }
  return out;
}

// ---------------------------------------------------------------- fixture

class LayerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(MakeDir(Path("target")));
    ASSERT_TRUE(MakeDir(Path("outside")));
    ASSERT_TRUE(WriteFile(Path("outside/passwd"), "root:x:0:0"));
    ASSERT_TRUE(MakeDir(Path("outside/etc")));
    outside_before_ = Describe(Path("outside"));
  }

  void TearDown() override {
    EXPECT_EQ(Describe(Path("outside")), outside_before_) << "something escaped the target";
  }

  std::string Path(absl::string_view rel) const { return absl::StrCat(dir_.path(), "/", rel); }
  std::string Target(absl::string_view rel = "") const {
    return absl::StrCat(Path("target"), "/", rel);
  }

  absl::StatusOr<ApplyResult> Apply(absl::string_view bytes, const std::string& dir,
                                    ApplyOptions options = {},
                                    Compression hint = Compression::kNone) {
    UniqueFd fd = OpenDir(dir);
    EXPECT_TRUE(fd.valid()) << dir;
    std::unique_ptr<ByteSource> source = StringSource(bytes);
    return ApplyLayer(*source, hint, fd.get(), options);
  }

  absl::StatusOr<ApplyResult> Apply(const std::vector<TarEntry>& entries,
                                    ApplyOptions options = {}) {
    return Apply(MakeTar(entries), Path("target"), options);
  }

  absl::StatusOr<DiffResult> Diff(const std::string& lower, const std::string& upper, DiffMode mode,
                                  Compression compression, std::string* out) {
    UniqueFd lower_fd;
    if (!lower.empty()) lower_fd = OpenDir(lower);
    UniqueFd upper_fd = OpenDir(upper);
    std::unique_ptr<ByteSink> sink = StringSink(out);
    return WriteDiff(lower.empty() ? -1 : lower_fd.get(), upper_fd.get(), mode, compression, *sink);
  }

  TempDir dir_;
  std::map<std::string, std::string> outside_before_;
};

ApplyOptions DeleteMode() {
  ApplyOptions options;
  options.whiteouts = ApplyOptions::Whiteouts::kDelete;
  return options;
}

// ---------------------------------------------------------------- media types

TEST(CompressionTest, MediaTypes) {
  const std::pair<const char*, Compression> cases[] = {
      {"application/vnd.oci.image.layer.v1.tar", Compression::kNone},
      {"application/vnd.oci.image.layer.v1.tar+gzip", Compression::kGzip},
      {"application/vnd.oci.image.layer.v1.tar+zstd", Compression::kZstd},
      {"application/vnd.oci.image.layer.nondistributable.v1.tar", Compression::kNone},
      {"application/vnd.oci.image.layer.nondistributable.v1.tar+gzip", Compression::kGzip},
      {"application/vnd.oci.image.layer.nondistributable.v1.tar+zstd", Compression::kZstd},
      {"application/vnd.docker.image.rootfs.diff.tar", Compression::kNone},
      {"application/vnd.docker.image.rootfs.diff.tar.gzip", Compression::kGzip},
      {"application/vnd.docker.image.rootfs.foreign.diff.tar.gzip", Compression::kGzip},
  };
  for (const auto& [media_type, want] : cases) {
    absl::StatusOr<Compression> got = CompressionFromMediaType(media_type);
    ASSERT_THAT(got, IsOk()) << media_type;
    EXPECT_EQ(*got, want) << media_type;
  }
  for (Compression c : {Compression::kNone, Compression::kGzip, Compression::kZstd}) {
    EXPECT_EQ(*CompressionFromMediaType(LayerMediaType(c)), c);
  }
}

TEST(CompressionTest, UnknownMediaTypeIsNamed) {
  absl::StatusOr<Compression> got =
      CompressionFromMediaType("application/vnd.oci.image.layer.v1.tar+lz4");
  EXPECT_THAT(got, StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(got.status().message(), HasSubstr("application/vnd.oci.image.layer.v1.tar+lz4"));
}

TEST(CompressionTest, MagicBytes) {
  EXPECT_EQ(DetectCompression(Gzip("x")), Compression::kGzip);
  EXPECT_EQ(DetectCompression(Zstd("x")), Compression::kZstd);
  EXPECT_EQ(DetectCompression(MakeTar({File("a")})), Compression::kNone);
  EXPECT_EQ(DetectCompression(""), Compression::kNone);
  EXPECT_EQ(DetectCompression("\x1f"), Compression::kNone);
}

// ---------------------------------------------------------------- entries

TEST_F(LayerTest, AppliesEveryEntryType) {
  ASSERT_THAT(Apply({Dir("d"), File("d/file", "hello"), Symlink("d/link", "file"),
                     Hardlink("d/hard", "d/file"), Node("d/null", AE_IFCHR, 1, 3),
                     Node("d/loop", AE_IFBLK, 7, 0), Node("d/fifo", AE_IFIFO)}),
              IsOk());
  EXPECT_EQ(ReadFile(Target("d/file")), "hello");
  EXPECT_EQ(ReadLink(Target("d/link")), "file");
  EXPECT_EQ(Lstat(Target("d/hard")).st_ino, Lstat(Target("d/file")).st_ino);
  EXPECT_EQ(Lstat(Target("d/file")).st_nlink, 2u);
  struct stat null = Lstat(Target("d/null"));
  EXPECT_TRUE(S_ISCHR(null.st_mode));
  EXPECT_EQ(null.st_rdev, makedev(1, 3));
  struct stat loop = Lstat(Target("d/loop"));
  EXPECT_TRUE(S_ISBLK(loop.st_mode));
  EXPECT_EQ(loop.st_rdev, makedev(7, 0));
  EXPECT_TRUE(S_ISFIFO(Lstat(Target("d/fifo")).st_mode));
}

TEST_F(LayerTest, DevicesSkippedWhenNotAllowed) {
  ApplyOptions options;
  options.allow_devices = false;
  ASSERT_THAT(Apply({Node("null", AE_IFCHR, 1, 3), Node("fifo", AE_IFIFO), File("f")}, options),
              IsOk());
  EXPECT_FALSE(Exists(Target("null")));
  EXPECT_TRUE(Exists(Target("fifo")));
  EXPECT_TRUE(Exists(Target("f")));
}

TEST_F(LayerTest, KeepsOwnersModesAndTimes) {
  TarEntry setuid = File("bin/su", "#!", 04755);
  setuid.uid = 1234;
  setuid.gid = 5678;
  setuid.mtime_ns = 123456789;
  setuid.xattrs = {{"user.x", "1"}};  // a PAX header, which carries the nanoseconds
  TarEntry sticky = Dir("tmp", 01777);
  sticky.mtime = kTime - 100;
  TarEntry setgid = Dir("bin", 02750);
  setgid.uid = 7;
  setgid.gid = 8;
  setgid.mtime = kTime - 200;
  TarEntry link = Symlink("bin/sh", "su");
  link.uid = 42;
  link.gid = 43;
  link.mtime = kTime - 300;
  ASSERT_THAT(Apply({setgid, setuid, link, sticky, File("tmp/x")}), IsOk());

  struct stat su = Lstat(Target("bin/su"));
  EXPECT_EQ(su.st_mode & 07777, 04755u) << "chmod after chown keeps setuid";
  EXPECT_EQ(su.st_uid, 1234u);
  EXPECT_EQ(su.st_gid, 5678u);
  EXPECT_EQ(su.st_mtim.tv_sec, kTime);
  EXPECT_EQ(su.st_mtim.tv_nsec, 123456789);
  struct stat bin = Lstat(Target("bin"));
  EXPECT_EQ(bin.st_mode & 07777, 02750u);
  EXPECT_EQ(bin.st_uid, 7u);
  EXPECT_EQ(bin.st_mtim.tv_sec, kTime - 200) << "set after its contents";
  struct stat tmp = Lstat(Target("tmp"));
  EXPECT_EQ(tmp.st_mode & 07777, 01777u);
  EXPECT_EQ(tmp.st_mtim.tv_sec, kTime - 100);
  struct stat sh = Lstat(Target("bin/sh"));
  EXPECT_EQ(sh.st_uid, 42u) << "lchown, not the target's owner";
  EXPECT_EQ(sh.st_mtim.tv_sec, kTime - 300);
  EXPECT_EQ(Lstat(Target("bin/su")).st_uid, 1234u);
}

TEST_F(LayerTest, RootEntrySetsTheTargetsMetadata) {
  TarEntry root = Dir("./", 0750);
  root.mtime = kTime - 5;
  ASSERT_THAT(Apply({root, File("f")}), IsOk());
  struct stat st = Lstat(Target());
  EXPECT_EQ(st.st_mode & 07777, 0750u);
  EXPECT_EQ(st.st_mtim.tv_sec, kTime - 5);
}

TEST_F(LayerTest, KeepsXattrs) {
  // A v2 file capability: CAP_NET_BIND_SERVICE, effective.
  const std::string cap(
      "\x01\x00\x00\x02\x00\x04\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00", 20);
  TarEntry ping = File("ping", "elf", 0755);
  ping.uid = 1000;  // chown would drop a capability set before it
  ping.xattrs = {{"security.capability", cap}, {"user.note", std::string("a\0b", 3)}};
  TarEntry dir = Dir("d");
  dir.xattrs = {{"trusted.berth", "t"}, {"trusted.overlay.opaque", "y"}};
  TarEntry link = Symlink("l", "ping");
  link.xattrs = {{"trusted.link", "s"}};
  ASSERT_THAT(Apply({ping, dir, link}), IsOk());
  EXPECT_EQ(Xattr(Target("ping"), "security.capability"), cap);
  EXPECT_EQ(Xattr(Target("ping"), "user.note"), std::string("a\0b", 3));
  EXPECT_EQ(Xattr(Target("d"), "trusted.berth"), "t");
  EXPECT_EQ(Xattr(Target("d"), "trusted.overlay.opaque"), "<none>")
      << "a layer must not steer overlayfs";
  EXPECT_EQ(Xattr(Target("l"), "trusted.link"), "s");
}

TEST_F(LayerTest, SparseFileKeepsItsHoles) {
  const int64_t size = 8 << 20;
  TarEntry sparse = File("sparse");
  sparse.data.assign(size, '\0');
  sparse.data.replace(0, 3, "abc");
  sparse.data.replace(4 << 20, 3, "xyz");
  sparse.sparse = {{0, 4096}, {4 << 20, 4096}, {size, 0}};
  ASSERT_THAT(Apply({sparse}), IsOk());
  struct stat st = Lstat(Target("sparse"));
  EXPECT_EQ(st.st_size, size);
  EXPECT_LT(st.st_blocks * 512, 1 << 20) << "holes were written out";
  EXPECT_EQ(ReadFile(Target("sparse")), sparse.data);
}

TEST_F(LayerTest, ReplacesWhatIsInTheWay) {
  ASSERT_TRUE(MakeDir(Target("was-dir")));
  ASSERT_TRUE(WriteFile(Target("was-dir/child"), "x"));
  ASSERT_TRUE(WriteFile(Target("was-file"), "x"));
  ASSERT_TRUE(MakeDir(Target("merged")));
  ASSERT_TRUE(WriteFile(Target("merged/old"), "x"));
  ASSERT_EQ(::symlink(Path("outside/passwd").c_str(), Target("was-link").c_str()), 0);
  ASSERT_THAT(Apply({File("was-dir", "now a file"), Dir("was-file"), Dir("merged", 0700),
                     File("merged/new"), File("was-link", "replaced, not written through")}),
              IsOk());
  EXPECT_EQ(ReadFile(Target("was-dir")), "now a file");
  EXPECT_TRUE(S_ISDIR(Lstat(Target("was-file")).st_mode));
  EXPECT_TRUE(Exists(Target("merged/old"))) << "directories merge";
  EXPECT_TRUE(Exists(Target("merged/new")));
  EXPECT_EQ(Lstat(Target("merged")).st_mode & 07777, 0700u);
  EXPECT_TRUE(S_ISREG(Lstat(Target("was-link")).st_mode));
}

TEST_F(LayerTest, MissingParentsAreCreated) {
  ASSERT_THAT(Apply({File("a/b/c/file", "x")}), IsOk());
  struct stat st = Lstat(Target("a/b"));
  EXPECT_TRUE(S_ISDIR(st.st_mode));
  EXPECT_EQ(st.st_mode & 07777, 0755u);
}

TEST_F(LayerTest, MissingParentsCopyTheLowerLayersDirectory) {
  ASSERT_TRUE(MakeDir(Path("lower")));
  ASSERT_TRUE(MakeDir(Path("lower/usr"), 0750));
  ASSERT_EQ(::chown(Path("lower/usr").c_str(), 7, 8), 0);
  struct timespec times[2] = {{kTime - 9, 0}, {kTime - 9, 0}};
  ASSERT_EQ(::utimensat(AT_FDCWD, Path("lower/usr").c_str(), times, 0), 0);
  UniqueFd lower = OpenDir(Path("lower"));
  ApplyOptions options;
  options.lower_dirfds = {lower.get()};
  ASSERT_THAT(Apply({File("usr/bin/tool"), File("opt/x")}, options), IsOk());
  struct stat usr = Lstat(Target("usr"));
  EXPECT_EQ(usr.st_mode & 07777, 0750u);
  EXPECT_EQ(usr.st_uid, 7u);
  EXPECT_EQ(usr.st_gid, 8u);
  EXPECT_EQ(usr.st_mtim.tv_sec, kTime - 9);
  EXPECT_EQ(Lstat(Target("usr/bin")).st_mode & 07777, 0755u) << "not in lower: the default";
  EXPECT_EQ(Lstat(Target("opt")).st_uid, 0u);
}

TEST_F(LayerTest, NonAsciiNamesKeepTheirBytes) {
  ASSERT_THAT(Apply({File("caf\xc3\xa9", "utf-8"), File("lat\xe9", "latin-1")}), IsOk());
  EXPECT_EQ(ReadFile(Target("caf\xc3\xa9")), "utf-8");
  EXPECT_EQ(ReadFile(Target("lat\xe9")), "latin-1");
}

// ---------------------------------------------------------------- whiteouts

TEST_F(LayerTest, OverlayWhiteoutsBecomeDevicesAndXattrs) {
  ASSERT_TRUE(MakeDir(Target("d")));
  ASSERT_TRUE(WriteFile(Target("d/from-this-snapshot"), "x"));
  TarEntry whiteout = File(".wh.gone");
  whiteout.uid = 3;
  ASSERT_THAT(
      Apply({whiteout, Dir("d"), File("d/.wh..wh..opq"), File("d/new"), File("e/.wh.deep")}),
      IsOk());
  struct stat gone = Lstat(Target("gone"));
  EXPECT_TRUE(S_ISCHR(gone.st_mode));
  EXPECT_EQ(gone.st_rdev, makedev(0, 0));
  EXPECT_EQ(gone.st_uid, 3u);
  EXPECT_EQ(gone.st_mtim.tv_sec, kTime) << "the entry's time: diffs reproduce it";
  EXPECT_FALSE(Exists(Target(".wh.gone")));
  EXPECT_EQ(Xattr(Target("d"), "trusted.overlay.opaque"), "y");
  EXPECT_FALSE(Exists(Target("d/.wh..wh..opq")));
  EXPECT_TRUE(Exists(Target("d/from-this-snapshot"))) << "an upperdir is not emptied";
  EXPECT_TRUE(Exists(Target("d/new")));
  EXPECT_TRUE(S_ISCHR(Lstat(Target("e/deep")).st_mode)) << "parents made for a whiteout";
}

TEST_F(LayerTest, DeleteWhiteoutsRemove) {
  ASSERT_THAT(Apply({File("file"), Dir("tree"), File("tree/a"), Dir("tree/sub"), File("tree/sub/b"),
                     File("kept")},
                    DeleteMode()),
              IsOk());
  ASSERT_THAT(Apply({File(".wh.file"), File(".wh.tree"), File(".wh.never-existed"),
                     File("no-such-dir/.wh.x")},
                    DeleteMode()),
              IsOk());
  EXPECT_FALSE(Exists(Target("file")));
  EXPECT_FALSE(Exists(Target("tree")));
  EXPECT_FALSE(Exists(Target(".wh.file")));
  EXPECT_TRUE(Exists(Target("kept")));
}

TEST_F(LayerTest, DeleteOpaqueKeepsThisLayersEarlierEntries) {
  ASSERT_THAT(Apply({Dir("d"), File("d/old"), Dir("d/sub"), File("d/sub/old"), Dir("d/sub2"),
                     File("d/sub2/old"), File("other")},
                    DeleteMode()),
              IsOk());
  ASSERT_THAT(
      Apply({Dir("d"), File("d/early"), File("d/sub2/new"), File("d/.wh..wh..opq"), File("d/late")},
            DeleteMode()),
      IsOk());
  EXPECT_TRUE(Exists(Target("d/early")));
  EXPECT_TRUE(Exists(Target("d/late")));
  EXPECT_TRUE(Exists(Target("d/sub2/new"))) << "a directory this layer wrote into";
  EXPECT_FALSE(Exists(Target("d/sub2/old")));
  EXPECT_FALSE(Exists(Target("d/old")));
  EXPECT_FALSE(Exists(Target("d/sub")));
  EXPECT_FALSE(Exists(Target("d/.wh..wh..opq")));
  EXPECT_TRUE(Exists(Target("other")));
}

TEST_F(LayerTest, OverlayMountHidesWhatWhiteoutsDelete) {
  ASSERT_TRUE(MakeDir(Path("a")));
  ASSERT_TRUE(MakeDir(Path("b")));
  ASSERT_TRUE(MakeDir(Path("merged")));
  ASSERT_THAT(
      Apply(MakeTar({File("keep", "1"), File("gone", "1"), Dir("d"), File("d/old")}), Path("a")),
      IsOk());
  ASSERT_THAT(Apply(MakeTar({File(".wh.gone"), Dir("d"), File("d/.wh..wh..opq"), File("d/new")}),
                    Path("b")),
              IsOk());
  absl::StatusOr<snapshotter::MountGuard> mount = snapshotter::MountAll(
      {snapshotter::Mount{
          "overlay", "overlay", "", {absl::StrCat("lowerdir=", Path("b"), ":", Path("a"))}}},
      Path("merged"));
  ASSERT_THAT(mount, IsOk());
  EXPECT_TRUE(Exists(Path("merged/keep")));
  EXPECT_FALSE(Exists(Path("merged/gone")));
  EXPECT_TRUE(Exists(Path("merged/d/new")));
  EXPECT_FALSE(Exists(Path("merged/d/old"))) << "opaque directory";
  EXPECT_THAT(mount->Unmount(), IsOk());
}

// ---------------------------------------------------------------- streams and digests

// A content-store blob's digest is verified when it is written: for an
// uncompressed layer it is the diff ID, taken as given rather than hashed
// again; a compressed layer's diff ID is still computed.
TEST_F(LayerTest, KnownDigestOfAnUncompressedLayerIsItsDiffId) {
  const std::string tar = MakeTar({File("f", "x")});
  for (Compression compression : {Compression::kNone, Compression::kGzip}) {
    TempDir target;
    UniqueFd fd = OpenDir(target.path());
    ApplyOptions options;
    options.source_digest = "sha256:" + std::string(64, 'a');
    const std::string bytes = compression == Compression::kNone ? tar : Gzip(tar);
    std::unique_ptr<ByteSource> source = StringSource(bytes);
    absl::StatusOr<ApplyResult> result = ApplyLayer(*source, compression, fd.get(), options);
    ASSERT_THAT(result, IsOk());
    EXPECT_EQ(result->diff_id,
              compression == Compression::kNone ? options.source_digest : Sha256Digest(tar));
    EXPECT_EQ(result->size, static_cast<int64_t>(tar.size()));
  }
}

// What an early unpack needs to know to reuse a tree elsewhere: whether
// the layer held whiteouts, implied parents, or set its root.
TEST_F(LayerTest, ResultSaysWhatTheTreeDependsOn) {
  struct Case {
    std::string name;
    std::vector<TarEntry> entries;
    bool whiteouts, implied, root;
  };
  const std::vector<Case> cases = {
      {"self-contained", {Dir("a"), File("a/f", "x")}, false, false, false},
      {"implied parent", {File("b/c/f", "x")}, false, true, false},
      {"whiteout", {Dir("a"), File("a/.wh.gone")}, true, false, false},
      {"opaque", {Dir("a"), File("a/.wh..wh..opq")}, true, false, false},
      {"root entry", {Dir("./", 0700), File("f")}, false, false, true},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    TempDir target;
    UniqueFd fd = OpenDir(target.path());
    ApplyOptions options;
    options.whiteouts = ApplyOptions::Whiteouts::kOverlay;
    const std::string tar = MakeTar(c.entries);  // outlives the source reading it
    std::unique_ptr<ByteSource> source = StringSource(tar);
    absl::StatusOr<ApplyResult> result = ApplyLayer(*source, Compression::kNone, fd.get(), options);
    ASSERT_THAT(result, IsOk());
    EXPECT_EQ(result->has_whiteouts, c.whiteouts);
    EXPECT_EQ(result->implied_parents, c.implied);
    EXPECT_EQ(result->root_entry, c.root);
  }
}

TEST_F(LayerTest, DiffIdIsTheDigestOfTheWholeUncompressedStream) {
  std::string tar = MakeTar({Dir("d"), File("d/f", std::string(100000, 'x'))});
  ASSERT_EQ(tar.size() % 10240, 0u) << "padded past the end-of-archive records";
  // Zeros past the end, more than libarchive reads ahead: only draining
  // the stream gets them into the digest.
  std::string padded = tar + std::string(5 << 20, '\0');
  for (const auto& [name, bytes, uncompressed] :
       std::vector<std::tuple<std::string, std::string, std::string>>{
           {"none", tar, tar},
           {"gzip", Gzip(tar), tar},
           {"zstd", Zstd(tar), tar},
           {"padded", padded, padded},
           {"padded-gzip", Gzip(padded), padded}}) {
    SCOPED_TRACE(name);
    std::string dir = Path(name);
    ASSERT_TRUE(MakeDir(dir));
    absl::StatusOr<ApplyResult> result = Apply(bytes, dir);
    ASSERT_THAT(result, IsOk());
    EXPECT_EQ(result->diff_id, Sha256Digest(uncompressed));
    EXPECT_EQ(result->size, static_cast<int64_t>(uncompressed.size()));
    EXPECT_EQ(ReadFile(dir + "/d/f"), std::string(100000, 'x'));
  }
}

TEST_F(LayerTest, MagicWinsOverTheMediaType) {
  std::string tar = MakeTar({File("f", "x")});
  EXPECT_THAT(Apply(Gzip(tar), Target(), {}, Compression::kZstd), IsOk());
  EXPECT_THAT(Apply(tar, Target(), {}, Compression::kGzip), IsOk());
  EXPECT_EQ(ReadFile(Target("f")), "x");
}

TEST_F(LayerTest, EmptyStreamIsAnEmptyLayer) {
  absl::StatusOr<ApplyResult> result = Apply("", Target());
  ASSERT_THAT(result, IsOk());
  EXPECT_EQ(result->diff_id, Sha256Digest(""));
  EXPECT_EQ(result->size, 0);
}

TEST_F(LayerTest, MultiMemberGzip) {
  std::string tar = MakeTar({File("a", std::string(50000, 'a')), File("b", "b")});
  std::string gz = Gzip(tar.substr(0, 7000)) + Gzip(tar.substr(7000));
  absl::StatusOr<ApplyResult> result = Apply(gz, Target());
  ASSERT_THAT(result, IsOk());
  EXPECT_EQ(result->diff_id, Sha256Digest(tar));
  EXPECT_EQ(ReadFile(Target("b")), "b");
}

// A store blob read in small chunks, through BlobSource.
class FakeBlob : public store::BlobReader {
 public:
  explicit FakeBlob(std::string data) : data_(std::move(data)) {}
  int64_t Size() const override { return data_.size(); }
  absl::Status ReadAt(int64_t offset, size_t max_bytes, std::string* out) override {
    *out = data_.substr(offset, std::min<size_t>(max_bytes, 333));
    return absl::OkStatus();
  }

 private:
  std::string data_;
};

TEST_F(LayerTest, TargetMayBeAnOPathFd) {
  UniqueFd target(::open(Target().c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  std::string tar = MakeTar({Dir("d"), File("d/f", "x")});
  std::unique_ptr<ByteSource> source = StringSource(tar);
  EXPECT_THAT(ApplyLayer(*source, Compression::kNone, target.get(), ApplyOptions{}), IsOk());
  EXPECT_EQ(ReadFile(Target("d/f")), "x");
  std::string out;
  std::unique_ptr<ByteSink> sink = StringSink(&out);
  EXPECT_THAT(WriteDiff(-1, target.get(), DiffMode::kOverlayUpper, Compression::kNone, *sink),
              IsOk());
  EXPECT_THAT(Names(ListTar(out)), ElementsAre("d/", "d/f"));
}

TEST_F(LayerTest, ReadsFromABlobReader) {
  std::string tar = MakeTar({File("f", std::string(70000, 'z'))});
  FakeBlob blob(Zstd(tar));
  std::unique_ptr<ByteSource> source = BlobSource(blob);
  UniqueFd target = OpenDir(Target());
  absl::StatusOr<ApplyResult> result =
      ApplyLayer(*source, Compression::kZstd, target.get(), ApplyOptions{});
  ASSERT_THAT(result, IsOk());
  EXPECT_EQ(result->diff_id, Sha256Digest(tar));
  EXPECT_EQ(ReadFile(Target("f")), std::string(70000, 'z'));
}

// Hands out `data` and then fails, as a store read might.
class FailingSource : public ByteSource {
 public:
  explicit FailingSource(std::string data) : data_(std::move(data)) {}
  absl::StatusOr<size_t> Read(char* buf, size_t n) override {
    if (data_.empty()) return absl::UnavailableError("disk on fire");
    n = std::min(n, data_.size());
    std::memcpy(buf, data_.data(), n);
    data_.erase(0, n);
    return n;
  }

 private:
  std::string data_;
};

TEST_F(LayerTest, SourceErrorsComeBackUnchanged) {
  std::string tar = MakeTar({File("a", std::string(3 << 20, 'a')), File("b", "b")});
  FailingSource source(Gzip(tar).substr(0, 2000));
  UniqueFd target = OpenDir(Target());
  absl::StatusOr<ApplyResult> result =
      ApplyLayer(source, Compression::kGzip, target.get(), ApplyOptions{});
  EXPECT_THAT(result, StatusIs(absl::StatusCode::kUnavailable));
  EXPECT_THAT(result.status().message(), HasSubstr("disk on fire"));
}

TEST_F(LayerTest, AnEarlyBadEntryStopsTheReader) {
  // The reader thread is still decompressing when the first entry fails.
  std::string tar = MakeTar({Hardlink("h", "missing"), File("big", std::string(16 << 20, 'x'))});
  absl::StatusOr<ApplyResult> result = Apply(Gzip(tar), Target());
  EXPECT_THAT(result, StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(result.status().message(), HasSubstr("entry \"h\": hard link target \"missing\""));
  EXPECT_FALSE(Exists(Target("big")));
}

// ---------------------------------------------------------------- broken layers

struct BrokenCase {
  std::string name;
  std::string bytes;
  std::string message;  // a part of the error's message
};

TEST_F(LayerTest, BrokenStreamsAreInvalidArgumentNamingTheProblem) {
  std::string tar = MakeTar({File("first", "ok"), File("second", std::string(300000, 'q'))});
  std::string gz = Gzip(tar);
  std::string corrupt_gz = gz;
  corrupt_gz[10] = '\xff';  // the first deflate block: reserved block type 3
  std::string zst = Zstd(tar);
  std::string garbage(4096, '\0');
  for (size_t i = 0; i < garbage.size(); ++i) garbage[i] = static_cast<char>(i * 7 + 1);
  std::string truncated_tar = tar.substr(0, 3000);
  const BrokenCase cases[] = {
      {"CorruptGzip", corrupt_gz, "gzip: corrupt"},
      {"TruncatedGzip", gz.substr(0, gz.size() / 2), "gzip: unexpected end"},
      {"TruncatedZstd", zst.substr(0, zst.size() - 10), "zstd: unexpected end"},
      {"CorruptZstd", zst.substr(0, 4) + garbage, "zstd: corrupt"},
      {"GarbageTar", garbage, "tar: "},
      {"TruncatedTar", truncated_tar, "tar: "},
      {"GarbageAfterGzip", gz + "trailing junk", "gzip"},
  };
  for (const BrokenCase& c : cases) {
    SCOPED_TRACE(c.name);
    std::string dir = Path(c.name);
    ASSERT_TRUE(MakeDir(dir));
    absl::StatusOr<ApplyResult> result = Apply(c.bytes, dir);
    EXPECT_THAT(result, StatusIs(absl::StatusCode::kInvalidArgument));
    EXPECT_THAT(result.status().message(), HasSubstr(c.message));
  }
}

TEST_F(LayerTest, FailureMidwayNamesTheEntryAndStaysInside) {
  // Incompressible, so the stream's blocks before the cut decode.
  std::string noise(600000, '\0');
  uint32_t x = 1;
  for (char& c : noise) c = static_cast<char>((x = x * 1103515245 + 12345) >> 24);
  std::string tar = MakeTar({File("first", "ok"), File("second", noise)});
  std::string zst = Zstd(tar);
  absl::StatusOr<ApplyResult> result = Apply(zst.substr(0, zst.size() - 10), Target());
  ASSERT_THAT(result, StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(result.status().message(), HasSubstr("\"second\""));
  EXPECT_EQ(ReadFile(Target("first")), "ok") << "what came before stays, for the caller to discard";
}

// ---------------------------------------------------------------- escapes

// Each case applies `entries` to the target, where `prepare` may have put
// an earlier layer's symlink. The fixture checks that nothing outside the
// target changed; the case checks where the entry went, or that the layer
// failed with InvalidArgument naming `failing_entry`.
struct EscapeCase {
  std::string name;
  std::vector<TarEntry> entries;
  std::string lands_at;       // relative to the target; empty when it fails
  std::string failing_entry;  // quoted in the error
  std::string early_symlink;  // "name -> target" placed in the target first
  ApplyOptions::Whiteouts whiteouts = ApplyOptions::Whiteouts::kDelete;
};

void PrintTo(const EscapeCase& c, std::ostream* os) { *os << c.name; }

class EscapeTest : public LayerTest, public ::testing::WithParamInterface<EscapeCase> {};

TEST_P(EscapeTest, NothingLeavesTheTarget) {
  const EscapeCase& c = GetParam();
  std::string outside = Path("outside");
  auto expand = [&](std::string s) {
    size_t at = s.find("$OUT");
    if (at != std::string::npos) s.replace(at, 4, outside);
    return s;
  };
  if (!c.early_symlink.empty()) {
    size_t arrow = c.early_symlink.find(" -> ");
    ASSERT_EQ(::symlink(expand(c.early_symlink.substr(arrow + 4)).c_str(),
                        Target(c.early_symlink.substr(0, arrow)).c_str()),
              0);
  }
  std::vector<TarEntry> entries = c.entries;
  for (TarEntry& e : entries) {
    e.name = expand(e.name);
    e.symlink = expand(e.symlink);
    e.hardlink = expand(e.hardlink);
  }
  ApplyOptions options;
  options.whiteouts = c.whiteouts;
  absl::StatusOr<ApplyResult> result = Apply(entries, options);
  if (c.failing_entry.empty()) {
    ASSERT_THAT(result, IsOk());
    EXPECT_TRUE(Exists(Target(expand(c.lands_at)))) << expand(c.lands_at);
  } else {
    ASSERT_THAT(result, StatusIs(absl::StatusCode::kInvalidArgument));
    EXPECT_THAT(result.status().message(),
                HasSubstr(absl::StrCat("entry \"", c.failing_entry, "\"")));
  }
}

TarEntry Dropped(std::string name) { return File(std::move(name), "dropped"); }

// A case whose entry lands at `at` inside the target.
EscapeCase Lands(std::string name, std::vector<TarEntry> entries, std::string at,
                 std::string early_symlink = "") {
  return EscapeCase{std::move(name), std::move(entries), std::move(at), "",
                    std::move(early_symlink)};
}

// A case failing with InvalidArgument naming `entry`.
EscapeCase Fails(std::string name, std::vector<TarEntry> entries, std::string entry,
                 std::string early_symlink = "") {
  return EscapeCase{std::move(name), std::move(entries), "", std::move(entry),
                    std::move(early_symlink)};
}

EscapeCase InOverlayMode(EscapeCase c) {
  c.whiteouts = ApplyOptions::Whiteouts::kOverlay;
  return c;
}

INSTANTIATE_TEST_SUITE_P(
    Layer, EscapeTest,
    ::testing::Values(
        Lands("DotDot", {Dropped("../escape")}, "escape"),
        Lands("DotDotDeep", {Dropped("../../../../../../outside/passwd")}, "outside/passwd"),
        Lands("Absolute", {Dropped("/abs/file")}, "abs/file"),
        Lands("DotDotInside", {Dropped("a/../../x")}, "x"),
        Lands("SymlinkAbsoluteThenWrite", {Symlink("evil", "$OUT"), Dropped("evil/file")},
              "$OUT/file"),
        Lands("SymlinkUpAndOut", {Symlink("up", "../.."), Dropped("up/x")}, "x"),
        Lands("SymlinkToOutsideRelative", {Symlink("rel", "../outside"), Dropped("rel/passwd")},
              "outside/passwd"),
        Lands("SymlinkChain",
              {Symlink("a", "b"), Symlink("b", "../../outside"), Dropped("a/etc/f")},
              "outside/etc/f"),
        Lands("SymlinkThenDirEntry", {Symlink("d", "$OUT"), Dir("d"), Dropped("d/f")}, "d/f"),
        Lands("SymlinkReplacedByFile", {Symlink("s", "$OUT/passwd"), Dropped("s")}, "s"),
        Fails("HardlinkAbsolute", {Hardlink("h", "/etc/passwd")}, "h"),
        Fails("HardlinkUpAndOut", {Hardlink("h", "../../outside/passwd")}, "h"),
        Fails("HardlinkThroughSymlink", {Symlink("l", "$OUT"), Hardlink("h", "l/passwd")}, "h"),
        Fails("HardlinkToDirectory", {Dir("d"), Hardlink("h", "d")}, "h"),
        Lands("WhiteoutUpAndOut", {File("../.wh.outside")}, ""),
        InOverlayMode(Lands("WhiteoutUpAndOutOverlay", {File("../.wh.outside")}, "outside")),
        Lands("WhiteoutThroughSymlink", {Symlink("l", "$OUT"), File("l/.wh.passwd")}, "l"),
        Lands("WhiteoutThroughEarlierSymlink", {File("lib/.wh.passwd")}, "lib", "lib -> $OUT"),
        InOverlayMode(Lands("WhiteoutThroughEarlierSymlinkOverlay", {File("lib/.wh.passwd")},
                            "$OUT/passwd", "lib -> $OUT")),
        Lands("OpaqueThroughSymlink", {Symlink("l", "$OUT"), File("l/.wh..wh..opq")}, "$OUT"),
        InOverlayMode(Lands("OpaqueThroughSymlinkOverlay",
                            {Symlink("l", "$OUT"), File("l/.wh..wh..opq")}, "$OUT")),
        Fails("WhiteoutOfDotDot", {File("a/.wh...")}, "a/.wh..."),
        Fails("WhiteoutOfDot", {File(".wh..")}, ".wh.."),
        Lands("EarlierLayerSymlinkAbsolute", {Dropped("lib/passwd")}, "$OUT/passwd", "lib -> $OUT"),
        Lands("EarlierLayerSymlinkRelative", {Dropped("lib/passwd")}, "outside/passwd",
              "lib -> ../../../../outside"),
        Fails("EarlierLayerSymlinkHardlink", {Hardlink("h", "lib/passwd")}, "h", "lib -> $OUT"),
        // A directory replaced after entries went into it: later entries
        // must resolve the path anew, not reuse the old directory.
        Lands("DirReplacedBySymlinkThenWrite",
              {Dir("d"), Dropped("d/f1"), Symlink("d", "$OUT"), Dropped("d/f2")}, "$OUT/f2"),
        Fails("DirReplacedByFileThenWrite",
              {Dir("a"), Dropped("a/x"), Dropped("a"), Dropped("a/y")}, "a/y"),
        // "s" resolves through d/c; once d/c is a file, "s/f2" has no parent.
        Fails("ParentResolvedThroughAReplacedDir",
              {Dir("d"), Dir("d/c"), Symlink("s", "d/c/.."), Dropped("s/f1"), Dropped("s/c"),
               Dropped("s/f2")},
              "s/f2"),
        Fails("FileNamingTheRoot", {Dropped(".")}, "."),
        Fails("FileNamingTheRootViaDotDot", {Dropped("a/..")}, "a/..")),
    [](const ::testing::TestParamInfo<EscapeCase>& info) { return info.param.name; });

// ---------------------------------------------------------------- diff

std::vector<TarEntry> RichLayer() {
  TarEntry su = File("bin/su", "setuid", 04755);
  su.uid = 1000;
  su.gid = 1001;
  su.xattrs = {{"user.a", "1"}, {"trusted.b", std::string("\0\1\2", 3)}};
  TarEntry etc = Dir("etc", 0750);
  etc.xattrs = {{"user.dir", "d"}};
  TarEntry link = Symlink("bin/sh", "su");
  link.uid = 5;
  TarEntry big = File("big", std::string(3 << 20, 'b'));
  for (size_t i = 0; i < big.data.size(); i += 4093) big.data[i] = static_cast<char>(i);
  return {Dir("bin"),
          su,
          link,
          Hardlink("bin/su-again", "bin/su"),
          Node("null", AE_IFCHR, 1, 3),
          Node("fifo", AE_IFIFO),
          etc,
          File("etc/.wh.removed"),
          Dir("opaque"),
          File("opaque/.wh..wh..opq"),
          File("opaque/only"),
          big,
          File("empty")};
}

TEST_F(LayerTest, OverlayUpperRoundTrip) {
  ASSERT_TRUE(MakeDir(Path("a")));
  ASSERT_TRUE(MakeDir(Path("b")));
  ASSERT_THAT(Apply(MakeTar(RichLayer()), Path("a")), IsOk());
  for (Compression c : {Compression::kGzip, Compression::kZstd, Compression::kNone}) {
    std::string layer;
    absl::StatusOr<DiffResult> diff = Diff("", Path("a"), DiffMode::kOverlayUpper, c, &layer);
    ASSERT_THAT(diff, IsOk());
    EXPECT_EQ(diff->digest, Sha256Digest(layer));
    EXPECT_EQ(diff->size, static_cast<int64_t>(layer.size()));
    std::string dir = Path(absl::StrCat("b/", static_cast<int>(c)));
    ASSERT_TRUE(MakeDir(dir));
    absl::StatusOr<ApplyResult> applied = Apply(layer, dir);
    ASSERT_THAT(applied, IsOk());
    EXPECT_EQ(applied->diff_id, diff->diff_id);
    EXPECT_EQ(applied->size, diff->uncompressed_size);
    EXPECT_EQ(Describe(dir), Describe(Path("a")));
  }
  EXPECT_EQ(Xattr(Path("b/1/opaque"), "trusted.overlay.opaque"), "y");
  EXPECT_TRUE(S_ISCHR(Lstat(Path("b/1/etc/removed")).st_mode));
}

TEST_F(LayerTest, DiffTarLooksLikeContainerds) {
  ASSERT_THAT(Apply(RichLayer()), IsOk());
  std::string tar;
  ASSERT_THAT(Diff("", Target(), DiffMode::kOverlayUpper, Compression::kNone, &tar), IsOk());
  std::vector<ListedEntry> entries = ListTar(tar);
  EXPECT_THAT(Names(entries), ElementsAre("big", "bin/", "bin/sh", "bin/su", "bin/su-again",
                                          "empty", "etc/", "etc/.wh.removed", "fifo", "null",
                                          "opaque/", "opaque/.wh..wh..opq", "opaque/only"));
  EXPECT_EQ(entries[4].hardlink, "bin/su");
  EXPECT_EQ(entries[2].symlink, "su");
  EXPECT_EQ(entries[3].xattrs, (std::map<std::string, std::string>{
                                   {"trusted.b", std::string("\0\1\2", 3)}, {"user.a", "1"}}));
  EXPECT_THAT(entries[10].xattrs, IsEmpty()) << "overlay xattrs are not content";
  EXPECT_EQ(tar.size() % 512, 0u);
  EXPECT_EQ(tar.substr(tar.size() - 1024), std::string(1024, '\0')) << "no padding after the end";
  EXPECT_EQ(tar.find("LIBARCHIVE.xattr"), std::string::npos) << "SCHILY records only";

  std::string again;
  ASSERT_THAT(Diff("", Target(), DiffMode::kOverlayUpper, Compression::kGzip, &again), IsOk());
  std::string again2;
  ASSERT_THAT(Diff("", Target(), DiffMode::kOverlayUpper, Compression::kGzip, &again2), IsOk());
  EXPECT_EQ(again, again2) << "deterministic";
}

TEST_F(LayerTest, OverlayUpperRefusesMetacopyAndRedirects) {
  ASSERT_TRUE(MakeDir(Target("renamed")));
  ASSERT_EQ(::setxattr(Target("renamed").c_str(), "trusted.overlay.redirect", "/old", 4, 0), 0);
  std::string out;
  EXPECT_THAT(Diff("", Target(), DiffMode::kOverlayUpper, Compression::kNone, &out),
              StatusIs(absl::StatusCode::kFailedPrecondition));
}

TEST_F(LayerTest, CompareDiffFindsTheChanges) {
  std::vector<TarEntry> base = {Dir("d"),
                                File("d/same", "same"),
                                File("d/content", "aaaa"),
                                File("d/mode", "m"),
                                File("d/deleted", "x"),
                                Dir("d/deleted-dir"),
                                File("d/deleted-dir/f"),
                                File("d/becomes-dir"),
                                Symlink("d/link", "same"),
                                Dir("untouched"),
                                File("untouched/f")};
  ASSERT_TRUE(MakeDir(Path("lower")));
  ASSERT_TRUE(MakeDir(Path("upper")));
  ASSERT_THAT(Apply(MakeTar(base), Path("lower"), DeleteMode()), IsOk());
  ASSERT_THAT(Apply(MakeTar(base), Path("upper"), DeleteMode()), IsOk());
  // Same size, same whole-second mtime: only the content tells.
  ASSERT_TRUE(WriteFile(Path("upper/d/content"), "bbbb"));
  struct timespec times[2] = {{kTime, 0}, {kTime, 0}};
  ASSERT_EQ(::utimensat(AT_FDCWD, Path("upper/d/content").c_str(), times, 0), 0);
  ASSERT_EQ(::chmod(Path("upper/d/mode").c_str(), 0600), 0);
  ASSERT_EQ(::unlink(Path("upper/d/deleted").c_str()), 0);
  ASSERT_EQ(::unlink(Path("upper/d/deleted-dir/f").c_str()), 0);
  ASSERT_EQ(::rmdir(Path("upper/d/deleted-dir").c_str()), 0);
  ASSERT_EQ(::unlink(Path("upper/d/becomes-dir").c_str()), 0);
  ASSERT_TRUE(MakeDir(Path("upper/d/becomes-dir")));
  ASSERT_TRUE(WriteFile(Path("upper/d/becomes-dir/inner"), "i"));
  ASSERT_EQ(::unlink(Path("upper/d/link").c_str()), 0);
  ASSERT_EQ(::symlink("mode", Path("upper/d/link").c_str()), 0);
  ASSERT_EQ(::lutimes(Path("upper/d/link").c_str(), nullptr), 0);
  ASSERT_TRUE(WriteFile(Path("upper/added"), "new"));
  ASSERT_EQ(::link(Path("upper/added").c_str(), Path("upper/added-link").c_str()), 0);

  std::string tar;
  absl::StatusOr<DiffResult> diff =
      Diff(Path("lower"), Path("upper"), DiffMode::kCompare, Compression::kNone, &tar);
  ASSERT_THAT(diff, IsOk());
  EXPECT_EQ(diff->diff_id, Sha256Digest(tar));
  std::vector<ListedEntry> entries = ListTar(tar);
  EXPECT_THAT(Names(entries),
              ElementsAre("added", "added-link", "d/becomes-dir/", "d/becomes-dir/inner",
                          "d/content", "d/.wh.deleted", "d/.wh.deleted-dir", "d/link", "d/mode"));
  EXPECT_EQ(entries[1].hardlink, "added");

  // Applied onto a copy of lower, it gives upper.
  ASSERT_TRUE(MakeDir(Path("copy")));
  ASSERT_THAT(Apply(MakeTar(base), Path("copy"), DeleteMode()), IsOk());
  ASSERT_THAT(Apply(tar, Path("copy"), DeleteMode()), IsOk());
  EXPECT_EQ(Describe(Path("copy"), /*mtimes=*/false), Describe(Path("upper"), false));
}

TEST_F(LayerTest, CompareDiffOfEqualTreesIsEmpty) {
  std::vector<TarEntry> base = RichLayer();
  ASSERT_TRUE(MakeDir(Path("lower")));
  ASSERT_TRUE(MakeDir(Path("upper")));
  ASSERT_THAT(Apply(MakeTar(base), Path("lower"), DeleteMode()), IsOk());
  ASSERT_THAT(Apply(MakeTar(base), Path("upper"), DeleteMode()), IsOk());
  std::string tar;
  ASSERT_THAT(Diff(Path("lower"), Path("upper"), DiffMode::kCompare, Compression::kNone, &tar),
              IsOk());
  EXPECT_THAT(ListTar(tar), IsEmpty());
}

TEST_F(LayerTest, BusyboxRoundTripsByteForByte) {
  std::string busybox = ReadFile("/bin/busybox");
  ASSERT_GT(busybox.size(), 100000u);
  TarEntry bin = File("bin/busybox", busybox, 0755);
  ASSERT_THAT(
      Apply(Gzip(MakeTar({Dir("bin"), bin, Symlink("bin/sh", "busybox"),
                          Symlink("bin/ls", "/bin/busybox"), Hardlink("bin/cat", "bin/busybox")})),
            Target()),
      IsOk());
  std::string layer;
  ASSERT_THAT(Diff("", Target(), DiffMode::kOverlayUpper, Compression::kZstd, &layer), IsOk());
  ASSERT_TRUE(MakeDir(Path("again")));
  ASSERT_THAT(Apply(layer, Path("again")), IsOk());
  EXPECT_EQ(ReadFile(Path("again/bin/busybox")), busybox);
  EXPECT_EQ(ReadLink(Path("again/bin/sh")), "busybox");
  EXPECT_EQ(ReadLink(Path("again/bin/ls")), "/bin/busybox");
  EXPECT_EQ(Lstat(Path("again/bin/cat")).st_ino, Lstat(Path("again/bin/busybox")).st_ino);
  EXPECT_EQ(Describe(Path("again")), Describe(Target()));
}

}  // namespace
}  // namespace berth::image
