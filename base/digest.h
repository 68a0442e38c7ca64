// The one validator for content digests, which name blobs and become path
// components of the content store.
//
// Berth stores sha256 only, as containerd does by default: a digest is
// `sha256:` followed by 64 lowercase hex digits. Another well-formed
// algorithm (`sha512:…`) is refused as unsupported, anything else as invalid.
#ifndef BERTH_BASE_DIGEST_H_
#define BERTH_BASE_DIGEST_H_

#include <cstddef>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace berth::digest {

inline constexpr absl::string_view kSha256Prefix = "sha256:";
inline constexpr size_t kSha256HexLength = 64;

// True for exactly 64 lowercase hex digits: a sha256 digest's encoded part.
bool IsSha256Hex(absl::string_view hex);

// OK for `sha256:<64 lowercase hex>`; otherwise InvalidArgument quoting it.
absl::Status Validate(absl::string_view digest);

}  // namespace berth::digest

#endif  // BERTH_BASE_DIGEST_H_
