// Content calls the integration tests make, as containerd's Go client makes
// them: a namespaced context, the Write stream, Info.
#ifndef BERTH_TESTS_CONTENT_CLIENT_H_
#define BERTH_TESTS_CONTENT_CLIENT_H_

#include <memory>
#include <string>

#include <grpcpp/grpcpp.h>

#include "tests/harness.h"

namespace berth::testing {

// Random bytes, different each call.
std::string RandomBytes(size_t n);

// "sha256:<hex>" of `bytes`, computed by coreutils' sha256sum.
std::string Sha256(const std::string& bytes);

// A context for namespace `ns` (and `lease`, when given) with a deadline, so
// that a peer that never answers fails the test instead of hanging it.
std::unique_ptr<grpc::ClientContext> NamespacedContext(const std::string& ns,
                                                       const std::string& lease = "");

// Writes `data` as ingest `ref`, resuming at the offset Stat reports, in
// 1 MiB chunks, then commits it with `expected` (empty: no check).
grpc::Status WriteBlob(const Daemon& daemon, const std::string& ns, const std::string& lease,
                       const std::string& ref, const std::string& data,
                       const std::string& expected = "");

// As WriteBlob, but ends the stream without committing: the ingest stays.
grpc::Status WriteWithoutCommit(const Daemon& daemon, const std::string& ns,
                                const std::string& lease, const std::string& ref,
                                const std::string& data);

// Content.Info of `digest` in namespace `ns`.
grpc::Status ContentInfo(const Daemon& daemon, const std::string& ns, const std::string& digest);

}  // namespace berth::testing

#endif  // BERTH_TESTS_CONTENT_CLIENT_H_
