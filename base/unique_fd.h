// UniqueFd owns one file descriptor and closes it when it goes.
//
// Every fd Berth opens is opened with O_CLOEXEC (or SOCK_CLOEXEC, …) and held
// in a UniqueFd from the moment the kernel returns it; a raw close() anywhere
// else is a bug.
#ifndef BERTH_BASE_UNIQUE_FD_H_
#define BERTH_BASE_UNIQUE_FD_H_

#include <unistd.h>

#include <utility>

namespace berth {

class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) : fd_(fd) {}
  UniqueFd(UniqueFd&& other) noexcept : fd_(other.Release()) {}
  UniqueFd& operator=(UniqueFd&& other) noexcept {
    Reset(other.Release());
    return *this;
  }
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;
  ~UniqueFd() { Reset(); }

  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }

  // Gives up ownership: the caller closes the returned fd.
  int Release() { return std::exchange(fd_, -1); }

  // Closes the held fd (if any) and holds `fd` instead.
  void Reset(int fd = -1) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = fd;
  }

 private:
  int fd_ = -1;
};

}  // namespace berth

#endif  // BERTH_BASE_UNIQUE_FD_H_
