// Filesystem primitives for applying and diffing layers: tar paths cleaned
// lexically, openat2(RESOLVE_IN_ROOT), recursive removal and directory
// listing through fds, xattrs. Private to //image:layer.
//
// Nothing here takes a path that leaves its directory fd: names passed with a
// dirfd are single components, and multi-component paths are only ever
// resolved by OpenInRoot.
#ifndef BERTH_IMAGE_LAYER_FS_H_
#define BERTH_IMAGE_LAYER_FS_H_

#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "base/files.h"

namespace berth::image::layer_internal {

// How an OCI layer spells a deletion and an opaque directory, and how an
// overlayfs upperdir marks an opaque directory.
inline constexpr absl::string_view kWhiteoutPrefix = ".wh.";
inline constexpr absl::string_view kOpaqueMarker = ".wh..wh..opq";
inline constexpr char kOpaqueXattr[] = "trusted.overlay.opaque";

// `path` as a path relative to the root, into `*out`: components split on
// '/', empty ones and '.' dropped, '..' removing the one before it and never
// climbing above the root (so "../x", "/x" and "a/../../x" are all "x").
// "" is the root itself.
void CleanPath(absl::string_view path, std::string* out);
std::string CleanPath(absl::string_view path);

// A clean path's parent and last component: "a/b/c" → {"a/b", "c"},
// "c" → {"", "c"}. Both view `clean`.
std::pair<absl::string_view, absl::string_view> SplitParent(absl::string_view clean);

// `parent` + "/" + `name`, or `name` when parent is the root ("").
std::string JoinPath(absl::string_view parent, absl::string_view name);

// openat2(root, rel, flags | O_CLOEXEC) with RESOLVE_IN_ROOT and
// RESOLVE_NO_MAGICLINKS: symlinks and ".." resolve as if `root` were "/".
// `rel` "" opens the root itself. Returns the fd, or -errno.
int OpenInRoot(int root, const std::string& rel, int flags);

// Removes `name` from `dirfd`, with everything under it when it is a
// directory; never follows a symlink. OK when there is nothing to remove.
// `what` names the path in errors.
absl::Status RemoveAllAt(int dirfd, const char* name, absl::string_view what);

// xattrs that steer overlayfs (trusted.overlay.*): never content of a layer.
bool IsOverlayXattr(absl::string_view name);

// files::ReadXattrs without trusted.overlay.*: a layer's own xattrs.
absl::StatusOr<std::vector<files::Xattr>> ReadLayerXattrs(int fd, const std::string& path);

}  // namespace berth::image::layer_internal

#endif  // BERTH_IMAGE_LAYER_FS_H_
