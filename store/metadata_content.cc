// Content records: which namespace has which blob, with its labels.
#include <optional>
#include <utility>

#include "absl/strings/str_cat.h"
#include "base/status.h"
#include "store/labels.h"
#include "store/metadata_internal.h"
#include "store/sqlite.h"

namespace berth::store::metadata_internal {
namespace {

using sqlite::Db;
using sqlite::Statement;

std::string ContentName(absl::string_view ns, absl::string_view digest) {
  return absl::StrCat("content ", Quote(digest), " in namespace ", Quote(ns));
}

absl::Status ContentNotFound(absl::string_view ns, absl::string_view digest) {
  return absl::NotFoundError(absl::StrCat(ContentName(ns, digest), ": not found"));
}

absl::Status ValidateNamespaceAndDigest(absl::string_view ns, absl::string_view digest) {
  BERTH_RETURN_IF_ERROR(ValidateNamespaceName(ns));
  return digest::Validate(digest);
}

struct BlobRow {
  int64_t id;
  ContentRecord record;
};

constexpr char kBlobColumns[] = "id, digest, size, created_at, updated_at";

// A row of kBlobColumns, without labels.
BlobRow ReadBlobRow(const Statement& stmt) {
  BlobRow row;
  row.id = stmt.ColumnInt(0);
  row.record.digest = stmt.ColumnText(1);
  row.record.size = stmt.ColumnInt(2);
  row.record.created_at = FromNanos(stmt.ColumnInt(3));
  row.record.updated_at = FromNanos(stmt.ColumnInt(4));
  return row;
}

absl::StatusOr<BlobRow> FindBlob(Db& db, absl::string_view ns, absl::string_view digest) {
  BERTH_ASSIGN_OR_RETURN(
      Statement stmt,
      db.Prepare(absl::StrCat("SELECT ", kBlobColumns,
                              " FROM blobs WHERE namespace = ?1 AND digest = ?2")));
  BERTH_RETURN_IF_ERROR(stmt.Bind(1, ns));
  BERTH_RETURN_IF_ERROR(stmt.Bind(2, digest));
  BERTH_ASSIGN_OR_RETURN(bool found, stmt.Step());
  if (!found) return ContentNotFound(ns, digest);
  BlobRow row = ReadBlobRow(stmt);
  BERTH_ASSIGN_OR_RETURN(row.record.labels, ReadLabels(db, kBlobLabels, row.id));
  return row;
}

// Inserts the record unless `ns` has one of its digest; the new row's id, or
// nullopt when it existed.
absl::StatusOr<std::optional<int64_t>> InsertBlob(Db& db, absl::string_view ns,
                                                  const ContentRecord& record, int64_t now) {
  BERTH_ASSIGN_OR_RETURN(Statement insert, db.Prepare(R"sql(
      INSERT INTO blobs (namespace, digest, size, created_at, updated_at)
      VALUES (?1, ?2, ?3, ?4, ?4)
      ON CONFLICT (namespace, digest) DO NOTHING
      RETURNING id)sql"));
  BERTH_RETURN_IF_ERROR(insert.Bind(1, ns));
  BERTH_RETURN_IF_ERROR(insert.Bind(2, record.digest));
  BERTH_RETURN_IF_ERROR(insert.Bind(3, record.size));
  BERTH_RETURN_IF_ERROR(insert.Bind(4, now));
  BERTH_ASSIGN_OR_RETURN(bool inserted, insert.Step());
  if (!inserted) return std::nullopt;
  const int64_t id = insert.ColumnInt(0);
  // RETURNING hands out its row before the statement is done.
  BERTH_ASSIGN_OR_RETURN(bool more, insert.Step());
  if (more) return absl::InternalError("inserting one content record returned two rows");
  return id;
}

absl::Status ValidateNewRecord(absl::string_view ns, const ContentRecord& record,
                               absl::string_view lease_id) {
  BERTH_RETURN_IF_ERROR(ValidateNamespaceAndDigest(ns, record.digest));
  if (record.size < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(ContentName(ns, record.digest), ": negative size ", record.size));
  }
  BERTH_RETURN_IF_ERROR(Prefixed(ContentName(ns, record.digest), ValidateLabels(record.labels)));
  if (!lease_id.empty()) BERTH_RETURN_IF_ERROR(ValidateLeaseId(lease_id));
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<ContentRecord> SqliteMetadataStore::GetContent(absl::string_view ns,
                                                              absl::string_view digest) {
  BERTH_RETURN_IF_ERROR(ValidateNamespaceAndDigest(ns, digest));
  return Read([&](Db& db) -> absl::StatusOr<ContentRecord> {
    BERTH_ASSIGN_OR_RETURN(BlobRow row, FindBlob(db, ns, digest));
    return std::move(row.record);
  });
}

absl::StatusOr<std::vector<ContentRecord>> SqliteMetadataStore::ListContent(absl::string_view ns) {
  BERTH_RETURN_IF_ERROR(ValidateNamespaceName(ns));
  return Read([&](Db& db) -> absl::StatusOr<std::vector<ContentRecord>> {
    BERTH_ASSIGN_OR_RETURN(
        Statement rows, db.Prepare(absl::StrCat("SELECT ", kBlobColumns,
                                                " FROM blobs WHERE namespace = ?1 ORDER BY digest")));
    BERTH_RETURN_IF_ERROR(rows.Bind(1, ns));
    std::vector<ContentRecord> out;
    std::map<int64_t, size_t> index;  // blobs.id → position in `out`
    while (true) {
      BERTH_ASSIGN_OR_RETURN(bool row, rows.Step());
      if (!row) break;
      BlobRow blob = ReadBlobRow(rows);
      index.emplace(blob.id, out.size());
      out.push_back(std::move(blob.record));
    }
    // All labels of the namespace in one pass, not one query per record.
    BERTH_ASSIGN_OR_RETURN(Statement labels, db.Prepare(R"sql(
        SELECT l.blob, l.key, l.value FROM blob_labels AS l JOIN blobs AS b ON b.id = l.blob
        WHERE b.namespace = ?1)sql"));
    BERTH_RETURN_IF_ERROR(labels.Bind(1, ns));
    while (true) {
      BERTH_ASSIGN_OR_RETURN(bool row, labels.Step());
      if (!row) return out;
      out[index.at(labels.ColumnInt(0))].labels.emplace(labels.ColumnText(1),
                                                        labels.ColumnText(2));
    }
  });
}

absl::Status SqliteMetadataStore::AddContent(absl::string_view ns, const ContentRecord& record,
                                             absl::string_view lease_id) {
  BERTH_RETURN_IF_ERROR(ValidateNewRecord(ns, record, lease_id));
  const int64_t now = ToNanos(absl::Now());
  absl::StatusOr<bool> existed = Write([&](Db& db) -> absl::StatusOr<bool> {
    std::optional<int64_t> lease;
    if (!lease_id.empty()) {
      BERTH_ASSIGN_OR_RETURN(lease, FindLease(db, ns, lease_id));
    }
    BERTH_RETURN_IF_ERROR(EnsureNamespace(db, ns));
    BERTH_ASSIGN_OR_RETURN(std::optional<int64_t> blob, InsertBlob(db, ns, record, now));
    if (blob.has_value()) {
      BERTH_RETURN_IF_ERROR(ReplaceLabels(db, kBlobLabels, *blob, record.labels));
    }
    // Even when the record existed: the caller's lease now holds it.
    if (lease.has_value()) {
      BERTH_RETURN_IF_ERROR(HoldResource(db, *lease, kResourceContent, record.digest));
    }
    return !blob.has_value();
  });
  if (!existed.ok()) return existed.status();
  if (*existed) {
    return absl::AlreadyExistsError(absl::StrCat(ContentName(ns, record.digest), ": already exists"));
  }
  return absl::OkStatus();
}

absl::StatusOr<ContentRecord> SqliteMetadataStore::UpdateContent(
    absl::string_view ns, const ContentRecord& record,
    const std::vector<std::string>& field_mask_paths) {
  BERTH_RETURN_IF_ERROR(ValidateNamespaceAndDigest(ns, record.digest));
  absl::StatusOr<std::vector<LabelEdit>> edits =
      ParseLabelMask(record.labels, field_mask_paths, "content");
  BERTH_RETURN_IF_ERROR(Prefixed(ContentName(ns, record.digest), edits.status()));
  const int64_t now = ToNanos(absl::Now());
  return Write([&](Db& db) -> absl::StatusOr<ContentRecord> {
    BERTH_ASSIGN_OR_RETURN(BlobRow row, FindBlob(db, ns, record.digest));
    BERTH_RETURN_IF_ERROR(ApplyLabelEdits(db, kBlobLabels, row.id, *edits, record.labels));
    BERTH_ASSIGN_OR_RETURN(Statement touch,
                           db.Prepare("UPDATE blobs SET updated_at = ?2 WHERE id = ?1"));
    BERTH_RETURN_IF_ERROR(touch.Bind(1, row.id));
    BERTH_RETURN_IF_ERROR(touch.Bind(2, now));
    BERTH_RETURN_IF_ERROR(touch.Run());
    BERTH_ASSIGN_OR_RETURN(BlobRow updated, FindBlob(db, ns, record.digest));
    return std::move(updated.record);
  });
}

absl::Status SqliteMetadataStore::DeleteContent(absl::string_view ns, absl::string_view digest) {
  BERTH_RETURN_IF_ERROR(ValidateNamespaceAndDigest(ns, digest));
  return Write([&](Db& db) -> absl::Status {
    // Its labels go with it (ON DELETE CASCADE).
    BERTH_ASSIGN_OR_RETURN(
        Statement erase,
        db.Prepare("DELETE FROM blobs WHERE namespace = ?1 AND digest = ?2 RETURNING id"));
    BERTH_RETURN_IF_ERROR(erase.Bind(1, ns));
    BERTH_RETURN_IF_ERROR(erase.Bind(2, digest));
    BERTH_ASSIGN_OR_RETURN(bool deleted, erase.Step());
    if (!deleted) return ContentNotFound(ns, digest);
    BERTH_ASSIGN_OR_RETURN(bool more, erase.Step());
    if (more) return absl::InternalError("deleting one content record returned two rows");
    return absl::OkStatus();
  });
}

absl::StatusOr<bool> SqliteMetadataStore::ContentReferenced(absl::string_view digest) {
  BERTH_RETURN_IF_ERROR(digest::Validate(digest));
  return Read([&](Db& db) -> absl::StatusOr<bool> {
    BERTH_ASSIGN_OR_RETURN(Statement any,
                           db.Prepare("SELECT 1 FROM blobs WHERE digest = ?1 LIMIT 1"));
    BERTH_RETURN_IF_ERROR(any.Bind(1, digest));
    return any.Step();
  });
}

}  // namespace berth::store::metadata_internal
