// The content store on a local filesystem (content_store.h has the model).
//
// Locking: the only shared state is the set of refs held by writers (and by
// Abort while it removes an ingest), guarded by mu_ and never held across
// I/O. Everything else is the filesystem's: blobs are published with a
// no-replace rename, so two ingests of the same bytes race harmlessly — one
// commits, the other gets AlreadyExists.
//
// A new ingest is assembled in `ingest/.tmp-<hash>` and renamed into place,
// so an ingest directory is either complete or absent; a killed OpenWriter
// leaves only a `.tmp-` directory, which Open and the next OpenWriter on the
// same ref remove.

#include <algorithm>
#include <cstdlib>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "base/log.h"
#include "base/sha256.h"
#include "base/status.h"
#include "base/strings.h"
#include "store/content_store.h"

namespace berth::store {
namespace {

constexpr absl::string_view kTmpPrefix = ".tmp-";
// Large enough that re-hashing a resumed ingest runs at disk speed.
constexpr size_t kHashChunk = 1 << 20;

std::string TimestampText(absl::Time t) {
  return absl::FormatTime(absl::RFC3339_full, t, absl::UTCTimeZone());
}

// Timestamps are informational: an empty or damaged file reads as `fallback`.
absl::Time ParseTimeOr(absl::string_view text, absl::Time fallback) {
  absl::Time t;
  std::string err;
  if (!absl::ParseTime(absl::RFC3339_full, text, &t, &err)) return fallback;
  return t;
}

// Reads `file` from the start, up to `limit` bytes (or to its end when
// limit < 0), into `hash`; returns how many bytes it read.
absl::StatusOr<int64_t> HashFile(File& file, int64_t limit, Sha256& hash) {
  std::string buf(kHashChunk, '\0');
  int64_t offset = 0;
  while (limit < 0 || offset < limit) {
    size_t want = kHashChunk;
    if (limit >= 0) want = std::min<int64_t>(want, limit - offset);
    BERTH_ASSIGN_OR_RETURN(size_t n, file.ReadAt(offset, want, buf.data()));
    hash.Update(absl::string_view(buf.data(), n));
    offset += n;
    if (n < want) break;
  }
  return offset;
}

absl::Status ContentNotFound(absl::string_view digest) {
  return absl::NotFoundError(absl::StrCat("content ", digest, ": not found"));
}

absl::Status ContentExists(absl::string_view digest) {
  return absl::AlreadyExistsError(absl::StrCat("content ", digest, ": already exists"));
}

// Turns a NotFound from the filesystem into one that names the blob.
absl::Status NameMissingBlob(absl::Status status, absl::string_view digest) {
  return absl::IsNotFound(status) ? ContentNotFound(digest) : status;
}

class LocalContentStore;

// Ownership of one ref: while it lives, no other writer or Abort can take it.
class RefLock {
 public:
  RefLock(LocalContentStore* store, std::string ref) : store_(store), ref_(std::move(ref)) {}
  RefLock(RefLock&& other) noexcept
      : store_(std::exchange(other.store_, nullptr)), ref_(std::move(other.ref_)) {}
  RefLock& operator=(RefLock&&) = delete;
  ~RefLock() { Release(); }

  void Release();

 private:
  LocalContentStore* store_;
  std::string ref_;
};

class LocalBlobReader : public BlobReader {
 public:
  LocalBlobReader(std::string digest, std::unique_ptr<File> file, int64_t size)
      : digest_(std::move(digest)), file_(std::move(file)), size_(size) {}

  int64_t Size() const override { return size_; }

  absl::Status ReadAt(int64_t offset, size_t max_bytes, std::string* out) override {
    if (offset < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("read ", digest_, ": negative offset ", offset));
    }
    if (offset > size_) {
      return absl::OutOfRangeError(absl::StrCat("read ", digest_, ": offset ", offset,
                                                " is past the end (", size_, " bytes)"));
    }
    size_t want = std::min<int64_t>(max_bytes, size_ - offset);
    out->resize(want);
    BERTH_ASSIGN_OR_RETURN(size_t n, file_->ReadAt(offset, want, out->data()));
    out->resize(n);
    return absl::OkStatus();
  }

 private:
  std::string digest_;
  std::unique_ptr<File> file_;
  int64_t size_;
};

class LocalWriter : public Writer {
 public:
  LocalWriter(LocalContentStore* store, RefLock lock, std::string dir, std::unique_ptr<File> data,
              IngestStatus status, Sha256 hash)
      : store_(store),
        lock_(std::move(lock)),
        dir_(std::move(dir)),
        data_(std::move(data)),
        status_(std::move(status)),
        hash_(std::move(hash)) {}

  IngestStatus Status() const override { return status_; }
  std::string Digest() const override { return hash_.Digest(); }

  absl::Status Write(absl::string_view data) override;
  absl::Status Truncate(int64_t size) override;
  absl::StatusOr<std::string> Commit(int64_t size, absl::string_view expected) override;

 private:
  absl::Status CheckOpen() const;
  absl::Status CheckContent(int64_t size, absl::string_view expected,
                            absl::string_view digest) const;
  // Ends the writer: the ingest is gone, the ref is free.
  void Spend();

  LocalContentStore* store_;
  RefLock lock_;
  std::string dir_;
  std::unique_ptr<File> data_;  // null once spent
  IngestStatus status_;
  Sha256 hash_;
};

class LocalContentStore : public ContentStore {
 public:
  LocalContentStore(Env* env, std::string root)
      : env_(env),
        blobs_dir_(absl::StrCat(root, "/blobs/sha256")),
        ingest_dir_(absl::StrCat(root, "/ingest")) {}

  absl::Status Init(const std::string& root);

  absl::StatusOr<BlobInfo> Info(absl::string_view digest) override;
  absl::StatusOr<std::unique_ptr<BlobReader>> OpenReader(absl::string_view digest) override;
  absl::Status Delete(absl::string_view digest) override;
  absl::Status Walk(const std::function<absl::Status(const BlobInfo&)>& fn) override;
  absl::StatusOr<std::unique_ptr<Writer>> OpenWriter(absl::string_view ref, int64_t total,
                                                     absl::string_view expected) override;
  absl::StatusOr<IngestStatus> Status(absl::string_view ref) override;
  absl::StatusOr<std::vector<IngestStatus>> ListStatuses() override;
  absl::Status Abort(absl::string_view ref) override;

  Env& env() { return *env_; }
  const std::string& blobs_dir() const { return blobs_dir_; }

  std::string BlobPath(absl::string_view digest) const {
    return absl::StrCat(blobs_dir_, "/", digest.substr(digest::kSha256Prefix.size()));
  }

  // Removes an ingest directory (flat: files only). OK if it is gone already.
  absl::Status RemoveIngestDir(const std::string& dir);

  void Unlock(const std::string& ref) {
    absl::MutexLock lock(&mu_);
    locked_refs_.erase(ref);
  }

 private:
  absl::StatusOr<RefLock> Lock(absl::string_view ref);

  std::string IngestPath(absl::string_view ref) const {
    Sha256 hash;
    hash.Update(ref);
    return absl::StrCat(ingest_dir_, "/", hash.Hex());
  }

  absl::StatusOr<std::unique_ptr<Writer>> CreateIngest(RefLock lock, absl::string_view ref,
                                                       const std::string& dir, int64_t total,
                                                       absl::string_view expected);
  absl::StatusOr<std::unique_ptr<Writer>> ResumeIngest(RefLock lock, absl::string_view ref,
                                                       const std::string& dir, int64_t total,
                                                       absl::string_view expected);
  absl::Status WriteIngestFiles(const std::string& dir, absl::string_view ref, int64_t total,
                                absl::string_view expected, absl::Time now);
  // Reads an ingest's status from disk. NotFound if it is gone or lacks its
  // data or ref; `want_ref`, when not null, must match the recorded ref.
  absl::StatusOr<IngestStatus> ReadIngest(const std::string& dir, const std::string* want_ref);

  Env* const env_;
  const std::string blobs_dir_;
  const std::string ingest_dir_;

  absl::Mutex mu_;
  absl::flat_hash_set<std::string> locked_refs_ ABSL_GUARDED_BY(mu_);
};

void RefLock::Release() {
  if (store_ != nullptr) std::exchange(store_, nullptr)->Unlock(ref_);
}

// --- LocalContentStore ------------------------------------------------------

absl::Status LocalContentStore::Init(const std::string& root) {
  BERTH_RETURN_IF_ERROR(CreateDirs(*env_, blobs_dir_));
  BERTH_RETURN_IF_ERROR(CreateDirs(*env_, ingest_dir_));
  // The directories must outlast a crash for the blobs in them to.
  for (const std::string& dir : {root, absl::StrCat(root, "/blobs")}) {
    BERTH_RETURN_IF_ERROR(env_->SyncDir(dir));
  }
  BERTH_ASSIGN_OR_RETURN(std::vector<std::string> names, env_->ListDir(ingest_dir_));
  for (const std::string& name : names) {
    if (absl::StartsWith(name, kTmpPrefix)) {
      BERTH_RETURN_IF_ERROR(RemoveIngestDir(absl::StrCat(ingest_dir_, "/", name)));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<RefLock> LocalContentStore::Lock(absl::string_view ref) {
  absl::MutexLock lock(&mu_);
  if (!locked_refs_.insert(std::string(ref)).second) {
    return absl::UnavailableError(absl::StrCat("ref ", Quote(ref), " locked"));
  }
  return RefLock(this, std::string(ref));
}

absl::Status LocalContentStore::RemoveIngestDir(const std::string& dir) {
  absl::StatusOr<std::vector<std::string>> names = env_->ListDir(dir);
  if (absl::IsNotFound(names.status())) return absl::OkStatus();
  if (!names.ok()) return names.status();
  for (const std::string& name : *names) {
    absl::Status status = env_->RemoveFile(absl::StrCat(dir, "/", name));
    if (!status.ok() && !absl::IsNotFound(status)) return status;
  }
  absl::Status status = env_->RemoveDir(dir);
  if (!status.ok() && !absl::IsNotFound(status)) return status;
  return absl::OkStatus();
}

absl::StatusOr<BlobInfo> LocalContentStore::Info(absl::string_view digest) {
  BERTH_RETURN_IF_ERROR(digest::Validate(digest));
  absl::StatusOr<FileInfo> info = env_->Stat(BlobPath(digest));
  if (!info.ok()) return NameMissingBlob(info.status(), digest);
  return BlobInfo{std::string(digest), info->size, info->modified, info->modified};
}

absl::StatusOr<std::unique_ptr<BlobReader>> LocalContentStore::OpenReader(
    absl::string_view digest) {
  BERTH_RETURN_IF_ERROR(digest::Validate(digest));
  absl::StatusOr<std::unique_ptr<File>> file =
      env_->OpenFile(BlobPath(digest), OpenMode::kReadOnly);
  if (!file.ok()) return NameMissingBlob(file.status(), digest);
  BERTH_ASSIGN_OR_RETURN(FileInfo info, (*file)->Stat());
  return std::make_unique<LocalBlobReader>(std::string(digest), *std::move(file), info.size);
}

absl::Status LocalContentStore::Delete(absl::string_view digest) {
  BERTH_RETURN_IF_ERROR(digest::Validate(digest));
  return NameMissingBlob(env_->RemoveFile(BlobPath(digest)), digest);
}

absl::Status LocalContentStore::Walk(const std::function<absl::Status(const BlobInfo&)>& fn) {
  BERTH_ASSIGN_OR_RETURN(std::vector<std::string> names, env_->ListDir(blobs_dir_));
  for (const std::string& name : names) {
    if (!digest::IsSha256Hex(name)) continue;
    absl::StatusOr<FileInfo> info = env_->Stat(absl::StrCat(blobs_dir_, "/", name));
    if (absl::IsNotFound(info.status())) continue;  // deleted while we walked
    if (!info.ok()) return info.status();
    BERTH_RETURN_IF_ERROR(fn(
        BlobInfo{absl::StrCat(digest::kSha256Prefix, name), info->size, info->modified, info->modified}));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<Writer>> LocalContentStore::OpenWriter(absl::string_view ref,
                                                                      int64_t total,
                                                                      absl::string_view expected) {
  if (ref.empty()) return absl::InvalidArgumentError("ref must not be empty");
  if (total < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("ingest ", Quote(ref), ": negative total ", total));
  }
  if (!expected.empty()) BERTH_RETURN_IF_ERROR(digest::Validate(expected));
  BERTH_ASSIGN_OR_RETURN(RefLock lock, Lock(ref));

  // containerd checks on open too: a client that names what it is about to
  // write learns before sending a byte that the store has it.
  if (!expected.empty()) {
    absl::StatusOr<FileInfo> blob = env_->Stat(BlobPath(expected));
    if (blob.ok()) return ContentExists(expected);
    if (!absl::IsNotFound(blob.status())) return blob.status();
  }

  std::string dir = IngestPath(ref);
  absl::StatusOr<FileInfo> existing = env_->Stat(dir);
  if (existing.ok()) return ResumeIngest(std::move(lock), ref, dir, total, expected);
  if (!absl::IsNotFound(existing.status())) return existing.status();
  return CreateIngest(std::move(lock), ref, dir, total, expected);
}

absl::Status LocalContentStore::WriteIngestFiles(const std::string& dir, absl::string_view ref,
                                                 int64_t total, absl::string_view expected,
                                                 absl::Time now) {
  BERTH_RETURN_IF_ERROR(WriteStringToFile(*env_, absl::StrCat(dir, "/ref"), ref));
  BERTH_RETURN_IF_ERROR(WriteStringToFile(*env_, absl::StrCat(dir, "/total"), absl::StrCat(total)));
  BERTH_RETURN_IF_ERROR(WriteStringToFile(*env_, absl::StrCat(dir, "/expected"), expected));
  BERTH_RETURN_IF_ERROR(
      WriteStringToFile(*env_, absl::StrCat(dir, "/startedat"), TimestampText(now)));
  return WriteStringToFile(*env_, absl::StrCat(dir, "/updatedat"), TimestampText(now));
}

absl::StatusOr<std::unique_ptr<Writer>> LocalContentStore::CreateIngest(
    RefLock lock, absl::string_view ref, const std::string& dir, int64_t total,
    absl::string_view expected) {
  // Named after the ingest, so holding the ref lock makes it ours alone.
  std::string tmp = absl::StrCat(ingest_dir_, "/", kTmpPrefix, dir.substr(ingest_dir_.size() + 1));
  BERTH_RETURN_IF_ERROR(RemoveIngestDir(tmp));
  absl::Time now = absl::Now();
  auto build = [&]() -> absl::StatusOr<std::unique_ptr<File>> {
    BERTH_RETURN_IF_ERROR(env_->CreateDir(tmp));
    BERTH_RETURN_IF_ERROR(WriteIngestFiles(tmp, ref, total, expected, now));
    BERTH_ASSIGN_OR_RETURN(std::unique_ptr<File> data,
                           env_->OpenFile(absl::StrCat(tmp, "/data"), OpenMode::kCreateNew));
    BERTH_RETURN_IF_ERROR(env_->RenameNoReplace(tmp, dir));
    return data;  // the fd follows the rename
  };
  absl::StatusOr<std::unique_ptr<File>> data = build();
  if (!data.ok()) {
    if (absl::Status cleanup = RemoveIngestDir(tmp); !cleanup.ok()) {
      log::Warn("cannot remove a half-created ingest",
                {{"path", tmp}, {"error", cleanup.ToString()}});
    }
    return data.status();
  }
  IngestStatus status{std::string(ref), 0, total, std::string(expected), now, now};
  return std::make_unique<LocalWriter>(this, std::move(lock), dir, *std::move(data),
                                       std::move(status), Sha256());
}

absl::StatusOr<std::unique_ptr<Writer>> LocalContentStore::ResumeIngest(
    RefLock lock, absl::string_view ref, const std::string& dir, int64_t total,
    absl::string_view expected) {
  std::string want_ref(ref);
  absl::StatusOr<IngestStatus> status = ReadIngest(dir, &want_ref);
  absl::StatusOr<std::unique_ptr<File>> data =
      status.ok() ? env_->OpenFile(absl::StrCat(dir, "/data"), OpenMode::kReadWrite)
                  : status.status();
  if (absl::IsNotFound(data.status())) {
    // Power loss can leave an ingest without its data or ref; what remains
    // cannot be resumed, so start over, as containerd does.
    log::Warn("recreating a damaged ingest",
              {{"ref", absl::CEscape(ref)}, {"error", data.status().ToString()}});
    BERTH_RETURN_IF_ERROR(RemoveIngestDir(dir));
    return CreateIngest(std::move(lock), ref, dir, total, expected);
  }
  if (!data.ok()) return data.status();

  if (total > 0 && status->total > 0 && total != status->total) {
    return absl::FailedPreconditionError(absl::StrCat(
        "ingest ", Quote(ref), " was started with total ", status->total, ", not ", total));
  }
  if (!expected.empty() && !status->expected.empty() && expected != status->expected) {
    return absl::FailedPreconditionError(absl::StrCat(
        "ingest ", Quote(ref), " was started expecting ", status->expected, ", not ", expected));
  }
  if (total > 0 && status->total == 0) {
    BERTH_RETURN_IF_ERROR(
        WriteStringToFile(*env_, absl::StrCat(dir, "/total"), absl::StrCat(total)));
    status->total = total;
  }
  if (!expected.empty() && status->expected.empty()) {
    BERTH_RETURN_IF_ERROR(WriteStringToFile(*env_, absl::StrCat(dir, "/expected"), expected));
    status->expected = std::string(expected);
  }

  // The digest state died with the last writer: rebuild it from the bytes.
  // The offset is what was read, not the size stat saw earlier.
  Sha256 hash;
  BERTH_ASSIGN_OR_RETURN(status->offset, HashFile(**data, -1, hash));
  return std::make_unique<LocalWriter>(this, std::move(lock), dir, *std::move(data),
                                       *std::move(status), std::move(hash));
}

absl::StatusOr<IngestStatus> LocalContentStore::ReadIngest(const std::string& dir,
                                                           const std::string* want_ref) {
  BERTH_ASSIGN_OR_RETURN(FileInfo data, env_->Stat(absl::StrCat(dir, "/data")));
  BERTH_ASSIGN_OR_RETURN(std::string ref, ReadFileToString(*env_, absl::StrCat(dir, "/ref")));
  if (ref.empty() || (want_ref != nullptr && ref != *want_ref)) {
    return absl::NotFoundError(absl::StrCat("ingest ", dir, ": ref file does not name its ref"));
  }
  // The rest is informational: damaged files read as "unknown".
  auto read_or_empty = [&](absl::string_view name) {
    absl::StatusOr<std::string> text = ReadFileToString(*env_, absl::StrCat(dir, "/", name));
    return text.ok() ? *std::move(text) : std::string();
  };
  IngestStatus status;
  status.ref = std::move(ref);
  status.offset = data.size;
  if (!absl::SimpleAtoi(read_or_empty("total"), &status.total) || status.total < 0) {
    status.total = 0;
  }
  status.expected = read_or_empty("expected");
  if (!status.expected.empty() && !digest::Validate(status.expected).ok()) status.expected.clear();
  status.started_at = ParseTimeOr(read_or_empty("startedat"), data.modified);
  // updatedat is written once; the data's mtime follows every write.
  status.updated_at =
      std::max(ParseTimeOr(read_or_empty("updatedat"), data.modified), data.modified);
  return status;
}

absl::StatusOr<IngestStatus> LocalContentStore::Status(absl::string_view ref) {
  if (ref.empty()) return absl::InvalidArgumentError("ref must not be empty");
  std::string want_ref(ref);
  absl::StatusOr<IngestStatus> status = ReadIngest(IngestPath(ref), &want_ref);
  if (absl::IsNotFound(status.status())) {
    return absl::NotFoundError(absl::StrCat("ingest ", Quote(ref), ": not found"));
  }
  return status;
}

absl::StatusOr<std::vector<IngestStatus>> LocalContentStore::ListStatuses() {
  BERTH_ASSIGN_OR_RETURN(std::vector<std::string> names, env_->ListDir(ingest_dir_));
  std::vector<IngestStatus> statuses;
  for (const std::string& name : names) {
    if (absl::StartsWith(name, kTmpPrefix)) continue;
    absl::StatusOr<IngestStatus> status = ReadIngest(absl::StrCat(ingest_dir_, "/", name), nullptr);
    // Committed or aborted while we listed, or damaged beyond naming.
    if (absl::IsNotFound(status.status())) continue;
    if (!status.ok()) return status.status();
    statuses.push_back(*std::move(status));
  }
  return statuses;
}

absl::Status LocalContentStore::Abort(absl::string_view ref) {
  if (ref.empty()) return absl::InvalidArgumentError("ref must not be empty");
  BERTH_ASSIGN_OR_RETURN(RefLock lock, Lock(ref));
  std::string dir = IngestPath(ref);
  absl::StatusOr<FileInfo> info = env_->Stat(dir);
  if (absl::IsNotFound(info.status())) {
    return absl::NotFoundError(absl::StrCat("ingest ", Quote(ref), ": not found"));
  }
  if (!info.ok()) return info.status();
  return RemoveIngestDir(dir);
}

// --- LocalWriter ------------------------------------------------------------

absl::Status LocalWriter::CheckOpen() const {
  if (data_ == nullptr) {
    return absl::FailedPreconditionError(
        absl::StrCat("ingest ", Quote(status_.ref), ": writer already committed"));
  }
  return absl::OkStatus();
}

absl::Status LocalWriter::Write(absl::string_view data) {
  BERTH_RETURN_IF_ERROR(CheckOpen());
  size_t written = 0;
  absl::Status status = data_->WriteAt(status_.offset, data, &written);
  hash_.Update(data.substr(0, written));
  status_.offset += written;
  status_.updated_at = absl::Now();
  return status;
}

absl::Status LocalWriter::Truncate(int64_t size) {
  BERTH_RETURN_IF_ERROR(CheckOpen());
  if (size < 0 || size > status_.offset) {
    return absl::InvalidArgumentError(absl::StrCat("truncate ingest ", Quote(status_.ref), " to ",
                                                   size, ": outside [0, ", status_.offset, "]"));
  }
  // Hash the kept prefix before cutting, so a failure leaves the writer as it was.
  Sha256 hash;
  if (size > 0) BERTH_RETURN_IF_ERROR(HashFile(*data_, size, hash).status());
  BERTH_RETURN_IF_ERROR(data_->Truncate(size));
  hash_ = std::move(hash);
  status_.offset = size;
  status_.updated_at = absl::Now();
  return absl::OkStatus();
}

absl::Status LocalWriter::CheckContent(int64_t size, absl::string_view expected,
                                       absl::string_view digest) const {
  for (int64_t want : {size, status_.total}) {
    if (want > 0 && want != status_.offset) {
      return absl::FailedPreconditionError(absl::StrCat("commit ", Quote(status_.ref),
                                                        ": unexpected size ", status_.offset,
                                                        ", expected ", want));
    }
  }
  for (absl::string_view want : {expected, absl::string_view(status_.expected)}) {
    if (!want.empty() && want != digest) {
      return absl::FailedPreconditionError(absl::StrCat(
          "commit ", Quote(status_.ref), ": unexpected digest ", digest, ", expected ", want));
    }
  }
  return absl::OkStatus();
}

void LocalWriter::Spend() {
  data_.reset();
  if (absl::Status status = store_->RemoveIngestDir(dir_); !status.ok()) {
    log::Warn("cannot remove ingest",
              {{"ref", absl::CEscape(status_.ref)}, {"error", status.ToString()}});
  }
  lock_.Release();
}

absl::StatusOr<std::string> LocalWriter::Commit(int64_t size, absl::string_view expected) {
  BERTH_RETURN_IF_ERROR(CheckOpen());
  if (size < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("commit ", Quote(status_.ref), ": negative size ", size));
  }
  if (!expected.empty()) BERTH_RETURN_IF_ERROR(digest::Validate(expected));
  std::string digest = hash_.Digest();
  BERTH_RETURN_IF_ERROR(CheckContent(size, expected, digest));

  Env& env = store_->env();
  std::string target = store_->BlobPath(digest);
  // Checked first to spare an fsync; the no-replace rename below settles races.
  if (env.Stat(target).ok()) {
    Spend();
    return ContentExists(digest);
  }
  BERTH_RETURN_IF_ERROR(data_->Sync());
  absl::Status renamed = env.RenameNoReplace(absl::StrCat(dir_, "/data"), target);
  if (absl::IsAlreadyExists(renamed)) {
    Spend();
    return ContentExists(digest);
  }
  BERTH_RETURN_IF_ERROR(renamed);
  // The blob is published; what follows cannot be rolled back, so only the
  // directory sync (durability) is worth an error.
  if (absl::Status status = data_->MakeReadOnly(); !status.ok()) {
    log::Warn("cannot make blob read-only", {{"digest", digest}, {"error", status.ToString()}});
  }
  absl::Status synced = env.SyncDir(store_->blobs_dir());
  Spend();
  BERTH_RETURN_IF_ERROR(synced);
  return digest;
}

}  // namespace

absl::StatusOr<std::unique_ptr<ContentStore>> ContentStore::Open(const std::string& root,
                                                                 Env* env) {
  auto store = std::make_unique<LocalContentStore>(env, root);
  BERTH_RETURN_IF_ERROR(store->Init(root));
  return store;
}

}  // namespace berth::store
