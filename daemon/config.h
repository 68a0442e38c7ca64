// berthd's configuration: the TOML file named by `berthd --config`, in the
// layout containerd 1.6 calls version 2, so a containerd config.toml reads
// here without a rewrite of the parts Berth shares.
//
// A file sets a few global keys, then one table per area, then one table per
// plugin keyed by the plugin's full id (type and id joined by a dot):
//
//   version = 2
//   root = "/var/lib/berth"
//   [grpc]
//     address = "/run/berth/berth.sock"
//     uid = 0
//   [debug]
//     level = "debug"
//   [plugins."io.containerd.gc.v1.scheduler"]
//     pause_threshold = 0.02
//
// Worked example. ParseConfig on the text above, with source "config.toml",
// starts from Config{} (whose members hold the defaults below) and overwrites
// what the file sets: root and grpc.address keep their defaults' values,
// debug.level becomes "debug", and `plugins` becomes
// {"io.containerd.gc.v1.scheduler"}. No plugin reads configuration yet, so
// `pause_threshold` is an unknown key: it is not an error (a containerd file
// is full of keys Berth has no use for) but a warning,
//   unknown configuration key "plugins.\"io.containerd.gc.v1.scheduler\".pause_threshold" at line 9
// which berthd logs at startup. Had the file said `uid = -1`, ParseConfig
// would fail with
//   config.toml line 5: key "grpc.uid" must be between 0 and 4294967294, not -1
// and `berthd config default` prints FormatConfig(Config{}), the text above
// with every key spelled out.
//
// Keys in messages are written as TOML writes them: bare when they can be,
// else quoted (`plugins."io.containerd.gc.v1.scheduler"`), and the whole
// path is then quoted and escaped as a TOML string.
#ifndef BERTH_DAEMON_CONFIG_H_
#define BERTH_DAEMON_CONFIG_H_

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace berth::daemon {

struct Config {
  struct Grpc {
    // A unix socket path: absolute, at most 107 bytes (sockaddr_un's limit).
    std::string address = "/run/berth/berth.sock";
    // Owner of the socket, each in [0, 4294967294].
    int64_t uid = 0;
    int64_t gid = 0;
    // Each in [1, 2147483647]: gRPC takes them as an int.
    int64_t max_recv_message_size = 16 << 20;
    int64_t max_send_message_size = 16 << 20;

    bool operator==(const Grpc&) const = default;
  };

  struct Debug {
    // One of trace, debug, info, warn, warning, error (log::ParseLevel's names).
    std::string level = "info";

    bool operator==(const Debug&) const = default;
  };

  // Only 2 is read; a file without the key is read as version 2.
  int64_t version = 2;
  // Absolute paths: persistent data, and runtime state (sockets, mounts).
  std::string root = "/var/lib/berth";
  std::string state = "/run/berth";
  // Plugin ids ("io.containerd.gc.v1.scheduler") as the daemon passes them on.
  std::vector<std::string> disabled_plugins;
  std::vector<std::string> required_plugins;
  // Written to /proc/self/oom_score_adj, so in [-1000, 1000].
  int64_t oom_score = 0;
  Grpc grpc;
  Debug debug;
  // Ids of the plugins that had a [plugins."<id>"] table.
  std::set<std::string> plugins;
  // [plugins."io.containerd.runtime.v2.task".shims]: runtime name → the
  // shim binary that runs it (an absolute path, or a name found beside
  // berthd or on PATH), beyond the built-in names (runtime/tasks.h).
  std::map<std::string, std::string> runtime_shims;

  bool operator==(const Config&) const = default;
};

// Reads a version 2 config from `toml_text`. `source` names the text in
// messages (the file's path, or "config.toml").
//
// On success, returns Config{} with every key the text sets overwritten, and
// appends one warning per unknown key, in line order, to *warnings:
//   unknown configuration key "grpc.adress" at line 7
// A key is unknown when Berth does not read it: a misspelt key, a section
// Berth lacks ([ttrpc], [metrics] …), any key inside a plugin's table. An
// unknown table yields one warning for the table, not one per key inside it.
// `warnings` may be null, dropping them. On failure *warnings is unchanged.
//
// Fails with InvalidArgument, naming `source` and the line, when
// - the text is not TOML: "config.toml:3:5: " then toml++'s description;
// - a key the config reads has the wrong type:
//     config.toml line 4: key "grpc.uid" must be an integer, not a string
//   (a section such as `grpc`, and every entry of `plugins`, must be a table);
// - `version` is not 2 (version 1 files are not supported: they name plugins
//   by short id and Berth never read that layout);
// - a value is out of the range its member above documents: a path that is
//   empty, relative or holds a NUL byte, a socket path over 107 bytes, a
//   negative uid or gid, a message size <= 0, an unknown debug.level.
// A message on a bad value quotes it; one on a wrong type names the type found.
absl::StatusOr<Config> ParseConfig(absl::string_view toml_text, absl::string_view source,
                                   std::vector<std::string>* warnings);

// ParseConfig on the file at `path`, with `path` as the source.
// Fails with NotFound (`open "<path>": No such file or directory`) if there is
// no file, with InvalidArgument if it is a directory or over 1 MiB, with the
// errno's status for other read failures, else as ParseConfig does.
absl::StatusOr<Config> LoadConfigFile(const std::string& path, std::vector<std::string>* warnings);

// `config` as TOML, in the layout shown above, every key spelled out.
// ParseConfig reads the result back to a Config equal to `config`, with no
// warnings, if `config` is one ParseConfig accepts.
// REQUIRES: the strings in `config` are valid UTF-8 (TOML is).
std::string FormatConfig(const Config& config);

}  // namespace berth::daemon

#endif  // BERTH_DAEMON_CONFIG_H_
