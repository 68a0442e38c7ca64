// containerd-shim-berth-v1: see shim.h.
#include <unistd.h>

#include <cstdio>

#include "shim/shim.h"

int main(int argc, char** argv) {
  absl::StatusOr<berth::shim::Flags> flags = berth::shim::ParseFlags(argc, argv);
  if (!flags.ok()) {
    std::fprintf(stderr, "containerd-shim-berth-v1: %s\n",
                 std::string(flags.status().message()).c_str());
    return 2;
  }
  if (flags->action == "start") {
    // The serving shim is this binary, named by its real path (ps shows it).
    char self[4096];
    ssize_t n = ::readlink("/proc/self/exe", self, sizeof(self) - 1);
    if (n <= 0) {
      std::perror("containerd-shim-berth-v1: readlink /proc/self/exe");
      return 1;
    }
    self[n] = '\0';
    return berth::shim::Start(*flags, self);
  }
  if (flags->action == "delete") return berth::shim::Delete(*flags);
  return berth::shim::Serve(*flags);
}
