// The garbage collector's schedule: when metadata's mark-and-sweep runs, and
// the disk work that follows it.
//
// At start, it removes the blobs a crash left on disk with no record. Then
// a collection walks the snapshotters and asks the metadata store to sweep
// what nothing references (it marks from images, containers, live leases,
// content and snapshots labelled containerd.io/gc.root, following
// containerd.io/gc.ref.* labels and snapshot parents), then removes the snapshots and the blobs
// nothing refers to any more and aborts the ingests that only expired leases
// held. Collections run on one background thread:
// soon after something is deleted (Schedule), periodically (so expired leases
// go even when nothing else happens), and on demand for deletions that ask to
// wait (Collect, as containerd's `sync` does).
#ifndef BERTH_STORE_GC_H_
#define BERTH_STORE_GC_H_

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "snapshotter/snapshotter.h"
#include "store/metadata.h"
#include "store/namespaced_content.h"

namespace berth::store {

class GarbageCollector {
 public:
  // The snapshotters by name ("overlayfs", "native"), shared by all
  // namespaces (keys as snapshotter::InNamespace stores them).
  using Snapshotters = std::map<std::string, std::shared_ptr<snapshotter::Snapshotter>>;

  // Starts the collector's thread; the first periodic run is one `period`
  // after start.
  GarbageCollector(std::shared_ptr<MetadataStore> metadata,
                   std::shared_ptr<NamespacedContent> content, Snapshotters snapshotters,
                   absl::Duration period);
  // Stops the thread, finishing a collection in progress.
  ~GarbageCollector();
  GarbageCollector(const GarbageCollector&) = delete;
  GarbageCollector& operator=(const GarbageCollector&) = delete;

  // Asks for a collection soon; returns at once.
  void Schedule();

  // Waits for a whole collection that starts after this call and returns
  // its status.
  absl::Status Collect();

  // Held shared (absl::ReaderMutexLock) around anything that creates,
  // commits or relabels a snapshot, with the lease or label that keeps it:
  // a collection holds it from its walk of the snapshotters until it has
  // removed what it found unreferenced, so no snapshot made or referred to
  // meanwhile is taken for garbage.
  absl::Mutex& snapshot_references() ABSL_LOCK_RETURNED(snapshot_references_) {
    return snapshot_references_;
  }

 private:
  void Loop();
  absl::Status CollectOnce();
  absl::StatusOr<GcResult> CollectHoldingReferences(absl::Time now);
  absl::StatusOr<std::vector<SnapshotNode>> WalkSnapshots();

  const std::shared_ptr<MetadataStore> metadata_;
  const std::shared_ptr<NamespacedContent> content_;
  const Snapshotters snapshotters_;
  const absl::Duration period_;

  absl::Mutex snapshot_references_;

  absl::Mutex mu_;
  uint64_t requested_ ABSL_GUARDED_BY(mu_) = 0;  // collections asked for
  uint64_t completed_ ABSL_GUARDED_BY(mu_) = 0;  // the request count the last run covered
  absl::Status last_status_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace berth::store

#endif  // BERTH_STORE_GC_H_
