// berthd: the Berth daemon. Flags as containerd's:
//
//   berthd [--config FILE] [--root DIR] [--state DIR] [--address SOCK] [--log-level LEVEL]
//   berthd config default   print the default configuration
//   berthd config dump      print the configuration berthd would run with
//   berthd --version
#include <sys/stat.h>

#include <cstdio>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "base/log.h"
#include "base/status.h"
#include "daemon/config.h"
#include "daemon/server.h"
#include "services/version/version.h"

namespace berth::daemon {
namespace {

constexpr char kDefaultConfigPath[] = "/etc/berth/config.toml";

constexpr char kUsage[] =
    "usage: berthd [--config FILE] [--root DIR] [--state DIR] [--address SOCK]\n"
    "              [--log-level trace|debug|info|warn|error]\n"
    "       berthd config default|dump\n"
    "       berthd --version\n";

struct Flags {
  std::optional<std::string> config, root, state, address, log_level;
  std::vector<std::string> args;  // positional: a subcommand
  bool version = false;
  bool help = false;
};

absl::StatusOr<Flags> ParseFlags(int argc, char** argv) {
  Flags flags;
  struct Valued {
    const char* long_name;
    const char* short_name;
    std::optional<std::string> Flags::*field;
  };
  const Valued valued[] = {
      {"--config", "-c", &Flags::config},    {"--root", nullptr, &Flags::root},
      {"--state", nullptr, &Flags::state},   {"--address", "-a", &Flags::address},
      {"--log-level", "-l", &Flags::log_level},
  };
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--version" || arg == "-v") {
      flags.version = true;
      continue;
    }
    if (arg == "--help" || arg == "-h") {
      flags.help = true;
      continue;
    }
    if (!absl::StartsWith(arg, "-")) {
      flags.args.push_back(arg);
      continue;
    }
    bool known = false;
    for (const Valued& v : valued) {
      std::string prefix = absl::StrCat(v.long_name, "=");
      if (absl::StartsWith(arg, prefix)) {
        flags.*v.field = arg.substr(prefix.size());
      } else if (arg == v.long_name || (v.short_name != nullptr && arg == v.short_name)) {
        if (i + 1 >= argc) return absl::InvalidArgumentError(absl::StrCat("flag ", arg, " needs a value"));
        flags.*v.field = argv[++i];
      } else {
        continue;
      }
      known = true;
      break;
    }
    if (!known) return absl::InvalidArgumentError(absl::StrCat("unknown flag \"", arg, "\""));
  }
  return flags;
}

// The configuration file (if any) with the flags applied on top. A file named
// by --config must exist; the default path is read only if it does.
absl::StatusOr<Config> EffectiveConfig(const Flags& flags) {
  Config config;
  std::optional<std::string> path = flags.config;
  struct stat st;
  if (!path && ::stat(kDefaultConfigPath, &st) == 0) path = kDefaultConfigPath;
  if (path) {
    std::vector<std::string> warnings;
    BERTH_ASSIGN_OR_RETURN(config, LoadConfigFile(*path, &warnings));
    for (const std::string& warning : warnings) log::Warn(warning, {{"config", *path}});
  }
  if (flags.root) config.root = *flags.root;
  if (flags.state) config.state = *flags.state;
  if (flags.address) config.grpc.address = *flags.address;
  if (flags.log_level) config.debug.level = *flags.log_level;
  // Flags bypass the file's checks: hold them to the same rules.
  std::vector<std::string> ignored;
  BERTH_RETURN_IF_ERROR(ParseConfig(FormatConfig(config), "flags", &ignored).status());
  return config;
}

int Main(int argc, char** argv) {
  absl::StatusOr<Flags> flags = ParseFlags(argc, argv);
  if (!flags.ok()) {
    std::fprintf(stderr, "berthd: %s\n%s", std::string(flags.status().message()).c_str(), kUsage);
    return 2;
  }
  if (flags->help) {
    std::fputs(kUsage, stdout);
    return 0;
  }
  if (flags->version) {
    std::printf("berthd %s\n", services::version::kVersion);
    return 0;
  }
  if (flags->args == std::vector<std::string>{"config", "default"}) {
    std::fputs(FormatConfig(Config{}).c_str(), stdout);
    return 0;
  }
  absl::StatusOr<Config> config = EffectiveConfig(*flags);
  if (!config.ok()) {
    std::fprintf(stderr, "berthd: %s\n", std::string(config.status().message()).c_str());
    return 1;
  }
  if (flags->args == std::vector<std::string>{"config", "dump"}) {
    std::fputs(FormatConfig(*config).c_str(), stdout);
    return 0;
  }
  if (!flags->args.empty()) {
    std::fprintf(stderr, "berthd: unknown command \"%s\"\n%s", flags->args[0].c_str(), kUsage);
    return 2;
  }
  log::SetLevel(*log::ParseLevel(config->debug.level));
  if (absl::Status status = Serve(*config); !status.ok()) {
    log::Error("berthd failed", {{"error", status.message()}});
    return 1;
  }
  return 0;
}

}  // namespace
}  // namespace berth::daemon

int main(int argc, char** argv) { return berth::daemon::Main(argc, argv); }
