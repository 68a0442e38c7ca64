#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "base/status.h"
#include "base/strings.h"
#include "ttrpc/ttrpc.h"

namespace berth::ttrpc {
namespace {

// Reads exactly `n` bytes; false at the end of the stream or on an error.
bool ReadFull(int fd, char* buf, size_t n) {
  size_t done = 0;
  while (done < n) {
    ssize_t r = ::read(fd, buf + done, n - done);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return false;
    done += r;
  }
  return true;
}

// One frame from `fd` into `header` and `payload`: kEnd at the end of the
// stream or on a read error (errno says which), kTooLong for a length over
// the limit (its payload unread).
enum class FrameRead { kOk, kEnd, kTooLong };
FrameRead ReadFrame(int fd, FrameHeader& header, std::string& payload) {
  char header_bytes[kHeaderSize];
  if (!ReadFull(fd, header_bytes, kHeaderSize)) return FrameRead::kEnd;
  header = DecodeHeader(header_bytes);
  if (header.length > kMaxPayload) return FrameRead::kTooLong;
  payload.resize(header.length);
  if (!ReadFull(fd, payload.data(), header.length)) return FrameRead::kEnd;
  return FrameRead::kOk;
}

// Writes all of `data`; false on an error (errno says which).
bool SendAll(int fd, absl::string_view data) {
  for (size_t done = 0; done < data.size();) {
    ssize_t n = ::send(fd, data.data() + done, data.size() - done, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    done += n;
  }
  return true;
}

// A call's encoded Request, within the frame limit.
absl::StatusOr<std::string> EncodeCall(absl::string_view service, absl::string_view method,
                                       absl::string_view payload, const CallOptions& options) {
  Request request{std::string(service), std::string(method), std::string(payload), 0,
                  options.metadata};
  if (options.timeout != absl::InfiniteDuration()) {
    request.timeout_nano = absl::ToInt64Nanoseconds(options.timeout);
  }
  std::string encoded = EncodeRequest(request);
  if (encoded.size() > kMaxPayload) {
    return absl::ResourceExhaustedError(absl::StrCat("ttrpc request of ", encoded.size(),
                                                     " bytes is over the ", kMaxPayload, " limit"));
  }
  return encoded;
}

absl::StatusOr<std::string> ResultOf(absl::StatusOr<Response> response) {
  if (!response.ok()) return response.status();
  if (!response->status.ok()) return response->status;
  return std::move(response->payload);
}

absl::Status NoAnswer(absl::string_view service, absl::string_view method,
                      const CallOptions& options) {
  return absl::DeadlineExceededError(absl::StrCat(service, "/", method, ": no answer within ",
                                                  absl::FormatDuration(options.timeout)));
}

absl::StatusOr<UniqueFd> Connect(absl::string_view address) {
  absl::string_view path = address;
  if (!absl::ConsumePrefix(&path, "unix://")) absl::ConsumePrefix(&path, "unix:");
  sockaddr_un addr{};
  if (path.empty() || path.size() >= sizeof(addr.sun_path)) {
    return absl::InvalidArgumentError(
        absl::StrCat("ttrpc address ", Quote(address), " is not a socket path"));
  }
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path.data(), path.size());
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd.valid()) return ErrnoStatus("socket", std::string(path));
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    absl::Status status = ErrnoStatus("connect", std::string(path));
    return absl::UnavailableError(status.message());
  }
  return fd;
}

}  // namespace

absl::StatusOr<std::string> CallOnce(absl::string_view address, absl::string_view service,
                                     absl::string_view method, absl::string_view payload,
                                     const CallOptions& options) {
  BERTH_ASSIGN_OR_RETURN(std::string request, EncodeCall(service, method, payload, options));
  BERTH_ASSIGN_OR_RETURN(UniqueFd fd, Connect(address));
  if (options.timeout != absl::InfiniteDuration()) {
    const timeval limit = absl::ToTimeval(options.timeout);
    ::setsockopt(fd.get(), SOL_SOCKET, SO_SNDTIMEO, &limit, sizeof limit);
    ::setsockopt(fd.get(), SOL_SOCKET, SO_RCVTIMEO, &limit, sizeof limit);
  }
  if (!SendAll(fd.get(), EncodeFrame(1, kTypeRequest, request))) {
    if (errno == EAGAIN) return NoAnswer(service, method, options);
    return absl::UnavailableError(absl::StrCat("ttrpc send: ", std::strerror(errno)));
  }
  FrameHeader header;
  std::string reply;
  for (;;) {
    errno = 0;  // a read that ends at EOF leaves it alone
    const FrameRead read = ReadFrame(fd.get(), header, reply);
    if (read == FrameRead::kEnd) break;
    if (read == FrameRead::kTooLong) {
      return absl::UnavailableError(absl::StrCat("ttrpc answer of ", header.length,
                                                 " bytes is over the ", kMaxPayload, " limit"));
    }
    if (header.type == kTypeResponse && header.stream_id == 1) {
      return ResultOf(DecodeResponse(reply));
    }
  }
  if (errno == EAGAIN) return NoAnswer(service, method, options);
  return absl::UnavailableError("ttrpc connection closed before the answer");
}

absl::StatusOr<std::unique_ptr<Client>> Client::Dial(absl::string_view address) {
  BERTH_ASSIGN_OR_RETURN(UniqueFd fd, Connect(address));
  return std::unique_ptr<Client>(new Client(std::move(fd)));
}

Client::Client(UniqueFd fd) : fd_(std::move(fd)) {
  reader_ = std::make_unique<std::thread>(&Client::ReadLoop, this);
}

Client::~Client() {
  destroying_ = true;
  ::shutdown(fd_.get(), SHUT_RDWR);  // ends the reader's read
  reader_->join();
}

std::vector<std::pair<Client::Done, absl::Status>> Client::FailAll(const absl::Status& status) {
  closed_ = status;
  std::vector<std::pair<Done, absl::Status>> callbacks;
  for (auto& [id, pending] : pending_) {
    pending->done = true;
    pending->result = status;
    if (pending->callback) callbacks.emplace_back(std::move(pending->callback), status);
  }
  pending_.clear();
  return callbacks;
}

void Client::ReadLoop() {
  FrameHeader header;
  std::string payload;
  // An oversized answer ends the connection, as the peer's garbage.
  while (ReadFrame(fd_.get(), header, payload) == FrameRead::kOk) {
    if (header.type != kTypeResponse) continue;
    absl::StatusOr<Response> response = DecodeResponse(payload);
    Done callback;
    absl::StatusOr<std::string> result;
    {
      std::lock_guard lock(mu_);
      auto it = pending_.find(header.stream_id);
      if (it == pending_.end()) continue;  // timed out already
      it->second->done = true;
      if (it->second->callback) {
        callback = std::move(it->second->callback);
        result = ResultOf(std::move(response));
      } else {
        it->second->result = ResultOf(std::move(response));
      }
      pending_.erase(it);
      answered_.notify_all();
    }
    if (callback) callback(std::move(result));
  }
  std::vector<std::pair<Done, absl::Status>> callbacks;
  std::function<void()> on_close;
  {
    std::lock_guard lock(mu_);
    callbacks = FailAll(absl::UnavailableError("ttrpc connection closed"));
    reader_done_ = true;
    on_close = std::move(on_close_);
    answered_.notify_all();
  }
  for (auto& [callback, status] : callbacks) callback(status);
  if (on_close && !destroying_) on_close();
}

void Client::OnClose(std::function<void()> closed) {
  {
    std::lock_guard lock(mu_);
    if (!reader_done_) {
      on_close_ = std::move(closed);
      return;
    }
  }
  closed();
}

absl::StatusOr<uint32_t> Client::Send(absl::string_view service, absl::string_view method,
                                      absl::string_view payload, const CallOptions& options,
                                      std::shared_ptr<Pending> pending) {
  BERTH_ASSIGN_OR_RETURN(std::string request, EncodeCall(service, method, payload, options));
  uint32_t stream_id;
  {
    std::lock_guard lock(mu_);
    if (!closed_.ok()) return closed_;
    stream_id = next_stream_;
    next_stream_ += 2;
    pending_[stream_id] = std::move(pending);
  }
  const std::string frame = EncodeFrame(stream_id, kTypeRequest, request);
  int send_error = 0;
  {
    std::lock_guard lock(write_mu_);
    if (!SendAll(fd_.get(), frame)) send_error = errno;
  }
  if (send_error != 0) {
    std::lock_guard state(mu_);
    // Unless the reader failed it meanwhile (then its callback ran).
    if (pending_.erase(stream_id) == 0) return stream_id;
    return absl::UnavailableError(absl::StrCat("ttrpc send: ", std::strerror(send_error)));
  }
  return stream_id;
}

absl::StatusOr<std::string> Client::Call(absl::string_view service, absl::string_view method,
                                         absl::string_view payload, const CallOptions& options) {
  auto pending = std::make_shared<Pending>();
  BERTH_ASSIGN_OR_RETURN(uint32_t stream_id, Send(service, method, payload, options, pending));
  std::unique_lock lock(mu_);
  if (options.timeout == absl::InfiniteDuration()) {
    answered_.wait(lock, [&] { return pending->done; });
  } else {
    answered_.wait_for(lock, absl::ToChronoNanoseconds(options.timeout),
                       [&] { return pending->done; });
  }
  if (!pending->done) {
    pending_.erase(stream_id);
    return NoAnswer(service, method, options);
  }
  return std::move(pending->result);
}

void Client::CallAsync(absl::string_view service, absl::string_view method,
                       absl::string_view payload, const CallOptions& options, Done done) {
  auto pending = std::make_shared<Pending>();
  pending->callback = done;
  absl::StatusOr<uint32_t> sent = Send(service, method, payload, options, pending);
  if (!sent.ok()) done(sent.status());
}

}  // namespace berth::ttrpc
