// Leases: named holds on content, ingests and snapshots, until deleted or
// expired.
#include <optional>
#include <string>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "base/identifiers.h"
#include "base/log.h"
#include "base/status.h"
#include "store/labels.h"
#include "store/metadata_internal.h"
#include "store/sqlite.h"

namespace berth::store::metadata_internal {
namespace {

using sqlite::Db;
using sqlite::Statement;

std::string LeaseName(absl::string_view ns, absl::string_view id) {
  return absl::StrCat("lease ", Quote(id), " in namespace ", Quote(ns));
}

absl::Status ValidateNamespaceAndLease(absl::string_view ns, absl::string_view id) {
  BERTH_RETURN_IF_ERROR(ValidateNamespaceName(ns));
  return ValidateLeaseId(id);
}

absl::Status ValidateResource(const LeaseResource& resource) {
  const std::string what = absl::StrCat("lease resource of type ", Quote(resource.type));
  if (resource.type == kResourceContent) return Prefixed(what, digest::Validate(resource.id));
  const std::string snapshots_prefix = absl::StrCat(kResourceSnapshots, "/");
  if (absl::StartsWith(resource.type, snapshots_prefix)) {
    absl::string_view snapshotter = absl::string_view(resource.type).substr(snapshots_prefix.size());
    if (snapshotter.empty() || absl::StrContains(snapshotter, '/')) {
      return absl::InvalidArgumentError(
          absl::StrCat(what, ": want snapshots/<snapshotter>, one non-empty name"));
    }
  } else if (resource.type != kResourceIngests) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, ": want content, ingests or snapshots/<snapshotter>"));
  }
  if (resource.id.empty()) return absl::InvalidArgumentError(absl::StrCat(what, ": empty id"));
  return absl::OkStatus();
}

// The expiry a lease's labels give it: the time in containerd.io/gc.expire,
// or none when the label is absent or does not parse — containerd logs such
// a value and keeps the lease, so Berth does too (once, here: a lease's
// labels never change).
std::optional<int64_t> ExpiryOf(absl::string_view ns, absl::string_view id, const Labels& labels) {
  auto it = labels.find(kLabelGcExpire);
  if (it == labels.end() || it->second.empty()) return std::nullopt;
  absl::Time expiry;
  std::string error;
  if (!absl::ParseTime(absl::RFC3339_full, it->second, &expiry, &error)) {
    log::Info("ignoring invalid lease expiration value",
              {{"namespace", ns}, {"lease", id}, {"value", it->second}, {"error", error}});
    return std::nullopt;
  }
  return ToNanos(expiry);
}

absl::StatusOr<Lease> ReadLease(Db& db, int64_t row, absl::string_view id) {
  BERTH_ASSIGN_OR_RETURN(Statement stmt, db.Prepare("SELECT created_at FROM leases WHERE id = ?1"));
  BERTH_RETURN_IF_ERROR(stmt.Bind(1, row));
  BERTH_ASSIGN_OR_RETURN(bool found, stmt.Step());
  if (!found) return absl::InternalError(absl::StrCat("lease row ", row, " vanished"));
  Lease lease{std::string(id), FromNanos(stmt.ColumnInt(0)), {}};
  BERTH_ASSIGN_OR_RETURN(lease.labels, ReadLabels(db, kLeaseLabels, row));
  return lease;
}

}  // namespace

// A lease id is stored, never a path, and containerd takes any: its own ctr
// makes ids like "1700000000--B3F". So only emptiness and size are refused.
absl::Status ValidateLeaseId(absl::string_view id) {
  constexpr size_t kMaxLeaseIdLength = 4096;
  if (id.empty()) return absl::InvalidArgumentError("lease id must not be empty");
  if (id.size() > kMaxLeaseIdLength) {
    return absl::InvalidArgumentError(absl::StrCat("lease id ", Quote(id), " is longer than ",
                                                   kMaxLeaseIdLength, " bytes"));
  }
  return absl::OkStatus();
}

absl::StatusOr<int64_t> FindLease(Db& db, absl::string_view ns, absl::string_view id) {
  BERTH_ASSIGN_OR_RETURN(Statement stmt,
                         db.Prepare("SELECT id FROM leases WHERE namespace = ?1 AND name = ?2"));
  BERTH_RETURN_IF_ERROR(stmt.Bind(1, ns));
  BERTH_RETURN_IF_ERROR(stmt.Bind(2, id));
  BERTH_ASSIGN_OR_RETURN(bool found, stmt.Step());
  if (!found) return absl::NotFoundError(absl::StrCat(LeaseName(ns, id), ": not found"));
  return stmt.ColumnInt(0);
}

absl::Status HoldResource(Db& db, int64_t lease, absl::string_view type,
                          absl::string_view resource) {
  BERTH_ASSIGN_OR_RETURN(Statement hold, db.Prepare(R"sql(
      INSERT INTO lease_resources (lease, type, resource) VALUES (?1, ?2, ?3)
      ON CONFLICT DO NOTHING)sql"));
  BERTH_RETURN_IF_ERROR(hold.Bind(1, lease));
  BERTH_RETURN_IF_ERROR(hold.Bind(2, type));
  BERTH_RETURN_IF_ERROR(hold.Bind(3, resource));
  return hold.Run();
}

absl::StatusOr<Lease> SqliteMetadataStore::CreateLease(absl::string_view ns, const Lease& lease) {
  BERTH_RETURN_IF_ERROR(ValidateNamespaceAndLease(ns, lease.id));
  BERTH_RETURN_IF_ERROR(Prefixed(LeaseName(ns, lease.id), ValidateLabels(lease.labels)));
  const std::optional<int64_t> expiry = ExpiryOf(ns, lease.id, lease.labels);
  const int64_t now = ToNanos(absl::Now());
  return Write([&](Db& db) -> absl::StatusOr<Lease> {
    BERTH_RETURN_IF_ERROR(EnsureNamespace(db, ns));
    BERTH_ASSIGN_OR_RETURN(Statement insert, db.Prepare(R"sql(
        INSERT INTO leases (namespace, name, created_at, expires_at) VALUES (?1, ?2, ?3, ?4)
        RETURNING id)sql"));
    BERTH_RETURN_IF_ERROR(insert.Bind(1, ns));
    BERTH_RETURN_IF_ERROR(insert.Bind(2, lease.id));
    BERTH_RETURN_IF_ERROR(insert.Bind(3, now));
    BERTH_RETURN_IF_ERROR(expiry.has_value() ? insert.Bind(4, *expiry) : insert.BindNull(4));
    absl::StatusOr<bool> inserted = insert.Step();
    if (absl::IsAlreadyExists(inserted.status())) {
      return absl::AlreadyExistsError(absl::StrCat(LeaseName(ns, lease.id), ": already exists"));
    }
    if (!inserted.ok()) return inserted.status();
    if (!*inserted) return absl::InternalError("inserting a lease returned no row");
    const int64_t row = insert.ColumnInt(0);
    BERTH_RETURN_IF_ERROR(insert.Reset());
    BERTH_RETURN_IF_ERROR(ReplaceLabels(db, kLeaseLabels, row, lease.labels));
    return ReadLease(db, row, lease.id);
  });
}

absl::StatusOr<Lease> SqliteMetadataStore::GetLease(absl::string_view ns, absl::string_view id) {
  BERTH_RETURN_IF_ERROR(ValidateNamespaceAndLease(ns, id));
  return Read([&](Db& db) -> absl::StatusOr<Lease> {
    BERTH_ASSIGN_OR_RETURN(int64_t row, FindLease(db, ns, id));
    return ReadLease(db, row, id);
  });
}

absl::StatusOr<std::vector<Lease>> SqliteMetadataStore::ListLeases(absl::string_view ns) {
  BERTH_RETURN_IF_ERROR(ValidateNamespaceName(ns));
  return Read([&](Db& db) -> absl::StatusOr<std::vector<Lease>> {
    BERTH_ASSIGN_OR_RETURN(
        Statement rows,
        db.Prepare("SELECT id, name, created_at FROM leases WHERE namespace = ?1 ORDER BY name"));
    BERTH_RETURN_IF_ERROR(rows.Bind(1, ns));
    std::vector<Lease> out;
    std::map<int64_t, size_t> index;  // leases.id → position in `out`
    while (true) {
      BERTH_ASSIGN_OR_RETURN(bool row, rows.Step());
      if (!row) break;
      index.emplace(rows.ColumnInt(0), out.size());
      out.push_back({rows.ColumnText(1), FromNanos(rows.ColumnInt(2)), {}});
    }
    BERTH_ASSIGN_OR_RETURN(Statement labels, db.Prepare(R"sql(
        SELECT l.lease, l.key, l.value FROM lease_labels AS l JOIN leases ON leases.id = l.lease
        WHERE leases.namespace = ?1)sql"));
    BERTH_RETURN_IF_ERROR(labels.Bind(1, ns));
    while (true) {
      BERTH_ASSIGN_OR_RETURN(bool row, labels.Step());
      if (!row) return out;
      out[index.at(labels.ColumnInt(0))].labels.emplace(labels.ColumnText(1),
                                                        labels.ColumnText(2));
    }
  });
}

absl::Status SqliteMetadataStore::DeleteLease(absl::string_view ns, absl::string_view id) {
  BERTH_RETURN_IF_ERROR(ValidateNamespaceAndLease(ns, id));
  return Write([&](Db& db) -> absl::Status {
    BERTH_ASSIGN_OR_RETURN(int64_t row, FindLease(db, ns, id));
    // Labels and resources go with it (ON DELETE CASCADE).
    BERTH_ASSIGN_OR_RETURN(Statement erase, db.Prepare("DELETE FROM leases WHERE id = ?1"));
    BERTH_RETURN_IF_ERROR(erase.Bind(1, row));
    return erase.Run();
  });
}

absl::Status SqliteMetadataStore::AddLeaseResource(absl::string_view ns, absl::string_view id,
                                                   const LeaseResource& resource) {
  BERTH_RETURN_IF_ERROR(ValidateNamespaceAndLease(ns, id));
  BERTH_RETURN_IF_ERROR(Prefixed(LeaseName(ns, id), ValidateResource(resource)));
  return Write([&](Db& db) -> absl::Status {
    BERTH_ASSIGN_OR_RETURN(int64_t row, FindLease(db, ns, id));
    return HoldResource(db, row, resource.type, resource.id);
  });
}

absl::Status SqliteMetadataStore::DeleteLeaseResource(absl::string_view ns, absl::string_view id,
                                                      const LeaseResource& resource) {
  BERTH_RETURN_IF_ERROR(ValidateNamespaceAndLease(ns, id));
  BERTH_RETURN_IF_ERROR(Prefixed(LeaseName(ns, id), ValidateResource(resource)));
  return Write([&](Db& db) -> absl::Status {
    BERTH_ASSIGN_OR_RETURN(int64_t row, FindLease(db, ns, id));
    BERTH_ASSIGN_OR_RETURN(Statement release, db.Prepare(R"sql(
        DELETE FROM lease_resources WHERE lease = ?1 AND type = ?2 AND resource = ?3)sql"));
    BERTH_RETURN_IF_ERROR(release.Bind(1, row));
    BERTH_RETURN_IF_ERROR(release.Bind(2, resource.type));
    BERTH_RETURN_IF_ERROR(release.Bind(3, resource.id));
    return release.Run();
  });
}

absl::StatusOr<std::vector<LeaseResource>> SqliteMetadataStore::ListLeaseResources(
    absl::string_view ns, absl::string_view id) {
  BERTH_RETURN_IF_ERROR(ValidateNamespaceAndLease(ns, id));
  return Read([&](Db& db) -> absl::StatusOr<std::vector<LeaseResource>> {
    BERTH_ASSIGN_OR_RETURN(int64_t row, FindLease(db, ns, id));
    BERTH_ASSIGN_OR_RETURN(Statement rows, db.Prepare(R"sql(
        SELECT type, resource FROM lease_resources WHERE lease = ?1 ORDER BY type, resource)sql"));
    BERTH_RETURN_IF_ERROR(rows.Bind(1, row));
    std::vector<LeaseResource> out;
    while (true) {
      BERTH_ASSIGN_OR_RETURN(bool more, rows.Step());
      if (!more) return out;
      out.push_back({rows.ColumnText(0), rows.ColumnText(1)});
    }
  });
}

}  // namespace berth::store::metadata_internal
