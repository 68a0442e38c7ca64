#include "store/labels.h"

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"

namespace berth::store {
namespace {

// A key can be 4 KiB; a message quotes enough of it to find it.
std::string QuoteKey(absl::string_view key) {
  constexpr size_t kShown = 64;
  if (key.size() <= kShown) return absl::StrCat("\"", absl::CEscape(key), "\"");
  return absl::StrCat("\"", absl::CEscape(key.substr(0, kShown)), "…\"");
}

}  // namespace

absl::Status ValidateLabel(absl::string_view key, absl::string_view value) {
  if (key.empty()) return absl::InvalidArgumentError("label key must not be empty");
  if (key.size() + value.size() > kMaxLabelSize) {
    return absl::InvalidArgumentError(
        absl::StrCat("label ", QuoteKey(key), ": key and value are ", key.size() + value.size(),
                     " bytes, more than the maximum ", kMaxLabelSize));
  }
  return absl::OkStatus();
}

absl::Status ValidateLabels(const std::map<std::string, std::string>& labels) {
  for (const auto& [key, value] : labels) {
    if (absl::Status status = ValidateLabel(key, value); !status.ok()) return status;
  }
  return absl::OkStatus();
}

}  // namespace berth::store
