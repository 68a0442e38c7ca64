#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>

#include "base/status.h"
#include "ttrpc/ttrpc.h"

namespace berth::ttrpc {
namespace {

// The wake eventfd's slot in epoll's data (fds are never this large).
constexpr uint64_t kWakeData = ~uint64_t{0};

uint64_t Data(int fd, uint32_t generation) {
  return (uint64_t{generation} << 32) | static_cast<uint32_t>(fd);
}

}  // namespace

absl::StatusOr<std::unique_ptr<EventLoop>> EventLoop::Create() {
  UniqueFd epoll(::epoll_create1(EPOLL_CLOEXEC));
  if (!epoll.valid()) return ErrnoStatus("epoll_create1", "event loop");
  UniqueFd wake(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!wake.valid()) return ErrnoStatus("eventfd", "event loop");
  epoll_event event{};
  event.events = EPOLLIN;
  event.data.u64 = kWakeData;
  if (::epoll_ctl(epoll.get(), EPOLL_CTL_ADD, wake.get(), &event) != 0) {
    return ErrnoStatus("epoll_ctl", "event loop");
  }
  return std::unique_ptr<EventLoop>(new EventLoop(std::move(epoll), std::move(wake)));
}

EventLoop::EventLoop(UniqueFd epoll, UniqueFd wake)
    : epoll_(std::move(epoll)), wake_(std::move(wake)) {}

EventLoop::~EventLoop() = default;

absl::Status EventLoop::Add(int fd, uint32_t events, Callback callback) {
  // Generations tell a removed fd's stale events from those of a new
  // registration that reuses its number within one epoll_wait batch.
  const uint32_t generation = next_generation_++;
  epoll_event event{};
  event.events = events;
  event.data.u64 = Data(fd, generation);
  if (::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, fd, &event) != 0) {
    return ErrnoStatus("epoll_ctl add", std::to_string(fd));
  }
  entries_[fd] = Entry{generation, std::make_shared<Callback>(std::move(callback))};
  return absl::OkStatus();
}

absl::Status EventLoop::Modify(int fd, uint32_t events) {
  auto it = entries_.find(fd);
  if (it == entries_.end()) return absl::NotFoundError("fd is not registered");
  epoll_event event{};
  event.events = events;
  event.data.u64 = Data(fd, it->second.generation);
  if (::epoll_ctl(epoll_.get(), EPOLL_CTL_MOD, fd, &event) != 0) {
    return ErrnoStatus("epoll_ctl mod", std::to_string(fd));
  }
  return absl::OkStatus();
}

void EventLoop::Remove(int fd) {
  if (entries_.erase(fd) > 0) ::epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, fd, nullptr);
}

void EventLoop::Wake() {
  uint64_t one = 1;
  (void)!::write(wake_.get(), &one, sizeof(one));
}

void EventLoop::Stop() {
  stop_ = true;
  Wake();
}

absl::Status EventLoop::Run() {
  epoll_event events[64];
  for (;;) {
    if (stop_.exchange(false)) return absl::OkStatus();
    int n = ::epoll_wait(epoll_.get(), events, 64, -1);
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus("epoll_wait", "event loop");
    }
    for (int i = 0; i < n; ++i) {
      if (events[i].data.u64 == kWakeData) {
        uint64_t count;
        (void)!::read(wake_.get(), &count, sizeof(count));
        continue;
      }
      const int fd = static_cast<int>(events[i].data.u64 & 0xffffffff);
      const uint32_t generation = static_cast<uint32_t>(events[i].data.u64 >> 32);
      auto it = entries_.find(fd);
      if (it == entries_.end() || it->second.generation != generation) continue;
      // Held here: the callback may remove itself while it runs.
      std::shared_ptr<Callback> callback = it->second.callback;
      (*callback)(events[i].events);
    }
  }
}

}  // namespace berth::ttrpc
