#include "runtime/shim_logs.h"

#include <fcntl.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

#include "base/status.h"

namespace berth::runtime {

ShimLogs::ShimLogs(int out)
    : out_(out),
      epoll_(::epoll_create1(EPOLL_CLOEXEC)),
      wake_(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {
  epoll_event event{};
  event.events = EPOLLIN;
  event.data.fd = wake_.get();
  ::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, wake_.get(), &event);
  thread_ = std::thread([this] { Copy(); });
}

ShimLogs::~ShimLogs() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  // An eventfd's write of 1 cannot fail while the fd is open.
  uint64_t one = 1;
  [[maybe_unused]] ssize_t woke = ::write(wake_.get(), &one, sizeof one);
  thread_.join();
}

absl::Status ShimLogs::Add(const std::string& bundle) {
  const std::string path = bundle + "/log";
  if (::mkfifo(path.c_str(), 0700) != 0 && errno != EEXIST) return ErrnoStatus("mkfifo", path);
  Fifo fifo;
  fifo.read.Reset(::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC));
  if (!fifo.read.valid()) return ErrnoStatus("open", path);
  fifo.write.Reset(::open(path.c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC));
  if (!fifo.write.valid()) return ErrnoStatus("open", path);
  epoll_event event{};
  event.events = EPOLLIN;
  event.data.fd = fifo.read.get();
  if (::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, fifo.read.get(), &event) != 0) {
    return ErrnoStatus("epoll_ctl", path);
  }
  absl::MutexLock lock(&mu_);
  fifos_[bundle] = std::move(fifo);
  return absl::OkStatus();
}

void ShimLogs::Remove(const std::string& bundle) {
  absl::MutexLock lock(&mu_);
  auto found = fifos_.find(bundle);
  if (found == fifos_.end()) return;
  ::epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, found->second.read.get(), nullptr);
  // Closed under the lock: the copying thread reads under it too, so it
  // never reads an fd number closed and reused meanwhile.
  fifos_.erase(found);
}

void ShimLogs::Copy() {
  epoll_event events[16];
  char buffer[8192];
  for (;;) {
    int n = ::epoll_wait(epoll_.get(), events, 16, -1);
    if (n < 0 && errno != EINTR) return;
    absl::MutexLock lock(&mu_);
    if (stopping_) return;
    for (int i = 0; i < n; ++i) {
      const int fd = events[i].data.fd;
      if (fd == wake_.get()) continue;
      bool known = false;
      for (const auto& [bundle, fifo] : fifos_) known = known || fifo.read.get() == fd;
      if (!known) continue;
      ssize_t got;
      while ((got = ::read(fd, buffer, sizeof buffer)) > 0) {
        for (ssize_t done = 0; done < got;) {
          ssize_t wrote = ::write(out_, buffer + done, got - done);
          if (wrote <= 0) break;
          done += wrote;
        }
      }
    }
  }
}

}  // namespace berth::runtime
