// Snapshotters: the root filesystems of containers, built from layers, with
// containerd's snapshotter semantics (core/snapshots/snapshotter.go).
//
// The model. A snapshotter keeps a set of snapshots, each named by a key. A
// snapshot is one of three kinds:
//
//   active     writable; made by Prepare from a committed parent or from
//              nothing. The caller mounts it, writes into it (unpacks a layer,
//              runs a container), and then either commits or removes it.
//   committed  read-only and immutable; made by Commit, which turns an active
//              snapshot into a committed one under a new name. Only committed
//              snapshots can be parents.
//   view       read-only; made by View from a committed parent or from
//              nothing, to look at a parent's tree. Views cannot be committed.
//
// Snapshots form a tree: each has at most one parent, always committed, and a
// parent cannot be removed while it has children. A snapshot's tree is its
// parent's tree plus the changes written into it.
//
// A worked example, unpacking a two-layer image and starting a container:
//
//   Prepare("extract-1", "")          an empty active snapshot; the caller
//                                     mounts it and applies layer 1's tar
//   Commit("sha256:L1", "extract-1")  "extract-1" is gone; "sha256:L1" is the
//                                     committed layer (same directory, same id)
//   Prepare("extract-2", "sha256:L1") writable, showing L1's files; the caller
//                                     applies layer 2 (deletions become
//                                     whiteouts, as overlayfs records them)
//   Commit("sha256:L2", "extract-2")
//   Prepare("ctr-1", "sha256:L2")     the container's rootfs: L1, L2 and a
//                                     fresh writable layer on top
//
// Mounts are data: Prepare, View and Mounts return what to mount (type,
// source, options, as containerd's mount.Mount); the caller mounts it, for
// instance with MountAll from snapshotter/mount.h, and unmounts it before
// removing the snapshot.
//
// Keys and names are arbitrary strings (containerd's metadata layer prefixes
// them with a namespace, and image layers are named by chain ids such as
// "sha256:…"). They are stored in metadata only and NEVER become paths: each
// snapshot's directory is `<root>/snapshots/<id>`, where <id> is a number the
// snapshotter chooses. So "../../etc" is as good a key as any; only the empty
// string and keys over kMaxStoredKeyLength bytes (kMaxKeyLength through
// InNamespace) are refused.
//
// Errors use containerd's errdefs codes:
//   InvalidArgument     empty or too-long key or name, a malformed filter, an
//                       update of a field other than labels, labels too large,
//                       and — as containerd 1.6 answers (storage.CreateSnapshot)
//                       — a parent that exists but is not committed
//   NotFound            the key (or the parent) does not exist
//   AlreadyExists       Prepare/View of a key that exists, Commit to a name
//                       that exists
//   FailedPrecondition  Commit of a snapshot that is not active, Mounts of a
//                       committed snapshot, Remove of a snapshot with children
//                       (nothing is removed), any call after Close, a parent
//                       chain deeper than the implementation can mount
// Messages quote keys and names (berth::Quote).
//
// Durability. Metadata lives in SQLite (`<root>/metadata.db`); every change is
// one transaction. Directories are created before their row is committed and
// deleted after their row is, so a crash leaves at most directories without
// rows, which the next open (or Cleanup) deletes.
//
// Thread safety: every method may be called from any thread at once.
// Concurrent Prepares of one key: exactly one succeeds, the others get
// AlreadyExists. One root is used by one snapshotter at a time (the second
// open of a root fails with Unavailable).
#ifndef BERTH_SNAPSHOTTER_SNAPSHOTTER_H_
#define BERTH_SNAPSHOTTER_SNAPSHOTTER_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "base/identifiers.h"
#include "filters/filters.h"

namespace berth::snapshotter {

enum class Kind { kView, kActive, kCommitted };

// "view", "active", "committed": containerd's spelling, used by filters
// (`kind==committed`) and in messages.
absl::string_view KindName(Kind kind);

using Labels = std::map<std::string, std::string>;

// A client's keys and names longer than this are InvalidArgument.
inline constexpr size_t kMaxKeyLength = 4096;
// The snapshotters themselves store keys this long: room for the
// "<namespace>/" InNamespace puts before a client's key.
inline constexpr size_t kMaxStoredKeyLength = kMaxKeyLength + identifiers::kMaxLength + 1;

// What Stat, Update and Walk report about one snapshot.
struct Info {
  std::string name;    // its key (or, once committed, its name)
  std::string parent;  // the parent's name, or "" for none
  Kind kind = Kind::kActive;
  Labels labels;
  absl::Time created;  // for committed snapshots: when Commit made them
  absl::Time updated;
};

// Disk space used by a snapshot's own directory (not its parents'): bytes of
// allocated blocks (st_blocks * 512, so holes in sparse files cost nothing)
// and inodes, each hard-linked inode counted once.
struct Usage {
  int64_t size = 0;
  int64_t inodes = 0;
};

// One mount, as containerd's mount.Mount: mount(2)'s type and source, and
// options of the form `mount -o` takes (flags such as "ro", "rbind" and
// filesystem data such as "lowerdir=…"). `target` is a path below the
// mountpoint to mount on, "" for the mountpoint itself.
struct Mount {
  std::string type;
  std::string source;
  std::string target;
  std::vector<std::string> options;

  friend bool operator==(const Mount&, const Mount&) = default;
};

class Snapshotter {
 public:
  // Called by Walk for each matching snapshot; a non-OK status stops the walk
  // and is Walk's result.
  using WalkFunction = std::function<absl::Status(const Info&)>;

  virtual ~Snapshotter() = default;

  // The snapshot named `key`. NotFound if there is none.
  virtual absl::StatusOr<Info> Stat(absl::string_view key) = 0;

  // Updates the labels of snapshot `info.name` and returns its new Info.
  // `field_paths` says which: none or "labels" replaces all labels with
  // `info.labels`; "labels.<k>" sets label k to `info.labels[k]`, or deletes
  // it when `info.labels` has no k. Other paths are InvalidArgument, and so
  // is a label whose key and value exceed 4096 bytes together. Labels with an
  // empty value are not kept (as containerd's storage drops them). NotFound
  // if there is no such snapshot.
  virtual absl::StatusOr<Info> Update(const Info& info,
                                      absl::Span<const std::string> field_paths) = 0;

  // Disk usage of `key`'s own directory: measured at Commit for committed
  // snapshots, measured now for active ones and views. NotFound if absent.
  virtual absl::StatusOr<snapshotter::Usage> Usage(absl::string_view key) = 0;

  // How to mount active snapshot or view `key` (the same mounts Prepare or
  // View returned). FailedPrecondition for a committed snapshot, NotFound if
  // absent.
  virtual absl::StatusOr<std::vector<Mount>> Mounts(absl::string_view key) = 0;

  // Creates active snapshot `key` on committed `parent` ("" for an empty
  // one) with `labels`, and returns how to mount it read-write.
  // AlreadyExists if `key` exists; NotFound if `parent` does not;
  // InvalidArgument if `parent` is not committed.
  virtual absl::StatusOr<std::vector<Mount>> Prepare(absl::string_view key,
                                                     absl::string_view parent,
                                                     const Labels& labels = {}) = 0;

  // As Prepare, but the snapshot is a view: its mounts are read-only and it
  // cannot be committed.
  virtual absl::StatusOr<std::vector<Mount>> View(absl::string_view key, absl::string_view parent,
                                                  const Labels& labels = {}) = 0;

  // Turns active snapshot `key` into committed snapshot `name`, whose labels
  // are `labels` (the active snapshot's are not inherited, as in containerd)
  // and whose usage is measured now. `key` no longer exists afterwards.
  // REQUIRES: `key` is not mounted (its contents must not change while usage
  // is measured).
  // NotFound if `key` does not exist; FailedPrecondition if it is a view or
  // committed; AlreadyExists if `name` exists.
  virtual absl::Status Commit(absl::string_view name, absl::string_view key,
                              const Labels& labels = {}) = 0;

  // Removes snapshot `key`: at return it is gone from metadata and its key
  // is free; its directory is deleted in the background (Close waits for
  // that, and a crash leaves it to Cleanup), as containerd defers it to
  // garbage collection. FailedPrecondition, removing nothing, if it has
  // children (or a Prepare or View on it is in progress).
  // REQUIRES: `key` is not mounted.
  virtual absl::Status Remove(absl::string_view key) = 0;

  // Calls `fn` for every snapshot matched by `filters`, containerd filter
  // expressions (filters/filters.h) over the fields `name`, `parent`, `kind`
  // and `labels.<k>`, any one of which may match; no filters match all.
  // `fn` runs without the snapshotter's lock held, so it may call back into
  // it. InvalidArgument for a malformed filter.
  virtual absl::Status Walk(const WalkFunction& fn, absl::Span<const std::string> filters = {}) = 0;

  // Deletes directories (and overlay links) that belong to no snapshot:
  // leftovers of a crash or of an interrupted Remove. Open does this too.
  virtual absl::Status Cleanup() = 0;

  // Releases the database and the root. Later calls fail with
  // FailedPrecondition. The destructor closes too.
  virtual absl::Status Close() = 0;
};

// A snapshot as filters (filters/filters.h) see it: fields `name`,
// `parent`, `kind` ("view", "active", "committed") and `labels.<k>`.
class InfoAdaptor final : public filters::Adaptor {
 public:
  explicit InfoAdaptor(const Info& info) : info_(info) {}
  std::optional<std::string> Field(const std::vector<std::string>& path) const override;

 private:
  const Info& info_;
};

// One namespace's view of `backend`, a snapshotter shared by all
// namespaces: its keys are stored as "<ns>/<key>", so it sees, lists and
// removes only its own snapshots, and error messages quote its own keys.
// Close() lets go of `backend`, which closes once its last user does.
std::unique_ptr<Snapshotter> InNamespace(std::shared_ptr<Snapshotter> backend, absl::string_view ns);

// The key InNamespace stores for namespace `ns`'s `key`: "<ns>/<key>".
std::string StoredKey(absl::string_view ns, absl::string_view key);

// The namespace and key of a stored key, if a namespace made it (a valid
// namespace before the first '/', a key after it).
struct NamespacedKey {
  std::string ns;
  std::string key;
};
std::optional<NamespacedKey> SplitStoredKey(absl::string_view stored);

// How overlay mounts are made on this host; ProbeOverlay finds out.
struct OverlayOptions {
  // Pass "index=off": the inodes index (on by default on some kernels) ties
  // an upper directory to one set of lower directories and makes a second
  // mount of a layer fail with EBUSY. containerd passes it when the kernel
  // knows the option.
  bool index_off = false;
  // Pass "userxattr": overlay metadata in user.overlay.* instead of
  // trusted.overlay.*, which an unprivileged user namespace cannot write.
  bool userxattr = false;
};

// Whether overlayfs works with directories on `root`'s filesystem, and with
// which options: mounts a small overlay in a temporary directory under `root`
// (created if missing), deletes a lower file (a whiteout) and replaces a
// lower directory (an opaque directory, which needs xattrs on the upper
// filesystem), then unmounts and removes it. FailedPrecondition naming the
// filesystem type when overlay cannot work there (overlayfs as the upper
// layer, a filesystem without xattrs …).
absl::StatusOr<OverlayOptions> ProbeOverlay(const std::string& root);

// The overlayfs snapshotter, keeping its state in `root` (created if
// missing; an absolute path without ',', ':' or '\', which overlay options
// cannot hold unescaped — else InvalidArgument).
//
// Layout: `<root>/snapshots/<id>/fs` is snapshot <id>'s own layer (overlay's
// upperdir while active) and `work` its workdir; `<root>/l/<short>` is a
// symbolic link to `../snapshots/<id>/fs`, <short> being <id> in base 36.
//
// Mounts: an active snapshot or view without parent is a bind mount of its
// fs ("rw" or "ro", "rbind"); a view of one committed layer is a read-only
// bind of that layer; anything else is
//   {type "overlay", source "overlay",
//    options {["index=off",] ["userxattr",] "workdir=…", "upperdir=…",
//             "lowerdir=<parent>:<grandparent>:…"}}
// (views have only lowerdir, nearest parent first, as containerd orders them).
//
// Deep chains. mount(2) takes at most one page (4096 bytes, with the NUL) of
// options. While the options fit, lowerdir names each layer's fs directory;
// beyond that it names the short links, `<root>/l/<short>`, as Docker's
// overlay2 driver does. A 500-layer lowerdir with absolute paths still
// exceeds a page: MountAll (and containerd's own mount code) then mounts
// from the links' common directory, `<root>/l`, with relative names — 500
// lowers take about 3.5 KB. The kernel stacks at most 500 lower layers
// (OVL_MAX_STACK): a chain of 500 committed layers can be viewed or have a
// snapshot prepared on top (500 lowers + an upper); a deeper chain is refused
// by Prepare and View with FailedPrecondition.
absl::StatusOr<std::unique_ptr<Snapshotter>> NewOverlaySnapshotter(const std::string& root,
                                                                   OverlayOptions options);

// The native snapshotter: every Prepare and View copies its parent's whole
// tree into `<root>/snapshots/<id>/fs` (hard links, symbolic links, xattrs
// including trusted.*, device nodes, fifos, sparse files' holes, owners,
// modes and times preserved), and every mount is a bind mount of that
// directory ("rw" for active snapshots, "ro" for views). For filesystems
// where overlay does not work; slow and space-hungry otherwise.
absl::StatusOr<std::unique_ptr<Snapshotter>> NewNativeSnapshotter(const std::string& root);

}  // namespace berth::snapshotter

#endif  // BERTH_SNAPSHOTTER_SNAPSHOTTER_H_
