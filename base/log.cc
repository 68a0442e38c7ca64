#include "base/log.h"

#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"

namespace berth::log {
namespace {

std::atomic<Level> min_level{Level::kInfo};

// logfmt quoting: bare when the value is one plain word, quoted otherwise.
void AppendValue(std::string& line, absl::string_view value) {
  bool bare = !value.empty();
  for (char c : value) {
    if (!(absl::ascii_isalnum(c) || c == '.' || c == '-' || c == '_' || c == '/' || c == ':' ||
          c == '@' || c == '+')) {
      bare = false;
      break;
    }
  }
  if (bare) {
    line.append(value.data(), value.size());
  } else {
    absl::StrAppend(&line, "\"", absl::CEscape(value), "\"");
  }
}

std::string Format(Level level, absl::string_view msg, Fields fields) {
  std::string line = absl::StrCat("level=", LevelName(level), " msg=");
  AppendValue(line, msg);
  for (const Field& field : fields) {
    absl::StrAppend(&line, " ", field.key, "=");
    AppendValue(line, field.value);
  }
  return line;
}

// RFC 3339 in UTC with microseconds, as logrus prints it. By hand rather
// than absl::FormatTime, whose time-zone machinery would be most of a
// shim's code.
std::string UtcNow() {
  timespec now;
  ::clock_gettime(CLOCK_REALTIME, &now);
  tm utc;
  ::gmtime_r(&now.tv_sec, &utc);
  char text[64];
  std::snprintf(text, sizeof text, "%04d-%02d-%02dT%02d:%02d:%02d.%06dZ", utc.tm_year + 1900,
                utc.tm_mon + 1, utc.tm_mday, utc.tm_hour, utc.tm_min, utc.tm_sec,
                static_cast<int>(now.tv_nsec / 1000));
  return text;
}

}  // namespace

absl::StatusOr<Level> ParseLevel(absl::string_view name) {
  if (name == "trace") return Level::kTrace;
  if (name == "debug") return Level::kDebug;
  if (name == "info") return Level::kInfo;
  if (name == "warn" || name == "warning") return Level::kWarn;
  if (name == "error") return Level::kError;
  return absl::InvalidArgumentError(absl::StrCat(
      "log level \"", name, "\" is not one of trace, debug, info, warn, error"));
}

absl::string_view LevelName(Level level) {
  switch (level) {
    case Level::kTrace: return "trace";
    case Level::kDebug: return "debug";
    case Level::kInfo: return "info";
    case Level::kWarn: return "warning";
    case Level::kError: return "error";
  }
  return "unknown";
}

void SetLevel(Level level) { min_level.store(level); }

bool Enabled(Level level) { return level >= min_level.load(std::memory_order_relaxed); }

void Write(Level level, absl::string_view msg, Fields fields) {
  if (!Enabled(level)) return;
  std::string line = absl::StrCat("time=\"", UtcNow(), "\" ", Format(level, msg, fields), "\n");
  // One write(2) per line keeps concurrent lines whole; a short write to a
  // full pipe is not worth a retry loop that could block the daemon.
  [[maybe_unused]] ssize_t written = ::write(STDERR_FILENO, line.data(), line.size());
}

std::string FormatForTest(Level level, absl::string_view msg, Fields fields) {
  return Format(level, msg, fields);
}

}  // namespace berth::log
