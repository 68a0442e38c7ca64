// A task's cgroups and their statistics, as containerd's cgroups library
// reports them to `ctr task metrics`: io.containerd.cgroups.v1.Metrics on a
// host whose controllers are cgroup v1 (these "hybrid" machines too), and
// io.containerd.cgroups.v2.Metrics on a unified host.
//
// Each figure comes from the kernel's own file, under containerd's field
// names (memory.stat's `pgpgin` is `pg_pg_in`, cpuacct.stat's ticks become
// nanoseconds …). A controller the cgroup lacks leaves its part unset; a
// counter file the kernel lacks (memsw.* without swap accounting, kmem.* on
// newer kernels) leaves its field 0. A file that is there but unreadable or
// malformed is an error naming it.
#ifndef BERTH_SHIM_CGROUPS_H_
#define BERTH_SHIM_CGROUPS_H_

#include <sys/types.h>

#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "github.com/containerd/cgroups/stats/v1/metrics.pb.h"
#include "github.com/containerd/cgroups/v2/stats/metrics.pb.h"
#include "google/protobuf/any.pb.h"

namespace berth::shim {

// Where a process's cgroups are.
struct Cgroups {
  // cgroup v1: controller ("memory", "cpuacct" …) → the cgroup's directory.
  std::map<std::string, std::string> v1;
  // cgroup v2: the cgroup's directory ("" if the process has none).
  std::string v2;
};

// Where the hierarchies are mounted, the kernel's tables, as on every host;
// tests point them at a tree of their own.
struct CgroupHost {
  std::string root = "/sys/fs/cgroup";
  std::string partitions = "/proc/partitions";         // block device names
  std::string hugepages = "/sys/kernel/mm/hugepages";  // huge page sizes
};

// The cgroups of a /proc/<pid>/cgroup text. v1 directories are
// <root>/<controller><path>; the v2 one is <root><path> on a unified host
// and <root>/unified<path> on a hybrid one.
Cgroups ParseProcCgroup(absl::string_view text, const CgroupHost& host);

// ParseProcCgroup of process `pid`'s file. NotFound once it has gone.
absl::StatusOr<Cgroups> CgroupsOf(pid_t pid, const CgroupHost& host = {});

// The processes in the cgroup (its cgroup.procs), in the kernel's order.
// FailedPrecondition when the process was in no cgroup.
absl::StatusOr<std::vector<pid_t>> ProcessesIn(const Cgroups& cgroups);

// The statistics of the v1 controllers in `cgroups`.
absl::StatusOr<io::containerd::cgroups::v1::Metrics> StatsV1(const Cgroups& cgroups,
                                                             const CgroupHost& host = {});

// The statistics of the v2 cgroup at `dir`.
absl::StatusOr<io::containerd::cgroups::v2::Metrics> StatsV2(const std::string& dir,
                                                             const CgroupHost& host = {});

// What a Stats call answers: v1 metrics when the process has v1
// controllers, else v2, as an Any under containerd's type name.
// FailedPrecondition when it has neither.
absl::StatusOr<google::protobuf::Any> StatsOf(const Cgroups& cgroups, const CgroupHost& host = {});

// The oom_kill count of a cgroup v2 memory.events file; 0 if it cannot be
// read.
uint64_t OomKills(const std::string& memory_events);

}  // namespace berth::shim

#endif  // BERTH_SHIM_CGROUPS_H_
