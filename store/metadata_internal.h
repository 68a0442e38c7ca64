// The SQLite MetadataStore's parts, shared by its files: metadata.cc (opening,
// namespaces), metadata_content.cc, metadata_leases.cc, metadata_images.cc,
// metadata_containers.cc, metadata_gc.cc.
// Private to //store:metadata.
#ifndef BERTH_STORE_METADATA_INTERNAL_H_
#define BERTH_STORE_METADATA_INTERNAL_H_

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "base/digest.h"
#include "base/status.h"
#include "base/strings.h"
#include "store/metadata.h"
#include "store/reader_pool.h"
#include "store/sqlite.h"

namespace berth::store::metadata_internal {

using Labels = std::map<std::string, std::string>;

// ---- Arguments ----

// InvalidArgument "namespace name: identifier …" unless `name` is an
// identifier.
absl::Status ValidateNamespaceName(absl::string_view name);

// `status` with `context: ` before its message; OK stays OK.
absl::Status Prefixed(absl::string_view context, const absl::Status& status);

// `namespace "dev": …`
absl::Status InNamespace(absl::string_view name, const absl::Status& status);

inline int64_t ToNanos(absl::Time t) { return absl::ToUnixNanos(t); }
inline absl::Time FromNanos(int64_t nanos) { return absl::FromUnixNanos(nanos); }

// ---- Labels ----

// What an update mask asks of an object's labels, checked before the
// transaction starts.
struct LabelEdit {
  bool replace_all;
  std::string key;  // when !replace_all
};

// The edits `paths` ask for, validating the labels each would write: an empty
// mask or "labels" replaces all, "labels.<key>" sets or removes one.
// InvalidArgument for any other path: `cannot update field "<path>" of <what>`.
absl::StatusOr<std::vector<LabelEdit>> ParseLabelMask(const Labels& requested,
                                                      const std::vector<std::string>& paths,
                                                      absl::string_view what);

// The statements of one labels table: columns (<owner>, key, value), the
// owner column holding the labelled object's key, unique with `key`.
struct LabelTable {
  LabelTable(absl::string_view table, absl::string_view owner);

  std::string select;  // ?1 owner → key, value
  std::string upsert;  // ?1 owner, ?2 key, ?3 value
  std::string erase;   // ?1 owner, ?2 key
  std::string clear;   // ?1 owner
};

extern const LabelTable kNamespaceLabels;   // owner: the namespace's name
extern const LabelTable kBlobLabels;        // owner: blobs.id
extern const LabelTable kLeaseLabels;       // owner: leases.id
extern const LabelTable kImageLabels;       // owner: images.id
extern const LabelTable kImageAnnotations;  // owner: images.id (the target's)
extern const LabelTable kContainerLabels;   // owner: containers.id (metadata_containers.cc)

template <typename Owner>
absl::StatusOr<Labels> ReadLabels(sqlite::Db& db, const LabelTable& table, const Owner& owner) {
  BERTH_ASSIGN_OR_RETURN(sqlite::Statement stmt, db.Prepare(table.select));
  BERTH_RETURN_IF_ERROR(stmt.Bind(1, owner));
  Labels labels;
  while (true) {
    BERTH_ASSIGN_OR_RETURN(bool row, stmt.Step());
    if (!row) return labels;
    labels.emplace(stmt.ColumnText(0), stmt.ColumnText(1));
  }
}

// Sets label `key` to `value`, or removes it when `value` is empty.
template <typename Owner>
absl::Status SetLabel(sqlite::Db& db, const LabelTable& table, const Owner& owner,
                      absl::string_view key, absl::string_view value) {
  BERTH_ASSIGN_OR_RETURN(sqlite::Statement stmt,
                         db.Prepare(value.empty() ? table.erase : table.upsert));
  BERTH_RETURN_IF_ERROR(stmt.Bind(1, owner));
  BERTH_RETURN_IF_ERROR(stmt.Bind(2, key));
  if (!value.empty()) BERTH_RETURN_IF_ERROR(stmt.Bind(3, value));
  return stmt.Run();
}

// A field mask's "<field>.<key>": entry `key` of `into` becomes `from`'s,
// or goes when `from` has none.
template <typename Map>
void CopyEntry(Map& into, const Map& from, const std::string& key) {
  auto it = from.find(key);
  if (it == from.end()) {
    into.erase(key);
  } else {
    into.insert_or_assign(key, it->second);
  }
}

// The labels become exactly `labels` (empty values dropped).
template <typename Owner>
absl::Status ReplaceLabels(sqlite::Db& db, const LabelTable& table, const Owner& owner,
                           const Labels& labels) {
  BERTH_ASSIGN_OR_RETURN(sqlite::Statement clear, db.Prepare(table.clear));
  BERTH_RETURN_IF_ERROR(clear.Bind(1, owner));
  BERTH_RETURN_IF_ERROR(clear.Run());
  for (const auto& [key, value] : labels) {
    BERTH_RETURN_IF_ERROR(SetLabel(db, table, owner, key, value));
  }
  return absl::OkStatus();
}

// Applies parsed `edits` taking values from `requested`.
template <typename Owner>
absl::Status ApplyLabelEdits(sqlite::Db& db, const LabelTable& table, const Owner& owner,
                             const std::vector<LabelEdit>& edits, const Labels& requested) {
  for (const LabelEdit& edit : edits) {
    if (edit.replace_all) {
      BERTH_RETURN_IF_ERROR(ReplaceLabels(db, table, owner, requested));
      continue;
    }
    auto it = requested.find(edit.key);
    BERTH_RETURN_IF_ERROR(
        SetLabel(db, table, owner, edit.key, it == requested.end() ? "" : it->second));
  }
  return absl::OkStatus();
}

// ---- Shared queries ----

absl::StatusOr<bool> NamespaceExists(sqlite::Db& db, absl::string_view name);

// Creates namespace `name` without labels unless it exists: objects other
// than namespaces bring their namespace into being, as in containerd.
absl::Status EnsureNamespace(sqlite::Db& db, absl::string_view name);

// The row id of lease `id` of namespace `ns`; NotFound naming both.
absl::StatusOr<int64_t> FindLease(sqlite::Db& db, absl::string_view ns, absl::string_view id);

// Holds `type`/`resource` in lease row `lease`; holding it already is fine.
absl::Status HoldResource(sqlite::Db& db, int64_t lease, absl::string_view type,
                          absl::string_view resource);

// InvalidArgument for an empty id or one over 4096 bytes (quoted).
absl::Status ValidateLeaseId(absl::string_view id);

// ---- The store ----

class SqliteMetadataStore final : public MetadataStore {
 public:
  SqliteMetadataStore(sqlite::Db writer, int max_readers)
      : writer_(std::move(writer)), readers_(writer_.path(), max_readers) {}

  absl::Status CreateNamespace(const Namespace& ns) override;
  absl::StatusOr<Namespace> GetNamespace(absl::string_view name) override;
  absl::StatusOr<std::vector<Namespace>> ListNamespaces() override;
  absl::StatusOr<Namespace> UpdateNamespace(
      const Namespace& ns, const std::vector<std::string>& field_mask_paths) override;
  absl::Status DeleteNamespace(absl::string_view name) override;

  absl::StatusOr<ContentRecord> GetContent(absl::string_view ns, absl::string_view digest) override;
  absl::StatusOr<std::vector<ContentRecord>> ListContent(absl::string_view ns) override;
  absl::Status AddContent(absl::string_view ns, const ContentRecord& record,
                          absl::string_view lease_id) override;
  absl::StatusOr<ContentRecord> UpdateContent(
      absl::string_view ns, const ContentRecord& record,
      const std::vector<std::string>& field_mask_paths) override;
  absl::Status DeleteContent(absl::string_view ns, absl::string_view digest) override;
  absl::StatusOr<bool> ContentReferenced(absl::string_view digest) override;

  absl::StatusOr<Lease> CreateLease(absl::string_view ns, const Lease& lease) override;
  absl::StatusOr<Lease> GetLease(absl::string_view ns, absl::string_view id) override;
  absl::StatusOr<std::vector<Lease>> ListLeases(absl::string_view ns) override;
  absl::Status DeleteLease(absl::string_view ns, absl::string_view id) override;
  absl::Status AddLeaseResource(absl::string_view ns, absl::string_view id,
                                const LeaseResource& resource) override;
  absl::Status DeleteLeaseResource(absl::string_view ns, absl::string_view id,
                                   const LeaseResource& resource) override;
  absl::StatusOr<Image> GetImage(absl::string_view ns, absl::string_view name) override;
  absl::StatusOr<std::vector<Image>> ListImages(absl::string_view ns) override;
  absl::StatusOr<Image> CreateImage(absl::string_view ns, const Image& image) override;
  absl::StatusOr<Image> UpdateImage(absl::string_view ns, const Image& image,
                                    const std::vector<std::string>& field_mask_paths) override;
  absl::Status DeleteImage(absl::string_view ns, absl::string_view name) override;

  absl::StatusOr<Container> GetContainer(absl::string_view ns, absl::string_view id) override;
  absl::StatusOr<std::vector<Container>> ListContainers(absl::string_view ns) override;
  absl::StatusOr<Container> CreateContainer(absl::string_view ns,
                                            const Container& container) override;
  absl::StatusOr<Container> UpdateContainer(
      absl::string_view ns, const Container& container,
      const std::vector<std::string>& field_mask_paths) override;
  absl::Status DeleteContainer(absl::string_view ns, absl::string_view id) override;

  absl::StatusOr<std::vector<LeaseResource>> ListLeaseResources(absl::string_view ns,
                                                                absl::string_view id) override;

  absl::StatusOr<GcResult> CollectGarbage(absl::Time now,
                                          absl::Span<const SnapshotNode> snapshots) override;

 private:
  // `fn(db)` inside one read transaction (one consistent snapshot) on a
  // pooled read-only connection: it never waits for the writer.
  template <typename Fn>
  auto Read(Fn fn) -> decltype(fn(std::declval<sqlite::Db&>())) {
    BERTH_ASSIGN_OR_RETURN(ReaderPool::Borrowed reader, readers_.Borrow());
    BERTH_ASSIGN_OR_RETURN(sqlite::Transaction tx,
                           sqlite::Transaction::Begin(reader.db(), sqlite::Transaction::kRead));
    return fn(reader.db());
  }

  // `fn(db)` inside one write transaction on the writer connection,
  // committed if `fn` succeeds and rolled back otherwise. The mutex is held
  // for the whole transaction, SQLite I/O included: two threads' statements
  // on one connection would land in one transaction.
  template <typename Fn>
  auto Write(Fn fn) -> decltype(fn(std::declval<sqlite::Db&>())) ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    BERTH_ASSIGN_OR_RETURN(sqlite::Transaction tx,
                           sqlite::Transaction::Begin(writer_, sqlite::Transaction::kWrite));
    auto result = fn(writer_);
    if (!result.ok()) return result;
    BERTH_RETURN_IF_ERROR(tx.Commit());
    return result;
  }

  absl::Mutex mu_;
  sqlite::Db writer_ ABSL_GUARDED_BY(mu_);
  // After the writer, so the readers close first: the last connection to
  // close checkpoints the WAL into the database and removes it, which a
  // read-only one cannot do.
  ReaderPool readers_;
};

}  // namespace berth::store::metadata_internal

#endif  // BERTH_STORE_METADATA_INTERNAL_H_
