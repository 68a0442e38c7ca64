// version_rtt SOCKET [CALLS]: the daemon's own cost of one request, without
// ctr's process start-up: CALLS Version round trips on one connection,
// printed as "median_us p99_us".
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "github.com/containerd/containerd/api/services/version/v1/version.grpc.pb.h"

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: version_rtt SOCKET [CALLS]\n");
    return 2;
  }
  const int calls = argc > 2 ? std::atoi(argv[2]) : 2000;
  auto channel = grpc::CreateChannel(std::string("unix:") + argv[1], grpc::InsecureChannelCredentials());
  auto stub = containerd::services::version::v1::Version::NewStub(channel);
  std::vector<double> micros;
  for (int i = -100; i < calls; ++i) {  // the first 100 warm the connection up
    grpc::ClientContext context;
    google::protobuf::Empty empty;
    containerd::services::version::v1::VersionResponse response;
    auto start = std::chrono::steady_clock::now();
    grpc::Status status = stub->Version(&context, empty, &response);
    auto end = std::chrono::steady_clock::now();
    if (!status.ok()) {
      std::fprintf(stderr, "version_rtt: %s\n", status.error_message().c_str());
      return 1;
    }
    if (i >= 0) micros.push_back(std::chrono::duration<double, std::micro>(end - start).count());
  }
  std::sort(micros.begin(), micros.end());
  std::printf("%.1f %.1f\n", micros[micros.size() / 2], micros[micros.size() * 99 / 100]);
  return 0;
}
