// Image layers: applying them to a directory and making them from two, the
// work behind containerd's Diff service (Apply and Diff).
//
// The model. An OCI layer is a tar archive of changes to the layers below it,
// usually compressed (gzip or zstd). Applying layers in order builds a root
// filesystem. Each tar entry adds or replaces one path; two kinds of entry,
// whiteouts, remove things instead:
//
//   dir/.wh.<name>      deletes <name> (a file, or a directory with all it
//                       holds) of the lower layers. The entry itself is not
//                       extracted.
//   dir/.wh..wh..opq    makes `dir` opaque: nothing the lower layers had in
//                       `dir` shows through; only this layer's entries do.
//
// The digest of the uncompressed tar is the layer's diff_id, the name an
// image config lists it by (rootfs.diff_ids); the digest of the compressed
// bytes is the blob's, which the manifest lists.
//
// Two ways to apply a layer, after the two kinds of snapshot:
//
//   kOverlay  the target is an overlayfs upperdir holding only this layer
//             (overlay snapshotter). The lower layers are not there to
//             delete from, so whiteouts are recorded the way overlayfs reads
//             them: `.wh.<name>` becomes a character device 0/0 named <name>
//             (with the whiteout entry's owner and mtime, so a diff of the
//             upperdir gives the entry back), `.wh..wh..opq` sets the xattr
//             trusted.overlay.opaque=y on its directory. Nothing else in the
//             target is deleted.
//   kDelete   the target is the full tree (native snapshotter, or a mounted
//             overlay): `.wh.<name>` removes <name> recursively, and
//             `.wh..wh..opq` removes whatever its directory holds that this
//             layer did not write itself, so entries of this layer that come
//             before the marker in the tar survive it (as in containerd).
//
// A worked example. Layer 2 of an image deletes /etc/motd and replaces
// /var/cache wholesale; its tar holds `etc/.wh.motd`, `var/cache/`,
// `var/cache/.wh..wh..opq` and `var/cache/new`. Applied with kOverlay into an
// empty upperdir B, B holds `etc/motd` (a 0/0 character device), `var/cache`
// (with trusted.overlay.opaque=y) and `var/cache/new`; mounting overlay with
// lowerdir=B:A (A being layer 1's upperdir) shows no /etc/motd and only `new`
// in /var/cache. Applied with kDelete onto a copy of layer 1's tree, the same
// tar unlinks etc/motd and empties var/cache but for `new`. WriteDiff reverses
// either: from B alone (kOverlayUpper), or comparing the two full trees
// (kCompare); both give back a layer with the same changes.
//
// Safety. A layer is untrusted input. Every path in it is cleaned lexically
// (`..` stops at the root, a leading `/` is dropped, as containerd does) and
// its parent directory is opened with openat2(RESOLVE_IN_ROOT), so symlinks —
// planted by earlier entries, or present in the target from earlier layers —
// resolve as if the target were `/`. The last component is then created,
// replaced or removed with *at() calls on that parent and never followed. So
// `../x` and `/x` land at `<target>/x`; `evil/f` after `evil -> /tmp/d` lands
// at `<target>/tmp/d/f` (missing parents are created, through dangling
// symlinks too); a hard link's target is looked up the same way and must
// exist inside the target, else the layer fails with InvalidArgument; a
// whiteout deletes only inside the target.
//
// Threads: the functions are reentrant; one call per target at a time.
// ApplyLayer decompresses on a thread of its own (inflate is most of a gzip
// layer's cost), so its ByteSource is read from that thread, never from two
// at once.
#ifndef BERTH_IMAGE_LAYER_H_
#define BERTH_IMAGE_LAYER_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "snapshotter/mount.h"
#include "snapshotter/snapshotter.h"
#include "store/content_store.h"

namespace berth::image {

enum class Compression { kNone, kGzip, kZstd };

// The compression a layer media type names: OCI's
// `application/vnd.oci.image.layer.v1.tar[+gzip|+zstd]` and their
// `.nondistributable.` variants, Docker's
// `application/vnd.docker.image.rootfs.diff.tar[.gzip]` and
// `application/vnd.docker.image.rootfs.foreign.diff.tar.gzip`.
// InvalidArgument quoting any other media type.
absl::StatusOr<Compression> CompressionFromMediaType(absl::string_view media_type);

// The OCI media type of a layer compressed with `compression`.
absl::string_view LayerMediaType(Compression compression);

// The compression the first bytes of a stream show: gzip (1f 8b), zstd
// (28 b5 2f fd), else none (a plain tar). ApplyLayer trusts this over the
// media type, as containerd does.
Compression DetectCompression(absl::string_view prefix);

// Where a layer's bytes come from.
class ByteSource {
 public:
  virtual ~ByteSource() = default;
  // Reads up to `n` bytes into `buf`; 0 means the end. Must return in
  // bounded time: ApplyLayer waits for an outstanding Read before it
  // returns, even on error.
  virtual absl::StatusOr<size_t> Read(char* buf, size_t n) = 0;
};

// Reads a blob of the content store from its start. `reader` must outlive it.
std::unique_ptr<ByteSource> BlobSource(store::BlobReader& reader);

// Reads `data`, which must outlive it.
std::unique_ptr<ByteSource> StringSource(absl::string_view data);

// Where a layer's bytes go.
class ByteSink {
 public:
  virtual ~ByteSink() = default;
  virtual absl::Status Write(absl::string_view data) = 0;
};

// Appends to `*out`, which must outlive it.
std::unique_ptr<ByteSink> StringSink(std::string* out);

struct ApplyOptions {
  enum class Whiteouts { kOverlay, kDelete };
  Whiteouts whiteouts = Whiteouts::kOverlay;

  // Character and block devices are created only when true; otherwise they
  // are skipped with one log line each (an unprivileged unpack can still
  // proceed, and images rarely need device nodes: the runtime mounts /dev).
  // Fifos are always created. Whiteout devices (kOverlay) are not affected.
  bool allow_devices = true;

  // kOverlay only: the lower layers' trees, topmost first (may be empty).
  // A parent directory the layer does not list but must create in the
  // upperdir copies its mode, owner and times from the first lower layer
  // that has it, as containerd does, so the upperdir's copy does not hide
  // the lower directory's metadata behind a default 0755 root:root.
  std::vector<int> lower_dirfds;

  // The digest of the bytes given, when it is known (a blob of the content
  // store, verified when it was written): an uncompressed layer's diff ID
  // is that digest, so its bytes are not hashed again.
  std::string source_digest;
};

struct ApplyResult {
  std::string diff_id;  // sha256 of the uncompressed stream, "sha256:<hex>"
  int64_t size = 0;     // bytes of the uncompressed stream
  // What made the result depend on more than the layer's own bytes: a
  // whiteout or opaque marker (kDelete acts on the target's contents), or
  // a parent directory without an entry of its own (made after the lower
  // layers' one, or with defaults when none has it).
  bool has_whiteouts = false;
  bool implied_parents = false;
  // The layer has an entry for its root (`./`), which set the target's
  // owner, mode and times.
  bool root_entry = false;
};

// Reads a layer from `compressed` and applies it to the directory
// `target_dirfd` (an fd opened on the snapshot's directory), streaming: the
// bytes are decompressed, hashed and extracted as they are read, with
// bounded memory. The compression is detected from the stream's first bytes;
// `compression` (what the media type said) is only a hint, and a
// disagreement is logged.
//
// Entries: regular files (holes of sparse entries stay holes), directories
// (merged with an existing directory, replacing anything else), symlinks,
// hard links, devices and fifos; owner, mode (setuid, setgid and sticky
// included), mtime and atime (directories' after everything inside them),
// and xattrs from PAX headers (SCHILY.xattr.*). An existing path is replaced
// (a directory by another directory is merged instead). A hard link entry's
// own owner, mode and times are ignored: the inode has its target's.
// xattrs named trusted.overlay.* are dropped: they would steer overlayfs,
// which only the whiteout conversion may do. An xattr the filesystem does
// not support (or a security.* one it refuses) is skipped with a log line.
//
// After the end of the tar the rest of the stream is read too (the diff_id
// covers all of it). Then syncfs(2) flushes the target's filesystem once; no
// file is fsynced alone.
//
// Errors (what was extracted before stays, inside the target; the caller
// discards the snapshot):
//  - InvalidArgument: a corrupt or truncated gzip/zstd stream or tar,
//    naming the stage that failed and the entry when there is one; an entry
//    that cannot be applied safely: an empty name, a non-directory naming
//    the root, a hard link whose target (looked up inside the target) is
//    missing or a directory, a parent that is not a directory, a whiteout
//    of `.` or `..`.
//  - the source's own errors, unchanged.
//  - I/O errors by errno (ResourceExhausted for ENOSPC …), naming the entry.
absl::StatusOr<ApplyResult> ApplyLayer(ByteSource& compressed, Compression compression,
                                       int target_dirfd, const ApplyOptions& options);

// ApplyLayer onto what a snapshot's mounts show, as the Diff service's
// Apply does, with the tree MountedTree::Open(mounts, scratch, true) picks:
// into a single overlay mount's upperdir with overlay whiteouts and its
// lowerdirs as lower_dirfds, into a bind mount's source or a mount of them
// all with whiteouts that delete (`source_digest` as in ApplyOptions).
absl::StatusOr<ApplyResult> ApplyLayerToTree(ByteSource& compressed, Compression compression,
                                             const snapshotter::MountedTree& tree,
                                             absl::string_view source_digest = "");

enum class DiffMode {
  // `upper` is an overlayfs upperdir over `lower` (which is not read; pass
  // -1): every entry in it is a change; 0/0 character devices are deletions
  // and directories with trusted.overlay.opaque=y are opaque.
  // FailedPrecondition when it holds overlay redirects or metacopy files,
  // whose content lives in the lower layers.
  kOverlayUpper,
  // `lower` and `upper` are two full trees (e.g. mounted views; `lower` -1
  // is the empty tree). A path only in upper is added, one only in lower
  // deleted (`.wh.<name>`), one in both changed when its type, mode, owner,
  // device number, xattrs or symlink target differ, or — for
  // non-directories — its size or mtime; when both mtimes have no
  // sub-second part (a tree extracted from a tar) equal mtimes prove
  // nothing and the contents are compared, as containerd does.
  // Directories' mtimes are not compared.
  kCompare,
};

struct DiffResult {
  std::string diff_id;  // sha256 of the tar, "sha256:<hex>"
  int64_t uncompressed_size = 0;
  std::string digest;  // sha256 of the bytes written to the sink
  int64_t size = 0;
};

// Writes the layer that turns `lower` into `upper` to `out`, compressed with
// `compression`: zstd at level 3; gzip at zlib's level 1, not containerd's
// 6, since on image-like data level 6 wrote 24 MiB/s and level 1 54 MiB/s
// for a blob only 9% larger (image/layer_bench).
//
// The tar is PAX (ustar headers, extended headers only where needed), with
// entries in containerd's order: depth first, names within a directory in
// byte order, each directory before its contents, an opaque directory's
// `.wh..wh..opq` right after it. Files with several links in the layer
// become one file and hard links to it. Owners are numeric (no user or
// group names), mtimes are whole seconds as containerd writes them, atimes
// and ctimes are left out, xattrs are SCHILY.xattr.* records (trusted.overlay.*
// excepted): the same trees give the same bytes. A whiteout's mtime is the
// deleted device's (kOverlayUpper) or its parent directory's (kCompare).
// Symlinks are never followed; files are read through O_NOFOLLOW fds.
// Sockets are left out (tar cannot hold them), with a log line.
//
// Errors: I/O errors by errno naming the path; the sink's errors unchanged;
// Aborted when a file changes type or shrinks while it is read (a running
// container's upper): the tar would be wrong, the caller may retry.
absl::StatusOr<DiffResult> WriteDiff(int lower_dirfd, int upper_dirfd, DiffMode mode,
                                     Compression compression, ByteSink& out);

}  // namespace berth::image

#endif  // BERTH_IMAGE_LAYER_H_
