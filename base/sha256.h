// SHA-256, the one digest algorithm of content addresses ("sha256:<hex>"),
// over OpenSSL's EVP interface (SHA-NI where the CPU has it).
#ifndef BERTH_BASE_SHA256_H_
#define BERTH_BASE_SHA256_H_

#include <openssl/evp.h>

#include <memory>
#include <string>

#include "absl/strings/string_view.h"

namespace berth {

// A running hash. Movable, not copyable.
class Sha256 {
 public:
  Sha256();

  void Update(absl::string_view data);
  // Of everything so far; the running state is unchanged.
  std::string Hex() const;
  // "sha256:<hex>" of everything so far.
  std::string Digest() const;

 private:
  struct Free {
    void operator()(EVP_MD_CTX* ctx) const { EVP_MD_CTX_free(ctx); }
  };
  std::unique_ptr<EVP_MD_CTX, Free> ctx_;
};

// "sha256:<hex>" of `data`.
std::string Sha256Digest(absl::string_view data);

}  // namespace berth

#endif  // BERTH_BASE_SHA256_H_
