#include "base/sha256.h"

#include <cstdlib>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "base/digest.h"
#include "base/log.h"

namespace berth {
namespace {

// Only allocation failure gets here; like std::bad_alloc, not recoverable.
[[noreturn]] void Die(absl::string_view call) {
  log::Error("OpenSSL SHA-256 failed", {{"call", call}});
  std::abort();
}

// Fetched once: OpenSSL 3 would otherwise look the algorithm up in its
// provider tables at every init.
const EVP_MD* Algorithm() {
  static const EVP_MD* const md = EVP_MD_fetch(nullptr, "SHA256", nullptr);
  return md;
}

}  // namespace

Sha256::Sha256() : ctx_(EVP_MD_CTX_new()) {
  if (ctx_ == nullptr || EVP_DigestInit_ex(ctx_.get(), Algorithm(), nullptr) != 1) {
    Die("EVP_DigestInit_ex");
  }
}

void Sha256::Update(absl::string_view data) {
  if (EVP_DigestUpdate(ctx_.get(), data.data(), data.size()) != 1) Die("EVP_DigestUpdate");
}

std::string Sha256::Hex() const {
  std::unique_ptr<EVP_MD_CTX, Free> copy(EVP_MD_CTX_new());
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (copy == nullptr || EVP_MD_CTX_copy_ex(copy.get(), ctx_.get()) != 1 ||
      EVP_DigestFinal_ex(copy.get(), out, &len) != 1) {
    Die("EVP_DigestFinal_ex");
  }
  return absl::BytesToHexString(absl::string_view(reinterpret_cast<const char*>(out), len));
}

std::string Sha256::Digest() const { return absl::StrCat(digest::kSha256Prefix, Hex()); }

std::string Sha256Digest(absl::string_view data) {
  Sha256 hash;
  hash.Update(data);
  return hash.Digest();
}

}  // namespace berth
