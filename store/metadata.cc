#include "store/metadata.h"

#include <sys/stat.h>

#include <cerrno>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/mutex.h"
#include "base/identifiers.h"
#include "base/status.h"
#include "store/labels.h"
#include "store/schema.h"
#include "store/sqlite.h"

namespace berth::store {
namespace {

using sqlite::Db;
using sqlite::Statement;
using sqlite::Transaction;

// ---- Opening ----

// mkdir -p of the directory holding `path`, each created level mode 0700: the
// database names every container and image on the host.
absl::Status CreateParentDirectories(absl::string_view path) {
  for (size_t slash = path.find('/', 1); slash != absl::string_view::npos;
       slash = path.find('/', slash + 1)) {
    std::string dir(path.substr(0, slash));
    if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) return ErrnoStatus("mkdir", dir);
  }
  return absl::OkStatus();
}

absl::StatusOr<int64_t> QueryInt(Db& db, absl::string_view sql) {
  BERTH_ASSIGN_OR_RETURN(Statement stmt, db.Prepare(sql));
  BERTH_ASSIGN_OR_RETURN(bool row, stmt.Step());
  if (!row) return absl::InternalError(absl::StrCat("\"", sql, "\" returned no row"));
  return stmt.ColumnInt(0);
}

// Refuses a file that is not a SQLite database, or is another program's,
// before anything writes to it. SQLite reads nothing at open: this first read
// is where a non-database shows up (SQLITE_NOTADB → DataLoss).
absl::Status CheckIsOurs(Db& db) {
  BERTH_ASSIGN_OR_RETURN(int64_t tables, QueryInt(db, "SELECT count(*) FROM sqlite_master"));
  BERTH_ASSIGN_OR_RETURN(int64_t application_id, QueryInt(db, "PRAGMA application_id"));
  if (application_id == kApplicationId || (application_id == 0 && tables == 0)) {
    return absl::OkStatus();
  }
  return absl::FailedPreconditionError(
      absl::StrCat("\"", db.path(), "\" is a SQLite database but not a Berth metadata database (",
                   "application_id ", application_id, ", ", tables, " schema objects)"));
}

absl::Status Configure(Db& db) {
  // WAL: readers do not block the writer, and a commit is one append + fsync.
  BERTH_ASSIGN_OR_RETURN(Statement wal, db.Prepare("PRAGMA journal_mode = WAL"));
  BERTH_ASSIGN_OR_RETURN(bool row, wal.Step());
  if (!row || wal.ColumnText(0) != "wal") {
    return absl::FailedPreconditionError(
        absl::StrCat("\"", db.path(), "\": cannot switch to WAL journal mode"));
  }
  // FULL fsyncs the WAL at every commit: nothing acknowledged is lost on power
  // loss (NORMAL, the usual WAL choice, may lose the last commits).
  // foreign_keys is per connection and off by default.
  return db.Exec("PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON");
}

absl::StatusOr<Db> OpenDatabase(const std::string& path) {
  BERTH_RETURN_IF_ERROR(CreateParentDirectories(path));
  BERTH_ASSIGN_OR_RETURN(Db db, Db::Open(path));
  BERTH_RETURN_IF_ERROR(CheckIsOurs(db));
  // Before Configure, which may write: a newer binary's database stays as it was.
  BERTH_RETURN_IF_ERROR(sqlite::CheckNotNewer(db, Migrations()));
  BERTH_RETURN_IF_ERROR(Configure(db));
  BERTH_RETURN_IF_ERROR(sqlite::Migrate(db, Migrations()));
  return db;
}

// ---- Namespaces ----

std::string Quote(absl::string_view name) { return absl::StrCat("\"", absl::CEscape(name), "\""); }

absl::Status ValidateName(absl::string_view name) {
  absl::Status status = identifiers::Validate(name);
  if (status.ok()) return status;
  return absl::InvalidArgumentError(absl::StrCat("namespace name: ", status.message()));
}

absl::Status InNamespace(absl::string_view name, const absl::Status& status) {
  if (status.ok()) return status;
  return absl::Status(status.code(),
                      absl::StrCat("namespace ", Quote(name), ": ", status.message()));
}

absl::Status NamespaceNotFound(absl::string_view name) {
  return absl::NotFoundError(absl::StrCat("namespace ", Quote(name), ": not found"));
}

// What an update mask asks for, checked before the transaction starts.
struct LabelEdit {
  bool replace_all;
  std::string key;  // when !replace_all
};

absl::StatusOr<std::vector<LabelEdit>> ParseMask(const Namespace& ns,
                                                 const std::vector<std::string>& paths) {
  if (paths.empty()) {
    BERTH_RETURN_IF_ERROR(ValidateLabels(ns.labels));
    return std::vector<LabelEdit>{{true, ""}};
  }
  std::vector<LabelEdit> edits;
  for (const std::string& path : paths) {
    if (path == "labels") {
      BERTH_RETURN_IF_ERROR(ValidateLabels(ns.labels));
      edits.push_back({true, ""});
    } else if (absl::StartsWith(path, "labels.")) {
      std::string key = path.substr(sizeof("labels.") - 1);
      auto it = ns.labels.find(key);
      BERTH_RETURN_IF_ERROR(ValidateLabel(key, it == ns.labels.end() ? "" : it->second));
      edits.push_back({false, std::move(key)});
    } else {
      return absl::InvalidArgumentError(
          absl::StrCat("cannot update field ", Quote(path), " of a namespace"));
    }
  }
  return edits;
}

class SqliteMetadataStore final : public MetadataStore {
 public:
  explicit SqliteMetadataStore(Db db) : db_(std::move(db)) {}

  absl::Status CreateNamespace(const Namespace& ns) ABSL_LOCKS_EXCLUDED(mu_) override;
  absl::StatusOr<Namespace> GetNamespace(absl::string_view name) ABSL_LOCKS_EXCLUDED(mu_) override;
  absl::StatusOr<std::vector<Namespace>> ListNamespaces() ABSL_LOCKS_EXCLUDED(mu_) override;
  absl::StatusOr<Namespace> UpdateNamespace(const Namespace& ns,
                                            const std::vector<std::string>& field_mask_paths)
      ABSL_LOCKS_EXCLUDED(mu_) override;
  absl::Status DeleteNamespace(absl::string_view name) ABSL_LOCKS_EXCLUDED(mu_) override;

 private:
  absl::StatusOr<bool> NamespaceExists(absl::string_view name) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::StatusOr<Namespace> ReadNamespace(absl::string_view name)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status SetLabel(absl::string_view name, absl::string_view key, absl::string_view value)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status ReplaceLabels(const Namespace& ns) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::StatusOr<std::vector<std::string>> TablesHolding(absl::string_view name)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // One connection, so a transaction spans several calls on it: the mutex is
  // held for a whole transaction, SQLite I/O included, or two threads'
  // statements would land in one transaction.
  absl::Mutex mu_;
  Db db_ ABSL_GUARDED_BY(mu_);
};

absl::StatusOr<bool> SqliteMetadataStore::NamespaceExists(absl::string_view name) {
  BERTH_ASSIGN_OR_RETURN(Statement stmt, db_.Prepare("SELECT 1 FROM namespaces WHERE name = ?1"));
  BERTH_RETURN_IF_ERROR(stmt.Bind(1, name));
  return stmt.Step();
}

absl::StatusOr<Namespace> SqliteMetadataStore::ReadNamespace(absl::string_view name) {
  BERTH_ASSIGN_OR_RETURN(bool exists, NamespaceExists(name));
  if (!exists) return NamespaceNotFound(name);
  Namespace ns{std::string(name), {}};
  BERTH_ASSIGN_OR_RETURN(
      Statement stmt, db_.Prepare("SELECT key, value FROM namespace_labels WHERE namespace = ?1"));
  BERTH_RETURN_IF_ERROR(stmt.Bind(1, name));
  while (true) {
    BERTH_ASSIGN_OR_RETURN(bool row, stmt.Step());
    if (!row) return ns;
    ns.labels.emplace(stmt.ColumnText(0), stmt.ColumnText(1));
  }
}

absl::Status SqliteMetadataStore::SetLabel(absl::string_view name, absl::string_view key,
                                           absl::string_view value) {
  if (value.empty()) {
    BERTH_ASSIGN_OR_RETURN(
        Statement stmt,
        db_.Prepare("DELETE FROM namespace_labels WHERE namespace = ?1 AND key = ?2"));
    BERTH_RETURN_IF_ERROR(stmt.Bind(1, name));
    BERTH_RETURN_IF_ERROR(stmt.Bind(2, key));
    return stmt.Run();
  }
  BERTH_ASSIGN_OR_RETURN(Statement stmt, db_.Prepare(R"sql(
      INSERT INTO namespace_labels (namespace, key, value) VALUES (?1, ?2, ?3)
      ON CONFLICT (namespace, key) DO UPDATE SET value = excluded.value)sql"));
  BERTH_RETURN_IF_ERROR(stmt.Bind(1, name));
  BERTH_RETURN_IF_ERROR(stmt.Bind(2, key));
  BERTH_RETURN_IF_ERROR(stmt.Bind(3, value));
  return stmt.Run();
}

absl::Status SqliteMetadataStore::ReplaceLabels(const Namespace& ns) {
  BERTH_ASSIGN_OR_RETURN(Statement clear,
                         db_.Prepare("DELETE FROM namespace_labels WHERE namespace = ?1"));
  BERTH_RETURN_IF_ERROR(clear.Bind(1, ns.name));
  BERTH_RETURN_IF_ERROR(clear.Run());
  for (const auto& [key, value] : ns.labels) {
    BERTH_RETURN_IF_ERROR(SetLabel(ns.name, key, value));
  }
  return absl::OkStatus();
}

// Every table with a `namespace` column (schema.cc's convention) that has a
// row in namespace `name`, by table name. Found from the schema itself, so
// tables added by later migrations are covered without touching this.
absl::StatusOr<std::vector<std::string>> SqliteMetadataStore::TablesHolding(
    absl::string_view name) {
  BERTH_ASSIGN_OR_RETURN(Statement tables, db_.Prepare(R"sql(
      SELECT m.name FROM sqlite_master AS m JOIN pragma_table_info(m.name) AS c
      WHERE m.type = 'table' AND c.name = 'namespace' AND m.name <> 'namespace_labels'
      ORDER BY m.name)sql"));
  std::vector<std::string> holding;
  while (true) {
    BERTH_ASSIGN_OR_RETURN(bool row, tables.Step());
    if (!row) return holding;
    std::string table = tables.ColumnText(0);
    // A table name cannot be bound; it comes from sqlite_master and is quoted.
    // The namespace, a value, is bound as everywhere else.
    BERTH_ASSIGN_OR_RETURN(
        Statement any, db_.Prepare(absl::StrCat("SELECT 1 FROM ", sqlite::QuoteIdentifier(table),
                                                " WHERE namespace = ?1 LIMIT 1")));
    BERTH_RETURN_IF_ERROR(any.Bind(1, name));
    BERTH_ASSIGN_OR_RETURN(bool has_rows, any.Step());
    if (has_rows) holding.push_back(std::move(table));
  }
}

absl::Status SqliteMetadataStore::CreateNamespace(const Namespace& ns) {
  BERTH_RETURN_IF_ERROR(ValidateName(ns.name));
  BERTH_RETURN_IF_ERROR(InNamespace(ns.name, ValidateLabels(ns.labels)));
  absl::MutexLock lock(&mu_);
  BERTH_ASSIGN_OR_RETURN(Transaction tx, Transaction::Begin(db_, Transaction::kWrite));
  BERTH_ASSIGN_OR_RETURN(Statement insert,
                         db_.Prepare("INSERT INTO namespaces (name) VALUES (?1)"));
  BERTH_RETURN_IF_ERROR(insert.Bind(1, ns.name));
  if (absl::Status status = insert.Run(); !status.ok()) {
    if (absl::IsAlreadyExists(status)) {
      return absl::AlreadyExistsError(
          absl::StrCat("namespace ", Quote(ns.name), ": already exists"));
    }
    return status;
  }
  for (const auto& [key, value] : ns.labels) {
    BERTH_RETURN_IF_ERROR(SetLabel(ns.name, key, value));
  }
  return tx.Commit();
}

absl::StatusOr<Namespace> SqliteMetadataStore::GetNamespace(absl::string_view name) {
  BERTH_RETURN_IF_ERROR(ValidateName(name));
  absl::MutexLock lock(&mu_);
  BERTH_ASSIGN_OR_RETURN(Transaction tx, Transaction::Begin(db_, Transaction::kRead));
  return ReadNamespace(name);
}

absl::StatusOr<std::vector<Namespace>> SqliteMetadataStore::ListNamespaces() {
  absl::MutexLock lock(&mu_);
  BERTH_ASSIGN_OR_RETURN(Transaction tx, Transaction::Begin(db_, Transaction::kRead));
  BERTH_ASSIGN_OR_RETURN(Statement names, db_.Prepare("SELECT name FROM namespaces ORDER BY name"));
  std::vector<Namespace> out;
  std::map<std::string, size_t> index;
  while (true) {
    BERTH_ASSIGN_OR_RETURN(bool row, names.Step());
    if (!row) break;
    index.emplace(names.ColumnText(0), out.size());
    out.push_back({names.ColumnText(0), {}});
  }
  BERTH_ASSIGN_OR_RETURN(Statement labels,
                         db_.Prepare("SELECT namespace, key, value FROM namespace_labels"));
  while (true) {
    BERTH_ASSIGN_OR_RETURN(bool row, labels.Step());
    if (!row) return out;
    // Every label's namespace is listed: the foreign key guarantees it.
    out[index.at(labels.ColumnText(0))].labels.emplace(labels.ColumnText(1), labels.ColumnText(2));
  }
}

absl::StatusOr<Namespace> SqliteMetadataStore::UpdateNamespace(
    const Namespace& ns, const std::vector<std::string>& field_mask_paths) {
  BERTH_RETURN_IF_ERROR(ValidateName(ns.name));
  absl::StatusOr<std::vector<LabelEdit>> edits = ParseMask(ns, field_mask_paths);
  BERTH_RETURN_IF_ERROR(InNamespace(ns.name, edits.status()));
  absl::MutexLock lock(&mu_);
  BERTH_ASSIGN_OR_RETURN(Transaction tx, Transaction::Begin(db_, Transaction::kWrite));
  BERTH_ASSIGN_OR_RETURN(bool exists, NamespaceExists(ns.name));
  if (!exists) return NamespaceNotFound(ns.name);
  for (const LabelEdit& edit : *edits) {
    if (edit.replace_all) {
      BERTH_RETURN_IF_ERROR(ReplaceLabels(ns));
    } else {
      auto it = ns.labels.find(edit.key);
      BERTH_RETURN_IF_ERROR(SetLabel(ns.name, edit.key, it == ns.labels.end() ? "" : it->second));
    }
  }
  BERTH_ASSIGN_OR_RETURN(Namespace updated, ReadNamespace(ns.name));
  BERTH_RETURN_IF_ERROR(tx.Commit());
  return updated;
}

absl::Status SqliteMetadataStore::DeleteNamespace(absl::string_view name) {
  BERTH_RETURN_IF_ERROR(ValidateName(name));
  absl::MutexLock lock(&mu_);
  BERTH_ASSIGN_OR_RETURN(Transaction tx, Transaction::Begin(db_, Transaction::kWrite));
  BERTH_ASSIGN_OR_RETURN(bool exists, NamespaceExists(name));
  if (!exists) return NamespaceNotFound(name);
  BERTH_ASSIGN_OR_RETURN(std::vector<std::string> holding, TablesHolding(name));
  if (!holding.empty()) {
    return absl::FailedPreconditionError(absl::StrCat("namespace ", Quote(name),
                                                      " must be empty, but it still has ",
                                                      absl::StrJoin(holding, ", ")));
  }
  // Its labels go with it (ON DELETE CASCADE).
  BERTH_ASSIGN_OR_RETURN(Statement erase, db_.Prepare("DELETE FROM namespaces WHERE name = ?1"));
  BERTH_RETURN_IF_ERROR(erase.Bind(1, name));
  BERTH_RETURN_IF_ERROR(erase.Run());
  return tx.Commit();
}

}  // namespace

absl::StatusOr<std::unique_ptr<MetadataStore>> MetadataStore::Open(const std::string& path) {
  absl::StatusOr<Db> db = OpenDatabase(path);
  if (!db.ok()) {
    return absl::Status(db.status().code(),
                        absl::StrCat("open metadata database: ", db.status().message()));
  }
  return std::make_unique<SqliteMetadataStore>(std::move(*db));
}

}  // namespace berth::store
