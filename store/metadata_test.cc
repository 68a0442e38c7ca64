#include "store/metadata.h"

#include <sys/stat.h>

#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "base/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "store/sqlite.h"

namespace berth::store {
namespace {

using ::testing::HasSubstr;
using ::testing::IsEmpty;
using std::string_literals::operator""s;
using Labels = std::map<std::string, std::string>;

// A directory under /tmp, removed with everything in it.
class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/berth-store-test-XXXXXX";
    if (::mkdtemp(tmpl) == nullptr) std::abort();
    path_ = tmpl;
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

void WriteFile(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary) << bytes;
}

// A second, plain connection to a database, as another process would have.
sqlite::Db RawDb(const std::string& path) {
  absl::StatusOr<sqlite::Db> db = sqlite::Db::Open(path);
  if (!db.ok()) std::abort();
  return std::move(*db);
}

int64_t QueryInt(sqlite::Db& db, absl::string_view sql) {
  absl::StatusOr<sqlite::Statement> stmt = db.Prepare(sql);
  EXPECT_THAT(stmt, IsOk());
  if (!stmt.ok()) return -1;
  EXPECT_THAT(stmt->Step(), IsOk());
  return stmt->ColumnInt(0);
}

// ===================== sqlite wrapper =====================

class SqliteTest : public testing::Test {
 protected:
  SqliteTest() : db_(RawDb(dir_.path() + "/test.db")) {}

  int64_t Rows() { return QueryInt(db_, "SELECT count(*) FROM t"); }

  TempDir dir_;
  sqlite::Db db_;
};

TEST_F(SqliteTest, TransactionRollsBackUnlessCommitted) {
  ASSERT_THAT(db_.Exec("CREATE TABLE t (k TEXT PRIMARY KEY)"), IsOk());
  {
    absl::StatusOr<sqlite::Transaction> tx =
        sqlite::Transaction::Begin(db_, sqlite::Transaction::kWrite);
    ASSERT_THAT(tx, IsOk());
    ASSERT_THAT(db_.Exec("INSERT INTO t VALUES ('dropped')"), IsOk());
  }
  EXPECT_FALSE(db_.InTransaction());
  EXPECT_EQ(Rows(), 0);
  {
    absl::StatusOr<sqlite::Transaction> tx =
        sqlite::Transaction::Begin(db_, sqlite::Transaction::kWrite);
    ASSERT_THAT(tx, IsOk());
    ASSERT_THAT(db_.Exec("INSERT INTO t VALUES ('kept')"), IsOk());
    ASSERT_THAT(tx->Commit(), IsOk());
  }
  EXPECT_EQ(Rows(), 1);
}

TEST_F(SqliteTest, BoundValuesAreDataNeverSql) {
  ASSERT_THAT(db_.Exec("CREATE TABLE t (k TEXT PRIMARY KEY)"), IsOk());
  const std::string values[] = {"x'); DROP TABLE t; --", "a\0b"s, "\"quoted\"", ""};
  for (const std::string& value : values) {
    absl::StatusOr<sqlite::Statement> insert = db_.Prepare("INSERT INTO t VALUES (?1)");
    ASSERT_THAT(insert, IsOk());
    ASSERT_THAT(insert->Bind(1, value), IsOk());
    ASSERT_THAT(insert->Run(), IsOk());
    absl::StatusOr<sqlite::Statement> select = db_.Prepare("SELECT k FROM t WHERE k = ?1");
    ASSERT_THAT(select, IsOk());
    ASSERT_THAT(select->Bind(1, value), IsOk());
    ASSERT_THAT(select->Step(), IsOk());
    EXPECT_EQ(select->ColumnText(0), value);
  }
  EXPECT_EQ(Rows(), 4);
}

TEST_F(SqliteTest, PrepareRefusesMoreThanOneStatement) {
  EXPECT_THAT(db_.Prepare("SELECT 1; SELECT 2"), StatusIs(absl::StatusCode::kInternal));
  EXPECT_THAT(db_.Prepare("  "), StatusIs(absl::StatusCode::kInternal));
  EXPECT_THAT(db_.Prepare("SELECT 1;  \n"), IsOk());
}

TEST_F(SqliteTest, ErrorsNameTheStatementAndTheFile) {
  ASSERT_THAT(db_.Exec("CREATE TABLE t (k TEXT PRIMARY KEY)"), IsOk());
  ASSERT_THAT(db_.Exec("INSERT INTO t VALUES ('a')"), IsOk());
  absl::Status status = db_.Exec("INSERT INTO t VALUES ('a')");
  EXPECT_THAT(status, StatusIs(absl::StatusCode::kAlreadyExists));
  EXPECT_EQ(status.message(), absl::StrCat("exec \"INSERT INTO t VALUES ('a')\" on \"", db_.path(),
                                           "\": UNIQUE constraint failed: t.k"));
}

TEST(SqliteCodes, MapToTheCodeACallerExpects) {
  struct Case {
    const char* name;
    int rc;
    int system_errno;
    absl::StatusCode want;
  };
  const Case cases[] = {
      {"Busy", SQLITE_BUSY, 0, absl::StatusCode::kUnavailable},
      {"Locked", SQLITE_LOCKED, 0, absl::StatusCode::kUnavailable},
      {"Unique", SQLITE_CONSTRAINT_UNIQUE, 0, absl::StatusCode::kAlreadyExists},
      {"PrimaryKey", SQLITE_CONSTRAINT_PRIMARYKEY, 0, absl::StatusCode::kAlreadyExists},
      {"ForeignKey", SQLITE_CONSTRAINT_FOREIGNKEY, 0, absl::StatusCode::kFailedPrecondition},
      {"NotNull", SQLITE_CONSTRAINT_NOTNULL, 0, absl::StatusCode::kFailedPrecondition},
      {"NotADatabase", SQLITE_NOTADB, 0, absl::StatusCode::kDataLoss},
      {"Corrupt", SQLITE_CORRUPT, 0, absl::StatusCode::kDataLoss},
      {"DiskFull", SQLITE_FULL, 0, absl::StatusCode::kResourceExhausted},
      {"IoErrorNoSpace", SQLITE_IOERR_WRITE, ENOSPC, absl::StatusCode::kResourceExhausted},
      {"CantOpenAccess", SQLITE_CANTOPEN, EACCES, absl::StatusCode::kPermissionDenied},
      {"IoErrorNoErrno", SQLITE_IOERR_FSYNC, 0, absl::StatusCode::kInternal},
      {"ReadOnly", SQLITE_READONLY, 0, absl::StatusCode::kFailedPrecondition},
      {"SqlError", SQLITE_ERROR, 0, absl::StatusCode::kInternal},
  };
  for (const Case& c : cases) {
    EXPECT_EQ(sqlite::CodeFromSqlite(c.rc, c.system_errno), c.want) << c.name;
  }
}

// ===================== migration mechanism =====================

class MigrateTest : public SqliteTest {
 protected:
  int Version() { return static_cast<int>(QueryInt(db_, "PRAGMA user_version")); }
  bool HasTable(absl::string_view name) {
    absl::StatusOr<sqlite::Statement> stmt =
        db_.Prepare("SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?1");
    EXPECT_THAT(stmt, IsOk());
    EXPECT_THAT(stmt->Bind(1, name), IsOk());
    EXPECT_THAT(stmt->Step(), IsOk());
    return stmt->ColumnInt(0) == 1;
  }
};

TEST_F(MigrateTest, AppliesEachMigrationOnceInOrder) {
  // Not idempotent on purpose: a second run of any of them would fail or add a row.
  const sqlite::Migration v2[] = {
      {1, "CREATE TABLE t (k TEXT PRIMARY KEY)"},
      {2, "INSERT INTO t VALUES ('from-2')"},
  };
  ASSERT_THAT(sqlite::Migrate(db_, v2), IsOk());
  ASSERT_THAT(sqlite::Migrate(db_, v2), IsOk());
  EXPECT_EQ(Version(), 2);
  EXPECT_EQ(Rows(), 1);

  const sqlite::Migration v3[] = {v2[0], v2[1], {3, "INSERT INTO t VALUES ('from-3')"}};
  ASSERT_THAT(sqlite::Migrate(db_, v3), IsOk());
  EXPECT_EQ(Version(), 3);
  EXPECT_EQ(Rows(), 2);
}

TEST_F(MigrateTest, FailedMigrationLeavesTheLastWholeVersion) {
  const sqlite::Migration broken[] = {
      {1, "CREATE TABLE t (k TEXT PRIMARY KEY)"},
      {2, "CREATE TABLE half (x); INSERT INTO t VALUES ('x'); THIS IS NOT SQL"},
  };
  EXPECT_THAT(sqlite::Migrate(db_, broken), StatusIs(absl::StatusCode::kInternal));
  EXPECT_EQ(Version(), 1);
  EXPECT_FALSE(HasTable("half"));
  EXPECT_EQ(Rows(), 0);
  EXPECT_FALSE(db_.InTransaction());

  const sqlite::Migration fixed[] = {broken[0], {2, "CREATE TABLE half (x)"}};
  ASSERT_THAT(sqlite::Migrate(db_, fixed), IsOk());
  EXPECT_EQ(Version(), 2);
  EXPECT_TRUE(HasTable("half"));
}

TEST_F(MigrateTest, RefusesADatabaseNewerThanItsMigrations) {
  ASSERT_THAT(db_.Exec("CREATE TABLE t (k); PRAGMA user_version = 5"), IsOk());
  const sqlite::Migration known[] = {{1, "CREATE TABLE a (x)"}, {2, "CREATE TABLE b (x)"}};
  absl::Status status = sqlite::Migrate(db_, known);
  EXPECT_THAT(status, StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_THAT(status.message(), HasSubstr("schema version 5, newer than version 2"));
  EXPECT_EQ(Version(), 5);
  EXPECT_FALSE(HasTable("a"));
}

TEST_F(MigrateTest, RefusesMisnumberedMigrations) {
  const sqlite::Migration gap[] = {{1, "CREATE TABLE a (x)"}, {3, "CREATE TABLE b (x)"}};
  EXPECT_THAT(sqlite::Migrate(db_, gap), StatusIs(absl::StatusCode::kInternal));
  EXPECT_EQ(Version(), 0);
  EXPECT_FALSE(HasTable("a"));
}

// ===================== MetadataStore::Open =====================

class OpenTest : public testing::Test {
 protected:
  std::string DbPath() const { return dir_.path() + "/state/meta/metadata.db"; }

  TempDir dir_;
};

TEST_F(OpenTest, CreatesMissingParentDirectoriesPrivate) {
  ASSERT_THAT(MetadataStore::Open(DbPath()), IsOk());
  for (const std::string& dir : {dir_.path() + "/state", dir_.path() + "/state/meta"}) {
    struct stat st;
    ASSERT_EQ(::stat(dir.c_str(), &st), 0) << dir;
    EXPECT_EQ(st.st_mode & 07777, 0700u) << dir;
  }
}

TEST_F(OpenTest, ReopenSeesWhatWasWritten) {
  const Namespace dev{"dev", {{"team", "infra"}}};
  {
    absl::StatusOr<std::unique_ptr<MetadataStore>> store = MetadataStore::Open(DbPath());
    ASSERT_THAT(store, IsOk());
    ASSERT_THAT((*store)->CreateNamespace(dev), IsOk());
  }
  absl::StatusOr<std::unique_ptr<MetadataStore>> store = MetadataStore::Open(DbPath());
  ASSERT_THAT(store, IsOk());
  absl::StatusOr<Namespace> got = (*store)->GetNamespace("dev");
  ASSERT_THAT(got, IsOk());
  EXPECT_EQ(*got, dev);
}

TEST_F(OpenTest, SetsWalAndVersionAndMigratesOnlyOnce) {
  ASSERT_THAT(MetadataStore::Open(DbPath()), IsOk());
  sqlite::Db raw = RawDb(DbPath());
  const int64_t version = QueryInt(raw, "PRAGMA user_version");
  EXPECT_GE(version, 1);
  EXPECT_NE(QueryInt(raw, "PRAGMA application_id"), 0);
  absl::StatusOr<sqlite::Statement> mode = raw.Prepare("PRAGMA journal_mode");
  ASSERT_THAT(mode, IsOk());
  ASSERT_THAT(mode->Step(), IsOk());
  EXPECT_EQ(mode->ColumnText(0), "wal");
  // The migrations create tables without IF NOT EXISTS: running one again
  // would fail this open.
  ASSERT_THAT(MetadataStore::Open(DbPath()), IsOk());
  EXPECT_EQ(QueryInt(raw, "PRAGMA user_version"), version);
}

TEST_F(OpenTest, RefusesANewerSchemaAndLeavesItAlone) {
  int64_t known;
  {
    ASSERT_THAT(MetadataStore::Open(DbPath()), IsOk());
    sqlite::Db raw = RawDb(DbPath());
    known = QueryInt(raw, "PRAGMA user_version");
    // Out of WAL too, so that even switching the journal mode would show.
    ASSERT_THAT(raw.Exec("PRAGMA journal_mode = DELETE; PRAGMA user_version = 1000"), IsOk());
  }
  const std::string before = ReadFile(DbPath());
  absl::StatusOr<std::unique_ptr<MetadataStore>> store = MetadataStore::Open(DbPath());
  EXPECT_THAT(store, StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_THAT(store.status().message(),
              HasSubstr(absl::StrCat("schema version 1000, newer than version ", known)));
  EXPECT_THAT(store.status().message(), HasSubstr(DbPath()));
  EXPECT_EQ(ReadFile(DbPath()), before);
}

TEST_F(OpenTest, RefusesFilesThatAreNotDatabasesAndLeavesThemAlone) {
  struct Case {
    const char* name;
    std::string bytes;
  };
  std::string binary(8192, '\0');
  for (size_t i = 0; i < binary.size(); ++i) binary[i] = static_cast<char>((i * 131 + 7) % 251);
  const Case cases[] = {
      {"PlainText", std::string(200, 'x') + "\nnot a database\n"},
      {"Binary", binary},
      {"SqliteMagicThenGarbage", "SQLite format 3\0"s + std::string(4000, '\xff')},
  };
  for (const Case& c : cases) {
    std::string path = absl::StrCat(dir_.path(), "/", c.name, ".db");
    WriteFile(path, c.bytes);
    absl::StatusOr<std::unique_ptr<MetadataStore>> store = MetadataStore::Open(path);
    EXPECT_THAT(store, StatusIs(absl::StatusCode::kDataLoss)) << c.name;
    EXPECT_THAT(store.status().message(), HasSubstr(path)) << c.name;
    EXPECT_EQ(ReadFile(path), c.bytes) << c.name;
    EXPECT_FALSE(std::filesystem::exists(path + "-wal")) << c.name;
  }
}

TEST_F(OpenTest, RefusesAnotherProgramsDatabase) {
  const std::string path = dir_.path() + "/other.db";
  {
    sqlite::Db raw = RawDb(path);
    ASSERT_THAT(raw.Exec("CREATE TABLE accounts (id INTEGER)"), IsOk());
  }
  const std::string before = ReadFile(path);
  absl::StatusOr<std::unique_ptr<MetadataStore>> store = MetadataStore::Open(path);
  EXPECT_THAT(store, StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_THAT(store.status().message(), HasSubstr(path));
  EXPECT_EQ(ReadFile(path), before);
}

TEST_F(OpenTest, AnEmptyFileBecomesADatabase) {
  const std::string path = dir_.path() + "/empty.db";
  WriteFile(path, "");
  absl::StatusOr<std::unique_ptr<MetadataStore>> store = MetadataStore::Open(path);
  ASSERT_THAT(store, IsOk());
  EXPECT_THAT((*store)->CreateNamespace({"default", {}}), IsOk());
}

TEST_F(OpenTest, ParentThatIsAFileIsAnError) {
  WriteFile(dir_.path() + "/state", "");
  absl::StatusOr<std::unique_ptr<MetadataStore>> store = MetadataStore::Open(DbPath());
  EXPECT_THAT(store, StatusIs(absl::StatusCode::kInvalidArgument));  // ENOTDIR
  EXPECT_THAT(store.status().message(), HasSubstr("mkdir \"" + dir_.path() + "/state/meta\""));
}

// ===================== namespaces =====================

class NamespaceTest : public testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<std::unique_ptr<MetadataStore>> store = MetadataStore::Open(path_);
    ASSERT_THAT(store, IsOk());
    store_ = std::move(*store);
  }

  std::vector<std::string> Names() {
    absl::StatusOr<std::vector<Namespace>> all = store_->ListNamespaces();
    EXPECT_THAT(all, IsOk());
    std::vector<std::string> names;
    if (all.ok()) {
      for (const Namespace& ns : *all) names.push_back(ns.name);
    }
    return names;
  }

  TempDir dir_;
  const std::string path_ = dir_.path() + "/metadata.db";
  std::unique_ptr<MetadataStore> store_;
};

struct NameCase {
  const char* name;
  std::string ns;
};

const NameCase kInvalidNames[] = {
    {"Empty", ""},         {"TooLong77", std::string(77, 'a')},
    {"LeadingDot", ".a"},  {"LeadingDash", "-a"},
    {"TrailingDot", "a."}, {"TrailingUnderscore", "a_"},
    {"DotDot", ".."},      {"DoubleSeparator", "a..b"},
    {"Slash", "a/b"},      {"Space", "a b"},
    {"NulByte", "a\0b"s},  {"Newline", "a\nb"},
    {"Quote", "a\"b"},     {"NonAscii", "d\xc3\xa9v"},
};

const NameCase kValidNames[] = {
    {"Default", "default"},          {"Dotted", "k8s.io"},
    {"Uppercase", "MOBY"},           {"MixedSeparators", "a.b-c_d"},
    {"Max76", std::string(76, 'z')}, {"Digit", "1"},
};

TEST_F(NamespaceTest, CreateRefusesInvalidNames) {
  for (const NameCase& c : kInvalidNames) {
    absl::Status status = store_->CreateNamespace({c.ns, {}});
    EXPECT_THAT(status, StatusIs(absl::StatusCode::kInvalidArgument)) << c.name;
  }
  EXPECT_THAT(Names(), IsEmpty());
}

TEST_F(NamespaceTest, InvalidNameMessageQuotesIt) {
  EXPECT_THAT(store_->CreateNamespace({"a/b", {}}).message(), HasSubstr("\"a/b\""));
  EXPECT_THAT(store_->CreateNamespace({"a\0b"s, {}}).message(), HasSubstr("\"a\\000b\""));
}

TEST_F(NamespaceTest, CreateAcceptsValidNames) {
  for (const NameCase& c : kValidNames) {
    ASSERT_THAT(store_->CreateNamespace({c.ns, {}}), IsOk()) << c.name;
    absl::StatusOr<Namespace> got = store_->GetNamespace(c.ns);
    ASSERT_THAT(got, IsOk()) << c.name;
    EXPECT_EQ(got->name, c.ns) << c.name;
  }
}

TEST_F(NamespaceTest, OtherCallsRefuseInvalidNames) {
  for (const NameCase& c : kInvalidNames) {
    EXPECT_THAT(store_->GetNamespace(c.ns), StatusIs(absl::StatusCode::kInvalidArgument)) << c.name;
    EXPECT_THAT(store_->UpdateNamespace({c.ns, {}}, {}),
                StatusIs(absl::StatusCode::kInvalidArgument))
        << c.name;
    EXPECT_THAT(store_->DeleteNamespace(c.ns), StatusIs(absl::StatusCode::kInvalidArgument))
        << c.name;
  }
}

TEST_F(NamespaceTest, CreateTwiceIsAlreadyExistsAndKeepsTheFirst) {
  ASSERT_THAT(store_->CreateNamespace({"dev", {{"team", "infra"}}}), IsOk());
  absl::Status status = store_->CreateNamespace({"dev", {{"team", "web"}, {"x", "y"}}});
  EXPECT_THAT(status, StatusIs(absl::StatusCode::kAlreadyExists));
  EXPECT_EQ(status.message(), "namespace \"dev\": already exists");
  absl::StatusOr<Namespace> got = store_->GetNamespace("dev");
  ASSERT_THAT(got, IsOk());
  EXPECT_EQ(got->labels, (Labels{{"team", "infra"}}));
}

TEST_F(NamespaceTest, MissingNamespaceIsNotFound) {
  ASSERT_THAT(store_->CreateNamespace({"other", {}}), IsOk());
  absl::Status get = store_->GetNamespace("missing").status();
  EXPECT_THAT(get, StatusIs(absl::StatusCode::kNotFound));
  EXPECT_EQ(get.message(), "namespace \"missing\": not found");
  EXPECT_THAT(store_->UpdateNamespace({"missing", {{"a", "b"}}}, {}),
              StatusIs(absl::StatusCode::kNotFound));
  EXPECT_THAT(store_->UpdateNamespace({"missing", {{"a", "b"}}}, {"labels.a"}),
              StatusIs(absl::StatusCode::kNotFound));
  EXPECT_THAT(store_->DeleteNamespace("missing"), StatusIs(absl::StatusCode::kNotFound));
  EXPECT_EQ(Names(), std::vector<std::string>{"other"});
}

TEST_F(NamespaceTest, ListIsSortedByNameBytesWithLabels) {
  ASSERT_THAT(store_->CreateNamespace({"b", {{"k", "2"}}}), IsOk());
  ASSERT_THAT(store_->CreateNamespace({"a", {}}), IsOk());
  ASSERT_THAT(store_->CreateNamespace({"C", {{"k", "3"}, {"l", "4"}}}), IsOk());
  absl::StatusOr<std::vector<Namespace>> all = store_->ListNamespaces();
  ASSERT_THAT(all, IsOk());
  EXPECT_EQ(*all, (std::vector<Namespace>{
                      {"C", {{"k", "3"}, {"l", "4"}}}, {"a", {}}, {"b", {{"k", "2"}}}}));
}

TEST_F(NamespaceTest, ListOfNothingIsEmpty) { EXPECT_THAT(Names(), IsEmpty()); }

TEST_F(NamespaceTest, LabelsRoundTripAndEmptyValuesAreNotStored) {
  const Labels labels = {
      {"containerd.io/gc.root", "2024-01-01"},
      {"x'); DROP TABLE namespaces; --", "\"quoted\""},
      {"nul\0key"s, "nul\0value"s},
      {"gone", ""},
  };
  ASSERT_THAT(store_->CreateNamespace({"dev", labels}), IsOk());
  absl::StatusOr<Namespace> got = store_->GetNamespace("dev");
  ASSERT_THAT(got, IsOk());
  Labels want = labels;
  want.erase("gone");
  EXPECT_EQ(got->labels, want);
}

TEST_F(NamespaceTest, LabelLimits) {
  struct Case {
    const char* name;
    std::string key;
    std::string value;
    absl::StatusCode want;
  };
  const Case cases[] = {
      {"AtLimit", "k", std::string(4095, 'v'), absl::StatusCode::kOk},
      {"OneOver", "k", std::string(4096, 'v'), absl::StatusCode::kInvalidArgument},
      {"KeyAloneOver", std::string(4097, 'k'), "v", absl::StatusCode::kInvalidArgument},
      {"SplitOver", std::string(2048, 'k'), std::string(2049, 'v'),
       absl::StatusCode::kInvalidArgument},
      {"EmptyKey", "", "v", absl::StatusCode::kInvalidArgument},
  };
  for (const Case& c : cases) {
    absl::Status status = store_->CreateNamespace({c.name, {{"ok", "1"}, {c.key, c.value}}});
    EXPECT_THAT(status, StatusIs(c.want)) << c.name;
    // Long keys are abbreviated, not pasted whole into the message.
    EXPECT_LT(status.message().size(), 300u) << c.name;
    if (c.want != absl::StatusCode::kOk) {
      EXPECT_THAT(store_->GetNamespace(c.name), StatusIs(absl::StatusCode::kNotFound)) << c.name;
    }
  }
}

// Every update mask case, from the same starting labels.
TEST_F(NamespaceTest, UpdateFollowsTheMask) {
  struct Case {
    const char* name;  // also the namespace's name
    Labels request;
    std::vector<std::string> mask;
    absl::StatusCode want_code;
    Labels want;  // the labels afterwards (unchanged on error)
  };
  const Labels start = {{"team", "infra"}, {"env", "prod"}};
  const Case cases[] = {
      {"EmptyMaskReplacesAll", {{"owner", "ana"}}, {}, absl::StatusCode::kOk, {{"owner", "ana"}}},
      {"EmptyMaskNoLabelsClearsAll", {}, {}, absl::StatusCode::kOk, {}},
      {"EmptyMaskDropsEmptyValues",
       {{"owner", "ana"}, {"team", ""}},
       {},
       absl::StatusCode::kOk,
       {{"owner", "ana"}}},
      {"LabelsPathReplacesAll",
       {{"owner", "ana"}},
       {"labels"},
       absl::StatusCode::kOk,
       {{"owner", "ana"}}},
      {"LabelKeyAddsOne",
       {{"owner", "ana"}},
       {"labels.owner"},
       absl::StatusCode::kOk,
       {{"team", "infra"}, {"env", "prod"}, {"owner", "ana"}}},
      {"LabelKeyOverwrites",
       {{"team", "web"}},
       {"labels.team"},
       absl::StatusCode::kOk,
       {{"team", "web"}, {"env", "prod"}}},
      {"LabelKeyAbsentDeletes", {}, {"labels.team"}, absl::StatusCode::kOk, {{"env", "prod"}}},
      {"LabelKeyEmptyDeletes",
       {{"team", ""}},
       {"labels.team"},
       absl::StatusCode::kOk,
       {{"env", "prod"}}},
      {"LabelKeyMissingDeleteIsNoop", {}, {"labels.nope"}, absl::StatusCode::kOk, start},
      {"UnmaskedLabelsIgnored",
       {{"owner", "ana"}, {"other", "x"}, {"team", "web"}},
       {"labels.owner"},
       absl::StatusCode::kOk,
       {{"team", "infra"}, {"env", "prod"}, {"owner", "ana"}}},
      {"UnmaskedBadLabelIgnored",
       {{"owner", "ana"}, {"big", std::string(5000, 'x')}},
       {"labels.owner"},
       absl::StatusCode::kOk,
       {{"team", "infra"}, {"env", "prod"}, {"owner", "ana"}}},
      {"KeyWithDots",
       {{"a.b.c", "v"}},
       {"labels.a.b.c"},
       absl::StatusCode::kOk,
       {{"team", "infra"}, {"env", "prod"}, {"a.b.c", "v"}}},
      {"SeveralKeys",
       {{"owner", "ana"}, {"env", "dev"}},
       {"labels.owner", "labels.env", "labels.team"},
       absl::StatusCode::kOk,
       {{"owner", "ana"}, {"env", "dev"}}},
      {"NamePath", {}, {"name"}, absl::StatusCode::kInvalidArgument, start},
      {"UnknownAfterValid",
       {{"owner", "ana"}},
       {"labels.owner", "bogus"},
       absl::StatusCode::kInvalidArgument,
       start},
      {"LabelsWithoutDot", {}, {"labelsx"}, absl::StatusCode::kInvalidArgument, start},
      {"EmptyKeyPath", {{"", "v"}}, {"labels."}, absl::StatusCode::kInvalidArgument, start},
      {"EmptyPath", {}, {""}, absl::StatusCode::kInvalidArgument, start},
      {"TooLongViaKey",
       {{"k", std::string(4096, 'v')}},
       {"labels.k"},
       absl::StatusCode::kInvalidArgument,
       start},
      {"TooLongViaReplace",
       {{"k", std::string(4096, 'v')}},
       {},
       absl::StatusCode::kInvalidArgument,
       start},
      {"EmptyKeyViaReplace", {{"", "v"}}, {"labels"}, absl::StatusCode::kInvalidArgument, start},
  };
  for (const Case& c : cases) {
    ASSERT_THAT(store_->CreateNamespace({c.name, start}), IsOk()) << c.name;
    absl::StatusOr<Namespace> updated = store_->UpdateNamespace({c.name, c.request}, c.mask);
    EXPECT_THAT(updated, StatusIs(c.want_code)) << c.name;
    if (updated.ok()) {
      EXPECT_EQ(updated->labels, c.want) << c.name;
    }
    absl::StatusOr<Namespace> stored = store_->GetNamespace(c.name);
    ASSERT_THAT(stored, IsOk()) << c.name;
    EXPECT_EQ(stored->labels, c.want) << c.name;
  }
}

TEST_F(NamespaceTest, UnknownMaskPathIsNamed) {
  ASSERT_THAT(store_->CreateNamespace({"dev", {}}), IsOk());
  absl::Status status = store_->UpdateNamespace({"dev", {}}, {"labels.a", "spec"}).status();
  EXPECT_THAT(status, StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_EQ(status.message(), "namespace \"dev\": cannot update field \"spec\" of a namespace");
}

TEST_F(NamespaceTest, DeleteRemovesTheNamespaceAndItsLabels) {
  ASSERT_THAT(store_->CreateNamespace({"dev", {{"team", "infra"}}}), IsOk());
  ASSERT_THAT(store_->CreateNamespace({"prod", {{"team", "ops"}}}), IsOk());
  ASSERT_THAT(store_->DeleteNamespace("dev"), IsOk());
  EXPECT_THAT(store_->GetNamespace("dev"), StatusIs(absl::StatusCode::kNotFound));
  EXPECT_EQ(Names(), std::vector<std::string>{"prod"});
  EXPECT_THAT(store_->DeleteNamespace("dev"), StatusIs(absl::StatusCode::kNotFound));
  // Recreated, it starts with no labels: the old ones went with it.
  ASSERT_THAT(store_->CreateNamespace({"dev", {}}), IsOk());
  absl::StatusOr<Namespace> dev = store_->GetNamespace("dev");
  ASSERT_THAT(dev, IsOk());
  EXPECT_THAT(dev->labels, IsEmpty());
  absl::StatusOr<Namespace> prod = store_->GetNamespace("prod");
  ASSERT_THAT(prod, IsOk());
  EXPECT_EQ(prod->labels, (Labels{{"team", "ops"}}));
}

// Tables added by later migrations are found by their `namespace` column;
// here another connection plays the part of those migrations.
TEST_F(NamespaceTest, DeleteRefusesWhileObjectsRemain) {
  ASSERT_THAT(store_->CreateNamespace({"dev", {{"team", "infra"}}}), IsOk());
  ASSERT_THAT(store_->CreateNamespace({"prod", {}}), IsOk());
  sqlite::Db raw = RawDb(path_);
  ASSERT_THAT(raw.Exec(R"sql(
      CREATE TABLE images (namespace TEXT NOT NULL, name TEXT NOT NULL);
      CREATE TABLE containers (id TEXT NOT NULL, namespace TEXT NOT NULL);
      CREATE TABLE blobs (namespace TEXT NOT NULL, digest TEXT NOT NULL);
      CREATE TABLE settings (key TEXT, value TEXT);
      INSERT INTO images VALUES ('dev', 'docker.io/library/busybox:latest');
      INSERT INTO containers VALUES ('c1', 'dev');
      INSERT INTO blobs VALUES ('prod', 'sha256:00');
      INSERT INTO settings VALUES ('dev', 'dev');
  )sql"),
              IsOk());

  absl::Status status = store_->DeleteNamespace("dev");
  EXPECT_THAT(status, StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_EQ(status.message(),
            "namespace \"dev\" must be empty, but it still has containers, images");
  absl::StatusOr<Namespace> dev = store_->GetNamespace("dev");
  ASSERT_THAT(dev, IsOk());
  EXPECT_EQ(dev->labels, (Labels{{"team", "infra"}}));

  ASSERT_THAT(raw.Exec("DELETE FROM containers"), IsOk());
  EXPECT_EQ(store_->DeleteNamespace("dev").message(),
            "namespace \"dev\" must be empty, but it still has images");

  ASSERT_THAT(raw.Exec("DELETE FROM images"), IsOk());
  EXPECT_THAT(store_->DeleteNamespace("dev"), IsOk());
  EXPECT_THAT(store_->DeleteNamespace("prod"), StatusIs(absl::StatusCode::kFailedPrecondition));
}

TEST_F(NamespaceTest, ConcurrentCreatesAllLand) {
  constexpr int kThreads = 4;
  constexpr int kEach = 10;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([this, t] {
      for (int i = 0; i < kEach; ++i) {
        EXPECT_THAT(store_->CreateNamespace({absl::StrCat("t", t, "-", i), {{"i", "x"}}}), IsOk());
        EXPECT_THAT(store_->ListNamespaces(), IsOk());
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(Names().size(), static_cast<size_t>(kThreads * kEach));
}

}  // namespace
}  // namespace berth::store
