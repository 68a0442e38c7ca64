#include "base/digest.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "base/strings.h"

namespace berth::digest {
namespace {

bool IsLowerHex(absl::string_view s) {
  return std::all_of(s.begin(), s.end(),
                     [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

}  // namespace

bool IsSha256Hex(absl::string_view hex) {
  return hex.size() == kSha256HexLength && IsLowerHex(hex);
}

absl::Status Validate(absl::string_view digest) {
  size_t colon = digest.find(':');
  if (colon == absl::string_view::npos || colon == 0) {
    return absl::InvalidArgumentError(absl::StrCat("invalid digest ", Quote(digest)));
  }
  absl::string_view algorithm = digest.substr(0, colon);
  absl::string_view encoded = digest.substr(colon + 1);
  if (algorithm != "sha256") {
    bool well_formed =
        std::all_of(algorithm.begin(), algorithm.end(),
                    [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }) &&
        !encoded.empty() && IsLowerHex(encoded);
    return absl::InvalidArgumentError(absl::StrCat(
        well_formed ? "unsupported digest algorithm " : "invalid digest ", Quote(digest)));
  }
  if (!IsSha256Hex(encoded)) {
    return absl::InvalidArgumentError(absl::StrCat("invalid digest ", Quote(digest),
                                                   ": want sha256: and 64 lowercase hex digits"));
  }
  return absl::OkStatus();
}

}  // namespace berth::digest
