// containerd-shim-berth-v1: the runtime v2 shim (runtime name
// io.containerd.berth.v1) that holds one task for containerd or berthd, so
// that it outlives their restarts.
//
// Three ways to run it, as containerd's shim protocol has them:
//
//   <shim> -namespace NS -address A -publish-binary B -id ID start
//       in the bundle directory: listens on a unix socket named after
//       (A, NS, G) in A's directory, under s/ (containerd's own address
//       gives /run/containerd/s/<sha256>, as its runc shim does), writes
//       its address to ./address, starts the serving shim (itself, in its
//       own session, with the socket as fd 3), prints the address, exits.
//       G is the task's group — the io.containerd.runc.v2.group or
//       io.kubernetes.cri.sandbox-id annotation of ./config.json, else ID —
//       and when a shim of that group serves already, start only writes
//       and prints its address: one shim serves a pod's containers.
//   <shim> -namespace NS -address A -id ID
//       serves containerd.task.v2.Task on fd 3 until Shutdown.
//   <shim> -namespace NS -address A -id ID -bundle P delete
//       cleans up after a shim that died: deletes the container from the
//       OCI runtime, unmounts P/rootfs, prints a DeleteResponse.
//
// The task service drives a runc-compatible OCI runtime (`runc` unless the
// runtime options name another binary) with its state under A's
// directory, in runc/NS. The shim is a child subreaper, so the container's
// init is its child once the runtime exits; exits arrive through a
// signalfd on the one event loop, and task events go to TTRPC_ADDRESS
// (containerd.services.events.ttrpc.v1.Events/Forward).
#ifndef BERTH_SHIM_SHIM_H_
#define BERTH_SHIM_SHIM_H_

#include <string>

#include "absl/status/status.h"
#include "ttrpc/ttrpc.h"

namespace berth::shim {

struct Flags {
  std::string ns;
  std::string address;  // the daemon's (containerd's or berthd's) socket
  std::string id;
  std::string bundle;  // for delete; else the working directory
  std::string publish_binary;
  std::string action;  // "start", "delete" or "" (serve)
};

// Parses the command line; InvalidArgument naming what is wrong.
absl::StatusOr<Flags> ParseFlags(int argc, char** argv);

// The socket path of the shim for `flags`, whose id is the group's (see
// above).
std::string SocketPath(const Flags& flags);

// The three modes. Each returns the process's exit code.
int Start(const Flags& flags, const char* self);
int Delete(const Flags& flags);
int Serve(const Flags& flags);

}  // namespace berth::shim

#endif  // BERTH_SHIM_SHIM_H_
