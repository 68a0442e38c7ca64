// ttrpc, the RPC protocol of containerd's shims: gRPC's request/response
// model over a plain stream socket, without HTTP/2.
//
// The wire. Every message is a frame: a 10-byte header — payload length
// (uint32, big-endian, at most 4 MiB), stream id (uint32, big-endian), type
// (1 byte: 1 request, 2 response) and flags (1 byte) — then the payload. A
// client numbers its calls with odd stream ids (1, 3, 5, …); the response
// carries the request's id, so calls on one connection run concurrently and
// are answered in any order. Payloads are protobuf messages:
//
//   Request  { string service = 1; string method = 2; bytes payload = 3;
//              int64 timeout_nano = 4; repeated KeyValue metadata = 5; }
//   KeyValue { string key = 1; string value = 2; }
//   Response { google.rpc.Status status = 1; bytes payload = 2; }
//   google.rpc.Status { int32 code = 1; string message = 2; ... }
//
// `service` is the full protobuf name ("containerd.task.v2.Task"), `payload`
// the serialized request or response message; a failed call has a status
// whose code is gRPC's (the same numbers as absl::StatusCode). containerd
// passes the namespace as metadata key "containerd-namespace-ttrpc".
//
// Here: the frame and envelope codec, a single-threaded epoll EventLoop, a
// Server on it (the shim's: no threads, nothing blocks), and a blocking,
// thread-safe Client (the daemon's, calling its shims).
#ifndef BERTH_TTRPC_TTRPC_H_
#define BERTH_TTRPC_TTRPC_H_

#include <sys/epoll.h>

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "base/unique_fd.h"

namespace berth::ttrpc {

// ---- Wire ----

inline constexpr size_t kHeaderSize = 10;
inline constexpr uint32_t kMaxPayload = 4 << 20;
inline constexpr uint8_t kTypeRequest = 1;
inline constexpr uint8_t kTypeResponse = 2;
// The metadata key containerd puts the namespace under.
inline constexpr char kNamespaceKey[] = "containerd-namespace-ttrpc";

struct FrameHeader {
  uint32_t length = 0;
  uint32_t stream_id = 0;
  uint8_t type = 0;
  uint8_t flags = 0;
};

void EncodeHeader(const FrameHeader& header, char out[kHeaderSize]);
FrameHeader DecodeHeader(const char in[kHeaderSize]);

using Metadata = std::vector<std::pair<std::string, std::string>>;

struct Request {
  std::string service;
  std::string method;
  std::string payload;
  int64_t timeout_nano = 0;  // 0: none
  Metadata metadata;
};

struct Response {
  absl::Status status;  // its code and message travel; details do not
  std::string payload;
};

std::string EncodeRequest(const Request& request);
// InvalidArgument for bytes that are not a Request.
absl::StatusOr<Request> DecodeRequest(absl::string_view data);
std::string EncodeResponse(const Response& response);
absl::StatusOr<Response> DecodeResponse(absl::string_view data);

// A whole frame: header and payload.
std::string EncodeFrame(uint32_t stream_id, uint8_t type, absl::string_view payload);

// ---- EventLoop ----

// epoll on one thread. Callbacks run on the thread in Run() and may add,
// change and remove registrations (their own too) while they run; Stop
// may come from any thread.
class EventLoop {
 public:
  using Callback = std::function<void(uint32_t events)>;

  static absl::StatusOr<std::unique_ptr<EventLoop>> Create();
  ~EventLoop();
  EventLoop(const EventLoop&) = delete;
  EventLoop& operator=(const EventLoop&) = delete;

  // Calls `callback` with the ready events (EPOLLIN, EPOLLOUT, EPOLLHUP, …)
  // of `fd`, which stays the caller's to close (after Remove).
  absl::Status Add(int fd, uint32_t events, Callback callback);
  absl::Status Modify(int fd, uint32_t events);
  void Remove(int fd);

  // Runs until Stop.
  absl::Status Run();
  // From any thread: Run returns once the current callback is done.
  void Stop();

 private:
  struct Entry {
    uint32_t generation;
    std::shared_ptr<Callback> callback;
  };

  EventLoop(UniqueFd epoll, UniqueFd wake);
  void Wake();

  UniqueFd epoll_;
  UniqueFd wake_;  // an eventfd: Stop interrupts epoll_wait
  absl::flat_hash_map<int, Entry> entries_;
  uint32_t next_generation_ = 1;
  std::atomic<bool> stop_ = false;
};

// ---- Server ----

// What a handler knows of its call.
struct CallContext {
  std::string service;
  std::string method;
  std::optional<absl::Time> deadline;  // from the request's timeout
  Metadata metadata;

  // The first value under `key`, if any.
  std::optional<std::string> Get(absl::string_view key) const;
};

// Answers a call, once, now or later (from the loop's thread). A Reply
// outliving its connection does nothing.
using Reply = std::function<void(absl::StatusOr<std::string> payload)>;
using Handler = std::function<void(const CallContext& call, std::string payload, Reply reply)>;

// Serves calls on the EventLoop's thread. A connection that sends a frame
// longer than kMaxPayload, or closes mid-frame, is closed; others are not
// affected. Requests that do not decode, or come with an even stream id,
// get InvalidArgument; unknown services and methods get Unimplemented.
class Server {
 public:
  explicit Server(EventLoop& loop);
  ~Server();  // closes the listener and every connection
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  void Register(std::string service, std::string method, Handler handler);

  // Accepts connections on `listener` (a listening, non-blocking or not,
  // stream socket). Once only.
  absl::Status Serve(UniqueFd listener);

  size_t connections() const { return connections_.size(); }

 private:
  class Connection;
  void Accept();
  void Dispatch(const std::shared_ptr<Connection>& connection, uint32_t stream_id,
                absl::string_view payload);
  void Close(int fd);

  EventLoop& loop_;
  UniqueFd listener_;
  std::map<std::pair<std::string, std::string>, Handler> handlers_;
  std::map<int, std::shared_ptr<Connection>> connections_;
};

// Listens on a unix socket at `path` (mode 0600, the path within the 107
// bytes a socket address holds), replacing nothing: AlreadyExists if the
// path exists.
absl::StatusOr<UniqueFd> ListenUnix(const std::string& path);

// ---- Client ----

struct CallOptions {
  absl::Duration timeout = absl::InfiniteDuration();  // sent, and waited for
  Metadata metadata;
};

// One call on a connection of its own, answered or abandoned before it
// returns: no thread, nothing kept (the shim's events). The timeout bounds
// each send and read.
absl::StatusOr<std::string> CallOnce(absl::string_view address, absl::string_view service,
                                     absl::string_view method, absl::string_view payload,
                                     const CallOptions& options = {});

// Calls on one connection, from any number of threads at once; a thread of
// its own reads the responses. Unavailable once the connection is gone.
class Client {
 public:
  // "unix:///path", "unix://path" or a plain path.
  static absl::StatusOr<std::unique_ptr<Client>> Dial(absl::string_view address);
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // The response's payload, or its status; DeadlineExceeded when no answer
  // comes within the timeout (a late answer is dropped).
  absl::StatusOr<std::string> Call(absl::string_view service, absl::string_view method,
                                   absl::string_view payload, const CallOptions& options = {});

  // As Call, but returns at once and `done` gets the result, exactly once:
  // on the client's reader thread when the answer comes or the connection
  // goes (Unavailable; the destructor ends it too), on this thread if the
  // call cannot be sent. For calls that wait on something as long as it
  // takes (a task's exit): no thread waits for them. `options.timeout` is
  // only sent.
  using Done = std::function<void(absl::StatusOr<std::string>)>;
  void CallAsync(absl::string_view service, absl::string_view method, absl::string_view payload,
                 const CallOptions& options, Done done);

  // `closed` runs once the peer ends the connection (it died, or shut
  // down), on the reader thread — at once, on this thread, if it has
  // already; never for the end this client's destructor makes. It must not
  // destroy this client (the destructor joins that thread).
  void OnClose(std::function<void()> closed);

 private:
  struct Pending {
    bool done = false;
    absl::StatusOr<std::string> result;
    Done callback;  // set for CallAsync
  };

  explicit Client(UniqueFd fd);
  // Sends a call whose answer goes to `pending`; its stream id.
  absl::StatusOr<uint32_t> Send(absl::string_view service, absl::string_view method,
                                absl::string_view payload, const CallOptions& options,
                                std::shared_ptr<Pending> pending);
  void ReadLoop();
  // Completes every pending call with `status`; returns the callbacks to
  // run once mu_ is released.
  std::vector<std::pair<Done, absl::Status>> FailAll(const absl::Status& status)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // std::mutex rather than absl::Mutex: the shim links this, and
  // absl::Mutex brings Abseil's time zones and symbolizer (RSS).
  UniqueFd fd_;
  std::mutex write_mu_;  // one frame at a time on the socket
  std::mutex mu_;
  std::condition_variable answered_;  // a pending call is done
  uint32_t next_stream_ ABSL_GUARDED_BY(mu_) = 1;
  absl::flat_hash_map<uint32_t, std::shared_ptr<Pending>> pending_ ABSL_GUARDED_BY(mu_);
  absl::Status closed_ ABSL_GUARDED_BY(mu_);  // not OK once the connection is gone
  std::function<void()> on_close_ ABSL_GUARDED_BY(mu_);
  bool reader_done_ ABSL_GUARDED_BY(mu_) = false;
  std::atomic<bool> destroying_ = false;
  std::unique_ptr<std::thread> reader_;
};

}  // namespace berth::ttrpc

#endif  // BERTH_TTRPC_TTRPC_H_
