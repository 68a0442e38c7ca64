#include "snapshotter/storage.h"

#include <map>
#include <utility>

#include "absl/strings/str_cat.h"
#include "base/status.h"
#include "base/strings.h"

namespace berth::snapshotter {
namespace {

using store::sqlite::Db;
using store::sqlite::Migration;
using store::sqlite::Statement;
using store::sqlite::Transaction;

// "BrtS": tells this database from the daemon's metadata database ("BrtM").
constexpr int64_t kApplicationId = 0x42727453;

// Times are INTEGER nanoseconds since the Unix epoch, as store/ keeps them.
// Ids come from AUTOINCREMENT's counter (sqlite_sequence), which never goes
// back, so a removed snapshot's directory name is never reused.
constexpr Migration kMigrations[] = {
    {1, R"sql(
PRAGMA application_id = 1114797139;

CREATE TABLE snapshots (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  key TEXT NOT NULL UNIQUE,
  -- No cascade: a parent with children cannot be deleted.
  parent INTEGER REFERENCES snapshots (id),
  kind TEXT NOT NULL CHECK (kind IN ('view', 'active', 'committed')),
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL,
  -- Measured at Commit; 0 for the other kinds.
  size INTEGER NOT NULL DEFAULT 0,
  inodes INTEGER NOT NULL DEFAULT 0
) STRICT;

-- "Does this snapshot have children?"
CREATE INDEX snapshots_by_parent ON snapshots (parent);

CREATE TABLE snapshot_labels (
  snapshot INTEGER NOT NULL REFERENCES snapshots (id) ON DELETE CASCADE,
  key TEXT NOT NULL,
  value TEXT NOT NULL,
  PRIMARY KEY (snapshot, key)
) STRICT, WITHOUT ROWID;
)sql"},
};

static_assert(kApplicationId == 1114797139, "the first migration spells kApplicationId out");

constexpr absl::string_view kSelectRow = R"sql(
    SELECT s.id, s.key, s.parent, p.key, s.kind, s.created_at, s.updated_at, s.size, s.inodes
    FROM snapshots AS s LEFT JOIN snapshots AS p ON p.id = s.parent)sql";

Kind KindFromText(absl::string_view text) {
  if (text == "view") return Kind::kView;
  if (text == "committed") return Kind::kCommitted;
  return Kind::kActive;
}

Row ReadRow(const Statement& stmt) {
  Row row;
  row.id = stmt.ColumnInt(0);
  row.key = stmt.ColumnText(1);
  row.parent_id = stmt.ColumnInt(2);
  row.parent_key = stmt.ColumnText(3);
  row.kind = KindFromText(stmt.ColumnText(4));
  row.created = absl::FromUnixNanos(stmt.ColumnInt(5));
  row.updated = absl::FromUnixNanos(stmt.ColumnInt(6));
  row.usage.size = stmt.ColumnInt(7);
  row.usage.inodes = stmt.ColumnInt(8);
  return row;
}


}  // namespace

absl::StatusOr<Storage> Storage::Open(const std::string& path) {
  BERTH_ASSIGN_OR_RETURN(Db db, Db::Open(path));
  BERTH_RETURN_IF_ERROR(store::sqlite::CheckApplicationId(db, kApplicationId, "Berth snapshotter database"));
  BERTH_RETURN_IF_ERROR(store::sqlite::CheckNotNewer(db, kMigrations));
  BERTH_RETURN_IF_ERROR(store::sqlite::UseDurableWal(db));
  BERTH_RETURN_IF_ERROR(store::sqlite::Migrate(db, kMigrations));
  return Storage(std::move(db));
}

absl::StatusOr<Labels> Storage::ReadLabels(int64_t id) {
  BERTH_ASSIGN_OR_RETURN(Statement stmt,
                         db_.Prepare("SELECT key, value FROM snapshot_labels WHERE snapshot = ?1"));
  BERTH_RETURN_IF_ERROR(stmt.Bind(1, id));
  Labels labels;
  for (;;) {
    BERTH_ASSIGN_OR_RETURN(bool row, stmt.Step());
    if (!row) return labels;
    labels[stmt.ColumnText(0)] = stmt.ColumnText(1);
  }
}

absl::Status Storage::WriteLabels(int64_t id, const Labels& labels) {
  BERTH_ASSIGN_OR_RETURN(Statement clear,
                         db_.Prepare("DELETE FROM snapshot_labels WHERE snapshot = ?1"));
  BERTH_RETURN_IF_ERROR(clear.Bind(1, id));
  BERTH_RETURN_IF_ERROR(clear.Run());
  BERTH_ASSIGN_OR_RETURN(
      Statement insert,
      db_.Prepare("INSERT INTO snapshot_labels (snapshot, key, value) VALUES (?1, ?2, ?3)"));
  for (const auto& [key, value] : labels) {
    BERTH_RETURN_IF_ERROR(insert.Reset());
    BERTH_RETURN_IF_ERROR(insert.Bind(1, id));
    BERTH_RETURN_IF_ERROR(insert.Bind(2, key));
    BERTH_RETURN_IF_ERROR(insert.Bind(3, value));
    BERTH_RETURN_IF_ERROR(insert.Run());
  }
  return absl::OkStatus();
}

absl::StatusOr<std::optional<Row>> Storage::Find(absl::string_view key) {
  BERTH_ASSIGN_OR_RETURN(Statement stmt, db_.Prepare(absl::StrCat(kSelectRow, " WHERE s.key = ?1")));
  BERTH_RETURN_IF_ERROR(stmt.Bind(1, key));
  BERTH_ASSIGN_OR_RETURN(bool found, stmt.Step());
  if (!found) return std::optional<Row>();
  Row row = ReadRow(stmt);
  BERTH_ASSIGN_OR_RETURN(row.labels, ReadLabels(row.id));
  return std::optional<Row>(std::move(row));
}

absl::StatusOr<std::vector<Row>> Storage::List() {
  BERTH_ASSIGN_OR_RETURN(Transaction tx, Transaction::Begin(db_, Transaction::kRead));
  BERTH_ASSIGN_OR_RETURN(Statement rows, db_.Prepare(absl::StrCat(kSelectRow, " ORDER BY s.key")));
  std::vector<Row> result;
  std::map<int64_t, size_t> index;
  for (;;) {
    BERTH_ASSIGN_OR_RETURN(bool row, rows.Step());
    if (!row) break;
    result.push_back(ReadRow(rows));
    index[result.back().id] = result.size() - 1;
  }
  BERTH_ASSIGN_OR_RETURN(Statement labels,
                         db_.Prepare("SELECT snapshot, key, value FROM snapshot_labels"));
  for (;;) {
    BERTH_ASSIGN_OR_RETURN(bool row, labels.Step());
    if (!row) break;
    auto it = index.find(labels.ColumnInt(0));
    if (it != index.end()) result[it->second].labels[labels.ColumnText(1)] = labels.ColumnText(2);
  }
  BERTH_RETURN_IF_ERROR(tx.Commit());
  return result;
}

absl::StatusOr<std::vector<int64_t>> Storage::Chain(int64_t id) {
  BERTH_ASSIGN_OR_RETURN(Statement stmt, db_.Prepare(R"sql(
      WITH RECURSIVE chain (id, parent, depth) AS (
        SELECT id, parent, 0 FROM snapshots WHERE id = ?1
        UNION ALL
        SELECT s.id, s.parent, chain.depth + 1 FROM snapshots AS s JOIN chain ON s.id = chain.parent
      )
      SELECT id FROM chain ORDER BY depth)sql"));
  BERTH_RETURN_IF_ERROR(stmt.Bind(1, id));
  std::vector<int64_t> chain;
  for (;;) {
    BERTH_ASSIGN_OR_RETURN(bool row, stmt.Step());
    if (!row) return chain;
    chain.push_back(stmt.ColumnInt(0));
  }
}

absl::StatusOr<std::set<int64_t>> Storage::Ids() {
  BERTH_ASSIGN_OR_RETURN(Statement stmt, db_.Prepare("SELECT id FROM snapshots"));
  std::set<int64_t> ids;
  for (;;) {
    BERTH_ASSIGN_OR_RETURN(bool row, stmt.Step());
    if (!row) return ids;
    ids.insert(stmt.ColumnInt(0));
  }
}

absl::StatusOr<int64_t> Storage::LastId() {
  return store::sqlite::QueryInt(db_, R"sql(
      SELECT max(coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'snapshots'), 0),
                 coalesce((SELECT max(id) FROM snapshots), 0)))sql");
}

absl::Status Storage::Insert(const Row& row) {
  BERTH_ASSIGN_OR_RETURN(Transaction tx, Transaction::Begin(db_, Transaction::kWrite));
  BERTH_ASSIGN_OR_RETURN(Statement insert, db_.Prepare(R"sql(
      INSERT INTO snapshots (id, key, parent, kind, created_at, updated_at)
      VALUES (?1, ?2, ?3, ?4, ?5, ?5))sql"));
  BERTH_RETURN_IF_ERROR(insert.Bind(1, row.id));
  BERTH_RETURN_IF_ERROR(insert.Bind(2, row.key));
  BERTH_RETURN_IF_ERROR(row.parent_id == 0 ? insert.BindNull(3) : insert.Bind(3, row.parent_id));
  BERTH_RETURN_IF_ERROR(insert.Bind(4, KindName(row.kind)));
  BERTH_RETURN_IF_ERROR(insert.Bind(5, absl::ToUnixNanos(row.created)));
  absl::Status inserted = insert.Run();
  if (absl::IsAlreadyExists(inserted)) {
    return absl::AlreadyExistsError(absl::StrCat("snapshot ", Quote(row.key), ": already exists"));
  }
  BERTH_RETURN_IF_ERROR(inserted);
  BERTH_RETURN_IF_ERROR(WriteLabels(row.id, row.labels));
  return tx.Commit();
}

absl::Status Storage::Commit(int64_t id, absl::string_view key, absl::string_view name,
                             const Labels& labels, const Usage& usage, absl::Time now) {
  BERTH_ASSIGN_OR_RETURN(Transaction tx, Transaction::Begin(db_, Transaction::kWrite));
  BERTH_ASSIGN_OR_RETURN(Statement update, db_.Prepare(R"sql(
      UPDATE snapshots SET key = ?3, kind = 'committed', created_at = ?4, updated_at = ?4,
                           size = ?5, inodes = ?6
      WHERE id = ?1 AND key = ?2 AND kind = 'active')sql"));
  BERTH_RETURN_IF_ERROR(update.Bind(1, id));
  BERTH_RETURN_IF_ERROR(update.Bind(2, key));
  BERTH_RETURN_IF_ERROR(update.Bind(3, name));
  BERTH_RETURN_IF_ERROR(update.Bind(4, absl::ToUnixNanos(now)));
  BERTH_RETURN_IF_ERROR(update.Bind(5, usage.size));
  BERTH_RETURN_IF_ERROR(update.Bind(6, usage.inodes));
  absl::Status updated = update.Run();
  if (absl::IsAlreadyExists(updated)) {
    return absl::AlreadyExistsError(absl::StrCat("snapshot ", Quote(name), ": already exists"));
  }
  BERTH_RETURN_IF_ERROR(updated);
  BERTH_ASSIGN_OR_RETURN(int64_t changed, store::sqlite::QueryInt(db_, "SELECT changes()"));
  if (changed != 1) {
    return absl::NotFoundError(
        absl::StrCat("active snapshot ", Quote(key), ": not found (removed or committed meanwhile)"));
  }
  BERTH_RETURN_IF_ERROR(WriteLabels(id, labels));
  return tx.Commit();
}

absl::Status Storage::SetLabels(int64_t id, const Labels& labels, absl::Time now) {
  BERTH_ASSIGN_OR_RETURN(Transaction tx, Transaction::Begin(db_, Transaction::kWrite));
  BERTH_ASSIGN_OR_RETURN(Statement update,
                         db_.Prepare("UPDATE snapshots SET updated_at = ?2 WHERE id = ?1"));
  BERTH_RETURN_IF_ERROR(update.Bind(1, id));
  BERTH_RETURN_IF_ERROR(update.Bind(2, absl::ToUnixNanos(now)));
  BERTH_RETURN_IF_ERROR(update.Run());
  BERTH_RETURN_IF_ERROR(WriteLabels(id, labels));
  return tx.Commit();
}

absl::Status Storage::Delete(int64_t id, absl::string_view key) {
  BERTH_ASSIGN_OR_RETURN(Transaction tx, Transaction::Begin(db_, Transaction::kWrite));
  BERTH_ASSIGN_OR_RETURN(Statement children,
                         db_.Prepare("SELECT 1 FROM snapshots WHERE parent = ?1 LIMIT 1"));
  BERTH_RETURN_IF_ERROR(children.Bind(1, id));
  BERTH_ASSIGN_OR_RETURN(bool has_children, children.Step());
  if (has_children) {
    return absl::FailedPreconditionError(
        absl::StrCat("cannot remove snapshot ", Quote(key), ": it has children"));
  }
  BERTH_ASSIGN_OR_RETURN(Statement erase, db_.Prepare("DELETE FROM snapshots WHERE id = ?1"));
  BERTH_RETURN_IF_ERROR(erase.Bind(1, id));
  BERTH_RETURN_IF_ERROR(erase.Run());
  return tx.Commit();
}

}  // namespace berth::snapshotter
