#include "store/fault_injection_env.h"

#include <algorithm>
#include <cerrno>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "base/status.h"

namespace berth::store {
namespace {

bool IsUnder(absl::string_view path, absl::string_view dir) {
  return path == dir ||
         (absl::StartsWith(path, dir) && path.size() > dir.size() && path[dir.size()] == '/');
}

// `path` with its prefix `from` (a path or a directory above it) replaced by `to`.
std::string Remap(const std::string& path, const std::string& from, const std::string& to) {
  return absl::StrCat(to, absl::string_view(path).substr(from.size()));
}

std::string Dirname(const std::string& path) {
  size_t slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  return slash == 0 ? "/" : path.substr(0, slash);
}

}  // namespace

class FaultInjectionEnv::FaultFile : public File {
 public:
  FaultFile(FaultInjectionEnv* env, std::unique_ptr<File> base, std::string path,
            std::shared_ptr<TrackedFile> tracked)
      : env_(env), base_(std::move(base)), path_(std::move(path)), tracked_(std::move(tracked)) {}

  absl::StatusOr<size_t> ReadAt(int64_t offset, size_t n, char* buf) override {
    BERTH_RETURN_IF_ERROR(env_->Gate("pread", path_));
    return base_->ReadAt(offset, n, buf);
  }

  absl::Status WriteAt(int64_t offset, absl::string_view data, size_t* written) override {
    if (written != nullptr) *written = 0;
    BERTH_RETURN_IF_ERROR(env_->Gate("pwrite", path_));
    size_t allowed = env_->Reserve(data.size());
    BERTH_RETURN_IF_ERROR(base_->WriteAt(offset, data.substr(0, allowed), written));
    if (allowed < data.size()) return ErrnoStatus(ENOSPC, "pwrite", path_);
    return absl::OkStatus();
  }

  absl::Status Sync() override {
    BERTH_RETURN_IF_ERROR(env_->Gate("fdatasync", path_));
    BERTH_RETURN_IF_ERROR(base_->Sync());
    if (tracked_ != nullptr) {
      BERTH_ASSIGN_OR_RETURN(FileInfo info, base_->Stat());
      env_->MarkSynced(*tracked_, info.size);
    }
    return absl::OkStatus();
  }

  absl::Status Truncate(int64_t size) override {
    BERTH_RETURN_IF_ERROR(env_->Gate("ftruncate", path_));
    return base_->Truncate(size);
  }

  absl::StatusOr<FileInfo> Stat() override {
    BERTH_RETURN_IF_ERROR(env_->Gate("fstat", path_));
    return base_->Stat();
  }

  absl::Status MakeReadOnly() override {
    BERTH_RETURN_IF_ERROR(env_->Gate("fchmod", path_));
    return base_->MakeReadOnly();
  }

 private:
  FaultInjectionEnv* env_;
  std::unique_ptr<File> base_;
  std::string path_;                      // as opened, for messages
  std::shared_ptr<TrackedFile> tracked_;  // null when read-only
};

void FaultInjectionEnv::SetFreeSpace(int64_t bytes) {
  absl::MutexLock lock(&mu_);
  free_space_ = bytes;
}

void FaultInjectionEnv::SetUnlimitedSpace() {
  absl::MutexLock lock(&mu_);
  free_space_.reset();
}

void FaultInjectionEnv::FailAfter(int64_t n) {
  absl::MutexLock lock(&mu_);
  fail_after_ = operations_ + n;
}

void FaultInjectionEnv::StopFailing() {
  absl::MutexLock lock(&mu_);
  fail_after_.reset();
}

int64_t FaultInjectionEnv::operations() const {
  absl::MutexLock lock(&mu_);
  return operations_;
}

absl::Status FaultInjectionEnv::Gate(absl::string_view op, absl::string_view path) {
  absl::MutexLock lock(&mu_);
  ++operations_;
  if (fail_after_.has_value() && operations_ > *fail_after_) return ErrnoStatus(EIO, op, path);
  return absl::OkStatus();
}

size_t FaultInjectionEnv::Reserve(size_t n) {
  absl::MutexLock lock(&mu_);
  if (!free_space_.has_value()) return n;
  size_t allowed = std::min<int64_t>(n, *free_space_);
  *free_space_ -= allowed;
  return allowed;
}

void FaultInjectionEnv::MarkSynced(TrackedFile& file, int64_t size) {
  absl::MutexLock lock(&mu_);
  file.synced_size = size;
}

std::shared_ptr<FaultInjectionEnv::TrackedFile> FaultInjectionEnv::Track(const std::string& path,
                                                                         int64_t synced_size) {
  for (const std::shared_ptr<TrackedFile>& file : files_) {
    if (file->path == path) return file;
  }
  files_.push_back(std::make_shared<TrackedFile>(TrackedFile{path, synced_size}));
  return files_.back();
}

absl::StatusOr<std::unique_ptr<File>> FaultInjectionEnv::OpenFile(const std::string& path,
                                                                  OpenMode mode) {
  BERTH_RETURN_IF_ERROR(Gate("open", path));
  BERTH_ASSIGN_OR_RETURN(std::unique_ptr<File> file, base_->OpenFile(path, mode));
  std::shared_ptr<TrackedFile> tracked;
  if (mode != OpenMode::kReadOnly) {
    // A file this env has not seen being written counts as synced whole.
    int64_t synced_size = 0;
    if (mode == OpenMode::kReadWrite) {
      BERTH_ASSIGN_OR_RETURN(FileInfo info, file->Stat());
      synced_size = info.size;
    }
    absl::MutexLock lock(&mu_);
    tracked = Track(path, synced_size);
    if (mode != OpenMode::kReadWrite) tracked->synced_size = 0;
  }
  return std::make_unique<FaultFile>(this, std::move(file), path, std::move(tracked));
}

absl::StatusOr<FileInfo> FaultInjectionEnv::Stat(const std::string& path) {
  BERTH_RETURN_IF_ERROR(Gate("stat", path));
  return base_->Stat(path);
}

absl::StatusOr<std::vector<std::string>> FaultInjectionEnv::ListDir(const std::string& path) {
  BERTH_RETURN_IF_ERROR(Gate("open", path));
  return base_->ListDir(path);
}

absl::Status FaultInjectionEnv::CreateDir(const std::string& path) {
  BERTH_RETURN_IF_ERROR(Gate("mkdir", path));
  return base_->CreateDir(path);
}

absl::Status FaultInjectionEnv::RemoveFile(const std::string& path) {
  BERTH_RETURN_IF_ERROR(Gate("unlink", path));
  BERTH_RETURN_IF_ERROR(base_->RemoveFile(path));
  absl::MutexLock lock(&mu_);
  std::erase_if(files_, [&](const auto& file) { return file->path == path; });
  std::erase_if(pending_, [&](const PendingRename& r) { return r.path == path; });
  return absl::OkStatus();
}

absl::Status FaultInjectionEnv::RemoveDir(const std::string& path) {
  BERTH_RETURN_IF_ERROR(Gate("rmdir", path));
  BERTH_RETURN_IF_ERROR(base_->RemoveDir(path));
  absl::MutexLock lock(&mu_);
  std::erase_if(pending_, [&](const PendingRename& r) { return r.path == path; });
  return absl::OkStatus();
}

absl::Status FaultInjectionEnv::RenameNoReplace(const std::string& from, const std::string& to) {
  BERTH_RETURN_IF_ERROR(Gate("renameat2", from));
  BERTH_RETURN_IF_ERROR(base_->RenameNoReplace(from, to));
  absl::MutexLock lock(&mu_);
  for (const std::shared_ptr<TrackedFile>& file : files_) {
    if (IsUnder(file->path, from)) file->path = Remap(file->path, from, to);
  }
  // The entry's old name no longer matters; only its new directory does.
  std::erase_if(pending_, [&](const PendingRename& r) { return r.path == from; });
  for (PendingRename& r : pending_) {
    if (IsUnder(r.path, from)) {
      r.path = Remap(r.path, from, to);
      r.parent = Remap(r.parent, from, to);
    }
  }
  pending_.push_back(PendingRename{to, Dirname(to)});
  return absl::OkStatus();
}

absl::Status FaultInjectionEnv::SyncDir(const std::string& path) {
  BERTH_RETURN_IF_ERROR(Gate("fsync", path));
  BERTH_RETURN_IF_ERROR(base_->SyncDir(path));
  absl::MutexLock lock(&mu_);
  std::erase_if(pending_, [&](const PendingRename& r) { return r.parent == path; });
  return absl::OkStatus();
}

absl::Status FaultInjectionEnv::RemoveTree(const std::string& path) {
  absl::StatusOr<FileInfo> info = base_->Stat(path);
  if (absl::IsNotFound(info.status())) return absl::OkStatus();
  if (!info.ok()) return info.status();
  if (!info->is_directory) return base_->RemoveFile(path);
  BERTH_ASSIGN_OR_RETURN(std::vector<std::string> names, base_->ListDir(path));
  for (const std::string& name : names) {
    BERTH_RETURN_IF_ERROR(RemoveTree(absl::StrCat(path, "/", name)));
  }
  return base_->RemoveDir(path);
}

absl::Status FaultInjectionEnv::Crash() {
  std::vector<std::shared_ptr<TrackedFile>> files;
  std::vector<PendingRename> pending;
  {
    absl::MutexLock lock(&mu_);
    files = std::exchange(files_, {});
    pending = std::exchange(pending_, {});
    fail_after_.reset();
  }
  for (const std::shared_ptr<TrackedFile>& file : files) {
    absl::StatusOr<FileInfo> info = base_->Stat(file->path);
    if (absl::IsNotFound(info.status())) continue;
    if (!info.ok()) return info.status();
    if (info->size <= file->synced_size) continue;
    BERTH_ASSIGN_OR_RETURN(std::unique_ptr<File> f,
                           base_->OpenFile(file->path, OpenMode::kReadWrite));
    BERTH_RETURN_IF_ERROR(f->Truncate(file->synced_size));
  }
  for (auto it = pending.rbegin(); it != pending.rend(); ++it) {
    BERTH_RETURN_IF_ERROR(RemoveTree(it->path));
  }
  return absl::OkStatus();
}

}  // namespace berth::store
