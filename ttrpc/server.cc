#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "base/log.h"
#include "base/status.h"
#include "base/strings.h"
#include "ttrpc/ttrpc.h"

namespace berth::ttrpc {
namespace {

constexpr size_t kReadChunk = 64 << 10;

}  // namespace

std::optional<std::string> CallContext::Get(absl::string_view key) const {
  for (const auto& [k, v] : metadata) {
    if (k == key) return v;
  }
  return std::nullopt;
}

// One accepted socket: bytes in, parsed into frames; frames out, buffered
// while the socket is full.
class Server::Connection {
 public:
  Connection(EventLoop& loop, UniqueFd fd) : loop_(loop), fd_(std::move(fd)) {}

  int fd() const { return fd_.get(); }

  // Reads what the socket has and calls `frame` for each whole frame; false
  // when the connection is to be closed: the peer closed it, sent a frame
  // over kMaxPayload, or the socket failed.
  template <typename OnFrame>
  bool Read(OnFrame frame) {
    for (;;) {
      // Through the stack, not a zero-filled tail of in_: an idle
      // connection holds only the bytes it was sent.
      char chunk[kReadChunk];
      ssize_t n = ::read(fd_.get(), chunk, kReadChunk);
      if (n > 0) in_.append(chunk, n);
      if (n == 0) return false;  // closed by the peer (mid-frame or not)
      if (n < 0) {
        if (errno == EINTR) continue;
        if (errno == EAGAIN) break;
        return false;
      }
    }
    size_t at = 0;
    while (in_.size() - at >= kHeaderSize) {
      FrameHeader header = DecodeHeader(in_.data() + at);
      if (header.length > kMaxPayload) {
        log::Warn("ttrpc: closing a connection that sent an oversized frame",
                  {{"length", header.length}, {"stream", header.stream_id}});
        return false;
      }
      if (in_.size() - at - kHeaderSize < header.length) break;
      frame(header, absl::string_view(in_.data() + at + kHeaderSize, header.length));
      at += kHeaderSize + header.length;
    }
    in_.erase(0, at);
    // Once a large frame is consumed its buffer goes (not while one is still
    // arriving: each read would then copy it again).
    if (in_.empty() && in_.capacity() > kReadChunk) in_ = std::string();
    return true;
  }

  // Queues a frame; false when the socket failed.
  bool Send(std::string frame) {
    const bool idle = out_.empty();
    out_.append(frame);
    return idle ? Flush() : true;
  }

  // Writes what is queued; waits for EPOLLOUT when the socket is full.
  bool Flush() {
    while (!out_.empty()) {
      ssize_t n = ::send(fd_.get(), out_.data(), out_.size(), MSG_NOSIGNAL);
      if (n < 0) {
        if (errno == EINTR) continue;
        if (errno != EAGAIN) return false;
        if (!waiting_) loop_.Modify(fd_.get(), EPOLLIN | EPOLLOUT).IgnoreError();
        waiting_ = true;
        return true;
      }
      out_.erase(0, n);
    }
    if (waiting_) loop_.Modify(fd_.get(), EPOLLIN).IgnoreError();
    waiting_ = false;
    return true;
  }

 private:
  EventLoop& loop_;
  UniqueFd fd_;
  std::string in_;
  std::string out_;
  bool waiting_ = false;  // for EPOLLOUT
};

Server::Server(EventLoop& loop) : loop_(loop) {}

Server::~Server() {
  if (listener_.valid()) loop_.Remove(listener_.get());
  for (const auto& [fd, connection] : connections_) loop_.Remove(fd);
}

void Server::Register(std::string service, std::string method, Handler handler) {
  handlers_[{std::move(service), std::move(method)}] = std::move(handler);
}

absl::Status Server::Serve(UniqueFd listener) {
  if (listener_.valid()) return absl::FailedPreconditionError("ttrpc server already serving");
  int flags = ::fcntl(listener.get(), F_GETFL);
  if (flags < 0 || ::fcntl(listener.get(), F_SETFL, flags | O_NONBLOCK) != 0) {
    return ErrnoStatus("fcntl", "ttrpc listener");
  }
  listener_ = std::move(listener);
  return loop_.Add(listener_.get(), EPOLLIN, [this](uint32_t) { Accept(); });
}

void Server::Accept() {
  for (;;) {
    UniqueFd fd(::accept4(listener_.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC));
    if (!fd.valid()) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      if (errno != EAGAIN) log::Warn("ttrpc: accept failed", {{"error", std::strerror(errno)}});
      return;
    }
    const int number = fd.get();
    auto connection = std::make_shared<Connection>(loop_, std::move(fd));
    absl::Status added = loop_.Add(number, EPOLLIN, [this, number](uint32_t events) {
      auto it = connections_.find(number);
      if (it == connections_.end()) return;
      std::shared_ptr<Connection> connection = it->second;  // kept while it is closed
      bool open = true;
      if (events & EPOLLOUT) open = connection->Flush();
      if (open && (events & (EPOLLIN | EPOLLHUP | EPOLLERR))) {
        open = connection->Read([&](const FrameHeader& header, absl::string_view payload) {
          if (header.type == kTypeRequest) Dispatch(connection, header.stream_id, payload);
          // Other types are ignored, as ttrpc's own server does, for
          // protocol versions to come.
        });
      }
      if (!open) Close(number);
    });
    if (!added.ok()) {
      log::Warn("ttrpc: cannot watch a connection", {{"error", added.ToString()}});
      continue;
    }
    connections_[number] = std::move(connection);
  }
}

void Server::Close(int fd) {
  loop_.Remove(fd);
  connections_.erase(fd);
}

void Server::Dispatch(const std::shared_ptr<Connection>& connection, uint32_t stream_id,
                      absl::string_view payload) {
  std::weak_ptr<Connection> weak = connection;
  Reply reply = [this, weak, stream_id](absl::StatusOr<std::string> result) {
    std::shared_ptr<Connection> connection = weak.lock();
    if (connection == nullptr) return;  // gone before the answer
    Response response;
    if (result.ok()) {
      response.payload = *std::move(result);
    } else {
      response.status = result.status();
    }
    if (!connection->Send(EncodeFrame(stream_id, kTypeResponse, EncodeResponse(response)))) {
      Close(connection->fd());
    }
  };
  if (stream_id % 2 != 1) {
    reply(absl::InvalidArgumentError(
        absl::StrCat("stream id ", stream_id, " must be odd for a client's call")));
    return;
  }
  absl::StatusOr<Request> request = DecodeRequest(payload);
  if (!request.ok()) {
    reply(request.status());
    return;
  }
  auto handler = handlers_.find({request->service, request->method});
  if (handler == handlers_.end()) {
    bool service_known = false;
    for (const auto& [key, value] : handlers_) service_known |= key.first == request->service;
    reply(absl::UnimplementedError(
        service_known ? absl::StrCat("method ", Quote(request->method), " of service ",
                                     Quote(request->service), " is not implemented")
                      : absl::StrCat("service ", Quote(request->service), " is not implemented")));
    return;
  }
  CallContext call{std::move(request->service), std::move(request->method), std::nullopt,
                   std::move(request->metadata)};
  if (request->timeout_nano > 0)
    call.deadline = absl::Now() + absl::Nanoseconds(request->timeout_nano);
  handler->second(call, std::move(request->payload), std::move(reply));
}

absl::StatusOr<UniqueFd> ListenUnix(const std::string& path) {
  sockaddr_un addr{};
  if (path.empty() || path.size() >= sizeof(addr.sun_path)) {
    return absl::InvalidArgumentError(absl::StrCat("socket path ", Quote(path), " is ", path.size(),
                                                   " bytes; a socket path holds 1 to ",
                                                   sizeof(addr.sun_path) - 1));
  }
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path.data(), path.size());
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!fd.valid()) return ErrnoStatus("socket", path);
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    if (errno == EADDRINUSE) return absl::AlreadyExistsError(absl::StrCat(Quote(path), " exists"));
    return ErrnoStatus("bind", path);
  }
  if (::chmod(path.c_str(), 0600) != 0 || ::listen(fd.get(), 128) != 0) {
    absl::Status status = ErrnoStatus("listen", path);
    ::unlink(path.c_str());
    return status;
  }
  return fd;
}

}  // namespace berth::ttrpc
