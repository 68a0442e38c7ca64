#include "base/random.h"

#include <sys/random.h>

#include "absl/strings/escaping.h"

namespace berth {

std::string RandomBytes(size_t n) {
  std::string bytes(n, '\0');
  size_t got = 0;
  while (got < n) {
    ssize_t read = ::getrandom(bytes.data() + got, n - got, 0);
    if (read > 0) got += static_cast<size_t>(read);
  }
  return bytes;
}

std::string RandomHex(size_t n) { return absl::BytesToHexString(RandomBytes(n)); }

}  // namespace berth
