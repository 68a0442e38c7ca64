#include "tests/content_client.h"

#include <chrono>
#include <fstream>
#include <optional>

#include "github.com/containerd/containerd/api/services/content/v1/content.grpc.pb.h"

namespace berth::testing {
namespace {

namespace content_api = ::containerd::services::content::v1;

// The Write stream: Stat, writes from the offset reached, and a commit
// with `expected` when it is given.
grpc::Status Ingest(const Daemon& daemon, const std::string& ns, const std::string& lease,
                    const std::string& ref, const std::string& data,
                    const std::optional<std::string>& expected) {
  auto stub = content_api::Content::NewStub(Connect(daemon));
  auto context = NamespacedContext(ns, lease);
  auto stream = stub->Write(context.get());
  content_api::WriteContentRequest request;
  content_api::WriteContentResponse response;
  request.set_action(content_api::STAT);
  request.set_ref(ref);
  request.set_total(static_cast<int64_t>(data.size()));
  if (!stream->Write(request) || !stream->Read(&response)) return stream->Finish();
  int64_t offset = response.offset();
  constexpr size_t kChunk = 1 << 20;
  while (offset < static_cast<int64_t>(data.size())) {
    request.Clear();
    request.set_action(content_api::WRITE);
    request.set_ref(ref);
    request.set_offset(offset);
    request.set_data(data.substr(offset, kChunk));
    if (!stream->Write(request) || !stream->Read(&response)) return stream->Finish();
    offset = response.offset();
  }
  if (expected.has_value()) {
    request.Clear();
    request.set_action(content_api::COMMIT);
    request.set_ref(ref);
    request.set_offset(offset);
    request.set_total(static_cast<int64_t>(data.size()));
    request.set_expected(*expected);
    if (!stream->Write(request) || !stream->Read(&response)) return stream->Finish();
  }
  stream->WritesDone();
  // containerd answers a commit that resumed an ingest twice: drain what is
  // left, since Finish waits for every message to be read.
  while (stream->Read(&response)) {
  }
  return stream->Finish();
}

}  // namespace

std::string RandomBytes(size_t n) {
  std::string bytes(n, '\0');
  std::ifstream("/dev/urandom", std::ios::binary).read(bytes.data(), n);
  return bytes;
}

std::string Sha256(const std::string& bytes) {
  CommandResult r = RunCommand({"sha256sum"}, absl::Seconds(60), bytes);
  return "sha256:" + r.out.substr(0, 64);
}

std::unique_ptr<grpc::ClientContext> NamespacedContext(const std::string& ns,
                                                       const std::string& lease) {
  auto context = std::make_unique<grpc::ClientContext>();
  context->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
  context->AddMetadata("containerd-namespace", ns);
  if (!lease.empty()) context->AddMetadata("containerd-lease", lease);
  return context;
}

grpc::Status WriteBlob(const Daemon& daemon, const std::string& ns, const std::string& lease,
                       const std::string& ref, const std::string& data,
                       const std::string& expected) {
  return Ingest(daemon, ns, lease, ref, data, expected);
}

grpc::Status WriteWithoutCommit(const Daemon& daemon, const std::string& ns,
                                const std::string& lease, const std::string& ref,
                                const std::string& data) {
  return Ingest(daemon, ns, lease, ref, data, std::nullopt);
}

grpc::Status ContentInfo(const Daemon& daemon, const std::string& ns, const std::string& digest) {
  auto stub = content_api::Content::NewStub(Connect(daemon));
  content_api::InfoRequest request;
  request.set_digest(digest);
  content_api::InfoResponse response;
  return stub->Info(NamespacedContext(ns).get(), request, &response);
}

}  // namespace berth::testing
