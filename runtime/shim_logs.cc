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
  auto fifo = std::make_shared<Fifo>();
  fifo->read.Reset(::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC));
  if (!fifo->read.valid()) return ErrnoStatus("open", path);
  fifo->write.Reset(::open(path.c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC));
  if (!fifo->write.valid()) return ErrnoStatus("open", path);
  const int fd = fifo->read.get();
  absl::MutexLock lock(&mu_);
  epoll_event event{};
  event.events = EPOLLIN;
  event.data.fd = fd;
  if (::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, fd, &event) != 0) {
    return ErrnoStatus("epoll_ctl", path);
  }
  by_bundle_[bundle] = fifo;
  by_fd_[fd] = std::move(fifo);
  return absl::OkStatus();
}

void ShimLogs::Remove(const std::string& bundle) {
  absl::MutexLock lock(&mu_);
  auto found = by_bundle_.find(bundle);
  if (found == by_bundle_.end()) return;
  const int fd = found->second->read.get();
  ::epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, fd, nullptr);
  by_fd_.erase(fd);
  by_bundle_.erase(found);
}

void ShimLogs::Copy() {
  epoll_event events[16];
  char buffer[8192];
  for (;;) {
    int n = ::epoll_wait(epoll_.get(), events, 16, -1);
    if (n < 0 && errno != EINTR) return;
    for (int i = 0; i < n; ++i) {
      std::shared_ptr<Fifo> fifo;
      {
        absl::MutexLock lock(&mu_);
        if (stopping_) return;
        auto found = by_fd_.find(events[i].data.fd);
        if (found == by_fd_.end()) continue;  // the wake-up, or removed meanwhile
        fifo = found->second;
      }
      ssize_t got;
      while ((got = ::read(fifo->read.get(), buffer, sizeof buffer)) > 0) {
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
