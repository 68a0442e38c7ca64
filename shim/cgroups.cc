#include "shim/cgroups.h"

#include <fcntl.h>
#include <unistd.h>

#include <cstdint>
#include <initializer_list>
#include <iterator>
#include <limits>
#include <optional>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "base/files.h"
#include "base/status.h"
#include "base/strings.h"
#include "base/unique_fd.h"
#include "proto/any.h"

namespace berth::shim {
namespace {

namespace v1 = ::io::containerd::cgroups::v1;
namespace v2 = ::io::containerd::cgroups::v2;

// How a file's "max" (no limit) reads: containerd's library takes it as 0
// in pids.max and as the largest number in memory.max and hugetlb's max.
enum class Max { kZero, kAll };

uint64_t MaxValue(Max max) { return max == Max::kZero ? 0 : std::numeric_limits<uint64_t>::max(); }

// The text of `path`; nullopt when the kernel has no such file.
absl::StatusOr<std::optional<std::string>> ReadIfPresent(const std::string& path) {
  absl::StatusOr<std::string> text = files::ReadFile(path);
  if (absl::IsNotFound(text.status())) return std::nullopt;
  if (!text.ok()) return text.status();
  return *std::move(text);
}

absl::StatusOr<uint64_t> ParseCounter(absl::string_view text, const std::string& path, Max max) {
  text = absl::StripAsciiWhitespace(text);
  if (text == "max") return MaxValue(max);
  uint64_t value;
  if (!absl::SimpleAtoi(text, &value)) {
    return absl::DataLossError(absl::StrCat(path, ": ", Quote(text), " is not a number"));
  }
  return value;
}

// A one-number file; 0 when absent.
absl::StatusOr<uint64_t> ReadCounter(const std::string& path, Max max = Max::kZero) {
  BERTH_ASSIGN_OR_RETURN(std::optional<std::string> text, ReadIfPresent(path));
  if (!text.has_value()) return 0;
  return ParseCounter(*text, path, max);
}

// A flat keyed file ("key value" lines: memory.stat, cpu.stat …); empty
// when absent.
absl::StatusOr<std::map<std::string, uint64_t>> ReadKeyed(const std::string& path) {
  BERTH_ASSIGN_OR_RETURN(std::optional<std::string> text, ReadIfPresent(path));
  std::map<std::string, uint64_t> values;
  if (!text.has_value()) return values;
  for (absl::string_view line : absl::StrSplit(*text, '\n', absl::SkipWhitespace())) {
    std::vector<absl::string_view> fields = absl::StrSplit(line, ' ', absl::SkipEmpty());
    if (fields.size() != 2) {
      return absl::DataLossError(absl::StrCat(path, ": malformed line ", Quote(line)));
    }
    BERTH_ASSIGN_OR_RETURN(values[std::string(fields[0])],
                           ParseCounter(fields[1], path, Max::kAll));
  }
  return values;
}

// Sets each of `fields` that `values` has.
template <typename Message>
using Setter = void (Message::*)(uint64_t);
template <typename Message>
void Fill(const std::map<std::string, uint64_t>& values,
          std::initializer_list<std::pair<const char*, Setter<Message>>> fields, Message& out) {
  for (const auto& [key, set] : fields) {
    auto found = values.find(key);
    if (found != values.end()) (out.*set)(found->second);
  }
}

// Huge page sizes as containerd names them in file names: "2MB", "1GB".
absl::StatusOr<std::vector<std::string>> HugePageSizes(const CgroupHost& host) {
  std::vector<std::string> sizes;
  UniqueFd dir(::open(host.hugepages.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!dir.valid()) {
    if (errno == ENOENT) return sizes;
    return ErrnoStatus("open", host.hugepages);
  }
  BERTH_ASSIGN_OR_RETURN(std::vector<std::string> names,
                         files::ListDirectory(dir.get(), host.hugepages));
  for (absl::string_view name : names) {
    uint64_t kib;
    if (!absl::ConsumePrefix(&name, "hugepages-") || !absl::ConsumeSuffix(&name, "kB") ||
        !absl::SimpleAtoi(name, &kib)) {
      continue;
    }
    const char* units[] = {"KB", "MB", "GB", "TB"};
    size_t unit = 0;
    while (kib >= 1024 && kib % 1024 == 0 && unit + 1 < std::size(units)) {
      kib /= 1024;
      ++unit;
    }
    sizes.push_back(absl::StrCat(kib, units[unit]));
  }
  return sizes;
}

// rdma.current / rdma.max: "<device> hca_handle=N hca_object=N" lines
// (v1::RdmaEntry or v2::RdmaEntry, the same fields).
template <typename Entry>
absl::Status ReadRdma(const std::string& path, google::protobuf::RepeatedPtrField<Entry>* out) {
  BERTH_ASSIGN_OR_RETURN(std::optional<std::string> text, ReadIfPresent(path));
  if (!text.has_value()) return absl::OkStatus();
  for (absl::string_view line : absl::StrSplit(*text, '\n', absl::SkipWhitespace())) {
    std::vector<absl::string_view> fields = absl::StrSplit(line, ' ', absl::SkipEmpty());
    Entry* entry = out->Add();
    entry->set_device(std::string(fields[0]));
    for (size_t i = 1; i < fields.size(); ++i) {
      std::pair<absl::string_view, absl::string_view> kv = absl::StrSplit(fields[i], '=');
      BERTH_ASSIGN_OR_RETURN(uint64_t value, ParseCounter(kv.second, path, Max::kAll));
      if (kv.first == "hca_handle") entry->set_hca_handles(static_cast<uint32_t>(value));
      if (kv.first == "hca_object") entry->set_hca_objects(static_cast<uint32_t>(value));
    }
  }
  return absl::OkStatus();
}

// Block device names by "major:minor", from /proc/partitions.
absl::StatusOr<std::map<std::string, std::string>> BlockDevices(const CgroupHost& host) {
  BERTH_ASSIGN_OR_RETURN(std::string text, files::ReadFile(host.partitions));
  std::map<std::string, std::string> devices;
  for (absl::string_view line : absl::StrSplit(text, '\n', absl::SkipWhitespace())) {
    std::vector<absl::string_view> fields = absl::StrSplit(line, ' ', absl::SkipEmpty());
    uint64_t number;
    if (fields.size() != 4 || !absl::SimpleAtoi(fields[0], &number)) continue;  // the header
    devices[absl::StrCat(fields[0], ":", fields[1])] = absl::StrCat("/dev/", fields[3]);
  }
  return devices;
}

// One blkio file: "major:minor [op] value" lines and a "Total value" line;
// nothing when absent.
absl::Status ReadBlkio(const std::string& path, const std::map<std::string, std::string>& devices,
                       google::protobuf::RepeatedPtrField<v1::BlkIOEntry>* out) {
  BERTH_ASSIGN_OR_RETURN(std::optional<std::string> text, ReadIfPresent(path));
  if (!text.has_value()) return absl::OkStatus();
  for (absl::string_view line : absl::StrSplit(*text, '\n', absl::SkipWhitespace())) {
    std::vector<absl::string_view> fields = absl::StrSplit(line, ' ', absl::SkipEmpty());
    if (fields.size() == 2 && fields[0] == "Total") continue;
    std::pair<absl::string_view, absl::string_view> device = absl::StrSplit(fields[0], ':');
    uint64_t major, minor;
    if ((fields.size() != 2 && fields.size() != 3) || !absl::SimpleAtoi(device.first, &major) ||
        !absl::SimpleAtoi(device.second, &minor)) {
      return absl::DataLossError(absl::StrCat(path, ": malformed line ", Quote(line)));
    }
    BERTH_ASSIGN_OR_RETURN(uint64_t value, ParseCounter(fields.back(), path, Max::kAll));
    v1::BlkIOEntry* entry = out->Add();
    if (fields.size() == 3) entry->set_op(std::string(fields[1]));
    auto name = devices.find(std::string(fields[0]));
    if (name != devices.end()) entry->set_device(name->second);
    entry->set_major(major);
    entry->set_minor(minor);
    entry->set_value(value);
  }
  return absl::OkStatus();
}

absl::Status BlkioV1(const std::string& dir, const CgroupHost& host, v1::BlkIOStat& out) {
  BERTH_ASSIGN_OR_RETURN(auto devices, BlockDevices(host));
  using Entries = google::protobuf::RepeatedPtrField<v1::BlkIOEntry>;
  // The CFQ scheduler's statistics where it has them, else the throttling
  // layer's, as containerd's library reads them.
  const std::pair<const char*, Entries*> cfq[] = {
      {"sectors_recursive", out.mutable_sectors_recursive()},
      {"io_service_bytes_recursive", out.mutable_io_service_bytes_recursive()},
      {"io_serviced_recursive", out.mutable_io_serviced_recursive()},
      {"io_queued_recursive", out.mutable_io_queued_recursive()},
      {"io_service_time_recursive", out.mutable_io_service_time_recursive()},
      {"io_wait_time_recursive", out.mutable_io_wait_time_recursive()},
      {"io_merged_recursive", out.mutable_io_merged_recursive()},
      {"time_recursive", out.mutable_io_time_recursive()},
  };
  bool any = false;
  for (const auto& [name, entries] : cfq) {
    BERTH_RETURN_IF_ERROR(ReadBlkio(absl::StrCat(dir, "/blkio.", name), devices, entries));
    any = any || !entries->empty();
  }
  if (any) return absl::OkStatus();
  const std::pair<const char*, Entries*> throttle[] = {
      {"throttle.io_serviced", out.mutable_io_serviced_recursive()},
      {"throttle.io_service_bytes", out.mutable_io_service_bytes_recursive()},
  };
  for (const auto& [name, entries] : throttle) {
    BERTH_RETURN_IF_ERROR(ReadBlkio(absl::StrCat(dir, "/blkio.", name), devices, entries));
  }
  return absl::OkStatus();
}

absl::Status MemoryV1(const std::string& dir, v1::MemoryStat& out, v1::MemoryOomControl& oom) {
  BERTH_ASSIGN_OR_RETURN(auto stat, ReadKeyed(dir + "/memory.stat"));
  using M = v1::MemoryStat;
  Fill<M>(stat,
          {{"cache", &M::set_cache},
           {"rss", &M::set_rss},
           {"rss_huge", &M::set_rss_huge},
           {"mapped_file", &M::set_mapped_file},
           {"dirty", &M::set_dirty},
           {"writeback", &M::set_writeback},
           {"pgpgin", &M::set_pg_pg_in},
           {"pgpgout", &M::set_pg_pg_out},
           {"pgfault", &M::set_pg_fault},
           {"pgmajfault", &M::set_pg_maj_fault},
           {"inactive_anon", &M::set_inactive_anon},
           {"active_anon", &M::set_active_anon},
           {"inactive_file", &M::set_inactive_file},
           {"active_file", &M::set_active_file},
           {"unevictable", &M::set_unevictable},
           {"hierarchical_memory_limit", &M::set_hierarchical_memory_limit},
           {"hierarchical_memsw_limit", &M::set_hierarchical_swap_limit},
           {"total_cache", &M::set_total_cache},
           {"total_rss", &M::set_total_rss},
           {"total_rss_huge", &M::set_total_rss_huge},
           {"total_mapped_file", &M::set_total_mapped_file},
           {"total_dirty", &M::set_total_dirty},
           {"total_writeback", &M::set_total_writeback},
           {"total_pgpgin", &M::set_total_pg_pg_in},
           {"total_pgpgout", &M::set_total_pg_pg_out},
           {"total_pgfault", &M::set_total_pg_fault},
           {"total_pgmajfault", &M::set_total_pg_maj_fault},
           {"total_inactive_anon", &M::set_total_inactive_anon},
           {"total_active_anon", &M::set_total_active_anon},
           {"total_inactive_file", &M::set_total_inactive_file},
           {"total_active_file", &M::set_total_active_file},
           {"total_unevictable", &M::set_total_unevictable}},
          out);
  const std::pair<const char*, v1::MemoryEntry*> entries[] = {
      {"memory.", out.mutable_usage()},
      {"memory.memsw.", out.mutable_swap()},
      {"memory.kmem.", out.mutable_kernel()},
      {"memory.kmem.tcp.", out.mutable_kernel_tcp()},
  };
  for (const auto& [prefix, entry] : entries) {
    const std::string base = absl::StrCat(dir, "/", prefix);
    BERTH_ASSIGN_OR_RETURN(uint64_t usage, ReadCounter(base + "usage_in_bytes"));
    BERTH_ASSIGN_OR_RETURN(uint64_t max, ReadCounter(base + "max_usage_in_bytes"));
    BERTH_ASSIGN_OR_RETURN(uint64_t failcnt, ReadCounter(base + "failcnt"));
    BERTH_ASSIGN_OR_RETURN(uint64_t limit, ReadCounter(base + "limit_in_bytes"));
    entry->set_usage(usage);
    entry->set_max(max);
    entry->set_failcnt(failcnt);
    entry->set_limit(limit);
  }
  BERTH_ASSIGN_OR_RETURN(auto control, ReadKeyed(dir + "/memory.oom_control"));
  using O = v1::MemoryOomControl;
  Fill<O>(control,
          {{"oom_kill_disable", &O::set_oom_kill_disable},
           {"under_oom", &O::set_under_oom},
           {"oom_kill", &O::set_oom_kill}},
          oom);
  return absl::OkStatus();
}

absl::Status CpuV1(const Cgroups& cgroups, v1::CPUStat& out) {
  if (auto cpuacct = cgroups.v1.find("cpuacct"); cpuacct != cgroups.v1.end()) {
    const std::string& dir = cpuacct->second;
    v1::CPUUsage* usage = out.mutable_usage();
    BERTH_ASSIGN_OR_RETURN(uint64_t total, ReadCounter(dir + "/cpuacct.usage"));
    usage->set_total(total);
    BERTH_ASSIGN_OR_RETURN(std::optional<std::string> per_cpu,
                           ReadIfPresent(dir + "/cpuacct.usage_percpu"));
    for (absl::string_view cpu :
         absl::StrSplit(per_cpu.value_or(""), ' ', absl::SkipWhitespace())) {
      BERTH_ASSIGN_OR_RETURN(uint64_t ns,
                             ParseCounter(cpu, dir + "/cpuacct.usage_percpu", Max::kAll));
      usage->add_per_cpu(ns);
    }
    // cpuacct.stat counts clock ticks.
    BERTH_ASSIGN_OR_RETURN(auto ticks, ReadKeyed(dir + "/cpuacct.stat"));
    const uint64_t ns_per_tick = 1'000'000'000 / static_cast<uint64_t>(::sysconf(_SC_CLK_TCK));
    usage->set_user(ticks["user"] * ns_per_tick);
    usage->set_kernel(ticks["system"] * ns_per_tick);
  }
  if (auto cpu = cgroups.v1.find("cpu"); cpu != cgroups.v1.end()) {
    BERTH_ASSIGN_OR_RETURN(auto stat, ReadKeyed(cpu->second + "/cpu.stat"));
    using T = v1::Throttle;
    Fill<T>(stat,
            {{"nr_periods", &T::set_periods},
             {"nr_throttled", &T::set_throttled_periods},
             {"throttled_time", &T::set_throttled_time}},
            *out.mutable_throttling());
  }
  return absl::OkStatus();
}

}  // namespace

Cgroups ParseProcCgroup(absl::string_view text, const CgroupHost& host) {
  Cgroups cgroups;
  for (absl::string_view line : absl::StrSplit(text, '\n', absl::SkipEmpty())) {
    std::vector<absl::string_view> fields = absl::StrSplit(line, absl::MaxSplits(':', 2));
    if (fields.size() != 3) continue;
    if (fields[0] == "0" && fields[1].empty()) {
      const bool unified = ::access((host.root + "/cgroup.controllers").c_str(), F_OK) == 0;
      cgroups.v2 = absl::StrCat(host.root, unified ? "" : "/unified", fields[2]);
      continue;
    }
    for (absl::string_view controller : absl::StrSplit(fields[1], ',', absl::SkipEmpty())) {
      // Named hierarchies (name=systemd) have no controller.
      if (absl::StrContains(controller, '=')) continue;
      cgroups.v1[std::string(controller)] = absl::StrCat(host.root, "/", controller, fields[2]);
    }
  }
  return cgroups;
}

absl::StatusOr<Cgroups> CgroupsOf(pid_t pid, const CgroupHost& host) {
  BERTH_ASSIGN_OR_RETURN(std::string text, files::ReadFile(absl::StrCat("/proc/", pid, "/cgroup")));
  return ParseProcCgroup(text, host);
}

absl::StatusOr<std::vector<pid_t>> ProcessesIn(const Cgroups& cgroups) {
  // The runtime puts the container in every hierarchy: any one will do.
  std::string dir = cgroups.v2;
  if (!cgroups.v1.empty()) {
    auto pids = cgroups.v1.find("pids");
    dir = pids != cgroups.v1.end() ? pids->second : cgroups.v1.begin()->second;
  }
  if (dir.empty()) return absl::FailedPreconditionError("the task is in no cgroup");
  const std::string path = dir + "/cgroup.procs";
  BERTH_ASSIGN_OR_RETURN(std::string text, files::ReadFile(path));
  std::vector<pid_t> pids;
  for (absl::string_view line : absl::StrSplit(text, '\n', absl::SkipWhitespace())) {
    pid_t pid;
    if (!absl::SimpleAtoi(line, &pid)) {
      return absl::DataLossError(absl::StrCat(path, ": ", Quote(line), " is not a process id"));
    }
    pids.push_back(pid);
  }
  return pids;
}

absl::StatusOr<v1::Metrics> StatsV1(const Cgroups& cgroups, const CgroupHost& host) {
  v1::Metrics metrics;
  auto dir = [&](const char* controller) -> const std::string* {
    auto found = cgroups.v1.find(controller);
    return found == cgroups.v1.end() ? nullptr : &found->second;
  };
  if (const std::string* pids = dir("pids")) {
    BERTH_ASSIGN_OR_RETURN(uint64_t current, ReadCounter(*pids + "/pids.current"));
    BERTH_ASSIGN_OR_RETURN(uint64_t limit, ReadCounter(*pids + "/pids.max", Max::kZero));
    metrics.mutable_pids()->set_current(current);
    metrics.mutable_pids()->set_limit(limit);
  }
  if (dir("cpuacct") != nullptr || dir("cpu") != nullptr) {
    BERTH_RETURN_IF_ERROR(CpuV1(cgroups, *metrics.mutable_cpu()));
  }
  if (const std::string* memory = dir("memory")) {
    BERTH_RETURN_IF_ERROR(
        MemoryV1(*memory, *metrics.mutable_memory(), *metrics.mutable_memory_oom_control()));
  }
  if (const std::string* blkio = dir("blkio")) {
    BERTH_RETURN_IF_ERROR(BlkioV1(*blkio, host, *metrics.mutable_blkio()));
  }
  if (const std::string* hugetlb = dir("hugetlb")) {
    BERTH_ASSIGN_OR_RETURN(std::vector<std::string> sizes, HugePageSizes(host));
    for (const std::string& size : sizes) {
      const std::string base = absl::StrCat(*hugetlb, "/hugetlb.", size, ".");
      v1::HugetlbStat* stat = metrics.add_hugetlb();
      stat->set_pagesize(size);
      BERTH_ASSIGN_OR_RETURN(uint64_t usage, ReadCounter(base + "usage_in_bytes"));
      BERTH_ASSIGN_OR_RETURN(uint64_t max, ReadCounter(base + "max_usage_in_bytes"));
      BERTH_ASSIGN_OR_RETURN(uint64_t failcnt, ReadCounter(base + "failcnt"));
      stat->set_usage(usage);
      stat->set_max(max);
      stat->set_failcnt(failcnt);
    }
  }
  if (const std::string* rdma = dir("rdma")) {
    BERTH_RETURN_IF_ERROR(
        ReadRdma(*rdma + "/rdma.current", metrics.mutable_rdma()->mutable_current()));
    BERTH_RETURN_IF_ERROR(ReadRdma(*rdma + "/rdma.max", metrics.mutable_rdma()->mutable_limit()));
  }
  return metrics;
}

absl::StatusOr<v2::Metrics> StatsV2(const std::string& dir, const CgroupHost& host) {
  v2::Metrics metrics;
  BERTH_ASSIGN_OR_RETURN(uint64_t pids, ReadCounter(dir + "/pids.current"));
  BERTH_ASSIGN_OR_RETURN(uint64_t pids_max, ReadCounter(dir + "/pids.max", Max::kZero));
  metrics.mutable_pids()->set_current(pids);
  metrics.mutable_pids()->set_limit(pids_max);

  BERTH_ASSIGN_OR_RETURN(auto cpu, ReadKeyed(dir + "/cpu.stat"));
  using C = v2::CPUStat;
  Fill<C>(cpu,
          {{"usage_usec", &C::set_usage_usec},
           {"user_usec", &C::set_user_usec},
           {"system_usec", &C::set_system_usec},
           {"nr_periods", &C::set_nr_periods},
           {"nr_throttled", &C::set_nr_throttled},
           {"throttled_usec", &C::set_throttled_usec}},
          *metrics.mutable_cpu());

  BERTH_ASSIGN_OR_RETURN(auto memory, ReadKeyed(dir + "/memory.stat"));
  using M = v2::MemoryStat;
  M& stat = *metrics.mutable_memory();
  Fill<M>(memory,
          {{"anon", &M::set_anon},
           {"file", &M::set_file},
           {"kernel_stack", &M::set_kernel_stack},
           {"slab", &M::set_slab},
           {"sock", &M::set_sock},
           {"shmem", &M::set_shmem},
           {"file_mapped", &M::set_file_mapped},
           {"file_dirty", &M::set_file_dirty},
           {"file_writeback", &M::set_file_writeback},
           {"anon_thp", &M::set_anon_thp},
           {"inactive_anon", &M::set_inactive_anon},
           {"active_anon", &M::set_active_anon},
           {"inactive_file", &M::set_inactive_file},
           {"active_file", &M::set_active_file},
           {"unevictable", &M::set_unevictable},
           {"slab_reclaimable", &M::set_slab_reclaimable},
           {"slab_unreclaimable", &M::set_slab_unreclaimable},
           {"pgfault", &M::set_pgfault},
           {"pgmajfault", &M::set_pgmajfault},
           {"workingset_refault", &M::set_workingset_refault},
           {"workingset_activate", &M::set_workingset_activate},
           {"workingset_nodereclaim", &M::set_workingset_nodereclaim},
           {"pgrefill", &M::set_pgrefill},
           {"pgscan", &M::set_pgscan},
           {"pgsteal", &M::set_pgsteal},
           {"pgactivate", &M::set_pgactivate},
           {"pgdeactivate", &M::set_pgdeactivate},
           {"pglazyfree", &M::set_pglazyfree},
           {"pglazyfreed", &M::set_pglazyfreed},
           {"thp_fault_alloc", &M::set_thp_fault_alloc},
           {"thp_collapse_alloc", &M::set_thp_collapse_alloc}},
          stat);
  const std::pair<const char*, Setter<M>> counters[] = {
      {"memory.current", &M::set_usage},
      {"memory.max", &M::set_usage_limit},
      {"memory.swap.current", &M::set_swap_usage},
      {"memory.swap.max", &M::set_swap_limit},
  };
  for (const auto& [name, set] : counters) {
    BERTH_ASSIGN_OR_RETURN(uint64_t value, ReadCounter(absl::StrCat(dir, "/", name), Max::kAll));
    (stat.*set)(value);
  }

  BERTH_ASSIGN_OR_RETURN(auto events, ReadKeyed(dir + "/memory.events"));
  using E = v2::MemoryEvents;
  Fill<E>(events,
          {{"low", &E::set_low},
           {"high", &E::set_high},
           {"max", &E::set_max},
           {"oom", &E::set_oom},
           {"oom_kill", &E::set_oom_kill}},
          *metrics.mutable_memory_events());

  // io.stat: "major:minor rbytes=N wbytes=N rios=N wios=N dbytes=N dios=N".
  const std::string io_path = dir + "/io.stat";
  BERTH_ASSIGN_OR_RETURN(std::optional<std::string> io, ReadIfPresent(io_path));
  for (absl::string_view line : absl::StrSplit(io.value_or(""), '\n', absl::SkipWhitespace())) {
    std::vector<absl::string_view> fields = absl::StrSplit(line, ' ', absl::SkipEmpty());
    std::pair<absl::string_view, absl::string_view> device = absl::StrSplit(fields[0], ':');
    uint64_t major, minor;
    if (!absl::SimpleAtoi(device.first, &major) || !absl::SimpleAtoi(device.second, &minor)) {
      return absl::DataLossError(absl::StrCat(io_path, ": malformed line ", Quote(line)));
    }
    std::map<std::string, uint64_t> values;
    for (size_t i = 1; i < fields.size(); ++i) {
      std::pair<absl::string_view, absl::string_view> kv = absl::StrSplit(fields[i], '=');
      BERTH_ASSIGN_OR_RETURN(values[std::string(kv.first)],
                             ParseCounter(kv.second, io_path, Max::kAll));
    }
    v2::IOEntry* entry = metrics.mutable_io()->add_usage();
    entry->set_major(major);
    entry->set_minor(minor);
    using I = v2::IOEntry;
    Fill<I>(values,
            {{"rbytes", &I::set_rbytes},
             {"wbytes", &I::set_wbytes},
             {"rios", &I::set_rios},
             {"wios", &I::set_wios}},
            *entry);
  }

  BERTH_RETURN_IF_ERROR(ReadRdma(dir + "/rdma.current", metrics.mutable_rdma()->mutable_current()));
  BERTH_RETURN_IF_ERROR(ReadRdma(dir + "/rdma.max", metrics.mutable_rdma()->mutable_limit()));

  BERTH_ASSIGN_OR_RETURN(std::vector<std::string> sizes, HugePageSizes(host));
  for (const std::string& size : sizes) {
    const std::string base = absl::StrCat(dir, "/hugetlb.", size, ".");
    if (::access((base + "current").c_str(), F_OK) != 0) continue;
    v2::HugeTlbStat* hugetlb = metrics.add_hugetlb();
    hugetlb->set_pagesize(size);
    BERTH_ASSIGN_OR_RETURN(uint64_t current, ReadCounter(base + "current"));
    BERTH_ASSIGN_OR_RETURN(uint64_t max, ReadCounter(base + "max", Max::kAll));
    hugetlb->set_current(current);
    hugetlb->set_max(max);
  }
  return metrics;
}

absl::StatusOr<google::protobuf::Any> StatsOf(const Cgroups& cgroups, const CgroupHost& host) {
  google::protobuf::Any any;
  if (!cgroups.v1.empty()) {
    BERTH_ASSIGN_OR_RETURN(v1::Metrics metrics, StatsV1(cgroups, host));
    proto::PackAny(metrics, &any);
  } else if (!cgroups.v2.empty()) {
    BERTH_ASSIGN_OR_RETURN(v2::Metrics metrics, StatsV2(cgroups.v2, host));
    proto::PackAny(metrics, &any);
  } else {
    return absl::FailedPreconditionError("the task is in no cgroup");
  }
  return any;
}

uint64_t OomKills(const std::string& memory_events) {
  absl::StatusOr<std::map<std::string, uint64_t>> events = ReadKeyed(memory_events);
  if (!events.ok()) return 0;
  auto kills = events->find("oom_kill");
  return kills == events->end() ? 0 : kills->second;
}

}  // namespace berth::shim
