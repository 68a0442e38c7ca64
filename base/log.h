// Structured log lines on stderr, one event a line, in the key=value form
// containerd prints (so the same tools read both):
//
//   time="2026-11-23T09:00:00.123456Z" level=info msg="loading plugin" id=io.containerd.grpc.v1.version
//
//   log::Info("loading plugin", {{"id", id}, {"type", type}});
//   log::Warn("unknown configuration key", {{"key", key}, {"line", line}});
//
// Lines are written with a single write(2), so lines from threads never mix.
#ifndef BERTH_BASE_LOG_H_
#define BERTH_BASE_LOG_H_

#include <initializer_list>
#include <string>
#include "absl/strings/string_view.h"

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"

namespace berth::log {

enum class Level { kTrace, kDebug, kInfo, kWarn, kError };

// One `key=value` pair of a line; values are anything absl::StrCat takes.
struct Field {
  Field(absl::string_view key, const absl::AlphaNum& value)
      : key(key), value(value.data(), value.size()) {}
  absl::string_view key;
  std::string value;
};

using Fields = std::initializer_list<Field>;

// "trace", "debug", "info", "warn"/"warning", "error"; InvalidArgument else.
absl::StatusOr<Level> ParseLevel(absl::string_view name);
absl::string_view LevelName(Level level);

// Lines below `level` are dropped. The default is kInfo.
void SetLevel(Level level);
bool Enabled(Level level);

void Write(Level level, absl::string_view msg, Fields fields = {});

inline void Debug(absl::string_view msg, Fields fields = {}) { Write(Level::kDebug, msg, fields); }
inline void Info(absl::string_view msg, Fields fields = {}) { Write(Level::kInfo, msg, fields); }
inline void Warn(absl::string_view msg, Fields fields = {}) { Write(Level::kWarn, msg, fields); }
inline void Error(absl::string_view msg, Fields fields = {}) { Write(Level::kError, msg, fields); }

// A line as Write prints it (without the time), for tests.
std::string FormatForTest(Level level, absl::string_view msg, Fields fields);

}  // namespace berth::log

#endif  // BERTH_BASE_LOG_H_
