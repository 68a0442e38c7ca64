// gc_pause SOCKET [BLOBS]: how long a garbage collection of BLOBS
// unreferenced blobs takes, and how long it makes a concurrent reader wait.
//
// Writes BLOBS small random blobs under one lease, then deletes the lease
// with `sync` (the call returns once the collection is done) while another
// thread calls Content.Info on a blob another lease keeps, back to back.
// Prints "gc_ms info_max_ms info_p99_ms info_calls remaining_blobs", the Info
// figures taken over calls that overlapped the collection.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "github.com/containerd/containerd/api/services/content/v1/content.grpc.pb.h"
#include "github.com/containerd/containerd/api/services/leases/v1/leases.grpc.pb.h"

namespace {

namespace content_api = ::containerd::services::content::v1;
namespace leases_api = ::containerd::services::leases::v1;
using Clock = std::chrono::steady_clock;

constexpr char kNamespace[] = "gc-bench";

void Fail(const std::string& what, const grpc::Status& status) {
  std::fprintf(stderr, "gc_pause: %s: %s\n", what.c_str(), status.error_message().c_str());
  std::exit(1);
}

void Namespaced(grpc::ClientContext& context, const std::string& lease = "") {
  context.AddMetadata("containerd-namespace", kNamespace);
  if (!lease.empty()) context.AddMetadata("containerd-lease", lease);
}

void CreateLease(leases_api::Leases::Stub& leases, const std::string& id) {
  grpc::ClientContext context;
  Namespaced(context);
  leases_api::CreateRequest request;
  request.set_id(id);
  leases_api::CreateResponse response;
  grpc::Status status = leases.Create(&context, request, &response);
  if (!status.ok()) Fail("create lease " + id, status);
}

// One Write stream: the data, then the commit.
void WriteBlob(content_api::Content::Stub& content, const std::string& lease,
               const std::string& ref, const std::string& data) {
  grpc::ClientContext context;
  Namespaced(context, lease);
  auto stream = content.Write(&context);
  content_api::WriteContentRequest request;
  content_api::WriteContentResponse response;
  request.set_action(content_api::WRITE);
  request.set_ref(ref);
  request.set_total(static_cast<int64_t>(data.size()));
  request.set_data(data);
  bool ok = stream->Write(request) && stream->Read(&response);
  request.clear_data();
  request.set_action(content_api::COMMIT);
  request.set_offset(static_cast<int64_t>(data.size()));
  ok = ok && stream->Write(request) && stream->Read(&response);
  stream->WritesDone();
  while (ok && stream->Read(&response)) {
  }
  grpc::Status status = stream->Finish();
  if (!status.ok()) Fail("write " + ref, status);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: gc_pause SOCKET [BLOBS]\n");
    return 2;
  }
  const int blobs = argc > 2 ? std::atoi(argv[2]) : 10000;
  auto channel =
      grpc::CreateChannel(std::string("unix:") + argv[1], grpc::InsecureChannelCredentials());
  auto content = content_api::Content::NewStub(channel);
  auto leases = leases_api::Leases::NewStub(channel);

  std::string random(static_cast<size_t>(blobs + 1) * 64, '\0');
  std::ifstream("/dev/urandom", std::ios::binary).read(random.data(), random.size());
  CreateLease(*leases, "probe");
  WriteBlob(*content, "probe", "probe", random.substr(0, 64));
  CreateLease(*leases, "bulk");
  for (int i = 1; i <= blobs; ++i) {
    WriteBlob(*content, "bulk", "blob-" + std::to_string(i), random.substr(i * 64, 64));
  }
  // The probe's digest, as the daemon names it.
  std::string probe_digest;
  {
    grpc::ClientContext context;
    Namespaced(context);
    content_api::ListContentRequest list;
    auto reader = content->List(&context, list);
    content_api::ListContentResponse page;
    std::vector<std::string> all;
    while (reader->Read(&page)) {
      for (const auto& info : page.info()) all.push_back(info.digest());
    }
    if (grpc::Status status = reader->Finish(); !status.ok()) Fail("list", status);
    if (all.size() != static_cast<size_t>(blobs + 1)) {
      std::fprintf(stderr, "gc_pause: %zu records, wanted %d\n", all.size(), blobs + 1);
      return 1;
    }
    grpc::ClientContext leased;
    Namespaced(leased);
    leases_api::ListResourcesRequest request;
    request.set_id("probe");
    leases_api::ListResourcesResponse resources;
    if (grpc::Status status = leases->ListResources(&leased, request, &resources); !status.ok()) {
      Fail("list probe's resources", status);
    }
    for (const auto& resource : resources.resources()) {
      if (resource.type() == "content") probe_digest = resource.id();
    }
  }

  std::atomic<bool> stop = false;
  struct Call {
    Clock::time_point start, end;
  };
  std::vector<Call> calls;
  calls.reserve(1 << 20);
  std::thread prober([&] {
    auto probe_stub = content_api::Content::NewStub(
        grpc::CreateChannel(std::string("unix:") + argv[1], grpc::InsecureChannelCredentials()));
    while (!stop) {
      grpc::ClientContext context;
      Namespaced(context);
      content_api::InfoRequest request;
      request.set_digest(probe_digest);
      content_api::InfoResponse response;
      Call call{Clock::now(), {}};
      grpc::Status status = probe_stub->Info(&context, request, &response);
      call.end = Clock::now();
      if (!status.ok()) Fail("info of the probe", status);
      calls.push_back(call);
    }
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  const Clock::time_point gc_start = Clock::now();
  {
    grpc::ClientContext context;
    Namespaced(context);
    leases_api::DeleteRequest request;
    request.set_id("bulk");
    request.set_sync(true);
    google::protobuf::Empty empty;
    if (grpc::Status status = leases->Delete(&context, request, &empty); !status.ok()) {
      Fail("delete lease bulk", status);
    }
  }
  const Clock::time_point gc_end = Clock::now();
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  stop = true;
  prober.join();

  std::vector<double> during;
  for (const Call& call : calls) {
    if (call.end >= gc_start && call.start <= gc_end) {
      during.push_back(std::chrono::duration<double, std::milli>(call.end - call.start).count());
    }
  }
  std::sort(during.begin(), during.end());
  int remaining = 0;
  {
    grpc::ClientContext context;
    Namespaced(context);
    auto reader = content->List(&context, content_api::ListContentRequest());
    content_api::ListContentResponse page;
    while (reader->Read(&page)) remaining += page.info_size();
    if (grpc::Status status = reader->Finish(); !status.ok()) Fail("list", status);
  }
  std::printf("%.1f %.2f %.2f %zu %d\n",
              std::chrono::duration<double, std::milli>(gc_end - gc_start).count(),
              during.empty() ? 0.0 : during.back(),
              during.empty() ? 0.0 : during[during.size() * 99 / 100], during.size(), remaining);
  return 0;
}
