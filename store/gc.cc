#include "store/gc.h"

#include <optional>
#include <utility>
#include <vector>

#include "base/log.h"
#include "base/status.h"

namespace berth::store {

GarbageCollector::GarbageCollector(std::shared_ptr<MetadataStore> metadata,
                                   std::shared_ptr<NamespacedContent> content,
                                   Snapshotters snapshotters, absl::Duration period)
    : metadata_(std::move(metadata)),
      content_(std::move(content)),
      snapshotters_(std::move(snapshotters)),
      period_(period) {
  thread_ = std::thread([this] { Loop(); });
}

GarbageCollector::~GarbageCollector() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  thread_.join();
}

void GarbageCollector::Schedule() {
  absl::MutexLock lock(&mu_);
  ++requested_;
}

absl::Status GarbageCollector::Collect() {
  absl::MutexLock lock(&mu_);
  // A run already under way may have marked before this call: wait for the
  // one after it.
  const uint64_t mine = ++requested_;
  auto covered = [&]()
                     ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return completed_ >= mine || stopping_; };
  mu_.Await(absl::Condition(&covered));
  if (completed_ < mine) return absl::CancelledError("garbage collector stopped");
  return last_status_;
}

void GarbageCollector::Loop() {
  // Blobs a crash left without a record go first. On this thread, so that
  // start-up does not wait for a walk of the whole store.
  if (absl::Status swept = content_->RemoveUnrecordedBlobs(); !swept.ok()) {
    log::Warn("removing unrecorded blobs failed", {{"error", swept.message()}});
  }
  absl::Time next_periodic = absl::Now() + period_;
  while (true) {
    uint64_t target;
    {
      absl::MutexLock lock(&mu_);
      auto due = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        return stopping_ || requested_ > completed_;
      };
      mu_.AwaitWithDeadline(absl::Condition(&due), next_periodic);
      if (stopping_) return;
      target = requested_;
    }
    absl::Status status = CollectOnce();
    if (!status.ok()) log::Warn("garbage collection failed", {{"error", status.message()}});
    next_periodic = absl::Now() + period_;
    absl::MutexLock lock(&mu_);
    completed_ = target;
    last_status_ = status;
  }
}

// Every namespace's snapshots, as the metadata store's mark takes them.
absl::StatusOr<std::vector<SnapshotNode>> GarbageCollector::WalkSnapshots() {
  std::vector<SnapshotNode> nodes;
  for (const auto& [name, snapshots] : snapshotters_) {
    BERTH_RETURN_IF_ERROR(snapshots->Walk([&](const snapshotter::Info& info) {
      std::optional<snapshotter::NamespacedKey> key = snapshotter::SplitStoredKey(info.name);
      // Not made through a namespace: not the collector's to judge.
      if (!key.has_value()) return absl::OkStatus();
      SnapshotNode& node = nodes.emplace_back();
      node.ref = {std::move(key->ns), name, std::move(key->key)};
      if (std::optional<snapshotter::NamespacedKey> parent =
              snapshotter::SplitStoredKey(info.parent)) {
        node.parent = std::move(parent->key);
      }
      node.labels = info.labels;
      return absl::OkStatus();
    }));
  }
  return nodes;
}

// The part of a collection that must see the snapshots hold still.
absl::StatusOr<GcResult> GarbageCollector::CollectHoldingReferences(absl::Time now) {
  absl::MutexLock hold(&snapshot_references_);
  BERTH_ASSIGN_OR_RETURN(std::vector<SnapshotNode> snapshots, WalkSnapshots());
  BERTH_ASSIGN_OR_RETURN(GcResult result, metadata_->CollectGarbage(now, snapshots));
  for (const SnapshotRef& ref : result.unreferenced_snapshots) {
    absl::Status removed =
        snapshotters_.at(ref.snapshotter)->Remove(snapshotter::StoredKey(ref.ns, ref.key));
    // Removed meanwhile by its owner: that is all right.
    if (!removed.ok() && !absl::IsNotFound(removed)) {
      log::Warn("removing an unreferenced snapshot failed", {{"namespace", ref.ns},
                                                             {"snapshotter", ref.snapshotter},
                                                             {"key", ref.key},
                                                             {"error", removed.message()}});
    }
  }
  return result;
}

absl::Status GarbageCollector::CollectOnce() {
  absl::Time start = absl::Now();
  BERTH_ASSIGN_OR_RETURN(GcResult result, CollectHoldingReferences(start));
  BERTH_RETURN_IF_ERROR(content_->RemoveUnreferencedBlobs(result.unreferenced_digests));
  for (const auto& [ns, ref] : result.expired_ingests) {
    absl::Status aborted = content_->Abort(ns, ref);
    // In use or already gone: the next collection sees it again if it stays.
    if (!aborted.ok() && !absl::IsNotFound(aborted)) {
      log::Warn("aborting an expired lease's ingest failed",
                {{"namespace", ns}, {"ref", ref}, {"error", aborted.message()}});
    }
  }
  log::Debug("garbage collected", {{"content", result.removed_content.size()},
                                   {"snapshots", result.unreferenced_snapshots.size()},
                                   {"leases", result.removed_leases.size()},
                                   {"blobs", result.unreferenced_digests.size()},
                                   {"duration", absl::FormatDuration(absl::Now() - start)}});
  return absl::OkStatus();
}

}  // namespace berth::store
