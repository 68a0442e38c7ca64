// The one validator for identifiers that name objects and become path
// components: namespaces, container ids, snapshot keys, lease ids …
//
// An identifier is one or more runs of ASCII letters and digits joined by
// single separators `.`, `_` or `-`, at most 76 bytes long — containerd's
// `identifiers.Validate`, regex `^[A-Za-z0-9]+(?:[._-](?:[A-Za-z0-9]+))*$`.
// Mixed case is allowed. So `default`, `k8s.io` and `My_Ns-2` are identifiers;
// ``, `.hidden`, `a..b`, `a/b`, `a b` and `..` are not, which is what makes an
// identifier safe to join onto a directory: it can be neither `.` nor `..`,
// nor hold a `/`, a NUL or a space.
#ifndef BERTH_BASE_IDENTIFIERS_H_
#define BERTH_BASE_IDENTIFIERS_H_

#include <cstddef>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace berth::identifiers {

inline constexpr size_t kMaxLength = 76;

// OK if `id` is an identifier; otherwise InvalidArgument quoting it (escaped,
// so a NUL or newline cannot break a log line), and saying which rule failed.
absl::Status Validate(absl::string_view id);

}  // namespace berth::identifiers

#endif  // BERTH_BASE_IDENTIFIERS_H_
