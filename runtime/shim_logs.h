// The `log` FIFO of each bundle, as containerd keeps them: a shim writes
// its log there (containerd's runc shim will not serve without one), and
// the daemon copies it into its own log. Private to runtime/.
#ifndef BERTH_RUNTIME_SHIM_LOGS_H_
#define BERTH_RUNTIME_SHIM_LOGS_H_

#include <map>
#include <memory>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "base/unique_fd.h"

namespace berth::runtime {

class ShimLogs {
 public:
  // Starts the copying thread; `out` is where the lines go (stderr: the
  // daemon's log).
  explicit ShimLogs(int out = 2);
  ~ShimLogs();
  ShimLogs(const ShimLogs&) = delete;
  ShimLogs& operator=(const ShimLogs&) = delete;

  // Makes `<bundle>/log` a FIFO if it is not one yet and copies what is
  // written to it from now on. The daemon holds a writer too, so the FIFO
  // never reads as ended while shims come and go.
  absl::Status Add(const std::string& bundle);
  // Stops copying `bundle`'s log (its task is gone).
  void Remove(const std::string& bundle);

 private:
  struct Fifo {
    UniqueFd read, write;
  };
  void Copy();

  const int out_;
  UniqueFd epoll_;
  UniqueFd wake_;  // an eventfd: the destructor's
  absl::Mutex mu_;
  // By bundle, and by the fd the copying thread reads. Shared: the thread
  // copies outside the lock with its own reference, so a Remove meanwhile
  // never closes (and lets the kernel reuse) the fd it reads.
  std::map<std::string, std::shared_ptr<Fifo>> by_bundle_ ABSL_GUARDED_BY(mu_);
  std::map<int, std::shared_ptr<Fifo>> by_fd_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace berth::runtime

#endif  // BERTH_RUNTIME_SHIM_LOGS_H_
