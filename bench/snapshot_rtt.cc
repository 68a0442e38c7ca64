// snapshot_rtt SOCKET [N]: the daemon's own cost of a snapshot's lifetime,
// without ctr's process start-up: on one connection, N Prepare calls on a
// committed parent, then N Remove calls, each timed. Prints
// "prepare_median_us remove_median_us".
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "github.com/containerd/containerd/api/services/leases/v1/leases.grpc.pb.h"
#include "github.com/containerd/containerd/api/services/snapshots/v1/snapshots.grpc.pb.h"

namespace {

namespace api = ::containerd::services::snapshots::v1;
using Clock = std::chrono::steady_clock;

void Check(const grpc::Status& status, const std::string& what) {
  if (status.ok()) return;
  std::fprintf(stderr, "snapshot_rtt: %s: %s\n", what.c_str(), status.error_message().c_str());
  std::exit(1);
}

// Every call under one lease: unheld snapshots are fair game for
// containerd's garbage collector.
void Namespaced(grpc::ClientContext& context) {
  context.AddMetadata("containerd-namespace", "snapshot-bench");
  context.AddMetadata("containerd-lease", "snapshot-bench");
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: snapshot_rtt SOCKET [N]\n");
    return 2;
  }
  const int n = argc > 2 ? std::atoi(argv[2]) : 200;
  auto channel =
      grpc::CreateChannel(std::string("unix:") + argv[1], grpc::InsecureChannelCredentials());
  auto stub = api::Snapshots::NewStub(channel);
  {
    auto leases = ::containerd::services::leases::v1::Leases::NewStub(channel);
    grpc::ClientContext context;
    context.AddMetadata("containerd-namespace", "snapshot-bench");
    ::containerd::services::leases::v1::CreateRequest request;
    request.set_id("snapshot-bench");
    ::containerd::services::leases::v1::CreateResponse response;
    Check(leases->Create(&context, request, &response), "create lease");
  }
  {
    grpc::ClientContext context;
    Namespaced(context);
    api::PrepareSnapshotRequest request;
    request.set_snapshotter("overlayfs");
    request.set_key("base");
    api::PrepareSnapshotResponse response;
    Check(stub->Prepare(&context, request, &response), "prepare base");
    grpc::ClientContext commit_context;
    Namespaced(commit_context);
    api::CommitSnapshotRequest commit;
    commit.set_snapshotter("overlayfs");
    commit.set_key("base");
    commit.set_name("layer");
    google::protobuf::Empty empty;
    Check(stub->Commit(&commit_context, commit, &empty), "commit layer");
  }
  std::vector<double> prepare_us, remove_us;
  for (int i = 0; i < n; ++i) {
    grpc::ClientContext context;
    Namespaced(context);
    api::PrepareSnapshotRequest request;
    request.set_snapshotter("overlayfs");
    request.set_key("k-" + std::to_string(i));
    request.set_parent("layer");
    api::PrepareSnapshotResponse response;
    auto start = Clock::now();
    Check(stub->Prepare(&context, request, &response), "prepare");
    prepare_us.push_back(std::chrono::duration<double, std::micro>(Clock::now() - start).count());
  }
  for (int i = 0; i < n; ++i) {
    grpc::ClientContext context;
    Namespaced(context);
    api::RemoveSnapshotRequest request;
    request.set_snapshotter("overlayfs");
    request.set_key("k-" + std::to_string(i));
    google::protobuf::Empty empty;
    auto start = Clock::now();
    Check(stub->Remove(&context, request, &empty), "remove");
    remove_us.push_back(std::chrono::duration<double, std::micro>(Clock::now() - start).count());
  }
  std::printf("%.0f %.0f\n", Median(prepare_us), Median(remove_us));
  return 0;
}
