#include "store/sqlite.h"

#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "base/log.h"
#include "base/status.h"

namespace berth::store::sqlite {
namespace {

// Enough of a statement to recognise it in an error message.
std::string Abbreviate(absl::string_view sql) {
  constexpr size_t kMax = 60;
  std::string flat = absl::StrReplaceAll(sql, {{"\n", " "}});
  if (flat.size() <= kMax) return flat;
  return absl::StrCat(flat.substr(0, kMax), "…");
}

// SQLite counts every allocation under one process-wide mutex unless told
// not to; with readers and the writer on their own threads that mutex, not
// the work, set the pace (a collection of 10,000 records beside a busy
// reader took three times as long). The setting must precede SQLite's
// initialisation, so it is made before the first open; should something
// else in the process have started SQLite already, it fails and things are
// only slower.
void ConfigureSqliteOnce() {
  static const int rc = sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
  (void)rc;
}

}  // namespace

absl::StatusCode CodeFromSqlite(int rc, int system_errno) {
  switch (rc) {
    case SQLITE_CONSTRAINT_PRIMARYKEY:
    case SQLITE_CONSTRAINT_UNIQUE:
      return absl::StatusCode::kAlreadyExists;
    default:
      break;
  }
  switch (rc & 0xff) {
    case SQLITE_OK:
      return absl::StatusCode::kOk;
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      return absl::StatusCode::kUnavailable;
    case SQLITE_CONSTRAINT:
    case SQLITE_READONLY:
      return absl::StatusCode::kFailedPrecondition;
    case SQLITE_NOTADB:
    case SQLITE_CORRUPT:
      return absl::StatusCode::kDataLoss;
    case SQLITE_FULL:
    case SQLITE_NOMEM:
      return absl::StatusCode::kResourceExhausted;
    case SQLITE_PERM:
    case SQLITE_AUTH:
      return absl::StatusCode::kPermissionDenied;
    case SQLITE_INTERRUPT:
      return absl::StatusCode::kCancelled;
    case SQLITE_CANTOPEN:
    case SQLITE_IOERR:
      if (system_errno != 0) return ErrnoStatus(system_errno, "", "").code();
      return absl::StatusCode::kInternal;
    default:
      return absl::StatusCode::kInternal;
  }
}

// --- Db ---

absl::StatusOr<Db> Db::Open(const std::string& path, int busy_timeout_ms) {
  return OpenWithFlags(path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, busy_timeout_ms);
}

absl::StatusOr<Db> Db::OpenReadOnly(const std::string& path, int busy_timeout_ms) {
  return OpenWithFlags(path, SQLITE_OPEN_READONLY, busy_timeout_ms);
}

absl::StatusOr<Db> Db::OpenWithFlags(const std::string& path, int flags, int busy_timeout_ms) {
  ConfigureSqliteOnce();
  sqlite3* raw = nullptr;
  // NOMUTEX: the caller serialises all use of a connection with its own mutex
  // (it must anyway, to keep transactions from interleaving), so SQLite's
  // per-call mutex would only add cost.
  int rc = sqlite3_open_v2(path.c_str(), &raw,
                           flags | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_EXRESCODE, nullptr);
  // Even a failed open hands back a handle (for its message) that must be closed.
  Db db(raw, path);
  if (rc != SQLITE_OK) return db.Error(rc, "open", "");
  rc = sqlite3_busy_timeout(raw, busy_timeout_ms);
  if (rc != SQLITE_OK) return db.Error(rc, "set busy timeout", "");
  return db;
}

Db::Db(Db&& other) noexcept
    : db_(std::exchange(other.db_, nullptr)), path_(std::move(other.path_)) {}

Db& Db::operator=(Db&& other) noexcept {
  if (this != &other) {
    sqlite3_close_v2(db_);
    db_ = std::exchange(other.db_, nullptr);
    path_ = std::move(other.path_);
  }
  return *this;
}

Db::~Db() { sqlite3_close_v2(db_); }

absl::Status Db::Error(int rc, absl::string_view op, absl::string_view what) const {
  const char* detail = db_ != nullptr ? sqlite3_errmsg(db_) : sqlite3_errstr(rc);
  int system_errno = db_ != nullptr ? sqlite3_system_errno(db_) : 0;
  std::string message =
      what.empty() ? absl::StrCat(op, " \"", path_, "\": ", detail)
                   : absl::StrCat(op, " \"", Abbreviate(what), "\" on \"", path_, "\": ", detail);
  return absl::Status(CodeFromSqlite(rc, system_errno), message);
}

absl::Status Db::Exec(absl::string_view sql) {
  std::string text(sql);  // sqlite3_exec wants a NUL-terminated string
  int rc = sqlite3_exec(db_, text.c_str(), nullptr, nullptr, nullptr);
  if (rc != SQLITE_OK) return Error(rc, "exec", sql);
  return absl::OkStatus();
}

absl::StatusOr<Statement> Db::Prepare(absl::string_view sql) {
  sqlite3_stmt* stmt = nullptr;
  const char* tail = nullptr;
  int rc = sqlite3_prepare_v2(db_, sql.data(), static_cast<int>(sql.size()), &stmt, &tail);
  Statement statement(this, stmt);
  if (rc != SQLITE_OK) return Error(rc, "prepare", sql);
  absl::string_view rest(tail, sql.data() + sql.size() - tail);
  if (stmt == nullptr || !absl::StripAsciiWhitespace(rest).empty()) {
    return absl::InternalError(
        absl::StrCat("prepare \"", Abbreviate(sql), "\": want exactly one statement"));
  }
  return statement;
}

bool Db::InTransaction() const { return sqlite3_get_autocommit(db_) == 0; }

// --- Statement ---

Statement::Statement(Statement&& other) noexcept
    : db_(other.db_), stmt_(std::exchange(other.stmt_, nullptr)) {}

Statement& Statement::operator=(Statement&& other) noexcept {
  if (this != &other) {
    sqlite3_finalize(stmt_);
    db_ = other.db_;
    stmt_ = std::exchange(other.stmt_, nullptr);
  }
  return *this;
}

Statement::~Statement() { sqlite3_finalize(stmt_); }

absl::Status Statement::BindResult(int rc, int index) const {
  if (rc == SQLITE_OK) return absl::OkStatus();
  return db_->Error(rc, absl::StrCat("bind parameter ", index, " of"), sqlite3_sql(stmt_));
}

absl::Status Statement::Bind(int index, absl::string_view value) {
  return BindResult(
      sqlite3_bind_text64(stmt_, index, value.data(), value.size(), SQLITE_TRANSIENT, SQLITE_UTF8),
      index);
}

absl::Status Statement::BindBlob(int index, absl::string_view bytes) {
  return BindResult(sqlite3_bind_blob64(stmt_, index, bytes.data(), bytes.size(), SQLITE_TRANSIENT),
                    index);
}

absl::Status Statement::Bind(int index, int64_t value) {
  return BindResult(sqlite3_bind_int64(stmt_, index, value), index);
}

absl::Status Statement::BindNull(int index) {
  return BindResult(sqlite3_bind_null(stmt_, index), index);
}

absl::StatusOr<bool> Statement::Step() {
  int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  return db_->Error(rc, "step", sqlite3_sql(stmt_));
}

absl::Status Statement::Run() {
  BERTH_ASSIGN_OR_RETURN(bool row, Step());
  if (row) {
    return absl::InternalError(
        absl::StrCat("run \"", Abbreviate(sqlite3_sql(stmt_)), "\": returned a row"));
  }
  return absl::OkStatus();
}

absl::Status Statement::Reset() {
  int rc = sqlite3_reset(stmt_);
  if (rc != SQLITE_OK) return db_->Error(rc, "reset", sqlite3_sql(stmt_));
  return absl::OkStatus();
}

int64_t Statement::ColumnInt(int column) const { return sqlite3_column_int64(stmt_, column); }

std::string Statement::ColumnText(int column) const {
  // sqlite3_column_text before sqlite3_column_bytes, as SQLite documents, so
  // the length is that of the UTF-8 text.
  const unsigned char* text = sqlite3_column_text(stmt_, column);
  int size = sqlite3_column_bytes(stmt_, column);
  if (text == nullptr) return std::string();
  return std::string(reinterpret_cast<const char*>(text), size);
}

std::string Statement::ColumnBlob(int column) const {
  const void* bytes = sqlite3_column_blob(stmt_, column);
  int size = sqlite3_column_bytes(stmt_, column);
  if (bytes == nullptr) return std::string();
  return std::string(static_cast<const char*>(bytes), size);
}

// --- Transaction ---

absl::StatusOr<Transaction> Transaction::Begin(Db& db, Mode mode) {
  BERTH_RETURN_IF_ERROR(db.Exec(mode == kWrite ? "BEGIN IMMEDIATE" : "BEGIN DEFERRED"));
  return Transaction(&db);
}

Transaction::Transaction(Transaction&& other) noexcept : db_(std::exchange(other.db_, nullptr)) {}

Transaction::~Transaction() {
  // Some errors (SQLITE_FULL, IOERR, BUSY mid-statement) already rolled the
  // transaction back; a second ROLLBACK would only fail.
  if (db_ == nullptr || !db_->InTransaction()) return;
  absl::Status status = db_->Exec("ROLLBACK");
  if (!status.ok()) log::Error("rolling back a transaction failed", {{"error", status.ToString()}});
}

absl::Status Transaction::Commit() {
  absl::Status status = db_->Exec("COMMIT");
  // On failure the destructor rolls back whatever is left open.
  if (status.ok()) db_ = nullptr;
  return status;
}

// --- Schema ---

std::string QuoteIdentifier(absl::string_view name) {
  return absl::StrCat("\"", absl::StrReplaceAll(name, {{"\"", "\"\""}}), "\"");
}

absl::StatusOr<int> SchemaVersion(Db& db) {
  BERTH_ASSIGN_OR_RETURN(Statement stmt, db.Prepare("PRAGMA user_version"));
  BERTH_ASSIGN_OR_RETURN(bool row, stmt.Step());
  if (!row) return absl::InternalError("PRAGMA user_version returned no row");
  return static_cast<int>(stmt.ColumnInt(0));
}

namespace {

absl::Status CheckNumbering(absl::Span<const Migration> migrations) {
  for (size_t i = 0; i < migrations.size(); ++i) {
    if (migrations[i].version != static_cast<int>(i + 1)) {
      return absl::InternalError(
          absl::StrCat("migration number ", i + 1, " says it is version ", migrations[i].version));
    }
  }
  return absl::OkStatus();
}

// Applies the migration after the database's current version, if any. The
// version is read inside the write transaction, so two processes opening the
// same file at once cannot both apply one migration.
absl::StatusOr<bool> MigrateOneStep(Db& db, absl::Span<const Migration> migrations) {
  const int latest = static_cast<int>(migrations.size());
  BERTH_ASSIGN_OR_RETURN(Transaction tx, Transaction::Begin(db, Transaction::kWrite));
  BERTH_RETURN_IF_ERROR(CheckNotNewer(db, migrations));
  BERTH_ASSIGN_OR_RETURN(int current, SchemaVersion(db));
  if (current == latest) return false;
  const Migration& next = migrations[current];
  BERTH_RETURN_IF_ERROR(db.Exec(next.sql));
  // PRAGMA takes no bound parameters; the number is ours, not input.
  BERTH_RETURN_IF_ERROR(db.Exec(absl::StrCat("PRAGMA user_version = ", next.version)));
  BERTH_RETURN_IF_ERROR(tx.Commit());
  log::Info("migrated metadata schema", {{"path", db.path()}, {"version", next.version}});
  return true;
}

}  // namespace

absl::Status CheckNotNewer(Db& db, absl::Span<const Migration> migrations) {
  const int latest = static_cast<int>(migrations.size());
  BERTH_ASSIGN_OR_RETURN(int current, SchemaVersion(db));
  if (current <= latest) return absl::OkStatus();
  return absl::FailedPreconditionError(absl::StrCat(
      "database \"", db.path(), "\" has schema version ", current, ", newer than version ", latest,
      ", the newest this binary knows: refusing to use it"));
}

absl::Status Migrate(Db& db, absl::Span<const Migration> migrations) {
  BERTH_RETURN_IF_ERROR(CheckNumbering(migrations));
  while (true) {
    BERTH_ASSIGN_OR_RETURN(bool migrated, MigrateOneStep(db, migrations));
    if (!migrated) return absl::OkStatus();
  }
}

absl::Status UseDurableWal(Db& db) {
  BERTH_ASSIGN_OR_RETURN(Statement wal, db.Prepare("PRAGMA journal_mode = WAL"));
  BERTH_ASSIGN_OR_RETURN(bool row, wal.Step());
  if (!row || wal.ColumnText(0) != "wal") {
    return absl::FailedPreconditionError(
        absl::StrCat("\"", db.path(), "\": cannot switch to WAL journal mode"));
  }
  return db.Exec("PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON");
}

absl::StatusOr<int64_t> QueryInt(Db& db, absl::string_view sql) {
  BERTH_ASSIGN_OR_RETURN(Statement stmt, db.Prepare(sql));
  BERTH_ASSIGN_OR_RETURN(bool row, stmt.Step());
  if (!row) return absl::InternalError(absl::StrCat("\"", sql, "\" returned no row"));
  return stmt.ColumnInt(0);
}

absl::Status CheckApplicationId(Db& db, int64_t application_id, absl::string_view what) {
  BERTH_ASSIGN_OR_RETURN(int64_t tables, QueryInt(db, "SELECT count(*) FROM sqlite_master"));
  BERTH_ASSIGN_OR_RETURN(int64_t found, QueryInt(db, "PRAGMA application_id"));
  if (found == application_id || (found == 0 && tables == 0)) return absl::OkStatus();
  return absl::FailedPreconditionError(absl::StrCat("\"", db.path(), "\" is a SQLite database but not a ",
                                                    what, " (application_id ", found, ", ", tables,
                                                    " schema objects)"));
}

}  // namespace berth::store::sqlite
