#include "store/content_store.h"

#include <stdlib.h>
#include <sys/stat.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/barrier.h"
#include "base/log.h"
#include "base/sha256.h"
#include "base/status.h"
#include "base/status_matchers.h"
#include "base/temp_dir.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "store/env.h"
#include "store/fault_injection_env.h"

namespace berth::store {
namespace {

namespace fs = std::filesystem;
using std::string_literals::operator""s;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::UnorderedElementsAreArray;

constexpr absl::StatusCode kInvalidArgument = absl::StatusCode::kInvalidArgument;
constexpr absl::StatusCode kNotFound = absl::StatusCode::kNotFound;
constexpr absl::StatusCode kAlreadyExists = absl::StatusCode::kAlreadyExists;
constexpr absl::StatusCode kFailedPrecondition = absl::StatusCode::kFailedPrecondition;
constexpr absl::StatusCode kUnavailable = absl::StatusCode::kUnavailable;
constexpr absl::StatusCode kOutOfRange = absl::StatusCode::kOutOfRange;
constexpr absl::StatusCode kResourceExhausted = absl::StatusCode::kResourceExhausted;

// Bytes that differ per seed and per position, so a misplaced chunk shows.
std::string Pattern(size_t n, int seed) {
  std::string s(n, '\0');
  uint32_t x = 2654435761u * (seed + 1);
  for (size_t i = 0; i < n; ++i) {
    x = x * 1103515245u + 12345u;
    s[i] = static_cast<char>(x >> 24);
  }
  return s;
}


// Every path under `root`, relative to it.
std::set<std::string> Tree(const std::string& root) {
  std::set<std::string> paths;
  for (const auto& entry : fs::recursive_directory_iterator(root)) {
    paths.insert(fs::relative(entry.path(), root).string());
  }
  return paths;
}

mode_t Mode(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return 0;
  return st.st_mode & 07777;
}

absl::StatusOr<std::string> ReadAll(ContentStore& store, absl::string_view digest,
                                    size_t chunk = 64 << 10) {
  BERTH_ASSIGN_OR_RETURN(std::unique_ptr<BlobReader> reader, store.OpenReader(digest));
  std::string all, piece;
  while (static_cast<int64_t>(all.size()) < reader->Size()) {
    BERTH_RETURN_IF_ERROR(reader->ReadAt(all.size(), chunk, &piece));
    if (piece.empty()) return absl::DataLossError("blob shorter than its size");
    all += piece;
  }
  return all;
}

// Writes `data` under `ref` in `chunks` pieces and commits it.
absl::StatusOr<std::string> Ingest(ContentStore& store, absl::string_view ref,
                                   absl::string_view data, int chunks = 3) {
  BERTH_ASSIGN_OR_RETURN(std::unique_ptr<Writer> writer,
                         store.OpenWriter(ref, data.size(), Sha256Digest(data)));
  size_t step = data.size() / chunks + 1;
  for (size_t at = 0; at < data.size(); at += step) {
    BERTH_RETURN_IF_ERROR(writer->Write(data.substr(at, step)));
  }
  return writer->Commit(data.size(), Sha256Digest(data));
}

std::vector<std::string> Refs(ContentStore& store) {
  std::vector<std::string> refs;
  absl::StatusOr<std::vector<IngestStatus>> statuses = store.ListStatuses();
  EXPECT_THAT(statuses, IsOk());
  if (statuses.ok()) {
    for (const IngestStatus& s : *statuses) refs.push_back(s.ref);
  }
  return refs;
}

std::vector<std::string> Blobs(ContentStore& store) {
  std::vector<std::string> digests;
  EXPECT_THAT(store.Walk([&](const BlobInfo& info) {
    digests.push_back(info.digest);
    return absl::OkStatus();
  }),
              IsOk());
  return digests;
}

class ContentStoreTest : public ::testing::Test {
 protected:
  void SetUp() override { Reopen(); }

  // A fresh store object on the same root: what a restarted berthd sees.
  void Reopen() {
    store_.reset();
    absl::StatusOr<std::unique_ptr<ContentStore>> store = ContentStore::Open(root_, &env_);
    ASSERT_THAT(store, IsOk());
    store_ = *std::move(store);
  }

  std::string BlobPath(absl::string_view digest) {
    return absl::StrCat(root_, "/blobs/sha256/", digest.substr(7));
  }

  TempDir dir_;
  std::string root_ = dir_.path() + "/io.containerd.content.v1.content";
  FaultInjectionEnv env_{Env::Default()};
  std::unique_ptr<ContentStore> store_;
};

// --- Digests ----------------------------------------------------------------

const std::string kHex(64, 'a');

struct DigestCase {
  const char* name;
  std::string digest;
};

const DigestCase kBadDigests[] = {
    {"Empty", ""},
    {"HexWithoutAlgorithm", kHex},
    {"AlgorithmWithoutHex", "sha256:"},
    {"ColonOnly", ":"},
    {"ShortHex", "sha256:" + kHex.substr(1)},
    {"LongHex", "sha256:" + kHex + "a"},
    {"UppercaseHex", "sha256:" + std::string(64, 'A')},
    {"NonHexLetter", "sha256:" + kHex.substr(1) + "g"},
    {"UppercaseAlgorithm", "SHA256:" + kHex},
    {"PathTraversal", "sha256:../../../../../../../../../../../../../../etc/passwd"},
    {"SlashInHex", "sha256:" + kHex.substr(2) + "/a"},
    {"NulInHex", "sha256:" + kHex.substr(1) + "\0"s},
    {"LeadingSpace", " sha256:" + kHex},
    {"TrailingNewline", "sha256:" + kHex + "\n"},
    {"TwoColons", "sha256:sha256:" + kHex.substr(7)},
    {"Sha512", "sha512:" + std::string(128, 'a')},
    {"Md5", "md5:" + std::string(32, 'a')},
};

TEST(ValidateDigest, AcceptsSha256WithLowercaseHex) {
  EXPECT_THAT(digest::Validate("sha256:" + kHex), IsOk());
  EXPECT_THAT(digest::Validate(Sha256Digest("")), IsOk());
}

TEST(ValidateDigest, RefusesEverythingElse) {
  for (const DigestCase& c : kBadDigests) {
    EXPECT_THAT(digest::Validate(c.digest), StatusIs(kInvalidArgument)) << c.name;
  }
}

TEST(ValidateDigest, MessagesQuoteTheDigestAndNameUnsupportedAlgorithms) {
  EXPECT_EQ(digest::Validate("sha256:xyz").message(),
            "invalid digest \"sha256:xyz\": want sha256: and 64 lowercase hex digits");
  EXPECT_EQ(digest::Validate("sha512:" + std::string(128, 'a')).message(),
            "unsupported digest algorithm \"sha512:" + std::string(128, 'a') + "\"");
  EXPECT_EQ(digest::Validate("a\0b"s).message(), "invalid digest \"a\\000b\"");
}

TEST_F(ContentStoreTest, EveryCallRefusesBadDigestsAndTouchesNothing) {
  absl::StatusOr<std::unique_ptr<Writer>> writer = store_->OpenWriter("ref", 0, "");
  ASSERT_THAT(writer, IsOk());
  ASSERT_THAT((*writer)->Write("data"), IsOk());
  for (const DigestCase& c : kBadDigests) {
    EXPECT_THAT(store_->Info(c.digest), StatusIs(kInvalidArgument)) << c.name;
    EXPECT_THAT(store_->OpenReader(c.digest), StatusIs(kInvalidArgument)) << c.name;
    EXPECT_THAT(store_->Delete(c.digest), StatusIs(kInvalidArgument)) << c.name;
    if (c.digest.empty()) continue;  // an empty expected digest means "not given"
    EXPECT_THAT(store_->OpenWriter(absl::StrCat("other-", c.name), 0, c.digest),
                StatusIs(kInvalidArgument))
        << c.name;
    EXPECT_THAT((*writer)->Commit(0, c.digest), StatusIs(kInvalidArgument)) << c.name;
  }
  EXPECT_THAT(Refs(*store_), ElementsAre("ref"));
  EXPECT_THAT(Blobs(*store_), IsEmpty());
  EXPECT_EQ((*writer)->Status().offset, 4);
}

// --- Writing and reading ----------------------------------------------------

TEST_F(ContentStoreTest, WriteCommitReadRoundTrip) {
  const std::string data = Pattern(300000, 1);
  const std::string digest = Sha256Digest(data);
  absl::StatusOr<std::unique_ptr<Writer>> writer = store_->OpenWriter("layer", data.size(), digest);
  ASSERT_THAT(writer, IsOk());
  ASSERT_THAT((*writer)->Write(data.substr(0, 1000)), IsOk());
  ASSERT_THAT((*writer)->Write(data.substr(1000)), IsOk());
  EXPECT_EQ((*writer)->Status().offset, 300000);
  EXPECT_EQ((*writer)->Status().total, 300000);
  EXPECT_EQ((*writer)->Status().expected, digest);
  EXPECT_EQ((*writer)->Digest(), digest);
  EXPECT_THAT((*writer)->Commit(data.size(), digest), IsOk());

  absl::StatusOr<BlobInfo> info = store_->Info(digest);
  ASSERT_THAT(info, IsOk());
  EXPECT_EQ(info->digest, digest);
  EXPECT_EQ(info->size, 300000);
  EXPECT_LE(absl::Now() - info->created_at, absl::Minutes(1));
  EXPECT_EQ(ReadAll(*store_, digest).value_or(""), data);
  // The ingest is gone; the blob is where containerd puts it, read-only.
  EXPECT_THAT(store_->Status("layer"), StatusIs(kNotFound));
  EXPECT_THAT(Refs(*store_), IsEmpty());
  EXPECT_THAT(Tree(root_ + "/ingest"), IsEmpty());
  EXPECT_EQ(Mode(BlobPath(digest)), 0400u);
}

TEST_F(ContentStoreTest, CreatesPrivateDirectories) {
  for (const char* dir : {"", "/blobs", "/blobs/sha256", "/ingest"}) {
    EXPECT_EQ(Mode(root_ + dir), 0700u) << dir;
  }
}

TEST_F(ContentStoreTest, EmptyBlob) {
  EXPECT_THAT(Ingest(*store_, "empty", ""), IsOk());
  EXPECT_EQ(ReadAll(*store_, Sha256Digest("")).value_or("x"), "");
}

TEST_F(ContentStoreTest, ChunkedReadsAndTheirLimits) {
  const std::string data = Pattern((1 << 20) + 17, 2);
  ASSERT_THAT(Ingest(*store_, "r", data), IsOk());
  const std::string digest = Sha256Digest(data);
  EXPECT_EQ(ReadAll(*store_, digest, 4096).value_or(""), data);

  absl::StatusOr<std::unique_ptr<BlobReader>> reader = store_->OpenReader(digest);
  ASSERT_THAT(reader, IsOk());
  BlobReader& r = **reader;
  EXPECT_EQ(r.Size(), static_cast<int64_t>(data.size()));
  std::string out = "junk";
  ASSERT_THAT(r.ReadAt(100, 10, &out), IsOk());
  EXPECT_EQ(out, data.substr(100, 10));
  ASSERT_THAT(r.ReadAt(data.size() - 5, 100, &out), IsOk());
  EXPECT_EQ(out, data.substr(data.size() - 5)) << "a read past the end stops at the end";
  ASSERT_THAT(r.ReadAt(data.size(), 100, &out), IsOk());
  EXPECT_EQ(out, "") << "reading at the very end is empty, not an error";
  EXPECT_THAT(r.ReadAt(data.size() + 1, 1, &out), StatusIs(kOutOfRange));
  EXPECT_THAT(r.ReadAt(-1, 1, &out), StatusIs(kInvalidArgument));
}

TEST_F(ContentStoreTest, MissingBlobIsNotFoundNamingIt) {
  const std::string digest = Sha256Digest("never written");
  EXPECT_THAT(store_->Info(digest), StatusIs(kNotFound));
  EXPECT_THAT(store_->OpenReader(digest), StatusIs(kNotFound));
  EXPECT_THAT(store_->Delete(digest), StatusIs(kNotFound));
  EXPECT_EQ(store_->Info(digest).status().message(),
            absl::StrCat("content ", digest, ": not found"));
}

// --- Commit checks ----------------------------------------------------------

struct MismatchCase {
  const char* name;
  int64_t open_total;
  std::string open_expected;
  int64_t commit_size;
  std::string commit_expected;
  std::vector<std::string> message_parts;
};

TEST_F(ContentStoreTest, MismatchIsFailedPreconditionAndTheIngestStaysForRetry) {
  const std::string data = "twelve bytes";
  const std::string digest = Sha256Digest(data);
  const std::string wrong = Sha256Digest("other");
  const MismatchCase cases[] = {
      {"SizeAtCommit", 0, "", 13, "", {"unexpected size 12, expected 13"}},
      {"DigestAtCommit", 0, "", 0, wrong, {"unexpected digest " + digest, "expected " + wrong}},
      {"TotalFromOpen", 13, "", 0, "", {"unexpected size 12, expected 13"}},
      {"ExpectedFromOpen", 0, wrong, 12, digest, {"expected " + wrong}},
  };
  for (const MismatchCase& c : cases) {
    absl::StatusOr<std::unique_ptr<Writer>> writer =
        store_->OpenWriter(c.name, c.open_total, c.open_expected);
    ASSERT_THAT(writer, IsOk()) << c.name;
    ASSERT_THAT((*writer)->Write(data), IsOk()) << c.name;
    absl::StatusOr<std::string> commit = (*writer)->Commit(c.commit_size, c.commit_expected);
    EXPECT_THAT(commit, StatusIs(kFailedPrecondition)) << c.name;
    for (const std::string& part : c.message_parts) {
      EXPECT_THAT(commit.status().message(), HasSubstr(part)) << c.name;
    }
    EXPECT_THAT(store_->Info(digest), StatusIs(kNotFound)) << c.name << ": nothing committed";
    EXPECT_EQ(store_->Status(c.name).value_or(IngestStatus{}).offset, 12) << c.name;
    EXPECT_EQ((*writer)->Status().offset, 12) << c.name << ": the writer is still usable";
  }
}

TEST_F(ContentStoreTest, AfterAMismatchTheSameWriterCanRetry) {
  const std::string data = "the right bytes";
  absl::StatusOr<std::unique_ptr<Writer>> writer = store_->OpenWriter("r", 0, "");
  ASSERT_THAT(writer, IsOk());
  ASSERT_THAT((*writer)->Write("the wrong bytes"), IsOk());
  ASSERT_THAT((*writer)->Commit(data.size(), Sha256Digest(data)), StatusIs(kFailedPrecondition));
  ASSERT_THAT((*writer)->Truncate(0), IsOk());
  ASSERT_THAT((*writer)->Write(data), IsOk());
  EXPECT_THAT((*writer)->Commit(data.size(), Sha256Digest(data)), IsOk());
  EXPECT_EQ(ReadAll(*store_, Sha256Digest(data)).value_or(""), data);
}

TEST_F(ContentStoreTest, AfterAMismatchANewWriterResumesAndCommits) {
  const std::string data = "0123456789";
  {
    absl::StatusOr<std::unique_ptr<Writer>> writer = store_->OpenWriter("r", 0, "");
    ASSERT_THAT(writer, IsOk());
    ASSERT_THAT((*writer)->Write(data.substr(0, 6)), IsOk());
    ASSERT_THAT((*writer)->Commit(data.size(), Sha256Digest(data)), StatusIs(kFailedPrecondition));
  }
  absl::StatusOr<std::unique_ptr<Writer>> writer = store_->OpenWriter("r", 0, "");
  ASSERT_THAT(writer, IsOk());
  EXPECT_EQ((*writer)->Status().offset, 6);
  ASSERT_THAT((*writer)->Write(data.substr(6)), IsOk());
  EXPECT_THAT((*writer)->Commit(data.size(), Sha256Digest(data)), IsOk());
}

TEST_F(ContentStoreTest, CommitWithoutExpectationsNamesTheContent) {
  absl::StatusOr<std::unique_ptr<Writer>> writer = store_->OpenWriter("r", 0, "");
  ASSERT_THAT(writer, IsOk());
  ASSERT_THAT((*writer)->Write("abc"), IsOk());
  EXPECT_EQ((*writer)->Commit(0, "").value_or(""), Sha256Digest("abc"));
}

TEST_F(ContentStoreTest, ASpentWriterRefusesEverything) {
  absl::StatusOr<std::unique_ptr<Writer>> writer = store_->OpenWriter("r", 0, "");
  ASSERT_THAT(writer, IsOk());
  ASSERT_THAT((*writer)->Commit(0, ""), IsOk());
  EXPECT_THAT((*writer)->Write("x"), StatusIs(kFailedPrecondition));
  EXPECT_THAT((*writer)->Truncate(0), StatusIs(kFailedPrecondition));
  EXPECT_THAT((*writer)->Commit(0, ""), StatusIs(kFailedPrecondition));
  // ...and no longer holds its ref.
  EXPECT_THAT(store_->OpenWriter("r", 0, ""), IsOk());
}

TEST_F(ContentStoreTest, NegativeSizesAreInvalid) {
  absl::StatusOr<std::unique_ptr<Writer>> writer = store_->OpenWriter("r", 0, "");
  ASSERT_THAT(writer, IsOk());
  EXPECT_THAT((*writer)->Commit(-1, ""), StatusIs(kInvalidArgument));
  EXPECT_THAT(store_->OpenWriter("s", -1, ""), StatusIs(kInvalidArgument));
}

// --- Truncate ---------------------------------------------------------------

TEST_F(ContentStoreTest, TruncateKeepsAPrefixAndItsDigest) {
  absl::StatusOr<std::unique_ptr<Writer>> writer = store_->OpenWriter("r", 0, "");
  ASSERT_THAT(writer, IsOk());
  ASSERT_THAT((*writer)->Write("0123456789"), IsOk());
  ASSERT_THAT((*writer)->Truncate(4), IsOk());
  EXPECT_EQ((*writer)->Status().offset, 4);
  EXPECT_EQ((*writer)->Digest(), Sha256Digest("0123"));
  EXPECT_EQ(store_->Status("r").value_or(IngestStatus{}).offset, 4);
  ASSERT_THAT((*writer)->Write("xyz"), IsOk());
  EXPECT_EQ((*writer)->Commit(7, Sha256Digest("0123xyz")).value_or(""), Sha256Digest("0123xyz"));
}

TEST_F(ContentStoreTest, TruncateOutsideTheDataIsInvalidAndChangesNothing) {
  absl::StatusOr<std::unique_ptr<Writer>> writer = store_->OpenWriter("r", 0, "");
  ASSERT_THAT(writer, IsOk());
  ASSERT_THAT((*writer)->Write("0123"), IsOk());
  EXPECT_THAT((*writer)->Truncate(-1), StatusIs(kInvalidArgument));
  EXPECT_THAT((*writer)->Truncate(5), StatusIs(kInvalidArgument));
  EXPECT_EQ((*writer)->Status().offset, 4);
  EXPECT_EQ((*writer)->Digest(), Sha256Digest("0123"));
}

// --- Resuming ---------------------------------------------------------------

TEST_F(ContentStoreTest, ResumeAfterTheWriterIsClosed) {
  const std::string data = Pattern(3 << 20, 3);
  const std::string digest = Sha256Digest(data);
  {
    absl::StatusOr<std::unique_ptr<Writer>> writer = store_->OpenWriter("r", data.size(), digest);
    ASSERT_THAT(writer, IsOk());
    ASSERT_THAT((*writer)->Write(data.substr(0, 1234567)), IsOk());
  }
  EXPECT_EQ(store_->Status("r").value_or(IngestStatus{}).offset, 1234567);
  absl::StatusOr<std::unique_ptr<Writer>> writer = store_->OpenWriter("r", data.size(), digest);
  ASSERT_THAT(writer, IsOk());
  EXPECT_EQ((*writer)->Status().offset, 1234567);
  EXPECT_EQ((*writer)->Digest(), Sha256Digest(data.substr(0, 1234567)));
  ASSERT_THAT((*writer)->Write(data.substr(1234567)), IsOk());
  EXPECT_THAT((*writer)->Commit(data.size(), digest), IsOk());
  EXPECT_EQ(ReadAll(*store_, digest).value_or(""), data);
}

TEST_F(ContentStoreTest, ResumeAfterARestart) {
  const std::string data = Pattern(100000, 4);
  const std::string digest = Sha256Digest(data);
  absl::Time started;
  {
    absl::StatusOr<std::unique_ptr<Writer>> writer = store_->OpenWriter("r", data.size(), digest);
    ASSERT_THAT(writer, IsOk());
    ASSERT_THAT((*writer)->Write(data.substr(0, 40000)), IsOk());
    started = (*writer)->Status().started_at;
  }
  Reopen();
  absl::StatusOr<std::vector<IngestStatus>> statuses = store_->ListStatuses();
  ASSERT_THAT(statuses, IsOk());
  ASSERT_EQ(statuses->size(), 1u);
  const IngestStatus& s = (*statuses)[0];
  EXPECT_EQ(s.ref, "r");
  EXPECT_EQ(s.offset, 40000);
  EXPECT_EQ(s.total, 100000);
  EXPECT_EQ(s.expected, digest);
  EXPECT_EQ(s.started_at, started);
  EXPECT_GE(s.updated_at, s.started_at);

  // The client resumes without restating what it declared.
  absl::StatusOr<std::unique_ptr<Writer>> writer = store_->OpenWriter("r", 0, "");
  ASSERT_THAT(writer, IsOk());
  EXPECT_EQ((*writer)->Status().offset, 40000);
  EXPECT_EQ((*writer)->Status().started_at, started);
  ASSERT_THAT((*writer)->Write(data.substr(40000)), IsOk());
  EXPECT_EQ((*writer)->Commit(0, "").value_or(""), digest);
}

TEST_F(ContentStoreTest, ResumeMustAgreeWithWhatWasDeclared) {
  const std::string digest = Sha256Digest("abc");
  ASSERT_THAT(store_->OpenWriter("r", 3, digest), IsOk());
  EXPECT_THAT(store_->OpenWriter("r", 4, ""), StatusIs(kFailedPrecondition));
  EXPECT_THAT(store_->OpenWriter("r", 0, Sha256Digest("abd")), StatusIs(kFailedPrecondition));
  EXPECT_THAT(store_->OpenWriter("r", 3, digest), IsOk());
}

TEST_F(ContentStoreTest, ResumeRecordsWhatWasNotDeclaredBefore) {
  ASSERT_THAT(store_->OpenWriter("r", 0, ""), IsOk());
  ASSERT_THAT(store_->OpenWriter("r", 3, Sha256Digest("abc")), IsOk());
  absl::StatusOr<IngestStatus> status = store_->Status("r");
  ASSERT_THAT(status, IsOk());
  EXPECT_EQ(status->total, 3);
  EXPECT_EQ(status->expected, Sha256Digest("abc"));
}

TEST_F(ContentStoreTest, ADamagedIngestStartsOver) {
  {
    absl::StatusOr<std::unique_ptr<Writer>> writer = store_->OpenWriter("r", 0, "");
    ASSERT_THAT(writer, IsOk());
    ASSERT_THAT((*writer)->Write("abc"), IsOk());
  }
  std::set<std::string> ingests = Tree(root_ + "/ingest");
  std::string dir = root_ + "/ingest/" + *ingests.begin();
  ASSERT_TRUE(fs::remove(dir + "/ref"));
  EXPECT_THAT(store_->Status("r"), StatusIs(kNotFound));
  EXPECT_THAT(Refs(*store_), IsEmpty());
  absl::StatusOr<std::unique_ptr<Writer>> writer = store_->OpenWriter("r", 0, "");
  ASSERT_THAT(writer, IsOk());
  EXPECT_EQ((*writer)->Status().offset, 0);
  EXPECT_THAT(Refs(*store_), ElementsAre("r"));
}

TEST_F(ContentStoreTest, OpenRemovesHalfCreatedIngests) {
  fs::create_directory(root_ + "/ingest/.tmp-" + kHex);
  FILE* f = fopen((root_ + "/ingest/.tmp-" + kHex + "/ref").c_str(), "w");
  ASSERT_NE(f, nullptr);
  fclose(f);
  Reopen();
  EXPECT_THAT(Tree(root_ + "/ingest"), IsEmpty());
}

// --- Refs -------------------------------------------------------------------

TEST_F(ContentStoreTest, ASecondWriterOnARefIsUnavailable) {
  absl::StatusOr<std::unique_ptr<Writer>> first = store_->OpenWriter("r", 0, "");
  ASSERT_THAT(first, IsOk());
  absl::StatusOr<std::unique_ptr<Writer>> second = store_->OpenWriter("r", 0, "");
  EXPECT_THAT(second, StatusIs(kUnavailable));
  EXPECT_EQ(second.status().message(), "ref \"r\" locked");
  EXPECT_THAT(store_->Abort("r"), StatusIs(kUnavailable));
  EXPECT_THAT(store_->OpenWriter("other", 0, ""), IsOk());
  first->reset();
  EXPECT_THAT(store_->OpenWriter("r", 0, ""), IsOk());
}

TEST_F(ContentStoreTest, AbortRemovesTheIngest) {
  {
    absl::StatusOr<std::unique_ptr<Writer>> writer = store_->OpenWriter("r", 0, "");
    ASSERT_THAT(writer, IsOk());
    ASSERT_THAT((*writer)->Write("abc"), IsOk());
  }
  EXPECT_THAT(store_->Abort("r"), IsOk());
  EXPECT_THAT(store_->Status("r"), StatusIs(kNotFound));
  EXPECT_THAT(Tree(root_ + "/ingest"), IsEmpty());
  EXPECT_THAT(store_->Abort("r"), StatusIs(kNotFound));
  absl::StatusOr<std::unique_ptr<Writer>> writer = store_->OpenWriter("r", 0, "");
  ASSERT_THAT(writer, IsOk());
  EXPECT_EQ((*writer)->Status().offset, 0);
}

TEST_F(ContentStoreTest, EmptyRefIsInvalid) {
  EXPECT_THAT(store_->OpenWriter("", 0, ""), StatusIs(kInvalidArgument));
  EXPECT_THAT(store_->Status(""), StatusIs(kInvalidArgument));
  EXPECT_THAT(store_->Abort(""), StatusIs(kInvalidArgument));
}

struct RefCase {
  const char* name;
  std::string ref;
};

TEST_F(ContentStoreTest, HostileRefsStayInsideTheIngestDirectory) {
  const RefCase cases[] = {
      {"ParentTraversal", "../../../../../../../../../../tmp/escape"},
      {"DotDot", ".."},
      {"Dot", "."},
      {"Absolute", "/etc/passwd"},
      {"Slashes", "a/b/c"},
      {"TrailingSlash", "dir/"},
      {"Nul", "a\0b"s},
      {"NulOnly", "\0"s},
      {"Newline", "line\nbreak"},
      {"LooksLikeATempDir", ".tmp-" + kHex},
      {"LooksLikeAnIngestHash", kHex},
      {"VeryLong", std::string(100000, 'r')},
      {"NonUtf8", "\xff\xfe"},
  };
  std::vector<std::string> refs;
  for (const RefCase& c : cases) {
    absl::StatusOr<std::unique_ptr<Writer>> writer = store_->OpenWriter(c.ref, 0, "");
    ASSERT_THAT(writer, IsOk()) << c.name;
    ASSERT_THAT((*writer)->Write(c.name), IsOk()) << c.name;
    refs.push_back(c.ref);
  }
  // Reopened, so the refs come back from disk rather than memory.
  Reopen();
  for (const RefCase& c : cases) {
    absl::StatusOr<IngestStatus> status = store_->Status(c.ref);
    ASSERT_THAT(status, IsOk()) << c.name;
    EXPECT_EQ(status->ref, c.ref) << c.name;
    EXPECT_EQ(status->offset, static_cast<int64_t>(strlen(c.name))) << c.name;
  }
  EXPECT_THAT(Refs(*store_), UnorderedElementsAreArray(refs));
  std::vector<std::string> beside_root;
  for (const auto& entry : fs::directory_iterator(dir_.path())) {
    beside_root.push_back(entry.path().filename().string());
  }
  EXPECT_THAT(beside_root, ElementsAre("io.containerd.content.v1.content"));
  for (const std::string& path : Tree(root_)) {
    std::vector<std::string> parts = absl::StrSplit(path, '/');
    bool ok = (parts.size() == 1 && (path == "blobs" || path == "ingest")) ||
              path == "blobs/sha256" ||
              (parts.size() >= 2 && parts[0] == "ingest" && parts[1].size() == 64 &&
               digest::Validate("sha256:" + parts[1]).ok() &&
               (parts.size() == 2 ||
                (parts.size() == 3 &&
                 std::set<std::string>{"data", "ref", "total", "expected", "startedat", "updatedat"}
                     .count(parts[2]))));
    EXPECT_TRUE(ok) << "unexpected path " << path;
  }
  for (const RefCase& c : cases) EXPECT_THAT(store_->Abort(c.ref), IsOk()) << c.name;
  EXPECT_THAT(Tree(root_ + "/ingest"), IsEmpty());
}

TEST_F(ContentStoreTest, LongRefsAreCutShortInMessages) {
  const std::string ref(100000, 'r');
  absl::StatusOr<std::unique_ptr<Writer>> writer = store_->OpenWriter(ref, 0, "");
  ASSERT_THAT(writer, IsOk());
  absl::Status locked = store_->OpenWriter(ref, 0, "").status();
  EXPECT_THAT(locked, StatusIs(kUnavailable));
  EXPECT_LT(locked.message().size(), 300u);
}

// --- Existing content -------------------------------------------------------

TEST_F(ContentStoreTest, CommittingExistingContentIsAlreadyExistsAndRemovesTheIngest) {
  ASSERT_THAT(Ingest(*store_, "first", "same bytes"), IsOk());
  absl::StatusOr<std::unique_ptr<Writer>> writer = store_->OpenWriter("second", 0, "");
  ASSERT_THAT(writer, IsOk());
  ASSERT_THAT((*writer)->Write("same bytes"), IsOk());
  EXPECT_THAT((*writer)->Commit(0, Sha256Digest("same bytes")), StatusIs(kAlreadyExists));
  EXPECT_THAT(store_->Status("second"), StatusIs(kNotFound));
  EXPECT_THAT((*writer)->Write("more"), StatusIs(kFailedPrecondition));
  EXPECT_THAT(Blobs(*store_), ElementsAre(Sha256Digest("same bytes")));
}

TEST_F(ContentStoreTest, OpeningAWriterForExistingContentIsAlreadyExists) {
  ASSERT_THAT(Ingest(*store_, "first", "same bytes"), IsOk());
  EXPECT_THAT(store_->OpenWriter("second", 10, Sha256Digest("same bytes")), StatusIs(kAlreadyExists));
  EXPECT_THAT(Refs(*store_), IsEmpty());
  EXPECT_THAT(store_->OpenWriter("second", 0, ""), IsOk()) << "the ref was not left locked";
}

TEST_F(ContentStoreTest, IdenticalContentRacedUnderManyRefsIsOneBlob) {
  constexpr int kThreads = 8;
  const std::string data = Pattern(200000, 5);
  absl::Barrier* ready = new absl::Barrier(kThreads);  // deletes itself
  std::vector<absl::StatusCode> codes(kThreads);
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&, i] {
      absl::StatusOr<std::unique_ptr<Writer>> writer =
          store_->OpenWriter(absl::StrCat("ref-", i), 0, "");
      absl::Status status = writer.status();
      if (status.ok()) status = (*writer)->Write(data);
      if (ready->Block()) delete ready;
      if (status.ok()) status = (*writer)->Commit(data.size(), Sha256Digest(data)).status();
      codes[i] = status.code();
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(std::count(codes.begin(), codes.end(), absl::StatusCode::kOk), 1);
  EXPECT_EQ(std::count(codes.begin(), codes.end(), kAlreadyExists), kThreads - 1);
  EXPECT_THAT(Blobs(*store_), ElementsAre(Sha256Digest(data)));
  EXPECT_THAT(Refs(*store_), IsEmpty());
  EXPECT_EQ(ReadAll(*store_, Sha256Digest(data)).value_or(""), data);
}

// --- Walk and Delete --------------------------------------------------------

TEST_F(ContentStoreTest, WalkListsEveryBlobAndSkipsStrangers) {
  std::vector<std::string> digests;
  for (int i = 0; i < 3; ++i) {
    std::string data = Pattern(1000 + i, 10 + i);
    ASSERT_THAT(Ingest(*store_, absl::StrCat("r", i), data), IsOk());
    digests.push_back(Sha256Digest(data));
  }
  FILE* f = fopen((root_ + "/blobs/sha256/not-a-digest").c_str(), "w");
  ASSERT_NE(f, nullptr);
  fclose(f);
  std::vector<int64_t> sizes;
  std::vector<std::string> seen;
  ASSERT_THAT(store_->Walk([&](const BlobInfo& info) {
    seen.push_back(info.digest);
    sizes.push_back(info.size);
    return absl::OkStatus();
  }),
              IsOk());
  EXPECT_THAT(seen, UnorderedElementsAreArray(digests));
  EXPECT_THAT(sizes, UnorderedElementsAreArray(std::vector<int64_t>{1000, 1001, 1002}));
}

TEST_F(ContentStoreTest, WalkStopsAtTheFirstErrorAndReturnsIt) {
  ASSERT_THAT(Ingest(*store_, "a", "a"), IsOk());
  ASSERT_THAT(Ingest(*store_, "b", "b"), IsOk());
  int calls = 0;
  EXPECT_THAT(store_->Walk([&](const BlobInfo&) {
    ++calls;
    return absl::CancelledError("enough");
  }),
              StatusIs(absl::StatusCode::kCancelled));
  EXPECT_EQ(calls, 1);
}

TEST_F(ContentStoreTest, DeleteRemovesTheBlobButNotOpenReaders) {
  const std::string data = Pattern(10000, 6);
  const std::string digest = Sha256Digest(data);
  ASSERT_THAT(Ingest(*store_, "r", data), IsOk());
  absl::StatusOr<std::unique_ptr<BlobReader>> reader = store_->OpenReader(digest);
  ASSERT_THAT(reader, IsOk());
  EXPECT_THAT(store_->Delete(digest), IsOk());
  EXPECT_THAT(store_->Info(digest), StatusIs(kNotFound));
  EXPECT_THAT(store_->Delete(digest), StatusIs(kNotFound));
  EXPECT_THAT(Blobs(*store_), IsEmpty());
  std::string out;
  ASSERT_THAT((*reader)->ReadAt(0, data.size(), &out), IsOk());
  EXPECT_EQ(out, data);
  // And the content can come back.
  EXPECT_THAT(Ingest(*store_, "again", data), IsOk());
}

// --- Disk full --------------------------------------------------------------

TEST_F(ContentStoreTest, DiskFullIsResourceExhaustedAndTheIngestResumesWhenSpaceReturns) {
  const std::string data = Pattern(4 << 20, 7);
  const std::string digest = Sha256Digest(data);
  absl::StatusOr<std::unique_ptr<Writer>> writer = store_->OpenWriter("r", data.size(), digest);
  ASSERT_THAT(writer, IsOk());
  env_.SetFreeSpace(1 << 20);
  absl::Status full = (*writer)->Write(data);
  EXPECT_THAT(full, StatusIs(kResourceExhausted));
  EXPECT_THAT(full.message(), HasSubstr("No space left on device"));

  // Consistent: the part that fit is accounted for, and nothing is committed.
  EXPECT_EQ((*writer)->Status().offset, 1 << 20);
  EXPECT_EQ((*writer)->Digest(), Sha256Digest(data.substr(0, 1 << 20)));
  EXPECT_EQ(store_->Status("r").value_or(IngestStatus{}).offset, 1 << 20);
  EXPECT_THAT((*writer)->Write("more"), StatusIs(kResourceExhausted));
  EXPECT_THAT((*writer)->Commit(data.size(), digest), StatusIs(kFailedPrecondition));
  EXPECT_THAT(Blobs(*store_), IsEmpty());

  // Space returns; the client resumes from Status in a new writer.
  writer->reset();
  env_.SetUnlimitedSpace();
  absl::StatusOr<std::unique_ptr<Writer>> resumed = store_->OpenWriter("r", data.size(), digest);
  ASSERT_THAT(resumed, IsOk());
  int64_t offset = (*resumed)->Status().offset;
  EXPECT_EQ(offset, 1 << 20);
  ASSERT_THAT((*resumed)->Write(absl::string_view(data).substr(offset)), IsOk());
  EXPECT_THAT((*resumed)->Commit(data.size(), digest), IsOk());
  EXPECT_EQ(ReadAll(*store_, digest).value_or(""), data);
}

TEST_F(ContentStoreTest, DiskFullWhileOpeningLeavesNoIngest) {
  for (int64_t free_bytes : {0, 1, 4}) {
    env_.SetFreeSpace(free_bytes);
    EXPECT_THAT(store_->OpenWriter("r", 10, Sha256Digest("0123456789")), StatusIs(kResourceExhausted))
        << free_bytes << " bytes free";
    EXPECT_THAT(Tree(root_ + "/ingest"), IsEmpty()) << free_bytes << " bytes free";
  }
  env_.SetUnlimitedSpace();
  EXPECT_THAT(Ingest(*store_, "r", "0123456789"), IsOk());
}

// --- Crashes ----------------------------------------------------------------

// Invariant: after power loss, every blob whose Commit returned OK is
// readable and matches its digest, every blob on disk matches its name, and
// every surviving ingest resumes with a digest matching its bytes.
void ExpectConsistentAfterCrash(ContentStore& store, const std::vector<std::string>& acknowledged) {
  for (const std::string& digest : acknowledged) {
    absl::StatusOr<std::string> data = ReadAll(store, digest);
    ASSERT_THAT(data, IsOk()) << digest << " was acknowledged";
    EXPECT_EQ(Sha256Digest(*data), digest);
  }
  for (const std::string& digest : Blobs(store)) {
    absl::StatusOr<std::string> data = ReadAll(store, digest);
    ASSERT_THAT(data, IsOk());
    EXPECT_EQ(Sha256Digest(*data), digest) << "a torn blob";
  }
}

TEST_F(ContentStoreTest, CommittedBlobsSurvivePowerLoss) {
  std::vector<std::string> acknowledged;
  std::vector<std::string> contents;
  for (int i = 0; i < 4; ++i) {
    contents.push_back(Pattern(50000 + i, 20 + i));
    absl::StatusOr<std::string> digest = Ingest(*store_, absl::StrCat("r", i), contents.back());
    ASSERT_THAT(digest, IsOk());
    acknowledged.push_back(*digest);
  }
  const std::string partial = Pattern(80000, 30);
  {
    absl::StatusOr<std::unique_ptr<Writer>> writer = store_->OpenWriter("partial", 0, "");
    ASSERT_THAT(writer, IsOk());
    ASSERT_THAT((*writer)->Write(partial.substr(0, 30000)), IsOk());
  }
  store_.reset();
  ASSERT_THAT(env_.Crash(), IsOk());
  Reopen();

  ExpectConsistentAfterCrash(*store_, acknowledged);
  EXPECT_THAT(Blobs(*store_), UnorderedElementsAreArray(acknowledged));
  // The unsynced ingest lost its bytes (or all of itself) but resumes cleanly.
  absl::StatusOr<std::unique_ptr<Writer>> writer = store_->OpenWriter("partial", 0, "");
  ASSERT_THAT(writer, IsOk());
  int64_t offset = (*writer)->Status().offset;
  EXPECT_LT(offset, 30000);
  EXPECT_EQ((*writer)->Digest(), Sha256Digest(partial.substr(0, offset)));
  ASSERT_THAT((*writer)->Write(absl::string_view(partial).substr(offset)), IsOk());
  EXPECT_THAT((*writer)->Commit(partial.size(), Sha256Digest(partial)), IsOk());
}

// What a client does: ingest a few blobs, leave one half-written, abort one.
// Returns the digests whose Commit returned OK.
std::vector<std::string> RunScript(const std::string& root, Env* env,
                                   const std::vector<std::string>& contents) {
  std::vector<std::string> acknowledged;
  absl::StatusOr<std::unique_ptr<ContentStore>> store = ContentStore::Open(root, env);
  if (!store.ok()) return acknowledged;
  auto commit = [&](absl::string_view ref, absl::string_view data) {
    absl::StatusOr<std::string> digest = Ingest(**store, ref, data, 2);
    if (digest.ok()) acknowledged.push_back(*digest);
  };
  commit("a", contents[0]);
  if (absl::StatusOr<std::unique_ptr<Writer>> w = (*store)->OpenWriter("b", 0, ""); w.ok()) {
    (*w)->Write(contents[1].substr(0, contents[1].size() / 2)).IgnoreError();
  }
  commit("c", contents[2]);
  if (absl::StatusOr<std::unique_ptr<Writer>> w = (*store)->OpenWriter("d", 0, ""); w.ok()) {
    (*w)->Write(contents[3]).IgnoreError();
  }
  (*store)->Abort("d").IgnoreError();
  commit("e", contents[0]);  // existing content: AlreadyExists
  return acknowledged;
}

TEST(ContentStoreCrash, PowerLossAtEveryStepKeepsEveryAcknowledgedBlob) {
  const std::vector<std::string> contents = {Pattern(5000, 40), Pattern(6000, 41),
                                             Pattern(7000, 42), Pattern(100, 43)};
  TempDir dir;
  // Every crash point makes the store warn about what it could not clean up.
  log::SetLevel(log::Level::kError);
  // First a clean run, to count the operations.
  FaultInjectionEnv counter(Env::Default());
  ASSERT_EQ(RunScript(dir.path() + "/clean", &counter, contents).size(), 2u);
  const int64_t steps = counter.operations();
  ASSERT_GT(steps, 20);
  printf("crashing at each of %lld operations\n", static_cast<long long>(steps));

  for (int64_t n = 0; n <= steps; ++n) {
    SCOPED_TRACE(absl::StrCat("crash after ", n, " of ", steps, " operations"));
    std::string root = absl::StrCat(dir.path(), "/", n);
    FaultInjectionEnv env(Env::Default());
    env.FailAfter(n);
    std::vector<std::string> acknowledged = RunScript(root, &env, contents);
    ASSERT_THAT(env.Crash(), IsOk());

    absl::StatusOr<std::unique_ptr<ContentStore>> store = ContentStore::Open(root, &env);
    ASSERT_THAT(store, IsOk());
    ExpectConsistentAfterCrash(**store, acknowledged);
    // Every ingest left behind resumes and completes.
    for (const IngestStatus& status :
         (*store)->ListStatuses().value_or(std::vector<IngestStatus>{})) {
      const std::string& data = status.ref == "b"   ? contents[1]
                                : status.ref == "d" ? contents[3]
                                : status.ref == "c" ? contents[2]
                                                    : contents[0];
      absl::StatusOr<std::unique_ptr<Writer>> writer = (*store)->OpenWriter(status.ref, 0, "");
      ASSERT_THAT(writer, IsOk()) << status.ref;
      int64_t offset = (*writer)->Status().offset;
      ASSERT_LE(offset, static_cast<int64_t>(data.size())) << status.ref;
      EXPECT_EQ((*writer)->Digest(), Sha256Digest(data.substr(0, offset))) << status.ref;
      ASSERT_THAT((*writer)->Write(absl::string_view(data).substr(offset)), IsOk());
      absl::Status commit = (*writer)->Commit(data.size(), Sha256Digest(data)).status();
      EXPECT_TRUE(commit.ok() || absl::IsAlreadyExists(commit)) << commit;
    }
  }
  log::SetLevel(log::Level::kInfo);
}

// --- Concurrency ------------------------------------------------------------

TEST_F(ContentStoreTest, ConcurrentWritersOnDifferentRefs) {
  constexpr int kThreads = 8;
  std::vector<std::string> contents;
  for (int i = 0; i < kThreads; ++i) contents.push_back(Pattern(300000 + i, 50 + i));
  std::vector<absl::Status> results(kThreads);
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back(
        [&, i] { results[i] = Ingest(*store_, absl::StrCat("ref-", i), contents[i], 7).status(); });
  }
  for (std::thread& t : threads) t.join();
  std::vector<std::string> digests;
  for (int i = 0; i < kThreads; ++i) {
    EXPECT_THAT(results[i], IsOk()) << i;
    digests.push_back(Sha256Digest(contents[i]));
    EXPECT_EQ(ReadAll(*store_, digests.back()).value_or(""), contents[i]) << i;
  }
  EXPECT_THAT(Blobs(*store_), UnorderedElementsAreArray(digests));
}

TEST_F(ContentStoreTest, ConcurrentOpensOfOneRefLetExactlyOneIn) {
  constexpr int kThreads = 8;
  absl::Barrier* start = new absl::Barrier(kThreads);  // deletes itself
  std::vector<absl::StatusOr<std::unique_ptr<Writer>>> writers(kThreads);
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&, i] {
      if (start->Block()) delete start;
      writers[i] = store_->OpenWriter("contested", 0, "");
    });
  }
  for (std::thread& t : threads) t.join();
  int ok = 0;
  for (const auto& w : writers) {
    if (w.ok()) {
      ++ok;
    } else {
      EXPECT_THAT(w, StatusIs(kUnavailable));
    }
  }
  EXPECT_EQ(ok, 1);
}

// --- Speed (printed, not asserted) ------------------------------------------

TEST(ContentStoreSpeed, Write64MiB) {
  TempDir dir;
  absl::StatusOr<std::unique_ptr<ContentStore>> store = ContentStore::Open(dir.path() + "/store");
  ASSERT_THAT(store, IsOk());
  const std::string chunk = Pattern(1 << 20, 60);
  constexpr int kChunks = 64;
  auto start = std::chrono::steady_clock::now();
  absl::StatusOr<std::unique_ptr<Writer>> writer = (*store)->OpenWriter("speed", 0, "");
  ASSERT_THAT(writer, IsOk());
  for (int i = 0; i < kChunks; ++i) ASSERT_THAT((*writer)->Write(chunk), IsOk());
  absl::StatusOr<std::string> digest = (*writer)->Commit(0, "");
  ASSERT_THAT(digest, IsOk());
  double write_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();

  start = std::chrono::steady_clock::now();
  absl::StatusOr<std::unique_ptr<BlobReader>> reader = (*store)->OpenReader(*digest);
  ASSERT_THAT(reader, IsOk());
  std::string out;
  for (int64_t at = 0; at < (*reader)->Size(); at += out.size()) {
    ASSERT_THAT((*reader)->ReadAt(at, 1 << 20, &out), IsOk());
  }
  double read_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  printf(
      "content store: 64 MiB written, hashed, fsynced and committed in %.3f s (%.0f MiB/s); "
      "read in %.3f s (%.0f MiB/s)\n",
      write_s, kChunks / write_s, read_s, kChunks / read_s);
}

// --- The Envs ---------------------------------------------------------------

class EnvTest : public ::testing::Test {
 protected:
  std::string Path(absl::string_view name) { return absl::StrCat(dir_.path(), "/", name); }

  absl::Status Write(Env& env, const std::string& path, absl::string_view data, bool sync) {
    BERTH_ASSIGN_OR_RETURN(std::unique_ptr<File> file, env.OpenFile(path, OpenMode::kCreateNew));
    BERTH_RETURN_IF_ERROR(file->WriteAt(0, data));
    if (sync) BERTH_RETURN_IF_ERROR(file->Sync());
    return absl::OkStatus();
  }

  std::string Read(const std::string& path) {
    return ReadFileToString(*Env::Default(), path).value_or("<missing>");
  }

  TempDir dir_;
  FaultInjectionEnv fault_{Env::Default()};
};

TEST_F(EnvTest, PosixFilesArePrivateAndErrorsNameTheCallAndPath) {
  Env& env = *Env::Default();
  ASSERT_THAT(Write(env, Path("f"), "abc", false), IsOk());
  EXPECT_EQ(Mode(Path("f")), 0600u);
  ASSERT_THAT(CreateDirs(env, Path("a/b/c")), IsOk());
  EXPECT_EQ(Mode(Path("a/b/c")), 0700u);
  EXPECT_THAT(CreateDirs(env, Path("a/b/c")), IsOk());
  EXPECT_THAT(CreateDirs(env, Path("f/x")), StatusIs(kInvalidArgument));
  absl::Status missing = env.OpenFile(Path("nope"), OpenMode::kReadOnly).status();
  EXPECT_THAT(missing, StatusIs(kNotFound));
  EXPECT_EQ(missing.message(),
            absl::StrCat("open \"", Path("nope"), "\": No such file or directory"));
  EXPECT_THAT(Write(env, Path("f"), "x", false), StatusIs(kAlreadyExists));
}

TEST_F(EnvTest, RenameNoReplaceRefusesToReplace) {
  Env& env = *Env::Default();
  ASSERT_THAT(Write(env, Path("a"), "a", false), IsOk());
  ASSERT_THAT(Write(env, Path("b"), "b", false), IsOk());
  EXPECT_THAT(env.RenameNoReplace(Path("a"), Path("b")), StatusIs(kAlreadyExists));
  EXPECT_EQ(Read(Path("b")), "b");
  EXPECT_THAT(env.RenameNoReplace(Path("a"), Path("c")), IsOk());
  EXPECT_EQ(Read(Path("c")), "a");
  EXPECT_THAT(env.ListDir(dir_.path()).value_or(std::vector<std::string>{}),
              UnorderedElementsAreArray({"b", "c"}));
}

TEST_F(EnvTest, ReadFileToStringReadsLargeAndEmptyFiles) {
  const std::string big = Pattern(3 << 20, 70);
  ASSERT_THAT(Write(*Env::Default(), Path("big"), big, false), IsOk());
  ASSERT_THAT(Write(*Env::Default(), Path("empty"), "", false), IsOk());
  EXPECT_EQ(Read(Path("big")), big);
  EXPECT_EQ(Read(Path("empty")), "");
}

TEST_F(EnvTest, CrashDropsUnsyncedData) {
  absl::StatusOr<std::unique_ptr<File>> file = fault_.OpenFile(Path("f"), OpenMode::kCreateNew);
  ASSERT_THAT(file, IsOk());
  ASSERT_THAT((*file)->WriteAt(0, "synced"), IsOk());
  ASSERT_THAT((*file)->Sync(), IsOk());
  ASSERT_THAT((*file)->WriteAt(6, " but not this"), IsOk());
  ASSERT_THAT(Write(fault_, Path("never"), "never synced", false), IsOk());
  ASSERT_THAT(fault_.Crash(), IsOk());
  EXPECT_EQ(Read(Path("f")), "synced");
  EXPECT_EQ(Read(Path("never")), "");
}

TEST_F(EnvTest, CrashUndoesRenamesUntilTheDirectoryIsSynced) {
  ASSERT_THAT(CreateDirs(fault_, Path("src")), IsOk());
  ASSERT_THAT(CreateDirs(fault_, Path("dst")), IsOk());
  ASSERT_THAT(Write(fault_, Path("src/lost"), "lost", true), IsOk());
  ASSERT_THAT(Write(fault_, Path("src/kept"), "kept", true), IsOk());
  ASSERT_THAT(fault_.RenameNoReplace(Path("src/kept"), Path("dst/kept")), IsOk());
  ASSERT_THAT(fault_.SyncDir(Path("dst")), IsOk());
  ASSERT_THAT(fault_.RenameNoReplace(Path("src/lost"), Path("dst/lost")), IsOk());
  ASSERT_THAT(fault_.Crash(), IsOk());
  EXPECT_EQ(Read(Path("dst/kept")), "kept");
  EXPECT_EQ(Read(Path("dst/lost")), "<missing>");
}

TEST_F(EnvTest, UnsyncedDataFollowsDirectoryRenames) {
  ASSERT_THAT(CreateDirs(fault_, Path("tmp")), IsOk());
  ASSERT_THAT(Write(fault_, Path("tmp/f"), "unsynced", false), IsOk());
  ASSERT_THAT(fault_.RenameNoReplace(Path("tmp"), Path("dir")), IsOk());
  ASSERT_THAT(fault_.SyncDir(dir_.path()), IsOk());
  ASSERT_THAT(fault_.Crash(), IsOk());
  EXPECT_EQ(Read(Path("dir/f")), "");
}

TEST_F(EnvTest, FullDiskTakesWhatFitsThenRefuses) {
  fault_.SetFreeSpace(4);
  absl::StatusOr<std::unique_ptr<File>> file = fault_.OpenFile(Path("f"), OpenMode::kCreateNew);
  ASSERT_THAT(file, IsOk());
  size_t written = 99;
  EXPECT_THAT((*file)->WriteAt(0, "abcdef", &written), StatusIs(kResourceExhausted));
  EXPECT_EQ(written, 4u);
  EXPECT_THAT((*file)->WriteAt(4, "ef", &written), StatusIs(kResourceExhausted));
  EXPECT_EQ(written, 0u);
  EXPECT_EQ(Read(Path("f")), "abcd");
  fault_.SetUnlimitedSpace();
  EXPECT_THAT((*file)->WriteAt(4, "ef"), IsOk());
  EXPECT_EQ(Read(Path("f")), "abcdef");
}

TEST_F(EnvTest, FailAfterFailsEveryLaterOperation) {
  fault_.FailAfter(1);
  EXPECT_THAT(fault_.CreateDir(Path("one")), IsOk());
  EXPECT_THAT(fault_.CreateDir(Path("two")), StatusIs(absl::StatusCode::kInternal));
  EXPECT_THAT(fault_.Stat(Path("one")), StatusIs(absl::StatusCode::kInternal));
  fault_.StopFailing();
  EXPECT_THAT(fault_.Stat(Path("one")), IsOk());
}

}  // namespace
}  // namespace berth::store
