// Random names: lease ids, ingest refs, UUIDs a client did not give.
#ifndef BERTH_BASE_RANDOM_H_
#define BERTH_BASE_RANDOM_H_

#include <cstddef>
#include <string>

namespace berth {

// `n` bytes from the kernel's CSPRNG (getrandom, retried until filled).
std::string RandomBytes(size_t n);

// `n` random bytes as 2n lowercase hex digits.
std::string RandomHex(size_t n);

}  // namespace berth

#endif  // BERTH_BASE_RANDOM_H_
