#include "snapshotter/local.h"

#include <fcntl.h>
#include <stdlib.h>
#include <sys/file.h>
#include <sys/stat.h>

#include <cerrno>
#include <climits>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/strip.h"
#include "absl/strings/str_cat.h"
#include "base/log.h"
#include "base/files.h"
#include "base/status.h"
#include "base/strings.h"
#include "filters/filters.h"
#include "snapshotter/fs.h"

namespace berth::snapshotter {
namespace {

// containerd's labels.Validate: a label's key and value together.
constexpr size_t kMaxLabelSize = 4096;

constexpr absl::string_view kRemovingPrefix = "rm-";

absl::Status ValidateKey(absl::string_view what, absl::string_view key) {
  if (key.empty()) return absl::InvalidArgumentError(absl::StrCat(what, " must not be empty"));
  if (key.size() > kMaxStoredKeyLength) {
    return absl::InvalidArgumentError(absl::StrCat(what, " ", Quote(key), " is longer than ",
                                                   kMaxStoredKeyLength, " bytes"));
  }
  return absl::OkStatus();
}

// Checks sizes and drops empty values, which containerd's storage never
// keeps either.
absl::StatusOr<Labels> CleanLabels(Labels labels) {
  for (auto it = labels.begin(); it != labels.end();) {
    if (it->first.size() + it->second.size() > kMaxLabelSize) {
      return absl::InvalidArgumentError(
          absl::StrCat("label key and value greater than maximum size (", kMaxLabelSize,
                       " bytes), key: ", Quote(it->first)));
    }
    it = it->second.empty() ? labels.erase(it) : std::next(it);
  }
  return labels;
}

absl::Status NotFound(absl::string_view key) {
  return absl::NotFoundError(absl::StrCat("snapshot ", Quote(key), ": not found"));
}

absl::Status AlreadyExists(absl::string_view key) {
  return absl::AlreadyExistsError(absl::StrCat("snapshot ", Quote(key), ": already exists"));
}

Info ToInfo(const Row& row) {
  return Info{row.key, row.parent_key, row.kind, row.labels, row.created, row.updated};
}

absl::StatusOr<UniqueFd> Dup(const UniqueFd& fd) {
  UniqueFd dup(::fcntl(fd.get(), F_DUPFD_CLOEXEC, 0));
  if (!dup.valid()) return ErrnoStatus("dup", "snapshotter root");
  return dup;
}

}  // namespace

// ---- Layout ----

std::string Layout::SnapshotDir(int64_t id) const {
  return absl::StrCat(root_, "/", kSnapshots, "/", id);
}

std::string Layout::FsDir(int64_t id) const { return absl::StrCat(SnapshotDir(id), "/", kFs); }

std::string Layout::WorkDir(int64_t id) const {
  return absl::StrCat(SnapshotDir(id), "/", kWork);
}

// ---- Opening and closing ----

absl::StatusOr<std::unique_ptr<Snapshotter>> LocalSnapshotter::Open(
    const std::string& root, std::unique_ptr<Driver> driver) {
  if (!absl::StartsWith(root, "/")) {
    return absl::InvalidArgumentError(
        absl::StrCat("snapshotter root ", Quote(root), " is not an absolute path"));
  }
  BERTH_RETURN_IF_ERROR(files::MakeDirectories(root, 0700));
  // Mount data names the real path, with no symbolic links to re-resolve.
  char resolved[PATH_MAX];
  if (::realpath(root.c_str(), resolved) == nullptr) return ErrnoStatus("realpath", root);
  std::string real = resolved;
  BERTH_ASSIGN_OR_RETURN(UniqueFd root_fd, fs::OpenDirectory(AT_FDCWD, real, real));
  // One snapshotter per root: two would hand out the same ids.
  if (::flock(root_fd.get(), LOCK_EX | LOCK_NB) != 0) {
    if (errno == EWOULDBLOCK) {
      return absl::UnavailableError(
          absl::StrCat("snapshotter root ", Quote(real), " is in use by another snapshotter"));
    }
    return ErrnoStatus("flock", real);
  }
  if (::mkdirat(root_fd.get(), Layout::kSnapshots, 0700) != 0 && errno != EEXIST) {
    return ErrnoStatus("mkdir", absl::StrCat(real, "/", Layout::kSnapshots));
  }
  BERTH_ASSIGN_OR_RETURN(UniqueFd snapshots_fd,
                         fs::OpenDirectory(root_fd.get(), Layout::kSnapshots,
                                           absl::StrCat(real, "/", Layout::kSnapshots)));
  BERTH_RETURN_IF_ERROR(driver->Init(Layout(real), root_fd.get()));
  BERTH_ASSIGN_OR_RETURN(Storage storage, Storage::Open(absl::StrCat(real, "/metadata.db")));
  BERTH_ASSIGN_OR_RETURN(int64_t last_id, storage.LastId());
  std::unique_ptr<LocalSnapshotter> snapshotter(
      new LocalSnapshotter(real, std::move(root_fd), std::move(snapshots_fd), std::move(storage),
                           std::move(driver), last_id));
  BERTH_RETURN_IF_ERROR(snapshotter->Cleanup());
  return snapshotter;
}

LocalSnapshotter::LocalSnapshotter(std::string root, UniqueFd root_fd, UniqueFd snapshots_fd,
                                   Storage storage, std::unique_ptr<Driver> driver,
                                   int64_t last_id)
    : layout_(std::move(root)),
      driver_(std::move(driver)),
      root_fd_(std::move(root_fd)),
      snapshots_fd_(std::move(snapshots_fd)),
      storage_(std::move(storage)),
      last_id_(last_id) {}

LocalSnapshotter::~LocalSnapshotter() { Close().IgnoreError(); }

absl::Status LocalSnapshotter::Close() {
  std::thread discarder;
  {
    absl::MutexLock lock(&mu_);
    closing_ = true;
    discarder = std::move(discarder_);
  }
  // Outside the lock: the queued removals take it as they finish.
  if (discarder.joinable()) discarder.join();
  absl::MutexLock lock(&mu_);
  storage_.reset();
  snapshots_fd_.Reset();
  root_fd_.Reset();  // releases the flock
  return absl::OkStatus();
}

absl::Status LocalSnapshotter::CheckOpen() const {
  if (!storage_.has_value()) {
    return absl::FailedPreconditionError(
        absl::StrCat("snapshotter ", Quote(layout_.root()), " is closed"));
  }
  return absl::OkStatus();
}

absl::StatusOr<LocalSnapshotter::Dirs> LocalSnapshotter::DupDirs() const {
  Dirs dirs;
  BERTH_ASSIGN_OR_RETURN(dirs.root, Dup(root_fd_));
  BERTH_ASSIGN_OR_RETURN(dirs.snapshots, Dup(snapshots_fd_));
  return dirs;
}

absl::StatusOr<Row> LocalSnapshotter::FindRow(absl::string_view key) {
  BERTH_RETURN_IF_ERROR(CheckOpen());
  BERTH_ASSIGN_OR_RETURN(std::optional<Row> row, storage_->Find(key));
  if (!row.has_value()) return NotFound(key);
  return *std::move(row);
}

// ---- Reading ----

absl::StatusOr<Info> LocalSnapshotter::Stat(absl::string_view key) {
  BERTH_RETURN_IF_ERROR(ValidateKey("snapshot key", key));
  absl::MutexLock lock(&mu_);
  BERTH_ASSIGN_OR_RETURN(Row row, FindRow(key));
  return ToInfo(row);
}

absl::StatusOr<snapshotter::Usage> LocalSnapshotter::MeasureUsage(const Dirs& dirs, int64_t id) {
  std::string display = absl::StrCat(Layout::kSnapshots, "/", id);
  BERTH_ASSIGN_OR_RETURN(UniqueFd dir,
                         fs::OpenDirectory(dirs.snapshots.get(), absl::StrCat(id), display));
  absl::StrAppend(&display, "/", Layout::kFs);
  BERTH_ASSIGN_OR_RETURN(UniqueFd fs_dir, fs::OpenDirectory(dir.get(), Layout::kFs, display));
  return fs::DiskUsage(fs_dir.get(), display);
}

absl::StatusOr<snapshotter::Usage> LocalSnapshotter::Usage(absl::string_view key) {
  BERTH_RETURN_IF_ERROR(ValidateKey("snapshot key", key));
  Dirs dirs;
  int64_t id;
  {
    absl::MutexLock lock(&mu_);
    BERTH_ASSIGN_OR_RETURN(Row row, FindRow(key));
    if (row.kind == Kind::kCommitted) return row.usage;
    BERTH_ASSIGN_OR_RETURN(dirs, DupDirs());
    id = row.id;
  }
  return MeasureUsage(dirs, id);
}

absl::StatusOr<std::vector<Mount>> LocalSnapshotter::Mounts(absl::string_view key) {
  BERTH_RETURN_IF_ERROR(ValidateKey("snapshot key", key));
  absl::MutexLock lock(&mu_);
  BERTH_ASSIGN_OR_RETURN(Row row, FindRow(key));
  if (row.kind == Kind::kCommitted) {
    return absl::FailedPreconditionError(absl::StrCat(
        "snapshot ", Quote(key), " is committed: only active snapshots and views are mounted"));
  }
  std::vector<int64_t> chain;
  if (row.parent_id != 0) {
    BERTH_ASSIGN_OR_RETURN(chain, storage_->Chain(row.parent_id));
  }
  return driver_->Mounts(row.id, row.kind, chain);
}

absl::Status LocalSnapshotter::Walk(const WalkFunction& fn,
                                    absl::Span<const std::string> filter_strings) {
  BERTH_ASSIGN_OR_RETURN(filters::Filter filter, filters::Filter::ParseAny(filter_strings));
  std::vector<Row> rows;
  {
    absl::MutexLock lock(&mu_);
    BERTH_RETURN_IF_ERROR(CheckOpen());
    BERTH_ASSIGN_OR_RETURN(rows, storage_->List());
  }
  for (const Row& row : rows) {
    Info info = ToInfo(row);
    if (!filter.Match(InfoAdaptor(info))) continue;
    BERTH_RETURN_IF_ERROR(fn(info));
  }
  return absl::OkStatus();
}

// ---- Labels ----

absl::StatusOr<Info> LocalSnapshotter::Update(const Info& info,
                                              absl::Span<const std::string> field_paths) {
  BERTH_RETURN_IF_ERROR(ValidateKey("snapshot key", info.name));
  for (const std::string& path : field_paths) {
    if (path != "labels" && !absl::StartsWith(path, "labels.")) {
      return absl::InvalidArgumentError(absl::StrCat("cannot update field ", Quote(path),
                                                     " of snapshot ", Quote(info.name)));
    }
  }
  absl::MutexLock lock(&mu_);
  BERTH_ASSIGN_OR_RETURN(Row row, FindRow(info.name));
  Labels labels = row.labels;
  if (field_paths.empty()) labels = info.labels;
  for (const std::string& path : field_paths) {
    if (path == "labels") {
      labels = info.labels;
      continue;
    }
    std::string key = path.substr(sizeof("labels.") - 1);
    auto it = info.labels.find(key);
    if (it == info.labels.end()) {
      labels.erase(key);
    } else {
      labels[key] = it->second;
    }
  }
  BERTH_ASSIGN_OR_RETURN(row.labels, CleanLabels(std::move(labels)));
  row.updated = absl::Now();
  BERTH_RETURN_IF_ERROR(storage_->SetLabels(row.id, row.labels, row.updated));
  return ToInfo(row);
}

// ---- Creating ----

absl::StatusOr<std::vector<Mount>> LocalSnapshotter::Prepare(absl::string_view key,
                                                             absl::string_view parent,
                                                             const Labels& labels) {
  return Create(Kind::kActive, key, parent, labels);
}

absl::StatusOr<std::vector<Mount>> LocalSnapshotter::View(absl::string_view key,
                                                          absl::string_view parent,
                                                          const Labels& labels) {
  return Create(Kind::kView, key, parent, labels);
}

absl::StatusOr<LocalSnapshotter::Creation> LocalSnapshotter::BeginCreation(
    Kind kind, absl::string_view key, absl::string_view parent) {
  BERTH_RETURN_IF_ERROR(CheckOpen());
  if (reserved_keys_.contains(key)) return AlreadyExists(key);
  BERTH_ASSIGN_OR_RETURN(std::optional<Row> existing, storage_->Find(key));
  if (existing.has_value()) return AlreadyExists(key);
  Creation creation;
  if (!parent.empty()) {
    BERTH_ASSIGN_OR_RETURN(std::optional<Row> parent_row, storage_->Find(parent));
    if (!parent_row.has_value()) {
      return absl::NotFoundError(absl::StrCat("parent snapshot ", Quote(parent), ": not found"));
    }
    // InvalidArgument, as containerd 1.6's storage.CreateSnapshot answers.
    if (parent_row->kind != Kind::kCommitted) {
      return absl::InvalidArgumentError(absl::StrCat("parent snapshot ", Quote(parent),
                                                     " is not committed (it is ",
                                                     KindName(parent_row->kind), ")"));
    }
    BERTH_ASSIGN_OR_RETURN(creation.chain, storage_->Chain(parent_row->id));
    creation.row.parent_id = parent_row->id;
    creation.row.parent_key = parent_row->key;
  }
  BERTH_RETURN_IF_ERROR(driver_->CheckDepth(creation.chain.size()));
  BERTH_ASSIGN_OR_RETURN(creation.dirs, DupDirs());
  creation.row.id = ++last_id_;
  creation.row.key = std::string(key);
  creation.row.kind = kind;
  reserved_keys_.insert(creation.row.key);
  busy_ids_.insert(creation.row.id);
  if (creation.row.parent_id != 0) ++pinned_[creation.row.parent_id];
  return creation;
}

void LocalSnapshotter::EndCreation(const Creation& creation) {
  reserved_keys_.erase(creation.row.key);
  busy_ids_.erase(creation.row.id);
  if (creation.row.parent_id != 0 && --pinned_[creation.row.parent_id] == 0) {
    pinned_.erase(creation.row.parent_id);
  }
}

absl::Status LocalSnapshotter::Populate(const Creation& creation) {
  const int64_t id = creation.row.id;
  std::string name = absl::StrCat(id);
  std::string display = layout_.SnapshotDir(id);
  BERTH_RETURN_IF_ERROR(fs::MakeDirectory(creation.dirs.snapshots.get(), name, 0700, display));
  BERTH_ASSIGN_OR_RETURN(UniqueFd dir,
                         fs::OpenDirectory(creation.dirs.snapshots.get(), name, display));
  return driver_->Populate(creation.dirs.root.get(), dir.get(), id, creation.row.kind,
                           creation.chain);
}

absl::StatusOr<std::vector<Mount>> LocalSnapshotter::Create(Kind kind, absl::string_view key,
                                                            absl::string_view parent,
                                                            const Labels& labels) {
  BERTH_RETURN_IF_ERROR(ValidateKey("snapshot key", key));
  BERTH_ASSIGN_OR_RETURN(Labels clean, CleanLabels(labels));
  Creation creation;
  {
    absl::MutexLock lock(&mu_);
    BERTH_ASSIGN_OR_RETURN(creation, BeginCreation(kind, key, parent));
  }
  creation.row.labels = std::move(clean);
  absl::Status status = Populate(creation);
  if (status.ok()) {
    absl::MutexLock lock(&mu_);
    creation.row.created = creation.row.updated = absl::Now();
    status = CheckOpen();
    if (status.ok()) status = storage_->Insert(creation.row);
    if (status.ok()) {
      EndCreation(creation);
      return driver_->Mounts(creation.row.id, kind, creation.chain);
    }
  }
  Discard(creation.dirs, absl::StrCat(creation.row.id), creation.row.id);
  absl::MutexLock lock(&mu_);
  EndCreation(creation);
  return status;
}

// ---- Committing ----

absl::Status LocalSnapshotter::Commit(absl::string_view name, absl::string_view key,
                                      const Labels& labels) {
  BERTH_RETURN_IF_ERROR(ValidateKey("snapshot name", name));
  BERTH_RETURN_IF_ERROR(ValidateKey("snapshot key", key));
  BERTH_ASSIGN_OR_RETURN(Labels clean, CleanLabels(labels));
  Row row;
  Dirs dirs;
  {
    absl::MutexLock lock(&mu_);
    BERTH_ASSIGN_OR_RETURN(row, FindRow(key));
    if (row.kind != Kind::kActive) {
      return absl::FailedPreconditionError(absl::StrCat("snapshot ", Quote(key), " is ",
                                                        KindName(row.kind),
                                                        ": only active snapshots can be committed"));
    }
    if (reserved_keys_.contains(name)) return AlreadyExists(name);
    BERTH_ASSIGN_OR_RETURN(std::optional<Row> existing, storage_->Find(name));
    if (existing.has_value()) return AlreadyExists(name);
    BERTH_ASSIGN_OR_RETURN(dirs, DupDirs());
    reserved_keys_.insert(std::string(name));
  }
  // Measured outside the lock: a large layer takes a while to walk.
  absl::StatusOr<snapshotter::Usage> usage = MeasureUsage(dirs, row.id);
  absl::MutexLock lock(&mu_);
  reserved_keys_.erase(std::string(name));
  BERTH_RETURN_IF_ERROR(usage.status());
  BERTH_RETURN_IF_ERROR(CheckOpen());
  return storage_->Commit(row.id, key, name, clean, *usage, absl::Now());
}

// ---- Removing ----

void LocalSnapshotter::Discard(const Dirs& dirs, const std::string& name, int64_t id) {
  absl::Status removed =
      fs::RemoveTree(dirs.snapshots.get(), name, absl::StrCat(layout_.root(), "/snapshots/", name));
  if (!removed.ok()) {
    log::Warn("cannot remove snapshot directory; Cleanup will retry",
              {{"error", removed.ToString()}});
  }
  absl::Status forgotten = driver_->Forget(dirs.root.get(), id);
  if (!forgotten.ok()) log::Warn("cannot drop snapshot state", {{"error", forgotten.ToString()}});
}

absl::Status LocalSnapshotter::Remove(absl::string_view key) {
  BERTH_RETURN_IF_ERROR(ValidateKey("snapshot key", key));
  Dirs dirs;
  int64_t id;
  std::string name;
  {
    absl::MutexLock lock(&mu_);
    BERTH_ASSIGN_OR_RETURN(Row row, FindRow(key));
    id = row.id;
    if (pinned_.contains(id)) {
      return absl::FailedPreconditionError(absl::StrCat(
          "cannot remove snapshot ", Quote(key), ": a snapshot is being created on it"));
    }
    BERTH_RETURN_IF_ERROR(storage_->Delete(id, key));
    BERTH_ASSIGN_OR_RETURN(dirs, DupDirs());
    // Renamed first, so a crash halfway through the deletion leaves a name
    // Cleanup knows to finish.
    name = absl::StrCat(kRemovingPrefix, id);
    std::string current = absl::StrCat(id);
    if (::renameat(snapshots_fd_.get(), current.c_str(), snapshots_fd_.get(), name.c_str()) != 0) {
      log::Warn("cannot rename snapshot directory before removing it",
                {{"error", ErrnoStatus("rename", layout_.SnapshotDir(id)).ToString()}});
      name = current;
    }
    busy_ids_.insert(id);
    if (!closing_) {
      removals_.push_back(Removal{std::move(dirs), std::move(name), id});
      if (!discarder_.joinable()) discarder_ = std::thread([this] { DiscardQueued(); });
      return absl::OkStatus();
    }
  }
  Discard(dirs, name, id);
  absl::MutexLock lock(&mu_);
  busy_ids_.erase(id);
  return absl::OkStatus();
}

void LocalSnapshotter::DiscardQueued() {
  while (true) {
    Removal removal;
    {
      absl::MutexLock lock(&mu_);
      auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        return !removals_.empty() || closing_;
      };
      mu_.Await(absl::Condition(&ready));
      if (removals_.empty()) return;  // closing, and nothing left
      removal = std::move(removals_.front());
      removals_.pop_front();
    }
    Discard(removal.dirs, removal.name, removal.id);
    absl::MutexLock lock(&mu_);
    busy_ids_.erase(removal.id);
  }
}

absl::Status LocalSnapshotter::Cleanup() {
  std::vector<std::string> doomed;
  Dirs dirs;
  {
    absl::MutexLock lock(&mu_);
    BERTH_RETURN_IF_ERROR(CheckOpen());
    BERTH_ASSIGN_OR_RETURN(std::set<int64_t> rows, storage_->Ids());
    BERTH_ASSIGN_OR_RETURN(std::vector<std::string> names,
                           files::ListDirectory(snapshots_fd_.get(), layout_.root()));
    for (const std::string& name : names) {
      absl::string_view number = name;
      bool removing = absl::ConsumePrefix(&number, kRemovingPrefix);
      int64_t id = 0;
      // Only the canonical spelling of a live id is kept ("007" is a stray).
      bool numbered = absl::SimpleAtoi(number, &id) && absl::StrCat(id) == number;
      if (numbered && (busy_ids_.contains(id) || (!removing && rows.contains(id)))) continue;
      if (numbered && !removing) {
        // Marked first, as Remove does, in case this deletion is cut short.
        std::string renamed = absl::StrCat(kRemovingPrefix, name);
        if (::renameat(snapshots_fd_.get(), name.c_str(), snapshots_fd_.get(),
                       renamed.c_str()) == 0) {
          doomed.push_back(renamed);
          continue;
        }
      }
      doomed.push_back(name);
    }
    std::set<int64_t> live = rows;
    live.insert(busy_ids_.begin(), busy_ids_.end());
    BERTH_RETURN_IF_ERROR(driver_->Sweep(root_fd_.get(), live));
    BERTH_ASSIGN_OR_RETURN(dirs, DupDirs());
  }
  absl::Status first;
  for (const std::string& name : doomed) {
    log::Info("removing snapshot directory that belongs to no snapshot",
              {{"root", layout_.root()}, {"name", name}});
    absl::Status status = fs::RemoveTree(dirs.snapshots.get(), name,
                                         absl::StrCat(layout_.root(), "/snapshots/", name));
    if (first.ok()) first = status;
  }
  return first;
}

}  // namespace berth::snapshotter
