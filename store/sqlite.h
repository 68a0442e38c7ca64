// A small RAII layer over SQLite's C API, private to store/.
//
//   BERTH_ASSIGN_OR_RETURN(Db db, Db::Open(path));
//   BERTH_ASSIGN_OR_RETURN(Transaction tx, Transaction::Begin(db, Transaction::kWrite));
//   BERTH_ASSIGN_OR_RETURN(Statement insert, db.Prepare("INSERT INTO t (k) VALUES (?1)"));
//   BERTH_RETURN_IF_ERROR(insert.Bind(1, key));
//   BERTH_RETURN_IF_ERROR(insert.Run());
//   return tx.Commit();  // if anything above returned early, ~Transaction rolled back
//
// Values only ever reach SQL through Bind; SQL text is always a constant (or,
// for schema identifiers, quoted with QuoteIdentifier).
//
// Nothing here is thread-safe: a Db and everything prepared on it belong to one
// thread at a time (the caller holds a mutex). Statements and Transactions must
// not outlive their Db.
//
// Errors carry the code a caller would expect (see StatusFromSqlite) and name
// the operation, the database file and SQLite's own message:
//   `step "INSERT INTO namespaces …" on "/var/lib/berth/meta.db": UNIQUE constraint failed:
//   namespaces.name`
#ifndef BERTH_STORE_SQLITE_H_
#define BERTH_STORE_SQLITE_H_

#include <sqlite3.h>

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"

namespace berth::store::sqlite {

class Statement;

// One connection to one database file.
class Db {
 public:
  // Opens (creating if missing) the database at `path`, read-write, with the
  // given busy timeout. SQLite reads nothing at open, so a file that is not a
  // database is reported by the first statement (DataLoss), not here.
  static absl::StatusOr<Db> Open(const std::string& path, int busy_timeout_ms = 5000);

  // Opens the existing database at `path` for reading only: any write through
  // it fails (FailedPrecondition, SQLITE_READONLY). In WAL mode such a
  // connection reads beside the writer, seeing the last commit as of the
  // start of each transaction. NotFound if the file does not exist.
  static absl::StatusOr<Db> OpenReadOnly(const std::string& path, int busy_timeout_ms = 5000);

  Db(Db&& other) noexcept;
  Db& operator=(Db&& other) noexcept;
  Db(const Db&) = delete;
  Db& operator=(const Db&) = delete;
  ~Db();

  // Runs `sql`, which may hold several statements and binds nothing (schema
  // scripts, PRAGMAs, BEGIN/COMMIT).
  absl::Status Exec(absl::string_view sql);

  // Compiles exactly one statement; trailing text other than whitespace is an
  // Internal error (it would silently never run).
  absl::StatusOr<Statement> Prepare(absl::string_view sql);

  // The status for SQLite result `rc` of `op` on `what`, with this
  // connection's error message.
  absl::Status Error(int rc, absl::string_view op, absl::string_view what) const;

  // True while a transaction is open on this connection.
  bool InTransaction() const;

  const std::string& path() const { return path_; }

 private:
  Db(sqlite3* db, std::string path) : db_(db), path_(std::move(path)) {}

  static absl::StatusOr<Db> OpenWithFlags(const std::string& path, int flags, int busy_timeout_ms);

  sqlite3* db_ = nullptr;
  std::string path_;
};

// One prepared statement. Parameters are 1-based, columns 0-based, as in
// SQLite.
class Statement {
 public:
  Statement(Statement&& other) noexcept;
  Statement& operator=(Statement&& other) noexcept;
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;
  ~Statement();

  // Text is copied into SQLite, so `value` may go away before Step.
  absl::Status Bind(int index, absl::string_view value);
  // Bytes (a BLOB column), copied likewise.
  absl::Status BindBlob(int index, absl::string_view bytes);
  absl::Status Bind(int index, int64_t value);
  absl::Status BindNull(int index);

  // true: a row is ready for Column*(); false: the statement is done.
  absl::StatusOr<bool> Step();

  // Steps a statement that returns no rows (INSERT, UPDATE, DELETE) to
  // completion; a row is an Internal error.
  absl::Status Run();

  // Makes the statement ready to step again; bindings are kept.
  absl::Status Reset();

  int64_t ColumnInt(int column) const;
  // Embedded NULs survive: the length is SQLite's, not strlen's.
  std::string ColumnText(int column) const;
  // A BLOB column's bytes.
  std::string ColumnBlob(int column) const;

 private:
  friend class Db;
  Statement(const Db* db, sqlite3_stmt* stmt) : db_(db), stmt_(stmt) {}

  absl::Status BindResult(int rc, int index) const;

  const Db* db_ = nullptr;
  sqlite3_stmt* stmt_ = nullptr;
};

// A transaction that rolls back unless committed.
class Transaction {
 public:
  enum Mode {
    // BEGIN DEFERRED: a consistent snapshot for several reads.
    kRead,
    // BEGIN IMMEDIATE: takes the write lock now, so a writer waits (up to the
    // busy timeout) at BEGIN instead of failing with SQLITE_BUSY halfway
    // through, when a deferred read lock cannot be upgraded.
    kWrite,
  };

  // REQUIRES: no transaction is open on `db`.
  static absl::StatusOr<Transaction> Begin(Db& db, Mode mode);

  Transaction(Transaction&& other) noexcept;
  Transaction& operator=(Transaction&&) = delete;
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;
  ~Transaction();

  // Makes the changes durable (to the connection's `synchronous` level). On
  // error the transaction is rolled back, here or by the destructor.
  absl::Status Commit();

 private:
  explicit Transaction(Db* db) : db_(db) {}

  Db* db_;  // null once committed or moved from
};

// `name` as a double-quoted SQL identifier, for schema names read back from
// sqlite_master — the one place SQL text is built (values are never quoted:
// they are bound).
std::string QuoteIdentifier(absl::string_view name);

// An ordered schema migration: `sql` takes the schema from version `version - 1`
// to `version`. Versions are 1, 2, 3 … with no gaps.
struct Migration {
  int version;
  absl::string_view sql;
};

// Brings the schema in `db` (versioned by PRAGMA user_version) up to the last
// of `migrations`, applying each missing one in its own write transaction
// together with the version bump, so a crash leaves the database at some whole
// version and the next call resumes there. A database already at the last
// version is left untouched.
//
// FailedPrecondition, naming both versions, if the database is newer than the
// last migration (written by a newer binary: refuse rather than guess).
// Internal if `migrations` is not numbered 1, 2, 3 …
// REQUIRES: no transaction is open on `db`.
absl::Status Migrate(Db& db, absl::Span<const Migration> migrations);

// FailedPrecondition, naming both versions, if the schema in `db` is newer than
// the last of `migrations`. Migrate checks this itself; calling it first lets a
// caller refuse before doing anything else to the file.
absl::Status CheckNotNewer(Db& db, absl::Span<const Migration> migrations);

// PRAGMA user_version.
absl::StatusOr<int> SchemaVersion(Db& db);

// Puts the connection in WAL mode (readers do not block the writer, a
// commit is one append) with synchronous=FULL (the WAL is fsynced at every
// commit: nothing acknowledged is lost on power loss; NORMAL, the usual WAL
// choice, may lose the last commits) and foreign keys on (per connection,
// off by default). FailedPrecondition if the file cannot use WAL.
absl::Status UseDurableWal(Db& db);

// The integer in the first column of the first row of `sql`; Internal if it
// returns no row.
absl::StatusOr<int64_t> QueryInt(Db& db, absl::string_view sql);

// Refuses another program's database before anything writes to it: OK if
// PRAGMA application_id is `application_id`, or the file is new (id 0 and no
// schema); else FailedPrecondition naming the file as not a `what`. A file
// that is not SQLite at all shows up here, at the first read (DataLoss).
absl::Status CheckApplicationId(Db& db, int64_t application_id, absl::string_view what);

// The absl::Status for a SQLite result code: BUSY/LOCKED → Unavailable (retry
// the call), CONSTRAINT_PRIMARYKEY/UNIQUE → AlreadyExists, other CONSTRAINT →
// FailedPrecondition, NOTADB/CORRUPT → DataLoss, FULL/NOMEM → ResourceExhausted,
// READONLY → FailedPrecondition, PERM/AUTH → PermissionDenied, CANTOPEN/IOERR →
// by the errno behind it when there is one, else Internal.
absl::StatusCode CodeFromSqlite(int rc, int system_errno);

}  // namespace berth::store::sqlite

#endif  // BERTH_STORE_SQLITE_H_
