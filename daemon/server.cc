#include "daemon/server.h"

#include <fcntl.h>
#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/grpcpp.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <memory>
#include <string>
#include <thread>

#include "absl/strings/str_cat.h"
#include "base/log.h"
#include "base/status.h"
#include "base/unique_fd.h"
#include "daemon/builtins.h"
#include "daemon/plugin.h"
#include "ttrpc/ttrpc.h"

namespace berth::daemon {
namespace {

// sun_path holds 108 bytes including the terminating NUL.
constexpr size_t kMaxSocketPath = sizeof(sockaddr_un::sun_path) - 1;

// Creates `dir` and its missing parents, and makes `dir` itself 0700 even if
// it existed: looser modes let other users into the daemon's state
// (containerd's CVE-2021-41103 and CVE-2024-25621).
absl::Status MakePrivateDir(const std::string& dir) {
  for (size_t slash = dir.find('/', 1); slash != std::string::npos;
       slash = dir.find('/', slash + 1)) {
    std::string parent = dir.substr(0, slash);
    if (::mkdir(parent.c_str(), 0711) != 0 && errno != EEXIST) {
      return ErrnoStatus("mkdir", parent);
    }
  }
  if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) return ErrnoStatus("mkdir", dir);
  if (::chmod(dir.c_str(), 0700) != 0) return ErrnoStatus("chmod", dir);
  return absl::OkStatus();
}

// Holds the root's lock file for the daemon's lifetime: flock is released by
// the kernel when the process dies, so a crash never leaves a stale lock.
absl::StatusOr<UniqueFd> LockRoot(const std::string& root) {
  const std::string path = root + "/berthd.lock";
  UniqueFd fd(::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
  if (!fd.valid()) return ErrnoStatus("open", path);
  if (::flock(fd.get(), LOCK_EX | LOCK_NB) != 0) {
    if (errno != EWOULDBLOCK) return ErrnoStatus("flock", path);
    char pid[32] = {};
    ssize_t n = ::pread(fd.get(), pid, sizeof(pid) - 1, 0);
    return absl::FailedPreconditionError(
        absl::StrCat("another berthd (pid ", n > 0 ? absl::string_view(pid, n) : "unknown",
                     ") is already using root \"", root, "\": it holds \"", path, "\""));
  }
  std::string pid = std::to_string(::getpid());
  if (::ftruncate(fd.get(), 0) != 0 || ::pwrite(fd.get(), pid.data(), pid.size(), 0) < 0) {
    return ErrnoStatus("write", path);
  }
  return fd;
}

// A socket file left by a daemon that died is replaced; one that still
// answers belongs to a live server and is not touched, nor is anything that
// is not a socket.
absl::Status PrepareSocketPath(const std::string& address) {
  if (address.size() > kMaxSocketPath) {
    return absl::InvalidArgumentError(absl::StrCat("socket path \"", address, "\" is ",
                                                   address.size(), " bytes; unix sockets allow ",
                                                   kMaxSocketPath));
  }
  const std::string dir = address.substr(0, address.rfind('/'));
  if (!dir.empty()) {
    struct stat st;
    if (::stat(dir.c_str(), &st) != 0) BERTH_RETURN_IF_ERROR(MakePrivateDir(dir));
  }
  struct stat st;
  if (::lstat(address.c_str(), &st) != 0) {
    if (errno == ENOENT) return absl::OkStatus();
    return ErrnoStatus("stat", address);
  }
  if (!S_ISSOCK(st.st_mode)) {
    return absl::FailedPreconditionError(
        absl::StrCat("socket path \"", address, "\" exists and is not a socket"));
  }
  UniqueFd probe(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!probe.valid()) return ErrnoStatus("socket", address);
  sockaddr_un addr = {};
  addr.sun_family = AF_UNIX;
  address.copy(addr.sun_path, kMaxSocketPath);
  if (::connect(probe.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("socket \"", address, "\" is in use by another server"));
  }
  log::Info("removing stale socket", {{"address", address}});
  if (::unlink(address.c_str()) != 0 && errno != ENOENT) return ErrnoStatus("unlink", address);
  return absl::OkStatus();
}

// A socket of the daemon's: its group's only (0660), owned as configured.
absl::Status RestrictSocket(const std::string& path, const Config::Grpc& grpc) {
  if (::chmod(path.c_str(), 0660) != 0) return ErrnoStatus("chmod", path);
  if (::chown(path.c_str(), grpc.uid, grpc.gid) != 0) return ErrnoStatus("chown", path);
  return absl::OkStatus();
}

sigset_t StopSignals() {
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  return signals;
}

}  // namespace

absl::Status Serve(const Config& config) {
  // Threads inherit the mask: only the sigwait below ever sees these.
  sigset_t stop = StopSignals();
  ::pthread_sigmask(SIG_BLOCK, &stop, nullptr);
  std::signal(SIGPIPE, SIG_IGN);
  ::umask(0077);

  BERTH_RETURN_IF_ERROR(MakePrivateDir(config.root));
  BERTH_RETURN_IF_ERROR(MakePrivateDir(config.state));
  BERTH_ASSIGN_OR_RETURN(UniqueFd lock, LockRoot(config.root));
  const std::string& address = config.grpc.address;
  BERTH_RETURN_IF_ERROR(PrepareSocketPath(address));

  Registry registry;
  RegisterBuiltins(registry);
  BERTH_RETURN_IF_ERROR(registry.InitAll({
      .root = config.root,
      .state = config.state,
      .address = address,
      .disabled = config.disabled_plugins,
      .required = config.required_plugins,
      .runtime_shims = config.runtime_shims,
  }));

  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  builder.AddListeningPort("unix:" + address, grpc::InsecureServerCredentials());
  builder.SetMaxReceiveMessageSize(static_cast<int>(config.grpc.max_recv_message_size));
  builder.SetMaxSendMessageSize(static_cast<int>(config.grpc.max_send_message_size));
  for (const std::shared_ptr<GrpcService>& service : registry.Instances<GrpcService>(kGrpcPlugin)) {
    service->Register(builder);
  }
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (server == nullptr) {
    return absl::UnavailableError(absl::StrCat("serve gRPC on \"", address, "\" failed"));
  }
  BERTH_RETURN_IF_ERROR(RestrictSocket(address, config.grpc));
  const std::string ttrpc_address = TtrpcAddress(address);
  BERTH_RETURN_IF_ERROR(PrepareSocketPath(ttrpc_address));
  BERTH_ASSIGN_OR_RETURN(std::unique_ptr<ttrpc::EventLoop> loop, ttrpc::EventLoop::Create());
  auto ttrpc_server = std::make_unique<ttrpc::Server>(*loop);
  for (const std::shared_ptr<TtrpcService>& service :
       registry.Instances<TtrpcService>(kTtrpcPlugin)) {
    service->Register(*ttrpc_server);
  }
  BERTH_ASSIGN_OR_RETURN(UniqueFd ttrpc_listener, ttrpc::ListenUnix(ttrpc_address));
  BERTH_RETURN_IF_ERROR(RestrictSocket(ttrpc_address, config.grpc));
  BERTH_RETURN_IF_ERROR(ttrpc_server->Serve(std::move(ttrpc_listener)));
  std::thread ttrpc_thread([&loop] {
    if (absl::Status ran = loop->Run(); !ran.ok()) {
      log::Error("the ttrpc server stopped", {{"error", ran.ToString()}});
    }
  });
  log::Info("serving...", {{"address", address}});
  log::Info("berthd successfully booted", {{"root", config.root}, {"state", config.state}});

  int signal = 0;
  while (::sigwait(&stop, &signal) != 0) {
  }
  log::Info("stopping berthd", {{"signal", strsignal(signal)}});
  server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
  server.reset();
  loop->Stop();
  ttrpc_thread.join();
  ttrpc_server.reset();
  ::unlink(address.c_str());
  ::unlink(ttrpc_address.c_str());
  log::Info("berthd stopped");
  return absl::OkStatus();
}

}  // namespace berth::daemon
