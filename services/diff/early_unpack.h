// Unpacking layers before they are asked for. A client that imports an
// image (`ctr images import`, a pull driven by the client) first writes
// every blob, then asks for the layers one by one: Diff.Apply of layer 1 on
// an empty snapshot, of layer 2 on a snapshot of layer 1, … So each layer
// blob that looks like a layer (gzip, zstd or tar bytes, 1 MiB or more) is
// unpacked as soon as its commit is recorded, on a thread of its own, into
// a private directory as if into an empty overlay upperdir, while the client
// is still writing the next blobs; Apply then renames the finished tree
// into the snapshot instead of unpacking it then.
//
// The tree is used only where it is exactly what Apply would have made:
// its target is empty (an upperdir, or a bind mount's source with nothing
// below it), the layer held no whiteout when the target is a bind mount,
// and no parent directory was implied when the target has lower layers.
// Else, or when the early unpack failed (Apply then meets the error
// itself), Apply unpacks as before. Trees nobody takes within a minute, and
// anything left by an earlier run, are deleted. At most kMaxTrees blobs of
// kMaxBytes in all are unpacked ahead, and none while the filesystem has
// less free space than four times the blob (a layer rarely inflates more).
#ifndef BERTH_SERVICES_DIFF_EARLY_UNPACK_H_
#define BERTH_SERVICES_DIFF_EARLY_UNPACK_H_

#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "image/layer.h"
#include "snapshotter/mount.h"
#include "store/namespaced_content.h"

namespace berth::services::diff {

class EarlyUnpacker {
 public:
  // Trees live under `dir` (emptied now), which must be on the filesystem
  // of the snapshots they are renamed into.
  static absl::StatusOr<std::unique_ptr<EarlyUnpacker>> Create(
      std::shared_ptr<store::NamespacedContent> content, std::string dir);
  ~EarlyUnpacker();  // stops the thread, deletes every tree

  // A blob was committed: queue it if it looks like a layer.
  void Offer(const std::string& ns, const store::ContentRecord& record);

  // Moves the tree of layer `digest` onto `tree`'s directory, waiting for
  // it if it is being unpacked, and returns what ApplyLayer returned for it;
  // nullopt when there is none that fits (see above).
  std::optional<image::ApplyResult> Take(const std::string& digest,
                                         const snapshotter::MountedTree& tree);

  static constexpr int64_t kMinSize = 1 << 20;
  static constexpr int kMaxTrees = 16;
  static constexpr int64_t kMaxBytes = int64_t{4} << 30;
  static constexpr absl::Duration kKeep = absl::Minutes(1);

 private:
  struct Tree {
    std::string dir;  // holds `fs`, the unpacked layer
    int64_t blob_size = 0;
    bool done = false;
    std::optional<image::ApplyResult> result;  // when done and it worked
    absl::Time finished;
  };
  struct Job {
    std::string ns;
    std::string digest;
    int64_t size = 0;
  };

  EarlyUnpacker(std::shared_ptr<store::NamespacedContent> content, std::string dir);
  void Run();
  void Unpack(const Job& job);
  void Expire() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Forget(const Tree& tree) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const std::shared_ptr<store::NamespacedContent> content_;
  const std::string dir_;
  absl::Mutex mu_;
  std::deque<Job> queue_ ABSL_GUARDED_BY(mu_);
  int64_t bytes_ ABSL_GUARDED_BY(mu_) = 0;  // of the blobs queued or unpacked
  absl::flat_hash_map<std::string, Tree> trees_ ABSL_GUARDED_BY(mu_);  // by digest
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  int next_ = 0;  // the thread's: names of tree directories
  std::thread thread_;
};

}  // namespace berth::services::diff

#endif  // BERTH_SERVICES_DIFF_EARLY_UNPACK_H_
