#include "base/strings.h"

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"

namespace berth {

std::string Quote(absl::string_view s) {
  constexpr size_t kMaxShown = 256;
  if (s.size() > kMaxShown) {
    return absl::StrCat("\"", absl::CEscape(s.substr(0, kMaxShown)), "\"...");
  }
  return absl::StrCat("\"", absl::CEscape(s), "\"");
}

}  // namespace berth
