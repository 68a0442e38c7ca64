// How a client's string appears inside an error message or a log line.
#ifndef BERTH_BASE_STRINGS_H_
#define BERTH_BASE_STRINGS_H_

#include <string>

#include "absl/strings/string_view.h"

namespace berth {

// `s` in double quotes, C-escaped (a NUL or newline cannot break a message)
// and cut after 256 bytes with a trailing "..." (refs and keys may be long).
std::string Quote(absl::string_view s);

}  // namespace berth

#endif  // BERTH_BASE_STRINGS_H_
