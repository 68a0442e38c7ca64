#include "services/diff/early_unpack.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <vector>

#include "absl/strings/str_cat.h"
#include "base/log.h"
#include "base/status.h"
#include "base/unique_fd.h"

namespace berth::services::diff {
namespace {

void RemoveTree(const std::string& dir) {
  std::error_code error;
  std::filesystem::remove_all(dir, error);
  if (error)
    log::Warn("early unpack: cannot remove a tree", {{"dir", dir}, {"error", error.message()}});
}

// Whether the blob's first bytes are a compressed stream or a tar header
// (POSIX and GNU tar both write "ustar" at offset 257).
std::optional<image::Compression> LayerCompression(store::BlobReader& blob) {
  std::string head;
  if (!blob.ReadAt(0, 512, &head).ok()) return std::nullopt;
  image::Compression compression = image::DetectCompression(head);
  if (compression != image::Compression::kNone) return compression;
  if (head.size() == 512 && head.compare(257, 5, "ustar") == 0) return compression;
  return std::nullopt;
}

}  // namespace

absl::StatusOr<std::unique_ptr<EarlyUnpacker>> EarlyUnpacker::Create(
    std::shared_ptr<store::NamespacedContent> content, std::string dir) {
  std::error_code error;
  std::filesystem::remove_all(dir, error);
  if (error) return absl::InternalError(absl::StrCat("remove ", dir, ": ", error.message()));
  if (::mkdir(dir.c_str(), 0700) != 0) return ErrnoStatus("mkdir", dir);
  return std::unique_ptr<EarlyUnpacker>(new EarlyUnpacker(std::move(content), std::move(dir)));
}

EarlyUnpacker::EarlyUnpacker(std::shared_ptr<store::NamespacedContent> content, std::string dir)
    : content_(std::move(content)), dir_(std::move(dir)), thread_(&EarlyUnpacker::Run, this) {}

EarlyUnpacker::~EarlyUnpacker() {
  {
    absl::MutexLock lock(&mu_);
    stop_ = true;
  }
  thread_.join();
  RemoveTree(dir_);
}

void EarlyUnpacker::Offer(const std::string& ns, const store::ContentRecord& record) {
  if (record.size < kMinSize) return;
  absl::MutexLock lock(&mu_);
  if (stop_ || trees_.size() + queue_.size() >= kMaxTrees || bytes_ + record.size > kMaxBytes ||
      trees_.contains(record.digest)) {
    return;
  }
  for (const Job& job : queue_) {
    if (job.digest == record.digest) return;
  }
  queue_.push_back(Job{ns, record.digest, record.size});
  bytes_ += record.size;
}

void EarlyUnpacker::Forget(const Tree& tree) { bytes_ -= tree.blob_size; }

void EarlyUnpacker::Expire() {
  const absl::Time now = absl::Now();
  std::vector<std::string> expired;
  for (auto it = trees_.begin(); it != trees_.end();) {
    if (it->second.done && now - it->second.finished > kKeep) {
      expired.push_back(it->second.dir);
      Forget(it->second);
      trees_.erase(it++);
    } else {
      ++it;
    }
  }
  mu_.Unlock();
  for (const std::string& dir : expired) RemoveTree(dir);
  mu_.Lock();
}

void EarlyUnpacker::Run() {
  absl::MutexLock lock(&mu_);
  for (;;) {
    auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stop_ || !queue_.empty(); };
    mu_.AwaitWithTimeout(absl::Condition(&ready), absl::Seconds(10));
    if (stop_) return;
    Expire();
    if (queue_.empty()) continue;
    Job job = std::move(queue_.front());
    queue_.pop_front();
    Tree& tree = trees_[job.digest];
    tree.dir = absl::StrCat(dir_, "/", next_++);
    tree.blob_size = job.size;
    mu_.Unlock();
    Unpack(job);
    mu_.Lock();
  }
}

void EarlyUnpacker::Unpack(const Job& job) {
  std::string dir;
  {
    absl::MutexLock lock(&mu_);
    dir = trees_[job.digest].dir;
  }
  std::optional<image::ApplyResult> result;
  absl::StatusOr<std::unique_ptr<store::BlobReader>> blob = content_->Read(job.ns, job.digest);
  std::optional<image::Compression> compression;
  if (blob.ok()) compression = LayerCompression(**blob);
  const std::string fs = dir + "/fs";
  struct statvfs space;
  const bool room =
      ::statvfs(dir_.c_str(), &space) == 0 &&
      static_cast<int64_t>(space.f_bavail) * static_cast<int64_t>(space.f_frsize) > 4 * job.size;
  if (compression.has_value() && room && ::mkdir(dir.c_str(), 0700) == 0 &&
      ::mkdir(fs.c_str(), 0755) == 0 && ::chmod(fs.c_str(), 0755) == 0) {
    UniqueFd target(::open(fs.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    std::unique_ptr<image::ByteSource> source = image::BlobSource(**blob);
    image::ApplyOptions options;
    options.whiteouts = image::ApplyOptions::Whiteouts::kOverlay;
    options.source_digest = job.digest;
    absl::StatusOr<image::ApplyResult> applied =
        target.valid() ? image::ApplyLayer(*source, *compression, target.get(), options)
                       : absl::StatusOr<image::ApplyResult>(ErrnoStatus("open", fs));
    if (applied.ok()) {
      result = *std::move(applied);
    } else {
      log::Debug("early unpack failed; Apply will unpack it",
                 {{"digest", job.digest}, {"error", applied.status().ToString()}});
    }
  }
  if (!result.has_value()) RemoveTree(dir);
  absl::MutexLock lock(&mu_);
  if (!result.has_value() && (!compression.has_value() || !room)) {
    Forget(trees_[job.digest]);
    trees_.erase(job.digest);  // not a layer, or no room for it
    return;
  }
  Tree& tree = trees_[job.digest];
  tree.done = true;
  tree.result = std::move(result);
  tree.finished = absl::Now();
}

std::optional<image::ApplyResult> EarlyUnpacker::Take(const std::string& digest,
                                                      const snapshotter::MountedTree& target) {
  Tree tree;
  {
    absl::MutexLock lock(&mu_);
    if (!trees_.contains(digest)) return std::nullopt;
    auto done = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      auto it = trees_.find(digest);
      return stop_ || it == trees_.end() || it->second.done;
    };
    mu_.Await(absl::Condition(&done));
    auto it = trees_.find(digest);
    if (it == trees_.end() || !it->second.done) return std::nullopt;
    tree = std::move(it->second);
    Forget(tree);
    trees_.erase(it);
  }
  if (!tree.result.has_value()) return std::nullopt;
  bool fits = target.overlay_upper()
                  ? !(tree.result->implied_parents && !target.lower_fds().empty())
                  : !tree.result->has_whiteouts;
  // The target's root keeps its owner and mode (the snapshotter's, or its
  // parent's) unless the layer set them.
  const std::string fs = tree.dir + "/fs";
  struct stat st;
  if (fits && !tree.result->root_entry) {
    fits = ::fstat(target.dir(), &st) == 0 && ::chown(fs.c_str(), st.st_uid, st.st_gid) == 0 &&
           ::chmod(fs.c_str(), st.st_mode & 07777) == 0;
  }
  // rename(2) replaces the target only when it is an empty directory (and
  // not a mountpoint): anything else is unpacked the ordinary way.
  if (!fits || ::rename(fs.c_str(), target.path().c_str()) != 0) {
    RemoveTree(tree.dir);
    return std::nullopt;
  }
  ::rmdir(tree.dir.c_str());
  // The rename is the snapshot's content from now on: make it durable (the
  // tree's data was synced when it was unpacked).
  const std::string parent = std::filesystem::path(target.path()).parent_path();
  UniqueFd parent_fd(::open(parent.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (parent_fd.valid()) ::fsync(parent_fd.get());
  return tree.result;
}

}  // namespace berth::services::diff
