// The shim's cgroup reading: /proc/<pid>/cgroup, and statistics from trees
// the tests write as the kernel lays them out (v1, v2 and hybrid), then
// from this host's own cgroups.
#include "shim/cgroups.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cstdint>
#include <limits>
#include <string>

#include "absl/strings/str_cat.h"
#include "base/files.h"
#include "base/status_matchers.h"
#include "base/temp_dir.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace berth::shim {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

class CgroupsTest : public ::testing::Test {
 protected:
  CgroupsTest() {
    host_.root = dir_.path() + "/cgroup";
    host_.partitions = dir_.path() + "/partitions";
    host_.hugepages = dir_.path() + "/hugepages";
  }

  // Writes `text` to `path` under the temporary directory, making its
  // directories.
  void Write(const std::string& path, const std::string& text) {
    const std::string full = dir_.path() + "/" + path;
    ASSERT_THAT(files::MakeDirectories(full.substr(0, full.rfind('/')), 0755), IsOk());
    ASSERT_THAT(files::WriteFile(full, text), IsOk());
  }

  TempDir dir_;
  CgroupHost host_;
};

constexpr char kHybridProcCgroup[] =
    "12:pids:/default/c1\n"
    "4:cpu,cpuacct:/default/c1\n"
    "3:memory:/default/c1\n"
    "1:name=systemd:/system.slice/containerd.service\n"
    "0::/default/c1\n";

TEST_F(CgroupsTest, ProcCgroupOfAHybridHost) {
  Cgroups cgroups = ParseProcCgroup(kHybridProcCgroup, host_);
  const std::string& root = host_.root;
  EXPECT_THAT(cgroups.v1, ElementsAre(std::pair{"cpu", root + "/cpu/default/c1"},
                                      std::pair{"cpuacct", root + "/cpuacct/default/c1"},
                                      std::pair{"memory", root + "/memory/default/c1"},
                                      std::pair{"pids", root + "/pids/default/c1"}));
  EXPECT_EQ(cgroups.v2, root + "/unified/default/c1");
}

TEST_F(CgroupsTest, ProcCgroupOfAUnifiedHost) {
  Write("cgroup/cgroup.controllers", "cpu memory pids\n");
  Cgroups cgroups = ParseProcCgroup("0::/default/c1\n", host_);
  EXPECT_THAT(cgroups.v1, IsEmpty());
  EXPECT_EQ(cgroups.v2, host_.root + "/default/c1");
}

TEST_F(CgroupsTest, StatsV1ReadEachControllerUnderContainerdsNames) {
  Write("partitions", "major minor  #blocks  name\n\n   8        0   1048576 sda\n");
  Write("hugepages/hugepages-2048kB/nr_hugepages", "0\n");
  Write("hugepages/hugepages-1048576kB/nr_hugepages", "0\n");
  Write("cgroup/pids/c1/pids.current", "3\n");
  Write("cgroup/pids/c1/pids.max", "max\n");
  Write("cgroup/cpuacct/c1/cpuacct.usage", "123456789\n");
  Write("cgroup/cpuacct/c1/cpuacct.usage_percpu", "100000000 23456789 \n");
  Write("cgroup/cpuacct/c1/cpuacct.stat", "user 3\nsystem 4\n");
  Write("cgroup/cpu/c1/cpu.stat", "nr_periods 10\nnr_throttled 2\nthrottled_time 5000\n");
  Write("cgroup/memory/c1/memory.stat",
        "cache 4096\nrss 8192\npgpgin 7\nhierarchical_memsw_limit 9\ntotal_cache 4096\n"
        "total_rss_huge 0\nunknown_new_counter 1\n");
  Write("cgroup/memory/c1/memory.usage_in_bytes", "12288\n");
  Write("cgroup/memory/c1/memory.max_usage_in_bytes", "20480\n");
  Write("cgroup/memory/c1/memory.limit_in_bytes", "67108864\n");
  Write("cgroup/memory/c1/memory.failcnt", "1\n");
  // No memsw.* (swap accounting off), no kmem.tcp.*: zeros.
  Write("cgroup/memory/c1/memory.kmem.usage_in_bytes", "512\n");
  Write("cgroup/memory/c1/memory.oom_control", "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n");
  // No CFQ statistics (empty files): the throttling layer's.
  Write("cgroup/blkio/c1/blkio.io_serviced_recursive", "Total 0\n");
  Write("cgroup/blkio/c1/blkio.throttle.io_service_bytes",
        "8:0 Read 4096\n8:0 Write 512\n8:16 Read 1\nTotal 4609\n");
  Write("cgroup/blkio/c1/blkio.throttle.io_serviced", "8:0 Read 2\nTotal 2\n");
  Write("cgroup/hugetlb/c1/hugetlb.2MB.usage_in_bytes", "2097152\n");
  Write("cgroup/hugetlb/c1/hugetlb.1GB.failcnt", "5\n");
  Cgroups cgroups;
  for (const char* controller : {"pids", "cpu", "cpuacct", "memory", "blkio", "hugetlb"}) {
    cgroups.v1[controller] = absl::StrCat(host_.root, "/", controller, "/c1");
  }

  absl::StatusOr<io::containerd::cgroups::v1::Metrics> metrics = StatsV1(cgroups, host_);
  ASSERT_THAT(metrics, IsOk());
  EXPECT_EQ(metrics->pids().current(), 3u);
  EXPECT_EQ(metrics->pids().limit(), 0u) << "max";
  const auto& cpu = metrics->cpu();
  EXPECT_EQ(cpu.usage().total(), 123456789u);
  EXPECT_THAT(cpu.usage().per_cpu(), ElementsAre(100000000u, 23456789u));
  const uint64_t tick = 1'000'000'000 / ::sysconf(_SC_CLK_TCK);
  EXPECT_EQ(cpu.usage().user(), 3 * tick);
  EXPECT_EQ(cpu.usage().kernel(), 4 * tick);
  EXPECT_EQ(cpu.throttling().periods(), 10u);
  EXPECT_EQ(cpu.throttling().throttled_periods(), 2u);
  EXPECT_EQ(cpu.throttling().throttled_time(), 5000u);
  const auto& memory = metrics->memory();
  EXPECT_EQ(memory.cache(), 4096u);
  EXPECT_EQ(memory.rss(), 8192u);
  EXPECT_EQ(memory.pg_pg_in(), 7u);
  EXPECT_EQ(memory.hierarchical_swap_limit(), 9u);
  EXPECT_EQ(memory.total_cache(), 4096u);
  EXPECT_EQ(memory.usage().usage(), 12288u);
  EXPECT_EQ(memory.usage().max(), 20480u);
  EXPECT_EQ(memory.usage().limit(), 67108864u);
  EXPECT_EQ(memory.usage().failcnt(), 1u);
  EXPECT_EQ(memory.swap().usage(), 0u);
  EXPECT_EQ(memory.kernel().usage(), 512u);
  EXPECT_EQ(metrics->memory_oom_control().oom_kill(), 2u);
  const auto& blkio = metrics->blkio();
  ASSERT_EQ(blkio.io_service_bytes_recursive_size(), 3);
  EXPECT_EQ(blkio.io_service_bytes_recursive(0).device(), "/dev/sda");
  EXPECT_EQ(blkio.io_service_bytes_recursive(0).op(), "Read");
  EXPECT_EQ(blkio.io_service_bytes_recursive(0).major(), 8u);
  EXPECT_EQ(blkio.io_service_bytes_recursive(0).value(), 4096u);
  EXPECT_EQ(blkio.io_service_bytes_recursive(2).device(), "") << "8:16 is no partition";
  ASSERT_EQ(blkio.io_serviced_recursive_size(), 1);
  EXPECT_EQ(blkio.io_serviced_recursive(0).value(), 2u);
  ASSERT_EQ(metrics->hugetlb_size(), 2);
  // In the directory's order: the sizes as containerd writes them.
  for (const auto& hugetlb : metrics->hugetlb()) {
    if (hugetlb.pagesize() == "2MB") {
      EXPECT_EQ(hugetlb.usage(), 2097152u);
    } else {
      EXPECT_EQ(hugetlb.pagesize(), "1GB");
      EXPECT_EQ(hugetlb.failcnt(), 5u);
    }
  }
  EXPECT_FALSE(metrics->has_rdma()) << "no rdma controller";
}

TEST_F(CgroupsTest, StatsV2ReadTheUnifiedFiles) {
  Write("partitions", "major minor  #blocks  name\n");
  Write("hugepages/hugepages-2048kB/nr_hugepages", "0\n");
  Write("cgroup/c1/pids.current", "2\n");
  Write("cgroup/c1/pids.max", "max\n");
  Write("cgroup/c1/cpu.stat",
        "usage_usec 1000\nuser_usec 600\nsystem_usec 400\nnr_periods 0\nnr_throttled 0\n"
        "throttled_usec 0\n");
  Write("cgroup/c1/memory.stat", "anon 4096\nfile 8192\npgfault 11\nworkingset_refault_anon 3\n");
  Write("cgroup/c1/memory.current", "16384\n");
  Write("cgroup/c1/memory.max", "max\n");
  Write("cgroup/c1/memory.swap.current", "0\n");
  Write("cgroup/c1/memory.swap.max", "1048576\n");
  Write("cgroup/c1/memory.events", "low 0\nhigh 1\nmax 2\noom 3\noom_kill 4\n");
  Write("cgroup/c1/io.stat", "8:0 rbytes=4096 wbytes=512 rios=2 wios=1 dbytes=0 dios=0\n");
  Write("cgroup/c1/rdma.current", "mlx4_0 hca_handle=2 hca_object=2000\n");
  Write("cgroup/c1/hugetlb.2MB.current", "0\n");
  Write("cgroup/c1/hugetlb.2MB.max", "max\n");

  absl::StatusOr<io::containerd::cgroups::v2::Metrics> metrics = StatsV2(host_.root + "/c1", host_);
  ASSERT_THAT(metrics, IsOk());
  EXPECT_EQ(metrics->pids().current(), 2u);
  EXPECT_EQ(metrics->pids().limit(), 0u) << "max";
  EXPECT_EQ(metrics->cpu().usage_usec(), 1000u);
  EXPECT_EQ(metrics->cpu().system_usec(), 400u);
  EXPECT_EQ(metrics->memory().anon(), 4096u);
  EXPECT_EQ(metrics->memory().file(), 8192u);
  EXPECT_EQ(metrics->memory().pgfault(), 11u);
  EXPECT_EQ(metrics->memory().usage(), 16384u);
  EXPECT_EQ(metrics->memory().usage_limit(), std::numeric_limits<uint64_t>::max()) << "max";
  EXPECT_EQ(metrics->memory().swap_limit(), 1048576u);
  EXPECT_EQ(metrics->memory_events().oom_kill(), 4u);
  ASSERT_EQ(metrics->io().usage_size(), 1);
  EXPECT_EQ(metrics->io().usage(0).major(), 8u);
  EXPECT_EQ(metrics->io().usage(0).rbytes(), 4096u);
  EXPECT_EQ(metrics->io().usage(0).wios(), 1u);
  ASSERT_EQ(metrics->rdma().current_size(), 1);
  EXPECT_EQ(metrics->rdma().current(0).device(), "mlx4_0");
  EXPECT_EQ(metrics->rdma().current(0).hca_objects(), 2000u);
  ASSERT_EQ(metrics->hugetlb_size(), 1);
  EXPECT_EQ(metrics->hugetlb(0).pagesize(), "2MB");
  EXPECT_EQ(metrics->hugetlb(0).max(), std::numeric_limits<uint64_t>::max());
}

// A file that is there but not what the kernel writes is an error naming
// it.
TEST_F(CgroupsTest, MalformedFilesAreErrorsNamingThem) {
  Write("partitions", "");
  Write("cgroup/memory/c1/memory.stat", "cache lots\n");
  Cgroups cgroups;
  cgroups.v1["memory"] = host_.root + "/memory/c1";
  absl::StatusOr<io::containerd::cgroups::v1::Metrics> metrics = StatsV1(cgroups, host_);
  EXPECT_THAT(metrics, StatusIs(absl::StatusCode::kDataLoss));
  EXPECT_THAT(std::string(metrics.status().message()),
              ::testing::HasSubstr(host_.root + "/memory/c1/memory.stat"));

  Write("cgroup/pids/c1/cgroup.procs", "1\nnot-a-pid\n");
  cgroups.v1 = {{"pids", host_.root + "/pids/c1"}};
  EXPECT_THAT(ProcessesIn(cgroups), StatusIs(absl::StatusCode::kDataLoss));
  EXPECT_THAT(StatsOf(Cgroups{}, host_), StatusIs(absl::StatusCode::kFailedPrecondition));
}

TEST_F(CgroupsTest, ProcessesInPrefersThePidsHierarchy) {
  Write("cgroup/memory/c1/cgroup.procs", "");
  Write("cgroup/pids/c1/cgroup.procs", "10\n12\n11\n");
  Cgroups cgroups;
  cgroups.v1 = {{"memory", host_.root + "/memory/c1"}, {"pids", host_.root + "/pids/c1"}};
  absl::StatusOr<std::vector<pid_t>> pids = ProcessesIn(cgroups);
  ASSERT_THAT(pids, IsOk());
  EXPECT_THAT(*pids, ElementsAre(10, 12, 11));
}

// This process's own cgroups, as the kernel has them here: v1 metrics
// with its memory in use; it is among the processes of its cgroup.
TEST(HostCgroupsTest, ThisProcessHasStats) {
  absl::StatusOr<Cgroups> cgroups = CgroupsOf(::getpid());
  ASSERT_THAT(cgroups, IsOk());
  absl::StatusOr<google::protobuf::Any> stats = StatsOf(*cgroups);
  ASSERT_THAT(stats, IsOk());
  if (!cgroups->v1.empty()) {
    EXPECT_EQ(stats->type_url(), "io.containerd.cgroups.v1.Metrics");
    io::containerd::cgroups::v1::Metrics metrics;
    ASSERT_TRUE(metrics.ParseFromString(stats->value()));
    EXPECT_GT(metrics.memory().usage().usage(), 0u);
  } else {
    EXPECT_EQ(stats->type_url(), "io.containerd.cgroups.v2.Metrics");
  }
  absl::StatusOr<std::vector<pid_t>> pids = ProcessesIn(*cgroups);
  ASSERT_THAT(pids, IsOk());
  EXPECT_THAT(*pids, ::testing::Contains(::getpid()));
}

}  // namespace
}  // namespace berth::shim
