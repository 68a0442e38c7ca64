#include "store/env.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <utility>

#include "absl/strings/str_cat.h"
#include "base/status.h"
#include "base/unique_fd.h"

namespace berth::store {
namespace {

constexpr mode_t kFileMode = 0600;
constexpr mode_t kDirMode = 0700;
// Writes at least this large start their writeback at once (see WriteAt).
constexpr size_t kWritebackChunk = 256 << 10;

FileInfo ToFileInfo(const struct stat& st) {
  return FileInfo{
      .size = st.st_size,
      .modified = absl::TimeFromTimespec(st.st_mtim),
      .is_directory = S_ISDIR(st.st_mode),
  };
}

class PosixFile : public File {
 public:
  PosixFile(UniqueFd fd, std::string path) : fd_(std::move(fd)), path_(std::move(path)) {}

  absl::StatusOr<size_t> ReadAt(int64_t offset, size_t n, char* buf) override {
    size_t done = 0;
    while (done < n) {
      ssize_t r = ::pread(fd_.get(), buf + done, n - done, offset + done);
      if (r < 0) {
        if (errno == EINTR) continue;
        return ErrnoStatus("pread", path_);
      }
      if (r == 0) break;
      done += r;
    }
    return done;
  }

  absl::Status WriteAt(int64_t offset, absl::string_view data, size_t* written) override {
    size_t done = 0;
    absl::Status status;
    while (done < data.size()) {
      ssize_t r = ::pwrite(fd_.get(), data.data() + done, data.size() - done, offset + done);
      if (r < 0) {
        if (errno == EINTR) continue;
        status = ErrnoStatus("pwrite", path_);
        break;
      }
      done += r;
    }
    // Start writing large pieces back now, without waiting: the disk works
    // while the writer produces the next piece, and Sync later waits only
    // for the tail (an ingest's commit spent most of its time in fdatasync).
    if (done >= kWritebackChunk) {
      ::sync_file_range(fd_.get(), offset, static_cast<off64_t>(done), SYNC_FILE_RANGE_WRITE);
    }
    if (written != nullptr) *written = done;
    return status;
  }

  absl::Status Sync() override {
    // fdatasync covers the data and the size, which is all a blob needs.
    if (::fdatasync(fd_.get()) != 0) return ErrnoStatus("fdatasync", path_);
    return absl::OkStatus();
  }

  absl::Status Truncate(int64_t size) override {
    if (::ftruncate(fd_.get(), size) != 0) return ErrnoStatus("ftruncate", path_);
    return absl::OkStatus();
  }

  absl::StatusOr<FileInfo> Stat() override {
    struct stat st;
    if (::fstat(fd_.get(), &st) != 0) return ErrnoStatus("fstat", path_);
    return ToFileInfo(st);
  }

  absl::Status MakeReadOnly() override {
    if (::fchmod(fd_.get(), 0400) != 0) return ErrnoStatus("fchmod", path_);
    return absl::OkStatus();
  }

 private:
  UniqueFd fd_;
  std::string path_;
};

int OpenFlags(OpenMode mode) {
  switch (mode) {
    case OpenMode::kReadOnly:
      return O_RDONLY;
    case OpenMode::kReadWrite:
      return O_RDWR;
    case OpenMode::kCreateNew:
      return O_RDWR | O_CREAT | O_EXCL;
    case OpenMode::kCreateTruncate:
      return O_RDWR | O_CREAT | O_TRUNC;
  }
  return O_RDONLY;
}

class PosixEnv : public Env {
 public:
  absl::StatusOr<std::unique_ptr<File>> OpenFile(const std::string& path, OpenMode mode) override {
    UniqueFd fd(::open(path.c_str(), OpenFlags(mode) | O_CLOEXEC, kFileMode));
    if (!fd.valid()) return ErrnoStatus("open", path);
    return std::make_unique<PosixFile>(std::move(fd), path);
  }

  absl::StatusOr<FileInfo> Stat(const std::string& path) override {
    struct stat st;
    if (::stat(path.c_str(), &st) != 0) return ErrnoStatus("stat", path);
    return ToFileInfo(st);
  }

  absl::StatusOr<std::vector<std::string>> ListDir(const std::string& path) override {
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!fd.valid()) return ErrnoStatus("open", path);
    // fdopendir takes the fd over; closedir closes it.
    std::unique_ptr<DIR, int (*)(DIR*)> dir(::fdopendir(fd.get()), &::closedir);
    if (dir == nullptr) return ErrnoStatus("fdopendir", path);
    fd.Release();
    std::vector<std::string> names;
    errno = 0;
    while (struct dirent* entry = ::readdir(dir.get())) {
      absl::string_view name = entry->d_name;
      if (name != "." && name != "..") names.emplace_back(name);
      errno = 0;
    }
    if (errno != 0) return ErrnoStatus("readdir", path);
    return names;
  }

  absl::Status CreateDir(const std::string& path) override {
    if (::mkdir(path.c_str(), kDirMode) != 0) return ErrnoStatus("mkdir", path);
    return absl::OkStatus();
  }

  absl::Status RemoveFile(const std::string& path) override {
    if (::unlink(path.c_str()) != 0) return ErrnoStatus("unlink", path);
    return absl::OkStatus();
  }

  absl::Status RemoveDir(const std::string& path) override {
    if (::rmdir(path.c_str()) != 0) {
      // rmdir reports a non-empty directory as EEXIST or ENOTEMPTY.
      int err = errno == EEXIST ? ENOTEMPTY : errno;
      return ErrnoStatus(err, "rmdir", path);
    }
    return absl::OkStatus();
  }

  absl::Status RenameNoReplace(const std::string& from, const std::string& to) override {
    if (::renameat2(AT_FDCWD, from.c_str(), AT_FDCWD, to.c_str(), RENAME_NOREPLACE) == 0) {
      return absl::OkStatus();
    }
    if (errno != EINVAL) return ErrnoStatus("renameat2", absl::StrCat(from, "\" to \"", to));
    // The filesystem lacks RENAME_NOREPLACE. Check, then rename: two racing
    // renames to one name can then both succeed, which for content-addressed
    // names only replaces a blob with the same bytes.
    struct stat st;
    if (::lstat(to.c_str(), &st) == 0) return ErrnoStatus(EEXIST, "rename", to);
    if (::rename(from.c_str(), to.c_str()) != 0) {
      return ErrnoStatus("rename", absl::StrCat(from, "\" to \"", to));
    }
    return absl::OkStatus();
  }

  absl::Status SyncDir(const std::string& path) override {
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!fd.valid()) return ErrnoStatus("open", path);
    if (::fsync(fd.get()) != 0) return ErrnoStatus("fsync", path);
    return absl::OkStatus();
  }
};

}  // namespace

Env* Env::Default() {
  static Env* const env = new PosixEnv;
  return env;
}

absl::Status WriteStringToFile(Env& env, const std::string& path, absl::string_view data) {
  BERTH_ASSIGN_OR_RETURN(std::unique_ptr<File> file, env.OpenFile(path, OpenMode::kCreateTruncate));
  return file->WriteAt(0, data);
}

absl::StatusOr<std::string> ReadFileToString(Env& env, const std::string& path) {
  BERTH_ASSIGN_OR_RETURN(std::unique_ptr<File> file, env.OpenFile(path, OpenMode::kReadOnly));
  BERTH_ASSIGN_OR_RETURN(FileInfo info, file->Stat());
  // Read one byte past the size stat gave, so a file that grew meanwhile is
  // still read whole.
  std::string contents;
  int64_t offset = 0;
  size_t chunk = static_cast<size_t>(info.size) + 1;
  for (;;) {
    contents.resize(offset + chunk);
    BERTH_ASSIGN_OR_RETURN(size_t n, file->ReadAt(offset, chunk, contents.data() + offset));
    offset += n;
    if (n < chunk) break;
    chunk = 4096;
  }
  contents.resize(offset);
  return contents;
}

absl::Status CreateDirs(Env& env, const std::string& path) {
  absl::StatusOr<FileInfo> info = env.Stat(path);
  if (info.ok()) {
    if (info->is_directory) return absl::OkStatus();
    return ErrnoStatus(ENOTDIR, "mkdir", path);
  }
  if (!absl::IsNotFound(info.status())) return info.status();
  size_t slash = path.find_last_of('/');
  if (slash != std::string::npos && slash > 0) {
    BERTH_RETURN_IF_ERROR(CreateDirs(env, path.substr(0, slash)));
  }
  absl::Status status = env.CreateDir(path);
  // Someone else may have created it between the stat and the mkdir.
  if (absl::IsAlreadyExists(status)) return absl::OkStatus();
  return status;
}

}  // namespace berth::store
