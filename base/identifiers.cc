#include "base/identifiers.h"

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"

namespace berth::identifiers {
namespace {

bool IsSeparator(char c) { return c == '.' || c == '_' || c == '-'; }

// The regex, spelled out: every character is an ASCII alphanumeric or a
// separator, and a separator sits between two alphanumerics (so not first,
// not last, never two in a row).
bool Matches(absl::string_view id) {
  bool previous_was_separator = true;  // a separator may not come first
  for (char c : id) {
    if (IsSeparator(c)) {
      if (previous_was_separator) return false;
      previous_was_separator = true;
    } else if (absl::ascii_isalnum(static_cast<unsigned char>(c))) {
      previous_was_separator = false;
    } else {
      return false;
    }
  }
  return !previous_was_separator;
}

}  // namespace

absl::Status Validate(absl::string_view id) {
  if (id.empty()) return absl::InvalidArgumentError("identifier must not be empty");
  if (id.size() > kMaxLength) {
    return absl::InvalidArgumentError(absl::StrCat("identifier \"", absl::CEscape(id),
                                                   "\" greater than maximum length (", kMaxLength,
                                                   " characters)"));
  }
  if (!Matches(id)) {
    return absl::InvalidArgumentError(
        absl::StrCat("identifier \"", absl::CEscape(id),
                     "\" must match ^[A-Za-z0-9]+(?:[._-](?:[A-Za-z0-9]+))*$"));
  }
  return absl::OkStatus();
}

}  // namespace berth::identifiers
