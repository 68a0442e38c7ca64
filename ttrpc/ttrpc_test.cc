// The codec, and a Server on its EventLoop thread with Clients (and raw
// sockets, for what a Client never sends) over a real unix socket.
#include "ttrpc/ttrpc.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <thread>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "base/status_matchers.h"
#include "base/temp_dir.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace berth::ttrpc {
namespace {

using ::testing::HasSubstr;

// ---- Wire ----

TEST(Wire, HeaderIsBigEndianLengthStreamTypeFlags) {
  char bytes[kHeaderSize];
  EncodeHeader(FrameHeader{0x01020304, 0x0a0b0c0d, kTypeResponse, 0x04}, bytes);
  EXPECT_EQ(std::string(bytes, kHeaderSize),
            std::string("\x01\x02\x03\x04\x0a\x0b\x0c\x0d\x02\x04", 10));
  FrameHeader back = DecodeHeader(bytes);
  EXPECT_EQ(back.length, 0x01020304u);
  EXPECT_EQ(back.stream_id, 0x0a0b0c0du);
  EXPECT_EQ(back.type, kTypeResponse);
  EXPECT_EQ(back.flags, 0x04);
  EncodeHeader(FrameHeader{0xffffffff, 0xfffffffe, 0xff, 0xff}, bytes);
  EXPECT_EQ(DecodeHeader(bytes).length, 0xffffffffu);
}

TEST(Wire, RequestRoundTripsAndMatchesTheProtobufEncoding) {
  Request request{"svc", "M", std::string("p\0q", 3), 1500, {{"k", "v"}, {"k", "w"}}};
  std::string encoded = EncodeRequest(request);
  // Field by field, as protobuf writes them: tag, length, bytes.
  EXPECT_EQ(encoded, std::string("\x0a\x03svc\x12\x01M\x1a\x03p\0q\x20\xdc\x0b"
                                 "\x2a\x06\x0a\x01k\x12\x01v\x2a\x06\x0a\x01k\x12\x01w",
                                 32));
  absl::StatusOr<Request> back = DecodeRequest(encoded);
  ASSERT_THAT(back, IsOk());
  EXPECT_EQ(back->service, "svc");
  EXPECT_EQ(back->method, "M");
  EXPECT_EQ(back->payload, std::string("p\0q", 3));
  EXPECT_EQ(back->timeout_nano, 1500);
  EXPECT_EQ(back->metadata, (Metadata{{"k", "v"}, {"k", "w"}}));
  // Unknown fields are skipped, as protobuf readers do.
  absl::StatusOr<Request> extended = DecodeRequest(encoded + std::string("\x48\x07", 2));
  ASSERT_THAT(extended, IsOk());
  EXPECT_EQ(extended->service, "svc");
}

TEST(Wire, ResponseCarriesStatusCodeAndMessage) {
  absl::StatusOr<Response> ok = DecodeResponse(EncodeResponse(Response{absl::OkStatus(), "out"}));
  ASSERT_THAT(ok, IsOk());
  EXPECT_THAT(ok->status, IsOk());
  EXPECT_EQ(ok->payload, "out");
  absl::StatusOr<Response> failed =
      DecodeResponse(EncodeResponse(Response{absl::NotFoundError("task \"x\" not found"), ""}));
  ASSERT_THAT(failed, IsOk());
  EXPECT_THAT(failed->status, StatusIs(absl::StatusCode::kNotFound));
  EXPECT_EQ(failed->status.message(), "task \"x\" not found");
  // A code this side does not know is Unknown, with the message kept.
  absl::StatusOr<Response> future = DecodeResponse(std::string("\x0a\x05\x08\x63\x12\x01z", 7));
  ASSERT_THAT(future, IsOk());
  EXPECT_THAT(future->status, StatusIs(absl::StatusCode::kUnknown));
  EXPECT_EQ(future->status.message(), "z");
}

TEST(Wire, GarbageIsInvalidArgument) {
  for (std::string bad : {std::string("\x0a\x05sv", 4), std::string("\xff\xff\xff\xff\xff\xff", 6),
                          std::string("\x00\x01", 2), std::string("\x2a\x02\x0a\x09", 4)}) {
    EXPECT_THAT(DecodeRequest(bad), StatusIs(absl::StatusCode::kInvalidArgument))
        << absl::CEscape(bad);
  }
  EXPECT_THAT(DecodeResponse(std::string("\x0a\x02\x08", 3)),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

// ---- Server and Client ----

// An encoded call of test.Echo/Echo.
std::string EchoRequest(const std::string& payload) {
  Request request;
  request.service = "test.Echo";
  request.method = "Echo";
  request.payload = payload;
  return EncodeRequest(request);
}

class ServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<std::unique_ptr<EventLoop>> loop = EventLoop::Create();
    ASSERT_THAT(loop, IsOk());
    loop_ = *std::move(loop);
    server_ = std::make_unique<Server>(*loop_);
    server_->Register(
        "test.Echo", "Echo", [](const CallContext& call, std::string payload, Reply reply) {
          std::string out = absl::StrCat(payload, "|", call.Get(kNamespaceKey).value_or("-"), "|",
                                         call.deadline.has_value() ? "deadline" : "none");
          reply(out);
        });
    server_->Register("test.Echo", "Fail",
                      [](const CallContext&, std::string payload, Reply reply) {
                        reply(absl::NotFoundError(absl::StrCat("no ", payload)));
                      });
    // Answers later: Release answers every held call.
    server_->Register("test.Echo", "Later",
                      [this](const CallContext&, std::string payload, Reply reply) {
                        held_.emplace_back(std::move(payload), std::move(reply));
                      });
    server_->Register("test.Echo", "Release", [this](const CallContext&, std::string, Reply reply) {
      for (auto& [payload, held] : held_) held("released " + payload);
      held_.clear();
      reply(std::string("done"));
    });
    server_->Register("test.Echo", "Held", [this](const CallContext&, std::string, Reply reply) {
      reply(absl::StrCat(held_.size()));
    });
    server_->Register("test.Echo", "Connections",
                      [this](const CallContext&, std::string, Reply reply) {
                        reply(absl::StrCat(server_->connections()));
                      });
    path_ = dir_.path() + "/ttrpc.sock";
    absl::StatusOr<UniqueFd> listener = ListenUnix(path_);
    ASSERT_THAT(listener, IsOk());
    ASSERT_THAT(server_->Serve(*std::move(listener)), IsOk());
    thread_ = std::thread([this] { EXPECT_THAT(loop_->Run(), IsOk()); });
  }

  void TearDown() override { StopServer(); }

  void StopServer() {
    if (!thread_.joinable()) return;
    loop_->Stop();
    thread_.join();
    server_.reset();
  }

  // Whether the server comes to hold one unanswered "Later" call, within
  // 10 s.
  static bool HoldsOne(Client& client) {
    for (int i = 0; i < 10000; ++i) {
      if (client.Call("test.Echo", "Held", "").value_or("") == "1") return true;
      ::usleep(1000);
    }
    return false;
  }

  std::unique_ptr<Client> Dial() {
    absl::StatusOr<std::unique_ptr<Client>> client = Client::Dial("unix://" + path_);
    EXPECT_THAT(client, IsOk());
    return client.ok() ? *std::move(client) : nullptr;
  }

  // A plain connected socket, for frames a Client never sends.
  UniqueFd RawConnect() {
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strcpy(addr.sun_path, path_.c_str());
    UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    EXPECT_EQ(::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
    return fd;
  }

  // The next frame on `fd`'s response side.
  std::pair<FrameHeader, std::string> ReadFrame(int fd) {
    char header[kHeaderSize];
    EXPECT_EQ(::recv(fd, header, kHeaderSize, MSG_WAITALL), static_cast<ssize_t>(kHeaderSize));
    FrameHeader h = DecodeHeader(header);
    std::string payload(h.length, '\0');
    if (h.length > 0) {
      EXPECT_EQ(::recv(fd, payload.data(), h.length, MSG_WAITALL), h.length);
    }
    return {h, payload};
  }

  TempDir dir_;
  std::string path_;
  std::unique_ptr<EventLoop> loop_;
  std::unique_ptr<Server> server_;
  std::vector<std::pair<std::string, Reply>> held_;  // the loop thread's
  std::thread thread_;
};

TEST_F(ServerTest, CallsCarryPayloadMetadataAndTimeout) {
  std::unique_ptr<Client> client = Dial();
  EXPECT_EQ(client->Call("test.Echo", "Echo", "hi").value_or(""), "hi|-|none");
  CallOptions options;
  options.metadata = {{kNamespaceKey, "ns1"}};
  options.timeout = absl::Seconds(5);
  EXPECT_EQ(client->Call("test.Echo", "Echo", "x", options).value_or(""), "x|ns1|deadline");
  EXPECT_EQ(client->Call("test.Echo", "Echo", "").value_or("?"), "|-|none");
  std::string big(kMaxPayload - 1024, 'b');
  absl::StatusOr<std::string> echoed = client->Call("test.Echo", "Echo", big);
  ASSERT_THAT(echoed, IsOk());
  EXPECT_EQ(echoed->size(), big.size() + 7);
}

TEST_F(ServerTest, ErrorsKeepTheirCodesAndMessages) {
  std::unique_ptr<Client> client = Dial();
  absl::StatusOr<std::string> r = client->Call("test.Echo", "Fail", "thing");
  EXPECT_THAT(r, StatusIs(absl::StatusCode::kNotFound));
  EXPECT_EQ(r.status().message(), "no thing");
  r = client->Call("test.Echo", "Nope", "");
  EXPECT_THAT(r, StatusIs(absl::StatusCode::kUnimplemented));
  EXPECT_THAT(r.status().message(), HasSubstr("\"Nope\""));
  r = client->Call("other.Service", "Echo", "");
  EXPECT_THAT(r, StatusIs(absl::StatusCode::kUnimplemented));
  EXPECT_THAT(r.status().message(), HasSubstr("\"other.Service\""));
  // An over-long request is refused before it is sent; the connection stays.
  r = client->Call("test.Echo", "Echo", std::string(kMaxPayload, 'x'));
  EXPECT_THAT(r, StatusIs(absl::StatusCode::kResourceExhausted));
  EXPECT_THAT(client->Call("test.Echo", "Echo", "still"), IsOk());
}

TEST_F(ServerTest, ConcurrentCallsOnOneConnection) {
  std::unique_ptr<Client> client = Dial();
  std::atomic<int> right = 0;
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 200; ++i) {
        std::string payload = absl::StrCat(t, "-", i);
        if (client->Call("test.Echo", "Echo", payload).value_or("") == payload + "|-|none") ++right;
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(right, 8 * 200);
}

TEST_F(ServerTest, AnswersComeInAnyOrder) {
  std::unique_ptr<Client> client = Dial();
  absl::Notification answered;
  std::string later;
  std::thread waiting([&] {
    later = client->Call("test.Echo", "Later", "first").value_or("failed");
    answered.Notify();
  });
  // Calls after it are answered while it waits.
  EXPECT_TRUE(HoldsOne(*client));  // (the thread must still be joined)
  for (int i = 0; i < 5; ++i) EXPECT_THAT(client->Call("test.Echo", "Echo", "x"), IsOk());
  EXPECT_FALSE(answered.HasBeenNotified());
  // From a second connection, which the first does not block either.
  std::unique_ptr<Client> other = Dial();
  EXPECT_EQ(other->Call("test.Echo", "Release", "").value_or(""), "done");
  waiting.join();
  EXPECT_EQ(later, "released first");
}

// CallAsync returns at once; its callback gets the answer whenever it
// comes, or Unavailable when the connection goes first; calls after the
// connection is gone fail at once.
TEST_F(ServerTest, AsyncCallsAnswerLaterOrFailWithTheConnection) {
  std::unique_ptr<Client> client = Dial();
  absl::Notification answered;
  absl::StatusOr<std::string> answer;
  client->CallAsync("test.Echo", "Later", "async", {}, [&](absl::StatusOr<std::string> r) {
    answer = std::move(r);
    answered.Notify();
  });
  ASSERT_TRUE(HoldsOne(*client));
  EXPECT_FALSE(answered.HasBeenNotified());
  EXPECT_EQ(client->Call("test.Echo", "Release", "").value_or(""), "done");
  ASSERT_TRUE(answered.WaitForNotificationWithTimeout(absl::Seconds(10)));
  EXPECT_EQ(answer.value_or(""), "released async");

  absl::Notification failed;
  absl::Status status;
  client->CallAsync("test.Echo", "Later", "never", {}, [&](absl::StatusOr<std::string> r) {
    status = r.status();
    failed.Notify();
  });
  ASSERT_TRUE(HoldsOne(*client));
  StopServer();
  ASSERT_TRUE(failed.WaitForNotificationWithTimeout(absl::Seconds(10)));
  EXPECT_THAT(status, StatusIs(absl::StatusCode::kUnavailable));
  absl::Status after;
  client->CallAsync("test.Echo", "Echo", "", {},
                    [&](absl::StatusOr<std::string> r) { after = r.status(); });
  EXPECT_THAT(after, StatusIs(absl::StatusCode::kUnavailable)) << "called back at once";
}

// OnClose tells of the peer's end — at once when it came already — and
// not of the end the client's own destructor makes.
TEST_F(ServerTest, OnCloseTellsOfThePeersEndOnly) {
  std::unique_ptr<Client> kept = Dial();
  std::unique_ptr<Client> dropped = Dial();
  absl::Notification peer_gone;
  kept->OnClose([&] { peer_gone.Notify(); });
  std::atomic<bool> told = false;
  dropped->OnClose([&] { told = true; });
  dropped.reset();
  EXPECT_FALSE(told) << "its own end";
  ASSERT_THAT(kept->Call("test.Echo", "Echo", ""), IsOk());
  EXPECT_FALSE(peer_gone.HasBeenNotified());
  StopServer();
  ASSERT_TRUE(peer_gone.WaitForNotificationWithTimeout(absl::Seconds(10)));
  bool late = false;
  kept->OnClose([&] { late = true; });
  EXPECT_TRUE(late) << "registered after the end: called at once";
}

TEST_F(ServerTest, ATimedOutCallFailsAndItsLateAnswerIsDropped) {
  std::unique_ptr<Client> client = Dial();
  CallOptions options;
  options.timeout = absl::Milliseconds(100);
  absl::StatusOr<std::string> r = client->Call("test.Echo", "Later", "slow", options);
  EXPECT_THAT(r, StatusIs(absl::StatusCode::kDeadlineExceeded));
  EXPECT_THAT(r.status().message(), HasSubstr("test.Echo/Later"));
  EXPECT_EQ(client->Call("test.Echo", "Release", "").value_or(""), "done");
  EXPECT_EQ(client->Call("test.Echo", "Echo", "next").value_or(""), "next|-|none");
}

TEST_F(ServerTest, AnOversizedFrameClosesThatConnectionAlone) {
  std::unique_ptr<Client> client = Dial();
  UniqueFd raw = RawConnect();
  char header[kHeaderSize];
  EncodeHeader(FrameHeader{kMaxPayload + 1, 1, kTypeRequest, 0}, header);
  ASSERT_EQ(::send(raw.get(), header, kHeaderSize, MSG_NOSIGNAL),
            static_cast<ssize_t>(kHeaderSize));
  char byte;
  EXPECT_EQ(::recv(raw.get(), &byte, 1, 0), 0) << "closed by the server";
  EXPECT_EQ(client->Call("test.Echo", "Connections", "").value_or(""), "1");
  EXPECT_THAT(Dial()->Call("test.Echo", "Echo", "new"), IsOk());
}

TEST_F(ServerTest, BadRequestsGetInvalidArgumentOnTheirStream) {
  UniqueFd raw = RawConnect();
  // An even stream id, then bytes that are no Request, then a good call.
  std::string frames = EncodeFrame(2, kTypeRequest, EchoRequest("")) +
                       EncodeFrame(3, kTypeRequest, std::string("\xff\xff\xff", 3)) +
                       EncodeFrame(7, 9, "a frame type of the future: ignored") +
                       EncodeFrame(5, kTypeRequest, EchoRequest("ok"));
  ASSERT_EQ(::send(raw.get(), frames.data(), frames.size(), MSG_NOSIGNAL),
            static_cast<ssize_t>(frames.size()));
  for (auto [id, code] :
       {std::pair<uint32_t, absl::StatusCode>{2, absl::StatusCode::kInvalidArgument},
        {3, absl::StatusCode::kInvalidArgument},
        {5, absl::StatusCode::kOk}}) {
    auto [header, payload] = ReadFrame(raw.get());
    EXPECT_EQ(header.stream_id, id);
    EXPECT_EQ(header.type, kTypeResponse);
    absl::StatusOr<Response> response = DecodeResponse(payload);
    ASSERT_THAT(response, IsOk());
    EXPECT_EQ(response->status.code(), code) << response->status;
  }
}

TEST_F(ServerTest, APeerGoneMidFrameLeavesTheServerServing) {
  {
    UniqueFd raw = RawConnect();
    std::string frame = EncodeFrame(1, kTypeRequest, EchoRequest("x"));
    ASSERT_EQ(::send(raw.get(), frame.data(), frame.size() / 2, MSG_NOSIGNAL),
              static_cast<ssize_t>(frame.size() / 2));
  }
  std::unique_ptr<Client> client = Dial();
  EXPECT_THAT(client->Call("test.Echo", "Echo", "after"), IsOk());
  EXPECT_EQ(client->Call("test.Echo", "Connections", "").value_or(""), "1");
}

TEST_F(ServerTest, CallsFailUnavailableOnceTheServerIsGone) {
  std::unique_ptr<Client> client = Dial();
  ASSERT_THAT(client->Call("test.Echo", "Echo", ""), IsOk());
  StopServer();
  EXPECT_THAT(client->Call("test.Echo", "Echo", ""), StatusIs(absl::StatusCode::kUnavailable));
  EXPECT_THAT(Client::Dial(path_ + ".missing"), StatusIs(absl::StatusCode::kUnavailable));
}

TEST_F(ServerTest, CallOnceAnswersTimesOutAndLeavesNoConnection) {
  CallOptions options;
  options.metadata = {{kNamespaceKey, "ns"}};
  options.timeout = absl::Seconds(5);
  EXPECT_EQ(CallOnce(path_, "test.Echo", "Echo", "once", options).value_or(""), "once|ns|deadline");
  absl::StatusOr<std::string> failed = CallOnce(path_, "test.Echo", "Fail", "thing", options);
  EXPECT_THAT(failed, StatusIs(absl::StatusCode::kNotFound));
  EXPECT_EQ(failed.status().message(), "no thing");
  options.timeout = absl::Milliseconds(100);
  absl::StatusOr<std::string> late = CallOnce(path_, "test.Echo", "Later", "never", options);
  EXPECT_THAT(late, StatusIs(absl::StatusCode::kDeadlineExceeded));
  EXPECT_THAT(late.status().message(), HasSubstr("test.Echo/Later"));
  EXPECT_THAT(CallOnce(path_ + ".missing", "test.Echo", "Echo", ""),
              StatusIs(absl::StatusCode::kUnavailable));
  std::unique_ptr<Client> client = Dial();
  EXPECT_EQ(client->Call("test.Echo", "Release", "").value_or(""), "done");
  EXPECT_EQ(client->Call("test.Echo", "Connections", "").value_or(""), "1");
}

TEST(ListenUnix, RefusesLongPathsAndExistingOnes) {
  TempDir dir;
  std::string long_path = dir.path() + "/" + std::string(120, 'x');
  absl::StatusOr<UniqueFd> listener = ListenUnix(long_path);
  EXPECT_THAT(listener, StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(listener.status().message(), HasSubstr("107"));
  ASSERT_THAT(ListenUnix(dir.path() + "/s"), IsOk());
  EXPECT_THAT(ListenUnix(dir.path() + "/s"), StatusIs(absl::StatusCode::kAlreadyExists));
  struct stat st;
  ASSERT_EQ(::stat((dir.path() + "/s").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
}

}  // namespace
}  // namespace berth::ttrpc
