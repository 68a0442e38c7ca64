// Garbage collection: mark from the roots in SQL, sweep what is unmarked.
//
// The whole collection is one write transaction on the writer connection:
// readers (on their own connections, in WAL mode) keep reading the state
// before it until it commits, and no writer can add a reference halfway.
// The mark is one recursive query, so SQLite walks the reference graph
// inside its B-trees instead of the daemon issuing a lookup per edge.
#include <algorithm>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "base/status.h"
#include "store/metadata_internal.h"
#include "store/sqlite.h"

namespace berth::store::metadata_internal {
namespace {

using sqlite::Db;
using sqlite::Statement;

// The SQL below spells these labels out.
static_assert(std::string_view(kLabelGcRoot) == "containerd.io/gc.root");
static_assert(std::string_view(kLabelGcFlat) == "containerd.io/gc.flat");
constexpr std::string_view kSnapshotRefPrefix = "containerd.io/gc.ref.snapshot.";
constexpr std::string_view kSnapshotResourcePrefix = "snapshots/";

// Content records live whatever else refers to them, each query yielding
// blobs.id values. Images and containers add their query here.
constexpr const char* kContentRoots[] = {
    // Labelled containerd.io/gc.root, whatever the value (as containerd).
    "SELECT blob FROM blob_labels WHERE key = 'containerd.io/gc.root'",
    // An image's target.
    R"sql(SELECT b.id FROM images AS i
          JOIN blobs AS b ON b.namespace = i.namespace AND b.digest = i.target_digest)sql",
    // Held by a lease (expired ones are deleted before the mark).
    R"sql(SELECT b.id FROM leases AS l
          JOIN lease_resources AS r ON r.lease = l.id AND r.type = 'content'
          JOIN blobs AS b ON b.namespace = l.namespace AND b.digest = r.resource
          WHERE NOT EXISTS (SELECT 1 FROM lease_labels
                            WHERE lease = l.id AND key = 'containerd.io/gc.flat'))sql",
};

// Held by a flat lease: live, but what their labels reference is not.
constexpr char kFlatRoots[] = R"sql(
    INSERT OR IGNORE INTO temp.gc_live (id, followed)
    SELECT b.id, 0 FROM leases AS l
    JOIN lease_resources AS r ON r.lease = l.id AND r.type = 'content'
    JOIN blobs AS b ON b.namespace = l.namespace AND b.digest = r.resource
    WHERE EXISTS (SELECT 1 FROM lease_labels WHERE lease = l.id AND key = 'containerd.io/gc.flat'))sql";

// The marked set: the roots, then every record of the same namespace whose
// digest a marked record names in `containerd.io/gc.ref.content`, or in
// `containerd.io/gc.ref.content.<name>` / `…content/<name>` (containerd
// ignores names after any other character). The key range lets SQLite seek
// to the reference labels of each record ('.' and '/' sort before '0');
// UNION (not UNION ALL) drops records already marked, which is what ends
// the walk around a cycle. Each marked record carries its namespace, so an
// edge costs two index seeks: its labels, then its target.
std::string MarkSql() {
  return absl::StrCat(R"sql(
    WITH RECURSIVE
      roots (id) AS ()sql",
                      absl::StrJoin(kContentRoots, " UNION "), R"sql(),
      live (id, namespace) AS (
        SELECT roots.id, blobs.namespace FROM roots JOIN blobs ON blobs.id = roots.id
        UNION
        SELECT target.id, target.namespace FROM live
        JOIN blob_labels AS ref ON ref.blob = live.id
          AND ref.key >= 'containerd.io/gc.ref.content'
          AND ref.key < 'containerd.io/gc.ref.content0'
        JOIN blobs AS target ON target.namespace = live.namespace AND target.digest = ref.value
        WHERE ref.key = 'containerd.io/gc.ref.content'
           OR substr(ref.key, length('containerd.io/gc.ref.content') + 1, 1) IN ('.', '/'))
    INSERT INTO temp.gc_live (id, followed) SELECT id, 1 FROM live)sql");
}

absl::Status Mark(Db& db) {
  // Per connection and in memory (temp_store); emptied before and after use.
  BERTH_RETURN_IF_ERROR(db.Exec(R"sql(
      CREATE TEMP TABLE IF NOT EXISTS gc_live (id INTEGER PRIMARY KEY, followed INTEGER NOT NULL);
      DELETE FROM temp.gc_live)sql"));
  static const std::string* const kMark = new std::string(MarkSql());
  BERTH_RETURN_IF_ERROR(db.Exec(*kMark));
  return db.Exec(kFlatRoots);
}

// Ingests an expired lease holds that no unexpired lease of the same
// namespace holds too: once the expired leases go, nothing keeps them.
// Runs before the expired leases are deleted.
absl::StatusOr<std::vector<NamespacedId>> ExpiredIngests(Db& db, int64_t now) {
  BERTH_ASSIGN_OR_RETURN(Statement stmt, db.Prepare(R"sql(
      SELECT DISTINCT l.namespace, r.resource FROM leases AS l
      JOIN lease_resources AS r ON r.lease = l.id AND r.type = 'ingests'
      WHERE l.expires_at < ?1
        AND NOT EXISTS (
          SELECT 1 FROM lease_resources AS other JOIN leases AS holder ON holder.id = other.lease
          WHERE other.type = 'ingests' AND other.resource = r.resource
            AND holder.namespace = l.namespace
            AND (holder.expires_at IS NULL OR holder.expires_at >= ?1))
      ORDER BY 1, 2)sql"));
  BERTH_RETURN_IF_ERROR(stmt.Bind(1, now));
  std::vector<NamespacedId> out;
  while (true) {
    BERTH_ASSIGN_OR_RETURN(bool row, stmt.Step());
    if (!row) return out;
    out.push_back({stmt.ColumnText(0), stmt.ColumnText(1)});
  }
}

// Runs `sql`, a DELETE … RETURNING two text columns, collecting the pairs.
absl::StatusOr<std::vector<NamespacedId>> DeleteReturning(Db& db, absl::string_view sql,
                                                          std::optional<int64_t> param) {
  BERTH_ASSIGN_OR_RETURN(Statement stmt, db.Prepare(sql));
  if (param.has_value()) BERTH_RETURN_IF_ERROR(stmt.Bind(1, *param));
  std::vector<NamespacedId> out;
  while (true) {
    BERTH_ASSIGN_OR_RETURN(bool row, stmt.Step());
    if (!row) break;
    out.push_back({stmt.ColumnText(0), stmt.ColumnText(1)});
  }
  // RETURNING's order is unspecified.
  std::sort(out.begin(), out.end());
  return out;
}

// A lease has expired once `now` is after its time (containerd: now.After(expiry)).
absl::StatusOr<std::vector<NamespacedId>> DeleteExpiredLeases(Db& db, int64_t now) {
  // Labels and resources go with them (ON DELETE CASCADE).
  return DeleteReturning(db, "DELETE FROM leases WHERE expires_at < ?1 RETURNING namespace, name",
                         now);
}

absl::StatusOr<std::vector<NamespacedId>> SweepContent(Db& db) {
  // Labels go with them (ON DELETE CASCADE).
  return DeleteReturning(db, R"sql(
      DELETE FROM blobs WHERE id NOT IN (SELECT id FROM temp.gc_live)
      RETURNING namespace, digest)sql",
                         std::nullopt);
}

// Of the digests of `removed`, those no namespace records any more.
absl::StatusOr<std::vector<std::string>> Unreferenced(Db& db,
                                                      const std::vector<NamespacedId>& removed) {
  std::set<std::string> digests;
  for (const NamespacedId& record : removed) digests.insert(record.id);
  BERTH_ASSIGN_OR_RETURN(Statement any, db.Prepare("SELECT 1 FROM blobs WHERE digest = ?1 LIMIT 1"));
  std::vector<std::string> out;
  for (const std::string& digest : digests) {
    BERTH_RETURN_IF_ERROR(any.Reset());
    BERTH_RETURN_IF_ERROR(any.Bind(1, digest));
    BERTH_ASSIGN_OR_RETURN(bool referenced, any.Step());
    if (!referenced) out.push_back(digest);
  }
  return out;
}

// Snapshots named by followed live records' `containerd.io/gc.ref.snapshot.
// <snapshotter>[/<name>]` labels and by the remaining leases' resources.
absl::StatusOr<std::vector<SnapshotRef>> LiveSnapshots(Db& db) {
  std::set<SnapshotRef> live;
  BERTH_ASSIGN_OR_RETURN(Statement labelled, db.Prepare(R"sql(
      SELECT b.namespace, l.key, l.value FROM temp.gc_live AS g
      JOIN blob_labels AS l ON l.blob = g.id
        AND l.key >= 'containerd.io/gc.ref.snapshot.' AND l.key < 'containerd.io/gc.ref.snapshot/'
      JOIN blobs AS b ON b.id = g.id
      WHERE g.followed)sql"));
  while (true) {
    BERTH_ASSIGN_OR_RETURN(bool row, labelled.Step());
    if (!row) break;
    std::string key = labelled.ColumnText(1);
    absl::string_view snapshotter = absl::string_view(key).substr(kSnapshotRefPrefix.size());
    snapshotter = snapshotter.substr(0, snapshotter.find('/'));
    // No snapshotter has an empty name: such a label refers to nothing.
    if (snapshotter.empty()) continue;
    live.insert({labelled.ColumnText(0), std::string(snapshotter), labelled.ColumnText(2)});
  }
  BERTH_ASSIGN_OR_RETURN(Statement leased, db.Prepare(R"sql(
      SELECT l.namespace, r.type, r.resource FROM lease_resources AS r
      JOIN leases AS l ON l.id = r.lease
      WHERE r.type >= 'snapshots/' AND r.type < 'snapshots0')sql"));
  while (true) {
    BERTH_ASSIGN_OR_RETURN(bool row, leased.Step());
    if (!row) break;
    live.insert({leased.ColumnText(0), leased.ColumnText(1).substr(kSnapshotResourcePrefix.size()),
                 leased.ColumnText(2)});
  }
  return std::vector<SnapshotRef>(live.begin(), live.end());
}

}  // namespace

absl::StatusOr<GcResult> SqliteMetadataStore::CollectGarbage(absl::Time now) {
  const int64_t now_nanos = ToNanos(now);
  return Write([&](Db& db) -> absl::StatusOr<GcResult> {
    GcResult result;
    BERTH_ASSIGN_OR_RETURN(result.expired_ingests, ExpiredIngests(db, now_nanos));
    BERTH_ASSIGN_OR_RETURN(result.removed_leases, DeleteExpiredLeases(db, now_nanos));
    BERTH_RETURN_IF_ERROR(Mark(db));
    BERTH_ASSIGN_OR_RETURN(result.live_snapshots, LiveSnapshots(db));
    BERTH_ASSIGN_OR_RETURN(result.removed_content, SweepContent(db));
    BERTH_ASSIGN_OR_RETURN(result.unreferenced_digests, Unreferenced(db, result.removed_content));
    BERTH_RETURN_IF_ERROR(db.Exec("DELETE FROM temp.gc_live"));
    return result;
  });
}

}  // namespace berth::store::metadata_internal
