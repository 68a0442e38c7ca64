// Containers: what to run — a spec, a runtime, a root filesystem snapshot —
// by id in a namespace.
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "base/identifiers.h"
#include "base/status.h"
#include "store/labels.h"
#include "store/metadata_internal.h"
#include "store/sqlite.h"

namespace berth::store::metadata_internal {

const LabelTable kContainerLabels("container_labels", "container");

namespace {

using sqlite::Db;
using sqlite::Statement;

std::string ContainerName(absl::string_view ns, absl::string_view id) {
  return absl::StrCat("container ", Quote(id), " in namespace ", Quote(ns));
}

absl::Status ContainerNotFound(absl::string_view ns, absl::string_view id) {
  return absl::NotFoundError(absl::StrCat(ContainerName(ns, id), ": not found"));
}

// containerd's validateContainer: the image is free-form, a snapshot key
// needs its snapshotter.
absl::Status ValidateContainer(absl::string_view ns, const Container& container) {
  BERTH_RETURN_IF_ERROR(Prefixed("container id", identifiers::Validate(container.id)));
  const std::string what = ContainerName(ns, container.id);
  BERTH_RETURN_IF_ERROR(Prefixed(what, ValidateLabels(container.labels)));
  if (container.extensions.count("") > 0) {
    return absl::InvalidArgumentError(absl::StrCat(what, ": extension names must not be empty"));
  }
  if (container.runtime.name.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(what, ": runtime name must be set"));
  }
  if (!container.spec.has_value()) {
    return absl::InvalidArgumentError(absl::StrCat(what, ": spec must be set"));
  }
  if (!container.snapshot_key.empty() && container.snapshotter.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        what, ": snapshot key ", Quote(container.snapshot_key), " needs a snapshotter"));
  }
  return absl::OkStatus();
}

constexpr char kContainerColumns[] =
    "id, name, image, runtime_name, runtime_options_type_url IS NOT NULL, "
    "runtime_options_type_url, runtime_options, spec_type_url, spec, snapshotter, snapshot_key, "
    "created_at, updated_at";

struct ContainerRow {
  int64_t id;
  Container container;
};

ContainerRow ReadContainerRow(const Statement& stmt) {
  ContainerRow row;
  row.id = stmt.ColumnInt(0);
  Container& c = row.container;
  c.id = stmt.ColumnText(1);
  c.image = stmt.ColumnText(2);
  c.runtime.name = stmt.ColumnText(3);
  if (stmt.ColumnInt(4) != 0) c.runtime.options = {stmt.ColumnText(5), stmt.ColumnBlob(6)};
  c.spec = {stmt.ColumnText(7), stmt.ColumnBlob(8)};
  c.snapshotter = stmt.ColumnText(9);
  c.snapshot_key = stmt.ColumnText(10);
  c.created_at = FromNanos(stmt.ColumnInt(11));
  c.updated_at = FromNanos(stmt.ColumnInt(12));
  return row;
}

absl::StatusOr<std::map<std::string, TypedValue>> ReadExtensions(Db& db, int64_t id) {
  BERTH_ASSIGN_OR_RETURN(
      Statement stmt,
      db.Prepare("SELECT name, type_url, value FROM container_extensions WHERE container = ?1"));
  BERTH_RETURN_IF_ERROR(stmt.Bind(1, id));
  std::map<std::string, TypedValue> extensions;
  while (true) {
    BERTH_ASSIGN_OR_RETURN(bool row, stmt.Step());
    if (!row) return extensions;
    extensions.emplace(stmt.ColumnText(0), TypedValue{stmt.ColumnText(1), stmt.ColumnBlob(2)});
  }
}

absl::Status ReplaceExtensions(Db& db, int64_t id,
                               const std::map<std::string, TypedValue>& extensions) {
  BERTH_ASSIGN_OR_RETURN(Statement clear,
                         db.Prepare("DELETE FROM container_extensions WHERE container = ?1"));
  BERTH_RETURN_IF_ERROR(clear.Bind(1, id));
  BERTH_RETURN_IF_ERROR(clear.Run());
  BERTH_ASSIGN_OR_RETURN(Statement insert, db.Prepare(R"sql(
      INSERT INTO container_extensions (container, name, type_url, value)
      VALUES (?1, ?2, ?3, ?4))sql"));
  BERTH_RETURN_IF_ERROR(insert.Bind(1, id));
  for (const auto& [name, extension] : extensions) {
    BERTH_RETURN_IF_ERROR(insert.Reset());
    BERTH_RETURN_IF_ERROR(insert.Bind(2, name));
    BERTH_RETURN_IF_ERROR(insert.Bind(3, extension.type_url));
    BERTH_RETURN_IF_ERROR(insert.BindBlob(4, extension.value));
    BERTH_RETURN_IF_ERROR(insert.Run());
  }
  return absl::OkStatus();
}

absl::Status ReadParts(Db& db, ContainerRow& row) {
  BERTH_ASSIGN_OR_RETURN(row.container.labels, ReadLabels(db, kContainerLabels, row.id));
  BERTH_ASSIGN_OR_RETURN(row.container.extensions, ReadExtensions(db, row.id));
  return absl::OkStatus();
}

absl::StatusOr<ContainerRow> FindContainer(Db& db, absl::string_view ns, absl::string_view id) {
  BERTH_ASSIGN_OR_RETURN(
      Statement stmt,
      db.Prepare(absl::StrCat("SELECT ", kContainerColumns,
                              " FROM containers WHERE namespace = ?1 AND name = ?2")));
  BERTH_RETURN_IF_ERROR(stmt.Bind(1, ns));
  BERTH_RETURN_IF_ERROR(stmt.Bind(2, id));
  BERTH_ASSIGN_OR_RETURN(bool found, stmt.Step());
  if (!found) return ContainerNotFound(ns, id);
  ContainerRow row = ReadContainerRow(stmt);
  BERTH_RETURN_IF_ERROR(ReadParts(db, row));
  return row;
}

// Everything but the id, namespace and creation time.
// REQUIRES: ValidateContainer(container) is OK.
absl::Status WriteContainer(Db& db, int64_t id, const Container& container, int64_t now) {
  BERTH_ASSIGN_OR_RETURN(Statement update, db.Prepare(R"sql(
      UPDATE containers SET image = ?2, runtime_name = ?3, runtime_options_type_url = ?4,
                            runtime_options = ?5, spec_type_url = ?6, spec = ?7,
                            snapshotter = ?8, snapshot_key = ?9, updated_at = ?10
      WHERE id = ?1)sql"));
  BERTH_RETURN_IF_ERROR(update.Bind(1, id));
  BERTH_RETURN_IF_ERROR(update.Bind(2, container.image));
  BERTH_RETURN_IF_ERROR(update.Bind(3, container.runtime.name));
  if (const std::optional<TypedValue>& options = container.runtime.options; options.has_value()) {
    BERTH_RETURN_IF_ERROR(update.Bind(4, options->type_url));
    BERTH_RETURN_IF_ERROR(update.BindBlob(5, options->value));
  } else {
    BERTH_RETURN_IF_ERROR(update.BindNull(4));
    BERTH_RETURN_IF_ERROR(update.BindNull(5));
  }
  BERTH_RETURN_IF_ERROR(update.Bind(6, container.spec->type_url));
  BERTH_RETURN_IF_ERROR(update.BindBlob(7, container.spec->value));
  BERTH_RETURN_IF_ERROR(update.Bind(8, container.snapshotter));
  BERTH_RETURN_IF_ERROR(update.Bind(9, container.snapshot_key));
  BERTH_RETURN_IF_ERROR(update.Bind(10, now));
  BERTH_RETURN_IF_ERROR(update.Run());
  BERTH_RETURN_IF_ERROR(ReplaceLabels(db, kContainerLabels, id, container.labels));
  return ReplaceExtensions(db, id, container.extensions);
}

// The fields an empty mask replaces, in containerd's words.
const std::vector<std::string> kReplacedWithoutMask = {"labels", "spec", "extensions", "image",
                                                       "snapshotkey"};

// `current` with what `paths` take from `requested`, as containerd applies
// a container's field mask.
absl::StatusOr<Container> Masked(Container current, const Container& requested,
                                 const std::vector<std::string>& paths, absl::string_view what) {
  if (paths.empty()) {
    // Fields that cannot change yet must not differ in a whole update, so
    // that making them changeable later changes no client's result.
    if (requested.snapshotter != current.snapshotter) {
      return absl::InvalidArgumentError(
          absl::StrCat(what, ": snapshotter ", Quote(current.snapshotter), " cannot change to ",
                       Quote(requested.snapshotter)));
    }
    if (requested.runtime.name != current.runtime.name) {
      return absl::InvalidArgumentError(
          absl::StrCat(what, ": runtime name ", Quote(current.runtime.name), " cannot change to ",
                       Quote(requested.runtime.name)));
    }
    return Masked(std::move(current), requested, kReplacedWithoutMask, what);
  }
  for (const std::string& path : paths) {
    if (absl::StartsWith(path, "labels.")) {
      CopyEntry(current.labels, requested.labels, path.substr(sizeof("labels.") - 1));
    } else if (absl::StartsWith(path, "extensions.")) {
      const std::string name = path.substr(sizeof("extensions.") - 1);
      // containerd would store an extension of that name, and refuses it.
      if (name.empty()) {
        return absl::InvalidArgumentError(
            absl::StrCat(what, ": extension names must not be empty"));
      }
      CopyEntry(current.extensions, requested.extensions, name);
    } else if (path == "labels") {
      current.labels = requested.labels;
    } else if (path == "spec") {
      current.spec = requested.spec;
    } else if (path == "extensions") {
      current.extensions = requested.extensions;
    } else if (path == "image") {
      current.image = requested.image;
    } else if (path == "snapshotkey") {
      current.snapshot_key = requested.snapshot_key;
    } else {
      return absl::InvalidArgumentError(
          absl::StrCat("cannot update field ", Quote(path), " of ", what));
    }
  }
  return current;
}

}  // namespace

absl::StatusOr<Container> SqliteMetadataStore::GetContainer(absl::string_view ns,
                                                            absl::string_view id) {
  BERTH_RETURN_IF_ERROR(ValidateNamespaceName(ns));
  return Read([&](Db& db) -> absl::StatusOr<Container> {
    BERTH_ASSIGN_OR_RETURN(ContainerRow row, FindContainer(db, ns, id));
    return std::move(row.container);
  });
}

absl::StatusOr<std::vector<Container>> SqliteMetadataStore::ListContainers(absl::string_view ns) {
  BERTH_RETURN_IF_ERROR(ValidateNamespaceName(ns));
  return Read([&](Db& db) -> absl::StatusOr<std::vector<Container>> {
    BERTH_ASSIGN_OR_RETURN(
        Statement rows,
        db.Prepare(absl::StrCat("SELECT ", kContainerColumns,
                                " FROM containers WHERE namespace = ?1 ORDER BY name")));
    BERTH_RETURN_IF_ERROR(rows.Bind(1, ns));
    std::vector<Container> out;
    while (true) {
      BERTH_ASSIGN_OR_RETURN(bool found, rows.Step());
      if (!found) return out;
      ContainerRow row = ReadContainerRow(rows);
      BERTH_RETURN_IF_ERROR(ReadParts(db, row));
      out.push_back(std::move(row.container));
    }
  });
}

absl::StatusOr<Container> SqliteMetadataStore::CreateContainer(absl::string_view ns,
                                                               const Container& container) {
  BERTH_RETURN_IF_ERROR(ValidateNamespaceName(ns));
  BERTH_RETURN_IF_ERROR(ValidateContainer(ns, container));
  const int64_t now = ToNanos(absl::Now());
  return Write([&](Db& db) -> absl::StatusOr<Container> {
    BERTH_RETURN_IF_ERROR(EnsureNamespace(db, ns));
    // A row of placeholders, filled by WriteContainer as an update fills it.
    BERTH_ASSIGN_OR_RETURN(Statement insert, db.Prepare(R"sql(
        INSERT INTO containers (namespace, name, image, runtime_name, spec_type_url, spec,
                                snapshotter, snapshot_key, created_at, updated_at)
        VALUES (?1, ?2, '', '', '', X'', '', '', ?3, ?3)
        ON CONFLICT (namespace, name) DO NOTHING
        RETURNING id)sql"));
    BERTH_RETURN_IF_ERROR(insert.Bind(1, ns));
    BERTH_RETURN_IF_ERROR(insert.Bind(2, container.id));
    BERTH_RETURN_IF_ERROR(insert.Bind(3, now));
    BERTH_ASSIGN_OR_RETURN(bool inserted, insert.Step());
    if (!inserted) {
      return absl::AlreadyExistsError(
          absl::StrCat(ContainerName(ns, container.id), ": already exists"));
    }
    const int64_t id = insert.ColumnInt(0);
    BERTH_ASSIGN_OR_RETURN(bool more, insert.Step());
    if (more) return absl::InternalError("inserting one container returned two rows");
    BERTH_RETURN_IF_ERROR(WriteContainer(db, id, container, now));
    BERTH_ASSIGN_OR_RETURN(ContainerRow row, FindContainer(db, ns, container.id));
    return std::move(row.container);
  });
}

absl::StatusOr<Container> SqliteMetadataStore::UpdateContainer(
    absl::string_view ns, const Container& container,
    const std::vector<std::string>& field_mask_paths) {
  BERTH_RETURN_IF_ERROR(ValidateNamespaceName(ns));
  if (container.id.empty()) return absl::InvalidArgumentError("container id must not be empty");
  const int64_t now = ToNanos(absl::Now());
  return Write([&](Db& db) -> absl::StatusOr<Container> {
    BERTH_ASSIGN_OR_RETURN(ContainerRow row, FindContainer(db, ns, container.id));
    BERTH_ASSIGN_OR_RETURN(Container updated,
                           Masked(std::move(row.container), container, field_mask_paths,
                                  ContainerName(ns, container.id)));
    BERTH_RETURN_IF_ERROR(ValidateContainer(ns, updated));
    BERTH_RETURN_IF_ERROR(WriteContainer(db, row.id, updated, now));
    BERTH_ASSIGN_OR_RETURN(ContainerRow written, FindContainer(db, ns, container.id));
    return std::move(written.container);
  });
}

absl::Status SqliteMetadataStore::DeleteContainer(absl::string_view ns, absl::string_view id) {
  BERTH_RETURN_IF_ERROR(ValidateNamespaceName(ns));
  return Write([&](Db& db) -> absl::Status {
    // Its labels and extensions go with it (ON DELETE CASCADE).
    BERTH_ASSIGN_OR_RETURN(Statement erase,
                           db.Prepare("DELETE FROM containers WHERE namespace = ?1 AND name = ?2"));
    BERTH_RETURN_IF_ERROR(erase.Bind(1, ns));
    BERTH_RETURN_IF_ERROR(erase.Bind(2, id));
    BERTH_RETURN_IF_ERROR(erase.Run());
    BERTH_ASSIGN_OR_RETURN(int64_t changed, sqlite::QueryInt(db, "SELECT changes()"));
    if (changed == 0) return ContainerNotFound(ns, id);
    return absl::OkStatus();
  });
}

}  // namespace berth::store::metadata_internal
