#include <fcntl.h>

#include <cerrno>

#include "base/log.h"
#include "base/sha256.h"
#include "base/status.h"
#include "base/status_matchers.h"
#include "base/unique_fd.h"
#include "gtest/gtest.h"

namespace berth {
namespace {

TEST(Sha256, DigestsAreContentAddresses) {
  EXPECT_EQ(Sha256Digest("abc"),
            "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(Sha256Digest(""),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  Sha256 running;
  running.Update("a");
  EXPECT_EQ(running.Hex().size(), 64u);
  running.Update("bc");  // Hex and Digest leave the running state as it was
  EXPECT_EQ(running.Digest(), Sha256Digest("abc"));
}

absl::StatusOr<int> Half(int n) {
  if (n % 2 != 0) return absl::InvalidArgumentError("odd");
  return n / 2;
}

absl::StatusOr<int> Quarter(int n) {
  BERTH_ASSIGN_OR_RETURN(int half, Half(n));
  BERTH_ASSIGN_OR_RETURN(int quarter, Half(half));
  return quarter;
}

absl::Status CheckEven(int n) {
  BERTH_RETURN_IF_ERROR(Half(n).status());
  return absl::OkStatus();
}

TEST(StatusMacros, AssignOrReturnPassesValuesAndErrors) {
  EXPECT_EQ(*Quarter(8), 2);
  EXPECT_THAT(Quarter(6), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(CheckEven(4), IsOk());
  EXPECT_THAT(CheckEven(3), StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(ErrnoStatus, MapsCodesAndNamesTheOperation) {
  absl::Status status = ErrnoStatus(ENOENT, "open", "snapshots/42/fs");
  EXPECT_THAT(status, StatusIs(absl::StatusCode::kNotFound));
  EXPECT_EQ(status.message(), "open \"snapshots/42/fs\": No such file or directory");
  EXPECT_THAT(ErrnoStatus(EEXIST, "mkdir", "x"), StatusIs(absl::StatusCode::kAlreadyExists));
  EXPECT_THAT(ErrnoStatus(ENOSPC, "write", "x"), StatusIs(absl::StatusCode::kResourceExhausted));
}

TEST(UniqueFd, ClosesOnDestructionAndMove) {
  int raw;
  {
    UniqueFd fd(::open("/dev/null", O_RDONLY | O_CLOEXEC));
    ASSERT_TRUE(fd.valid());
    raw = fd.get();
    UniqueFd moved = std::move(fd);
    EXPECT_FALSE(fd.valid());
    EXPECT_EQ(moved.get(), raw);
  }
  EXPECT_EQ(::fcntl(raw, F_GETFD), -1);
  EXPECT_EQ(errno, EBADF);
}

TEST(Log, QuotesValuesThatAreNotOneWord) {
  EXPECT_EQ(log::FormatForTest(log::Level::kInfo, "loading plugin",
                               {{"id", "io.containerd.grpc.v1.version"}, {"n", 3}}),
            "level=info msg=\"loading plugin\" id=io.containerd.grpc.v1.version n=3");
  EXPECT_EQ(log::FormatForTest(log::Level::kWarn, "x", {{"path", "a \"b\""}}),
            "level=warning msg=x path=\"a \\\"b\\\"\"");
}

TEST(Log, ParsesLevels) {
  EXPECT_EQ(*log::ParseLevel("debug"), log::Level::kDebug);
  EXPECT_EQ(*log::ParseLevel("warning"), log::Level::kWarn);
  EXPECT_THAT(log::ParseLevel("loud"), StatusIs(absl::StatusCode::kInvalidArgument));
}

}  // namespace
}  // namespace berth
