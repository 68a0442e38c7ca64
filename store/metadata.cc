#include "store/metadata.h"

#include <sys/stat.h>

#include <cerrno>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "base/identifiers.h"
#include "base/status.h"
#include "store/labels.h"
#include "store/metadata_internal.h"
#include "store/schema.h"
#include "store/sqlite.h"

namespace berth::store {
namespace metadata_internal {

using sqlite::Db;
using sqlite::Statement;

// ---- Arguments ----


absl::Status Prefixed(absl::string_view context, const absl::Status& status) {
  if (status.ok()) return status;
  return absl::Status(status.code(), absl::StrCat(context, ": ", status.message()));
}

absl::Status ValidateNamespaceName(absl::string_view name) {
  return Prefixed("namespace name", identifiers::Validate(name));
}

absl::Status InNamespace(absl::string_view name, const absl::Status& status) {
  return Prefixed(absl::StrCat("namespace ", Quote(name)), status);
}

// ---- Labels ----

absl::StatusOr<std::vector<LabelEdit>> ParseLabelMask(const Labels& requested,
                                                      const std::vector<std::string>& paths,
                                                      absl::string_view what) {
  if (paths.empty()) {
    BERTH_RETURN_IF_ERROR(ValidateLabels(requested));
    return std::vector<LabelEdit>{{true, ""}};
  }
  std::vector<LabelEdit> edits;
  for (const std::string& path : paths) {
    if (path == "labels") {
      BERTH_RETURN_IF_ERROR(ValidateLabels(requested));
      edits.push_back({true, ""});
    } else if (absl::StartsWith(path, "labels.")) {
      std::string key = path.substr(sizeof("labels.") - 1);
      auto it = requested.find(key);
      BERTH_RETURN_IF_ERROR(ValidateLabel(key, it == requested.end() ? "" : it->second));
      edits.push_back({false, std::move(key)});
    } else {
      return absl::InvalidArgumentError(
          absl::StrCat("cannot update field ", Quote(path), " of ", what));
    }
  }
  return edits;
}

LabelTable::LabelTable(absl::string_view table, absl::string_view owner) {
  const std::string t = sqlite::QuoteIdentifier(table);
  const std::string o = sqlite::QuoteIdentifier(owner);
  select = absl::StrCat("SELECT key, value FROM ", t, " WHERE ", o, " = ?1");
  upsert = absl::StrCat("INSERT INTO ", t, " (", o, ", key, value) VALUES (?1, ?2, ?3) ON CONFLICT (",
                        o, ", key) DO UPDATE SET value = excluded.value");
  erase = absl::StrCat("DELETE FROM ", t, " WHERE ", o, " = ?1 AND key = ?2");
  clear = absl::StrCat("DELETE FROM ", t, " WHERE ", o, " = ?1");
}

const LabelTable kNamespaceLabels("namespace_labels", "namespace");
const LabelTable kBlobLabels("blob_labels", "blob");
const LabelTable kLeaseLabels("lease_labels", "lease");
const LabelTable kImageLabels("image_labels", "image");
const LabelTable kImageAnnotations("image_annotations", "image");

// ---- Shared queries ----

absl::StatusOr<bool> NamespaceExists(Db& db, absl::string_view name) {
  BERTH_ASSIGN_OR_RETURN(Statement stmt, db.Prepare("SELECT 1 FROM namespaces WHERE name = ?1"));
  BERTH_RETURN_IF_ERROR(stmt.Bind(1, name));
  return stmt.Step();
}

absl::Status EnsureNamespace(Db& db, absl::string_view name) {
  BERTH_ASSIGN_OR_RETURN(
      Statement stmt, db.Prepare("INSERT INTO namespaces (name) VALUES (?1) ON CONFLICT DO NOTHING"));
  BERTH_RETURN_IF_ERROR(stmt.Bind(1, name));
  return stmt.Run();
}

namespace {

// ---- Opening ----

// Readers at once: gRPC threads reading while one writes. More would wait
// for a connection, not for the writer.
constexpr int kMaxReaders = 8;

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


absl::Status Configure(Db& db) {
  BERTH_RETURN_IF_ERROR(sqlite::UseDurableWal(db));
  // Garbage collection's scratch table stays in memory, and a cache of 16 MiB
  // (the default is 2) holds the tables a collection of tens of thousands of
  // records walks: measured, it halves the mark (store/metadata_test.cc
  // prints the time).
  return db.Exec("PRAGMA temp_store = MEMORY; PRAGMA cache_size = -16384");
}

absl::StatusOr<Db> OpenDatabase(const std::string& path) {
  BERTH_RETURN_IF_ERROR(CreateParentDirectories(path));
  BERTH_ASSIGN_OR_RETURN(Db db, Db::Open(path));
  BERTH_RETURN_IF_ERROR(sqlite::CheckApplicationId(db, kApplicationId, "Berth metadata database"));
  // Before Configure, which may write: a newer binary's database stays as it was.
  BERTH_RETURN_IF_ERROR(sqlite::CheckNotNewer(db, Migrations()));
  BERTH_RETURN_IF_ERROR(Configure(db));
  BERTH_RETURN_IF_ERROR(sqlite::Migrate(db, Migrations()));
  return db;
}

// ---- Namespaces ----

absl::Status NamespaceNotFound(absl::string_view name) {
  return absl::NotFoundError(absl::StrCat("namespace ", Quote(name), ": not found"));
}

absl::StatusOr<Namespace> ReadNamespace(Db& db, absl::string_view name) {
  BERTH_ASSIGN_OR_RETURN(bool exists, NamespaceExists(db, name));
  if (!exists) return NamespaceNotFound(name);
  BERTH_ASSIGN_OR_RETURN(Labels labels, ReadLabels(db, kNamespaceLabels, name));
  return Namespace{std::string(name), std::move(labels)};
}

// Every table with a `namespace` column (schema.cc's convention) that has a
// row in namespace `name`, by table name. Found from the schema itself, so
// tables added by later migrations are covered without touching this.
absl::StatusOr<std::vector<std::string>> TablesHolding(Db& db, absl::string_view name) {
  BERTH_ASSIGN_OR_RETURN(Statement tables, db.Prepare(R"sql(
      SELECT m.name FROM sqlite_master AS m JOIN pragma_table_info(m.name) AS c
      WHERE m.type = 'table' AND c.name = 'namespace'
        AND m.name NOT IN ('namespace_labels', 'leases')
      ORDER BY m.name)sql"));
  std::vector<std::string> holding;
  while (true) {
    BERTH_ASSIGN_OR_RETURN(bool row, tables.Step());
    if (!row) return holding;
    std::string table = tables.ColumnText(0);
    // A table name cannot be bound; it comes from sqlite_master and is quoted.
    // The namespace, a value, is bound as everywhere else.
    BERTH_ASSIGN_OR_RETURN(
        Statement any, db.Prepare(absl::StrCat("SELECT 1 FROM ", sqlite::QuoteIdentifier(table),
                                               " WHERE namespace = ?1 LIMIT 1")));
    BERTH_RETURN_IF_ERROR(any.Bind(1, name));
    BERTH_ASSIGN_OR_RETURN(bool has_rows, any.Step());
    if (has_rows) holding.push_back(std::move(table));
  }
}

}  // namespace

absl::Status SqliteMetadataStore::CreateNamespace(const Namespace& ns) {
  BERTH_RETURN_IF_ERROR(ValidateNamespaceName(ns.name));
  BERTH_RETURN_IF_ERROR(InNamespace(ns.name, ValidateLabels(ns.labels)));
  return Write([&](Db& db) -> absl::Status {
    BERTH_ASSIGN_OR_RETURN(Statement insert, db.Prepare("INSERT INTO namespaces (name) VALUES (?1)"));
    BERTH_RETURN_IF_ERROR(insert.Bind(1, ns.name));
    if (absl::Status status = insert.Run(); !status.ok()) {
      if (absl::IsAlreadyExists(status)) {
        return absl::AlreadyExistsError(
            absl::StrCat("namespace ", Quote(ns.name), ": already exists"));
      }
      return status;
    }
    return ReplaceLabels(db, kNamespaceLabels, ns.name, ns.labels);
  });
}

absl::StatusOr<Namespace> SqliteMetadataStore::GetNamespace(absl::string_view name) {
  BERTH_RETURN_IF_ERROR(ValidateNamespaceName(name));
  return Read([&](Db& db) { return ReadNamespace(db, name); });
}

absl::StatusOr<std::vector<Namespace>> SqliteMetadataStore::ListNamespaces() {
  return Read([&](Db& db) -> absl::StatusOr<std::vector<Namespace>> {
    BERTH_ASSIGN_OR_RETURN(Statement names,
                           db.Prepare("SELECT name FROM namespaces ORDER BY name"));
    std::vector<Namespace> out;
    std::map<std::string, size_t> index;
    while (true) {
      BERTH_ASSIGN_OR_RETURN(bool row, names.Step());
      if (!row) break;
      index.emplace(names.ColumnText(0), out.size());
      out.push_back({names.ColumnText(0), {}});
    }
    BERTH_ASSIGN_OR_RETURN(Statement labels,
                           db.Prepare("SELECT namespace, key, value FROM namespace_labels"));
    while (true) {
      BERTH_ASSIGN_OR_RETURN(bool row, labels.Step());
      if (!row) return out;
      // Every label's namespace is listed: the foreign key guarantees it.
      out[index.at(labels.ColumnText(0))].labels.emplace(labels.ColumnText(1),
                                                         labels.ColumnText(2));
    }
  });
}

absl::StatusOr<Namespace> SqliteMetadataStore::UpdateNamespace(
    const Namespace& ns, const std::vector<std::string>& field_mask_paths) {
  BERTH_RETURN_IF_ERROR(ValidateNamespaceName(ns.name));
  absl::StatusOr<std::vector<LabelEdit>> edits =
      ParseLabelMask(ns.labels, field_mask_paths, "a namespace");
  BERTH_RETURN_IF_ERROR(InNamespace(ns.name, edits.status()));
  return Write([&](Db& db) -> absl::StatusOr<Namespace> {
    BERTH_ASSIGN_OR_RETURN(bool exists, NamespaceExists(db, ns.name));
    if (!exists) return NamespaceNotFound(ns.name);
    BERTH_RETURN_IF_ERROR(ApplyLabelEdits(db, kNamespaceLabels, ns.name, *edits, ns.labels));
    return ReadNamespace(db, ns.name);
  });
}

absl::Status SqliteMetadataStore::DeleteNamespace(absl::string_view name) {
  BERTH_RETURN_IF_ERROR(ValidateNamespaceName(name));
  return Write([&](Db& db) -> absl::Status {
    BERTH_ASSIGN_OR_RETURN(bool exists, NamespaceExists(db, name));
    if (!exists) return NamespaceNotFound(name);
    BERTH_ASSIGN_OR_RETURN(std::vector<std::string> holding, TablesHolding(db, name));
    if (!holding.empty()) {
      return absl::FailedPreconditionError(absl::StrCat("namespace ", Quote(name),
                                                        " must be empty, but it still has ",
                                                        absl::StrJoin(holding, ", ")));
    }
    // Its labels and leases go with it (ON DELETE CASCADE).
    BERTH_ASSIGN_OR_RETURN(Statement erase, db.Prepare("DELETE FROM namespaces WHERE name = ?1"));
    BERTH_RETURN_IF_ERROR(erase.Bind(1, name));
    return erase.Run();
  });
}

}  // namespace metadata_internal

absl::StatusOr<std::unique_ptr<MetadataStore>> MetadataStore::Open(const std::string& path) {
  absl::StatusOr<sqlite::Db> db = metadata_internal::OpenDatabase(path);
  if (!db.ok()) {
    return absl::Status(db.status().code(),
                        absl::StrCat("open metadata database: ", db.status().message()));
  }
  return std::make_unique<metadata_internal::SqliteMetadataStore>(std::move(*db),
                                                                  metadata_internal::kMaxReaders);
}

}  // namespace berth::store
