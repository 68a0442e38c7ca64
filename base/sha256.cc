#include "base/sha256.h"

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "base/digest.h"

namespace berth {

Sha256::Sha256() { SHA256_Init(&ctx_); }

void Sha256::Update(absl::string_view data) { SHA256_Update(&ctx_, data.data(), data.size()); }

std::string Sha256::Hex() const {
  SHA256_CTX copy = ctx_;
  unsigned char out[SHA256_DIGEST_LENGTH];
  SHA256_Final(out, &copy);
  return absl::BytesToHexString(absl::string_view(reinterpret_cast<const char*>(out), sizeof out));
}

std::string Sha256::Digest() const { return absl::StrCat(digest::kSha256Prefix, Hex()); }

std::string Sha256Digest(absl::string_view data) {
  Sha256 hash;
  hash.Update(data);
  return hash.Digest();
}

}  // namespace berth
