// Garbage collection: mark from the roots in SQL, sweep what is unmarked.
//
// The whole collection is one write transaction on the writer connection:
// readers (on their own connections, in WAL mode) keep reading the state
// before it until it commits, and no writer can add a reference halfway.
// The mark is one recursive query, so SQLite walks the reference graph
// inside its B-trees instead of the daemon issuing a lookup per edge.
#include <algorithm>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
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
constexpr absl::string_view kSnapshotRefPrefix = "containerd.io/gc.ref.snapshot.";
constexpr absl::string_view kContentRefLabel = "containerd.io/gc.ref.content";
constexpr std::string_view kSnapshotResourcePrefix = "snapshots/";

// Whether label `ref` (of a record or a container) names content: its key
// is `containerd.io/gc.ref.content`, or `containerd.io/gc.ref.content.<name>`
// / `…content/<name>` (containerd ignores names after any other character).
// The key range lets SQLite seek to the reference labels of each owner ('.'
// and '/' sort before '0').
constexpr char kIsContentRefLabelSql[] = R"sql(
    ref.key >= 'containerd.io/gc.ref.content' AND ref.key < 'containerd.io/gc.ref.content0'
    AND (ref.key = 'containerd.io/gc.ref.content'
         OR substr(ref.key, length('containerd.io/gc.ref.content') + 1, 1) IN ('.', '/')))sql";

// Content records live whatever else refers to them, each query yielding
// blobs.id values (and ContainerContentRoots()).
constexpr const char* kContentRoots[] = {
    // Labelled containerd.io/gc.root, whatever the value (as containerd).
    "SELECT blob FROM blob_labels WHERE key = 'containerd.io/gc.root'",
    // Named by a live snapshot's labels.
    R"sql(SELECT b.id FROM temp.gc_snapshot_content AS s
          JOIN blobs AS b ON b.namespace = s.namespace AND b.digest = s.digest)sql",
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

// Content named by containers' reference labels.
std::string ContainerContentRoots() {
  return absl::StrCat(R"sql(
    SELECT b.id FROM containers AS c
    JOIN container_labels AS ref ON ref.container = c.id AND )sql",
                      kIsContentRefLabelSql, R"sql(
    JOIN blobs AS b ON b.namespace = c.namespace AND b.digest = ref.value)sql");
}

// The marked set: the roots, then every record of the same namespace whose
// digest a marked record names in a content reference label. UNION (not
// UNION ALL) drops records already marked, which is what ends the walk
// around a cycle. Each marked record carries its namespace, so an edge
// costs two index seeks: its labels, then its target.
std::string MarkSql() {
  return absl::StrCat(R"sql(
    WITH RECURSIVE
      roots (id) AS ()sql",
                      absl::StrJoin(kContentRoots, " UNION "), " UNION ", ContainerContentRoots(),
                      R"sql(),
      live (id, namespace) AS (
        SELECT roots.id, blobs.namespace FROM roots JOIN blobs ON blobs.id = roots.id
        UNION
        SELECT target.id, target.namespace FROM live
        JOIN blob_labels AS ref ON ref.blob = live.id AND )sql",
                      kIsContentRefLabelSql, R"sql(
        JOIN blobs AS target ON target.namespace = live.namespace AND target.digest = ref.value)
    INSERT INTO temp.gc_live (id, followed) SELECT id, 1 FROM live)sql");
}

// Marks content into temp.gc_live, `from_snapshots` (namespace, digest)
// being roots too: what live snapshots' labels name.
absl::Status Mark(Db& db, const std::set<NamespacedId>& from_snapshots) {
  // Per connection and in memory (temp_store); emptied before and after use.
  BERTH_RETURN_IF_ERROR(db.Exec(R"sql(
      CREATE TEMP TABLE IF NOT EXISTS gc_live (id INTEGER PRIMARY KEY, followed INTEGER NOT NULL);
      CREATE TEMP TABLE IF NOT EXISTS gc_snapshot_content (
          namespace TEXT NOT NULL, digest TEXT NOT NULL, PRIMARY KEY (namespace, digest));
      DELETE FROM temp.gc_live;
      DELETE FROM temp.gc_snapshot_content)sql"));
  BERTH_ASSIGN_OR_RETURN(Statement insert,
                         db.Prepare("INSERT INTO temp.gc_snapshot_content VALUES (?1, ?2)"));
  for (const NamespacedId& content : from_snapshots) {
    BERTH_RETURN_IF_ERROR(insert.Reset());
    BERTH_RETURN_IF_ERROR(insert.Bind(1, content.ns));
    BERTH_RETURN_IF_ERROR(insert.Bind(2, content.id));
    BERTH_RETURN_IF_ERROR(insert.Step().status());
  }
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
  BERTH_ASSIGN_OR_RETURN(Statement any,
                         db.Prepare("SELECT 1 FROM blobs WHERE digest = ?1 LIMIT 1"));
  std::vector<std::string> out;
  for (const std::string& digest : digests) {
    BERTH_RETURN_IF_ERROR(any.Reset());
    BERTH_RETURN_IF_ERROR(any.Bind(1, digest));
    BERTH_ASSIGN_OR_RETURN(bool referenced, any.Step());
    if (!referenced) out.push_back(digest);
  }
  return out;
}

// The snapshotter a `containerd.io/gc.ref.snapshot.<snapshotter>[/<name>]`
// label key names; nullopt for other keys, and for an empty snapshotter (no
// snapshotter has that name, so such a label refers to nothing).
std::optional<absl::string_view> SnapshotRefLabel(absl::string_view key) {
  if (!absl::ConsumePrefix(&key, kSnapshotRefPrefix)) return std::nullopt;
  key = key.substr(0, key.find('/'));
  if (key.empty()) return std::nullopt;
  return key;
}

// Whether `key` is `containerd.io/gc.ref.content`, `….content.<name>` or
// `….content/<name>`: kIsContentRefLabelSql's test, for snapshot labels.
bool IsContentRefLabel(absl::string_view key) {
  if (!absl::ConsumePrefix(&key, kContentRefLabel)) return false;
  return key.empty() || key[0] == '.' || key[0] == '/';
}

// Appends to `out` the snapshots `labels` names: `labels` yields rows of
// (namespace, label key, label value) whose keys start with
// `containerd.io/gc.ref.snapshot.`.
absl::Status AddSnapshotRefs(Statement& labels, std::vector<SnapshotRef>& out) {
  while (true) {
    BERTH_ASSIGN_OR_RETURN(bool row, labels.Step());
    if (!row) return absl::OkStatus();
    std::string key = labels.ColumnText(1);
    std::optional<absl::string_view> snapshotter = SnapshotRefLabel(key);
    if (!snapshotter.has_value()) continue;
    out.push_back({labels.ColumnText(0), std::string(*snapshotter), labels.ColumnText(2)});
  }
}

// Snapshots named by followed live records' and by containers' snapshot
// reference labels, by containers as their root filesystems, and by the
// remaining leases' resources.
absl::StatusOr<std::vector<SnapshotRef>> ReferencedSnapshots(Db& db) {
  std::vector<SnapshotRef> out;
  BERTH_ASSIGN_OR_RETURN(Statement record_labels, db.Prepare(R"sql(
      SELECT b.namespace, l.key, l.value FROM temp.gc_live AS g
      JOIN blob_labels AS l ON l.blob = g.id
        AND l.key >= 'containerd.io/gc.ref.snapshot.' AND l.key < 'containerd.io/gc.ref.snapshot/'
      JOIN blobs AS b ON b.id = g.id
      WHERE g.followed)sql"));
  BERTH_RETURN_IF_ERROR(AddSnapshotRefs(record_labels, out));
  BERTH_ASSIGN_OR_RETURN(Statement container_labels, db.Prepare(R"sql(
      SELECT c.namespace, l.key, l.value FROM containers AS c
      JOIN container_labels AS l ON l.container = c.id
        AND l.key >= 'containerd.io/gc.ref.snapshot.'
        AND l.key < 'containerd.io/gc.ref.snapshot/')sql"));
  BERTH_RETURN_IF_ERROR(AddSnapshotRefs(container_labels, out));
  BERTH_ASSIGN_OR_RETURN(Statement rootfs, db.Prepare(R"sql(
      SELECT namespace, snapshotter, snapshot_key FROM containers
      WHERE snapshotter != '' AND snapshot_key != '')sql"));
  while (true) {
    BERTH_ASSIGN_OR_RETURN(bool row, rootfs.Step());
    if (!row) break;
    out.push_back({rootfs.ColumnText(0), rootfs.ColumnText(1), rootfs.ColumnText(2)});
  }
  BERTH_ASSIGN_OR_RETURN(Statement leased, db.Prepare(R"sql(
      SELECT l.namespace, r.type, r.resource FROM lease_resources AS r
      JOIN leases AS l ON l.id = r.lease
      WHERE r.type >= 'snapshots/' AND r.type < 'snapshots0')sql"));
  while (true) {
    BERTH_ASSIGN_OR_RETURN(bool row, leased.Step());
    if (!row) break;
    out.push_back({leased.ColumnText(0),
                   leased.ColumnText(1).substr(kSnapshotResourcePrefix.size()),
                   leased.ColumnText(2)});
  }
  return out;
}

// The snapshots' side of the mark, in memory (the snapshotters keep them in
// databases of their own). A snapshot keeps its parent — it is nothing
// without it — and what its labels name.
class SnapshotMark {
 public:
  explicit SnapshotMark(absl::Span<const SnapshotNode> nodes)
      : nodes_(nodes), marked_(nodes.size(), false) {
    for (size_t i = 0; i < nodes.size(); ++i) index_.emplace(nodes[i].ref, i);
  }

  void MarkRoots() {
    for (const SnapshotNode& node : nodes_) {
      if (node.labels.count(kLabelGcRoot) > 0) Mark(node.ref);
    }
  }

  // Marks `ref`'s snapshot, if it was handed in, and what it refers to.
  void Mark(const SnapshotRef& ref) {
    std::vector<SnapshotRef> pending = {ref};
    while (!pending.empty()) {
      auto found = index_.find(pending.back());
      pending.pop_back();
      if (found == index_.end() || marked_[found->second]) continue;
      marked_[found->second] = true;
      const SnapshotNode& node = nodes_[found->second];
      if (!node.parent.empty()) pending.push_back({node.ref.ns, node.ref.snapshotter, node.parent});
      for (const auto& [key, value] : node.labels) {
        if (IsContentRefLabel(key)) {
          content_.insert({node.ref.ns, value});
        } else if (std::optional<absl::string_view> snapshotter = SnapshotRefLabel(key)) {
          pending.push_back({node.ref.ns, std::string(*snapshotter), value});
        }
      }
    }
  }

  // Content the marked snapshots' labels name (namespace, digest).
  const std::set<NamespacedId>& content() const { return content_; }

  // The snapshots not marked, each before its parent: deepest first. (A
  // marked snapshot's parent is marked, so no unmarked one has a marked
  // child.)
  std::vector<SnapshotRef> Unmarked() const {
    std::vector<std::pair<size_t, size_t>> by_depth;  // (depth, node)
    for (size_t i = 0; i < nodes_.size(); ++i) {
      if (!marked_[i]) by_depth.emplace_back(Depth(i), i);
    }
    std::sort(by_depth.begin(), by_depth.end(), std::greater<>());
    std::vector<SnapshotRef> out;
    for (const auto& [depth, i] : by_depth) out.push_back(nodes_[i].ref);
    return out;
  }

 private:
  // Ancestors handed in, bounded by their number (a parent loop in bad
  // input must not hang the collector).
  size_t Depth(size_t i) const {
    size_t depth = 0;
    for (const SnapshotNode* node = &nodes_[i]; !node->parent.empty() && depth < nodes_.size();
         ++depth) {
      auto parent = index_.find({node->ref.ns, node->ref.snapshotter, node->parent});
      if (parent == index_.end()) break;
      node = &nodes_[parent->second];
    }
    return depth;
  }

  const absl::Span<const SnapshotNode> nodes_;
  std::map<SnapshotRef, size_t> index_;
  std::vector<bool> marked_;
  std::set<NamespacedId> content_;
};

}  // namespace

absl::StatusOr<GcResult> SqliteMetadataStore::CollectGarbage(
    absl::Time now, absl::Span<const SnapshotNode> snapshots) {
  const int64_t now_nanos = ToNanos(now);
  return Write([&](Db& db) -> absl::StatusOr<GcResult> {
    GcResult result;
    BERTH_ASSIGN_OR_RETURN(result.expired_ingests, ExpiredIngests(db, now_nanos));
    BERTH_ASSIGN_OR_RETURN(result.removed_leases, DeleteExpiredLeases(db, now_nanos));
    // Content and snapshots refer to each other: mark both until the
    // snapshots name no content not yet a root. Both marks only grow, and
    // almost always one round does (snapshot labels rarely name content).
    SnapshotMark snapshot_mark(snapshots);
    snapshot_mark.MarkRoots();
    while (true) {
      const size_t content_roots = snapshot_mark.content().size();
      BERTH_RETURN_IF_ERROR(Mark(db, snapshot_mark.content()));
      BERTH_ASSIGN_OR_RETURN(std::vector<SnapshotRef> referenced, ReferencedSnapshots(db));
      for (const SnapshotRef& ref : referenced) snapshot_mark.Mark(ref);
      if (snapshot_mark.content().size() == content_roots) break;
    }
    result.unreferenced_snapshots = snapshot_mark.Unmarked();
    BERTH_ASSIGN_OR_RETURN(result.removed_content, SweepContent(db));
    BERTH_ASSIGN_OR_RETURN(result.unreferenced_digests, Unreferenced(db, result.removed_content));
    BERTH_RETURN_IF_ERROR(
        db.Exec("DELETE FROM temp.gc_live; DELETE FROM temp.gc_snapshot_content"));
    return result;
  });
}

}  // namespace berth::store::metadata_internal
