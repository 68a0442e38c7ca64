#include "daemon/config.h"

#include <fstream>
#include <functional>
#include <ostream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "base/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace berth::daemon {

// Failures show a Config as the TOML it stands for.
void PrintTo(const Config& config, std::ostream* os) { *os << "\n" << FormatConfig(config); }

namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

constexpr char kSource[] = "config.toml";

// What `berthd config default` prints.
constexpr char kDefaultText[] = R"(version = 2
root = "/var/lib/berth"
state = "/run/berth"
disabled_plugins = []
required_plugins = []
oom_score = 0

[grpc]
  address = "/run/berth/berth.sock"
  uid = 0
  gid = 0
  max_recv_message_size = 16777216
  max_send_message_size = 16777216

[debug]
  level = "info"

[plugins]
)";

// Names each table case's test after the case.
template <typename Case>
std::string CaseName(const ::testing::TestParamInfo<Case>& case_info) {
  return case_info.param.name;
}

absl::StatusOr<Config> Parse(absl::string_view text, std::vector<std::string>* warnings = nullptr) {
  return ParseConfig(text, kSource, warnings);
}

// ---------------------------------------------------------------- defaults

TEST(ConfigDefaults, MembersHoldTheDocumentedDefaults) {
  Config config;
  EXPECT_EQ(config.version, 2);
  EXPECT_EQ(config.root, "/var/lib/berth");
  EXPECT_EQ(config.state, "/run/berth");
  EXPECT_THAT(config.disabled_plugins, IsEmpty());
  EXPECT_THAT(config.required_plugins, IsEmpty());
  EXPECT_EQ(config.oom_score, 0);
  EXPECT_EQ(config.grpc.address, "/run/berth/berth.sock");
  EXPECT_EQ(config.grpc.uid, 0);
  EXPECT_EQ(config.grpc.gid, 0);
  EXPECT_EQ(config.grpc.max_recv_message_size, 16777216);
  EXPECT_EQ(config.grpc.max_send_message_size, 16777216);
  EXPECT_EQ(config.debug.level, "info");
  EXPECT_THAT(config.plugins, IsEmpty());
}

TEST(ConfigDefaults, EmptyFileIsTheDefaults) {
  std::vector<std::string> warnings;
  absl::StatusOr<Config> config = Parse("", &warnings);
  ASSERT_THAT(config, IsOk());
  EXPECT_EQ(*config, Config{});
  EXPECT_THAT(warnings, IsEmpty());
}

TEST(ConfigDefaults, MissingVersionIsReadAsVersion2) {
  absl::StatusOr<Config> config = Parse("root = \"/srv/berth\"\n");
  ASSERT_THAT(config, IsOk());
  EXPECT_EQ(config->version, 2);
}

TEST(ConfigDefaults, FormatConfigOfDefaultsIsTheDefaultFile) {
  EXPECT_EQ(FormatConfig(Config{}), kDefaultText);
}

TEST(ConfigDefaults, DefaultFileReadsBackWithoutWarnings) {
  std::vector<std::string> warnings;
  absl::StatusOr<Config> config = Parse(kDefaultText, &warnings);
  ASSERT_THAT(config, IsOk());
  EXPECT_EQ(*config, Config{});
  EXPECT_THAT(warnings, IsEmpty());
}

// The example config.h teaches with must behave as it says.
TEST(ConfigHeaderExample, ParsesAsDescribed) {
  constexpr char kExample[] = R"(version = 2
root = "/var/lib/berth"
[grpc]
  address = "/run/berth/berth.sock"
  uid = 0
[debug]
  level = "debug"
[plugins."io.containerd.gc.v1.scheduler"]
  pause_threshold = 0.02
)";
  Config want;
  want.debug.level = "debug";
  want.plugins = {"io.containerd.gc.v1.scheduler"};
  std::vector<std::string> warnings;
  absl::StatusOr<Config> config = Parse(kExample, &warnings);
  ASSERT_THAT(config, IsOk());
  EXPECT_EQ(*config, want);
  EXPECT_THAT(warnings,
              ElementsAre("unknown configuration key "
                          "\"plugins.\\\"io.containerd.gc.v1.scheduler\\\".pause_threshold\""
                          " at line 9"));
}

TEST(ConfigHeaderExample, NegativeUidFailsAsDescribed) {
  constexpr char kExample[] = R"(version = 2
root = "/var/lib/berth"
[grpc]
  address = "/run/berth/berth.sock"
  uid = -1
)";
  EXPECT_EQ(Parse(kExample).status().message(),
            "config.toml line 5: key \"grpc.uid\" must be between 0 and 4294967294, not -1");
}

// -------------------------------------------------------------- round trip

struct RoundTripCase {
  std::string name;
  std::function<void(Config&)> change;
};

class ConfigRoundTrip : public ::testing::TestWithParam<RoundTripCase> {};

TEST_P(ConfigRoundTrip, FormatThenParseGivesTheSameConfigAndNoWarnings) {
  Config config;
  GetParam().change(config);
  std::string text = FormatConfig(config);
  std::vector<std::string> warnings;
  absl::StatusOr<Config> read = Parse(text, &warnings);
  ASSERT_THAT(read, IsOk()) << text;
  EXPECT_EQ(*read, config) << text;
  EXPECT_THAT(warnings, IsEmpty());
}

INSTANTIATE_TEST_SUITE_P(
    Cases, ConfigRoundTrip,
    ::testing::Values(
        RoundTripCase{"Defaults", [](Config&) {}},
        RoundTripCase{"EveryMemberChanged",
                      [](Config& c) {
                        c.root = "/srv/berth/root";
                        c.state = "/tmp/berth-state";
                        c.disabled_plugins = {"io.containerd.snapshotter.v1.btrfs", "b"};
                        c.required_plugins = {"io.containerd.grpc.v1.version"};
                        c.oom_score = -999;
                        c.grpc = {.address = "/tmp/b.sock",
                                  .uid = 1000,
                                  .gid = 1001,
                                  .max_recv_message_size = 1,
                                  .max_send_message_size = 4096};
                        c.debug.level = "trace";
                        c.plugins = {"io.containerd.gc.v1.scheduler",
                                     "io.containerd.snapshotter.v1.overlayfs"};
                      }},
        RoundTripCase{"StringsThatNeedEscapes",
                      [](Config& c) {
                        c.root = "/var/lib/\"quoted\" and \\back\\slashed";
                        c.state = "/run/tab\there\nnewline\rcr\bbs\ffeed\x01\x1f\x7f";
                        c.disabled_plugins = {"", "\"", "\\", "#not a comment", "]"};
                        c.required_plugins = {"b\xc3\xa9rth", "\xe6\x97\xa5\xe6\x9c\xac"};
                      }},
        RoundTripCase{"RuntimeShims",
                      [](Config& c) {
                        c.plugins = {"io.containerd.runtime.v2.task"};
                        c.runtime_shims = {
                            {"io.containerd.runc.v2", "/usr/bin/containerd-shim-runc-v2"},
                            {"io.containerd.kata.v2", "containerd-shim-kata-v2"}};
                      }},
        RoundTripCase{"PluginIdsThatNeedQuotes",
                      [](Config& c) {
                        c.plugins = {"", "bare_id-1", "with space", "quote\"d", "dotted.id",
                                     "back\\slash", "[bracket]", "\xe2\x9c\x93"};
                      }},
        RoundTripCase{"LargestValues",
                      [](Config& c) {
                        c.oom_score = 1000;
                        c.grpc.uid = 4294967294;
                        c.grpc.gid = 4294967294;
                        c.grpc.max_recv_message_size = 2147483647;
                        c.grpc.max_send_message_size = 2147483647;
                        c.grpc.address = "/" + std::string(106, 'a');
                      }},
        RoundTripCase{"SmallestValues",
                      [](Config& c) {
                        c.oom_score = -1000;
                        c.grpc.max_recv_message_size = 1;
                        c.grpc.max_send_message_size = 1;
                        c.root = "/";
                        c.state = "/";
                        c.grpc.address = "/s";
                      }},
        RoundTripCase{"WarningSpelledOut", [](Config& c) { c.debug.level = "warning"; }}),
    CaseName<RoundTripCase>);

// --------------------------------------------------------------- overrides

TEST(ConfigOverrides, EveryKeyIsRead) {
  constexpr char kText[] = R"(version = 2
root = "/srv/berth"
state = "/tmp/berth"
disabled_plugins = ["io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs"]
required_plugins = ["io.containerd.grpc.v1.version"]
oom_score = -500

[grpc]
  address = "/tmp/berth/berth.sock"
  uid = 1000
  gid = 2000
  max_recv_message_size = 1024
  max_send_message_size = 2048

[debug]
  level = "error"

[plugins]
  [plugins."io.containerd.gc.v1.scheduler"]
  [plugins."io.containerd.snapshotter.v1.overlayfs"]
)";
  Config want;
  want.root = "/srv/berth";
  want.state = "/tmp/berth";
  want.disabled_plugins = {"io.containerd.snapshotter.v1.btrfs",
                           "io.containerd.snapshotter.v1.zfs"};
  want.required_plugins = {"io.containerd.grpc.v1.version"};
  want.oom_score = -500;
  want.grpc = {.address = "/tmp/berth/berth.sock",
               .uid = 1000,
               .gid = 2000,
               .max_recv_message_size = 1024,
               .max_send_message_size = 2048};
  want.debug.level = "error";
  want.plugins = {"io.containerd.gc.v1.scheduler", "io.containerd.snapshotter.v1.overlayfs"};
  std::vector<std::string> warnings;
  absl::StatusOr<Config> config = Parse(kText, &warnings);
  ASSERT_THAT(config, IsOk());
  EXPECT_EQ(*config, want);
  EXPECT_THAT(warnings, IsEmpty());
}

// TOML spells one table several ways; each must land in the same member.
struct OverrideCase {
  std::string name;
  std::string text;
  std::function<void(Config&)> want_change;
};

class ConfigSpellings : public ::testing::TestWithParam<OverrideCase> {};

TEST_P(ConfigSpellings, SetsTheMember) {
  Config want;
  GetParam().want_change(want);
  std::vector<std::string> warnings;
  absl::StatusOr<Config> config = Parse(GetParam().text, &warnings);
  ASSERT_THAT(config, IsOk());
  EXPECT_EQ(*config, want);
}

INSTANTIATE_TEST_SUITE_P(
    Cases, ConfigSpellings,
    ::testing::Values(
        OverrideCase{"DottedKeyAtTopLevel", "grpc.uid = 7\n", [](Config& c) { c.grpc.uid = 7; }},
        OverrideCase{"InlineTable", "grpc = { gid = 8, address = \"/x.sock\" }\n",
                     [](Config& c) {
                       c.grpc.gid = 8;
                       c.grpc.address = "/x.sock";
                     }},
        OverrideCase{"HexInteger", "[grpc]\nuid = 0x10\n", [](Config& c) { c.grpc.uid = 16; }},
        OverrideCase{"LiteralString", "root = '/var/lib/x'\n",
                     [](Config& c) { c.root = "/var/lib/x"; }},
        OverrideCase{"MultilineArray", "disabled_plugins = [\n  \"a\",\n  \"b\",\n]\n",
                     [](Config& c) { c.disabled_plugins = {"a", "b"}; }},
        OverrideCase{"EmptyPluginsTable", "[plugins]\n", [](Config&) {}},
        OverrideCase{"PluginAsDottedKey", "plugins.\"io.containerd.gc.v1.scheduler\" = {}\n",
                     [](Config& c) { c.plugins = {"io.containerd.gc.v1.scheduler"}; }},
        OverrideCase{"PluginOnlyThroughASubtable",
                     "[plugins.\"io.containerd.grpc.v1.cri\".containerd]\n",
                     [](Config& c) { c.plugins = {"io.containerd.grpc.v1.cri"}; }},
        OverrideCase{"RuntimeShimsTable",
                     "[plugins.\"io.containerd.runtime.v2.task\".shims]\n"
                     "\"io.containerd.runc.v2\" = \"/usr/bin/containerd-shim-runc-v2\"\n",
                     [](Config& c) {
                       c.plugins = {"io.containerd.runtime.v2.task"};
                       c.runtime_shims = {
                           {"io.containerd.runc.v2", "/usr/bin/containerd-shim-runc-v2"}};
                     }},
        OverrideCase{"WarnLevel", "[debug]\nlevel = \"warn\"\n",
                     [](Config& c) { c.debug.level = "warn"; }}),
    CaseName<OverrideCase>);

// -------------------------------------------------------------- bad inputs

struct BadCase {
  std::string name;
  std::string text;
  // A part of the message that names the source, the line, the key and the
  // cause; for the values Berth checks, the whole message.
  std::string message;
};

class ConfigBadInput : public ::testing::TestWithParam<BadCase> {};

TEST_P(ConfigBadInput, IsInvalidArgument) {
  EXPECT_THAT(Parse(GetParam().text), StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST_P(ConfigBadInput, MessageNamesSourceLineAndKey) {
  EXPECT_THAT(std::string(Parse(GetParam().text).status().message()),
              HasSubstr(GetParam().message));
}

TEST_P(ConfigBadInput, LeavesWarningsUnchanged) {
  std::vector<std::string> warnings = {"earlier"};
  (void)Parse(absl::StrCat("unknown_key = 1\n", GetParam().text), &warnings);
  EXPECT_THAT(warnings, ElementsAre("earlier"));
}

std::string Key(absl::string_view key, int line, absl::string_view problem) {
  return absl::StrCat("config.toml line ", line, ": key \"", key, "\" ", problem);
}

INSTANTIATE_TEST_SUITE_P(
    Syntax, ConfigBadInput,
    ::testing::Values(
        BadCase{"MissingValue", "version = 2\nroot =\n",
                "config.toml:2:7: Error while parsing key-value pair: expected value"},
        BadCase{"DuplicateKey", "[grpc]\nuid = 1\nuid = 2\n",
                "config.toml:3:7: Error while parsing key-value pair: cannot redefine"},
        BadCase{"DuplicateTable", "[grpc]\n[debug]\n[grpc]\n",
                "config.toml:3:1: Error while parsing table header: cannot redefine"},
        BadCase{"UnterminatedString", "version = 2\n\nroot = \"/var\n",
                "config.toml:3:13: Error while parsing string"},
        BadCase{"InvalidUtf8", "root = \"/var/\xff\"\n",
                "config.toml:1:13: Encountered invalid utf-8"},
        BadCase{"NotToml", "{\"version\": 2}\n", "config.toml:1:1: "}),
    CaseName<BadCase>);

INSTANTIATE_TEST_SUITE_P(
    Version, ConfigBadInput,
    ::testing::Values(
        BadCase{"One", "version = 1\n[plugins.cri]\n",
                Key("version", 1, "is 1: version 1 configs are not supported")},
        // A version 1 file is refused for its version, whatever else is wrong.
        BadCase{"OneAfterABadKey", "root = 5\nversion = 1\n",
                Key("version", 2, "is 1: version 1 configs are not supported")},
        BadCase{"Three", "version = 3\n", Key("version", 1, "must be 2, not 3")},
        BadCase{"Zero", "version = 0\n", Key("version", 1, "must be 2, not 0")},
        BadCase{"String", "version = \"2\"\n",
                Key("version", 1, "must be an integer, not a string")},
        BadCase{"Float", "version = 2.0\n", Key("version", 1, "must be an integer, not a float")}),
    CaseName<BadCase>);

INSTANTIATE_TEST_SUITE_P(
    Paths, ConfigBadInput,
    ::testing::Values(
        BadCase{"RootNotString", "root = 5\n", Key("root", 1, "must be a string, not an integer")},
        BadCase{"RootDateTime", "\nroot = 1979-05-27T07:32:00Z\n",
                Key("root", 2, "must be a string, not a date-time")},
        BadCase{"RootEmpty", "root = \"\"\n", Key("root", 1, "must not be empty")},
        BadCase{"RootRelative", "root = \"var/lib/berth\"\n",
                Key("root", 1, "must be an absolute path, not \"var/lib/berth\"")},
        BadCase{"RootHoldsNul", "root = \"/var/lib\\u0000/x\"\n",
                Key("root", 1, "must not hold a NUL byte: \"/var/lib\\u0000/x\"")},
        BadCase{"StateEmpty", "state = ''\n", Key("state", 1, "must not be empty")},
        BadCase{"StateRelative", "version = 2\nstate = \"./run\"\n",
                Key("state", 2, "must be an absolute path, not \"./run\"")},
        BadCase{"AddressEmpty", "[grpc]\naddress = \"\"\n",
                Key("grpc.address", 2, "must not be empty")},
        BadCase{"AddressRelative", "[grpc]\naddress = \"berth.sock\"\n",
                Key("grpc.address", 2, "must be an absolute path, not \"berth.sock\"")},
        BadCase{"AddressTooLong", "[grpc]\naddress = \"/" + std::string(107, 'a') + "\"\n",
                Key("grpc.address", 2,
                    "is 108 bytes, over the 107-byte limit of a unix socket path: \"/" +
                        std::string(107, 'a') + "\"")},
        BadCase{"AddressAsDottedKey", "grpc.address = \"x\"\n",
                Key("grpc.address", 1, "must be an absolute path, not \"x\"")}),
    CaseName<BadCase>);

INSTANTIATE_TEST_SUITE_P(
    Grpc, ConfigBadInput,
    ::testing::Values(
        BadCase{"NotTable", "grpc = \"/run/berth.sock\"\n",
                Key("grpc", 1, "must be a table, not a string")},
        BadCase{"UidString", "version = 2\nroot = \"/r\"\n[grpc]\n  uid = \"0\"\n",
                Key("grpc.uid", 4, "must be an integer, not a string")},
        BadCase{"UidNegative", "[grpc]\nuid = -1\n",
                Key("grpc.uid", 2, "must be between 0 and 4294967294, not -1")},
        BadCase{"UidAllOnes", "[grpc]\nuid = 4294967295\n",
                Key("grpc.uid", 2, "must be between 0 and 4294967294, not 4294967295")},
        BadCase{"GidNegative", "[grpc]\n\ngid = -5\n",
                Key("grpc.gid", 3, "must be between 0 and 4294967294, not -5")},
        BadCase{"GidFloat", "[grpc]\ngid = 1.5\n",
                Key("grpc.gid", 2, "must be an integer, not a float")},
        BadCase{"GidBoolean", "[grpc]\ngid = false\n",
                Key("grpc.gid", 2, "must be an integer, not a boolean")},
        BadCase{"MaxRecvZero", "[grpc]\nmax_recv_message_size = 0\n",
                Key("grpc.max_recv_message_size", 2, "must be between 1 and 2147483647, not 0")},
        BadCase{"MaxSendNegative", "[grpc]\nmax_send_message_size = -16\n",
                Key("grpc.max_send_message_size", 2,
                    "must be between 1 and 2147483647, not -16")},
        BadCase{"MaxRecvOverflowsInt", "[grpc]\nmax_recv_message_size = 2147483648\n",
                Key("grpc.max_recv_message_size", 2,
                    "must be between 1 and 2147483647, not 2147483648")}),
    CaseName<BadCase>);

INSTANTIATE_TEST_SUITE_P(
    Others, ConfigBadInput,
    ::testing::Values(
        BadCase{"DebugNotTable", "debug = []\n", Key("debug", 1, "must be a table, not an array")},
        BadCase{"DebugLevelUnknown", "[debug]\nlevel = \"verbose\"\n",
                Key("debug.level", 2,
                    "must be one of trace, debug, info, warn, warning, error, not \"verbose\"")},
        BadCase{"DebugLevelEmpty", "[debug]\nlevel = \"\"\n",
                Key("debug.level", 2,
                    "must be one of trace, debug, info, warn, warning, error, not \"\"")},
        BadCase{"DebugLevelInteger", "[debug]\nlevel = 4\n",
                Key("debug.level", 2, "must be a string, not an integer")},
        BadCase{"PluginsNotTable", "plugins = [\"io.containerd.gc.v1.scheduler\"]\n",
                Key("plugins", 1, "must be a table, not an array")},
        BadCase{"PluginEntryNotTable", "[plugins]\n\"io.containerd.gc.v1.scheduler\" = 1\n",
                Key("plugins.\\\"io.containerd.gc.v1.scheduler\\\"", 2,
                    "must be a table, not an integer")},
        BadCase{"PluginEntryString", "[plugins]\ncri = \"enabled\"\n",
                Key("plugins.cri", 2, "must be a table, not a string")},
        BadCase{"RuntimeShimRelativePath",
                "[plugins.\"io.containerd.runtime.v2.task\".shims]\nx = \"bin/shim\"\n",
                Key("plugins.\\\"io.containerd.runtime.v2.task\\\".shims.x", 2,
                    "must be a shim's file name or absolute path")},
        BadCase{"RuntimeShimNotString",
                "[plugins.\"io.containerd.runtime.v2.task\".shims]\nx = 1\n",
                Key("plugins.\\\"io.containerd.runtime.v2.task\\\".shims.x", 2,
                    "must be a string, not an integer")},
        BadCase{"DisabledPluginsNotArray", "disabled_plugins = \"btrfs\"\n",
                Key("disabled_plugins", 1, "must be an array of strings, not a string")},
        BadCase{"DisabledPluginsElementNotString", "disabled_plugins = [\n  \"a\",\n  2,\n]\n",
                Key("disabled_plugins[1]", 3, "must be a string, not an integer")},
        BadCase{"RequiredPluginsElementNotString", "required_plugins = [[\"a\"]]\n",
                Key("required_plugins[0]", 1, "must be a string, not an array")},
        BadCase{"OomScoreString", "oom_score = \"-500\"\n",
                Key("oom_score", 1, "must be an integer, not a string")},
        BadCase{"OomScoreBelowRange", "oom_score = -1001\n",
                Key("oom_score", 1, "must be between -1000 and 1000, not -1001")}),
    CaseName<BadCase>);

// ------------------------------------------------------------ unknown keys

struct UnknownCase {
  std::string name;
  std::string text;
  std::vector<std::string> warnings;
};

class ConfigUnknownKeys : public ::testing::TestWithParam<UnknownCase> {};

TEST_P(ConfigUnknownKeys, WarnOncePerKeyWithItsLine) {
  std::vector<std::string> warnings;
  ASSERT_THAT(Parse(GetParam().text, &warnings), IsOk());
  EXPECT_EQ(warnings, GetParam().warnings);
}

std::string Unknown(absl::string_view key, int line) {
  return absl::StrCat("unknown configuration key \"", key, "\" at line ", line);
}

INSTANTIATE_TEST_SUITE_P(
    Cases, ConfigUnknownKeys,
    ::testing::Values(
        UnknownCase{"TopLevelTypo", "version = 2\nroots = \"/x\"\n", {Unknown("roots", 2)}},
        UnknownCase{"SectionKeyTypo", "[grpc]\nuid = 1\n\nadress = \"/x\"\n",
                    {Unknown("grpc.adress", 4)}},
        UnknownCase{"UnknownSectionWarnsOnceForTheSection",
                    "[ttrpc]\naddress = \"\"\nuid = 0\n", {Unknown("ttrpc", 1)}},
        // Unknown keys are not type-checked: a wrong type is no error there.
        UnknownCase{"UnknownKeyOfAnyType", "ttrpc = 5\nproxy_plugins = []\n",
                    {Unknown("ttrpc", 1), Unknown("proxy_plugins", 2)}},
        UnknownCase{"KeyInAPluginSection",
                    "[plugins.\"io.containerd.gc.v1.scheduler\"]\npause_threshold = 0.02\n"
                    "deletion_threshold = 0\n",
                    {Unknown("plugins.\\\"io.containerd.gc.v1.scheduler\\\".pause_threshold", 2),
                     Unknown("plugins.\\\"io.containerd.gc.v1.scheduler\\\".deletion_threshold",
                             3)}},
        UnknownCase{"SubtableOfAPluginSection",
                    "[plugins.\"io.containerd.grpc.v1.cri\".containerd]\nsnapshotter = \"x\"\n",
                    {Unknown("plugins.\\\"io.containerd.grpc.v1.cri\\\".containerd", 1)}},
        UnknownCase{"KeyThatNeedsQuotes", "\"with space\" = 1\n",
                    {Unknown("\\\"with space\\\"", 1)}},
        UnknownCase{"InLineOrderNotKeyOrder", "zzz = 1\naaa = 2\n[grpc]\nmmm = 3\n",
                    {Unknown("zzz", 1), Unknown("aaa", 2), Unknown("grpc.mmm", 4)}}),
    CaseName<UnknownCase>);

TEST(ConfigUnknownKeys, KnownKeysAroundThemStillApply) {
  constexpr char kText[] = R"(version = 2
plugin_dir = "/opt/plugins"
[grpc]
  adress = "/tmp/x.sock"
  uid = 7
[ttrpc]
  address = ""
[debug]
  level = "debug"
  format = "json"
[plugins."io.containerd.gc.v1.scheduler"]
  pause_threshold = 0.02
)";
  Config want;
  want.grpc.uid = 7;
  want.debug.level = "debug";
  want.plugins = {"io.containerd.gc.v1.scheduler"};
  std::vector<std::string> warnings;
  absl::StatusOr<Config> config = Parse(kText, &warnings);
  ASSERT_THAT(config, IsOk());
  EXPECT_EQ(*config, want);
}

TEST(ConfigUnknownKeys, AreAppendedAfterEarlierWarnings) {
  std::vector<std::string> warnings = {"earlier"};
  ASSERT_THAT(Parse("typo = 1\n", &warnings), IsOk());
  EXPECT_THAT(warnings, ElementsAre("earlier", Unknown("typo", 1)));
}

TEST(ConfigUnknownKeys, NullWarningsDropsThem) {
  EXPECT_THAT(Parse("typo = 1\n", nullptr), IsOk());
}

// ----------------------------------------------------------------- files

class ConfigFile : public ::testing::Test {
 protected:
  std::string Write(absl::string_view name, absl::string_view text) {
    std::string path = absl::StrCat(::testing::TempDir(), "/", name);
    std::ofstream(path, std::ios::binary | std::ios::trunc) << text;
    return path;
  }
};

TEST_F(ConfigFile, ReadsTheFile) {
  std::string path = Write("read.toml", "[grpc]\nuid = 42\n");
  absl::StatusOr<Config> config = LoadConfigFile(path, nullptr);
  ASSERT_THAT(config, IsOk());
  EXPECT_EQ(config->grpc.uid, 42);
}

TEST_F(ConfigFile, MessagesNameThePath) {
  std::string path = Write("bad.toml", "\n[grpc]\nuid = -1\n");
  EXPECT_THAT(std::string(LoadConfigFile(path, nullptr).status().message()),
              HasSubstr(absl::StrCat(path, " line 3: key \"grpc.uid\"")));
}

TEST_F(ConfigFile, WarningsReachTheCaller) {
  std::string path = Write("warn.toml", "typo = 1\n");
  std::vector<std::string> warnings;
  ASSERT_THAT(LoadConfigFile(path, &warnings), IsOk());
  EXPECT_THAT(warnings, ElementsAre(Unknown("typo", 1)));
}

TEST_F(ConfigFile, MissingIsNotFound) {
  EXPECT_THAT(LoadConfigFile(::testing::TempDir() + "/absent.toml", nullptr),
              StatusIs(absl::StatusCode::kNotFound));
}

TEST_F(ConfigFile, MissingNamesThePath) {
  std::string path = ::testing::TempDir() + "/absent.toml";
  EXPECT_THAT(std::string(LoadConfigFile(path, nullptr).status().message()), HasSubstr(path));
}

TEST_F(ConfigFile, DirectoryIsInvalidArgument) {
  EXPECT_THAT(LoadConfigFile(::testing::TempDir(), nullptr),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST_F(ConfigFile, OverOneMebibyteIsInvalidArgument) {
  std::string path = Write("big.toml", std::string((1 << 20) + 1, '\n'));
  EXPECT_THAT(LoadConfigFile(path, nullptr), StatusIs(absl::StatusCode::kInvalidArgument));
}

}  // namespace
}  // namespace berth::daemon
