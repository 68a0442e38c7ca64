// SHA-256, the one digest algorithm of content addresses ("sha256:<hex>"),
// over OpenSSL's SHA256_* functions (SHA-NI where the CPU has it). OpenSSL 3
// calls them deprecated in favour of EVP, but they run the same code, cannot
// fail, and link alone: EVP brings its provider machinery, about a megabyte
// that every binary hashing anything (the shim) would map.
#ifndef BERTH_BASE_SHA256_H_
#define BERTH_BASE_SHA256_H_

#define OPENSSL_SUPPRESS_DEPRECATED
#include <openssl/sha.h>

#include <string>

#include "absl/strings/string_view.h"

namespace berth {

// A running hash; a copy goes on from the same state.
class Sha256 {
 public:
  Sha256();

  void Update(absl::string_view data);
  // Of everything so far; the running state is unchanged.
  std::string Hex() const;
  // "sha256:<hex>" of everything so far.
  std::string Digest() const;

 private:
  SHA256_CTX ctx_;
};

// "sha256:<hex>" of `data`.
std::string Sha256Digest(absl::string_view data);

}  // namespace berth

#endif  // BERTH_BASE_SHA256_H_
