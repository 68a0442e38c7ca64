// Berth's metadata: one SQLite database holding every object the daemon
// knows by name — namespaces, content records, leases, images and
// containers (the snapshotters keep their own) — and the garbage collector
// that decides which of them are still needed.
//
// The model. A namespace is a named, labelled tenant (`default`, `k8s.io`,
// `moby`); every other object lives in exactly one namespace, and two
// namespaces never see each other's objects. A namespace is created
// explicitly, or implicitly by the first content record or lease made in it
// (as containerd does: `ctr -n new content ingest` needs no `namespaces
// create`), and can only be deleted once it holds no objects — leases aside,
// which go with it. Labels are free-form string pairs; a label with an empty
// value does not exist, so setting a label to "" removes it (containerd's
// rule).
//
// A content record says "namespace N has blob D": the blob's digest, size,
// times and N's own labels for it. The bytes live once in the content store
// (store/content_store.h), shared by every namespace that has a record; this
// store never touches them. A lease is a named, labelled hold on resources
// in its namespace — content digests, ingest refs, snapshot keys — that
// keeps them from garbage collection while a client assembles something
// (a pull, an import) that will reference them; a lease labelled
// `containerd.io/gc.expire` with an RFC 3339 time stops holding anything
// once that time has passed, and garbage collection then deletes it.
//
// Garbage collection marks from the roots — content labelled
// `containerd.io/gc.root`, every resource of every unexpired lease, images'
// targets, containers' snapshots and what containers' labels name — follows
// the references that content labels `containerd.io/gc.ref.content[.<name>]`
// name, and deletes every unmarked content record and every expired lease.
// It returns what the caller must finish outside the database: blobs no
// namespace records any more, and ingests that only expired leases held.
//
// A worked example. berthd opens `/var/lib/berth/metadata.db` at start-up: the
// directory is created (mode 0700) if missing and the schema is brought up to
// this binary's version. A client creates namespace `dev` with label
// `team=infra`. `UpdateNamespace({"dev", {{"owner", "ana"}}}, {"labels.owner"})`
// adds `owner=ana` and keeps `team`; the same call with an empty mask would
// have replaced all labels, dropping `team`. The client then pulls an image
// into `dev` under lease `pull-1` (expiring in an hour): each blob it commits
// becomes a record `AddContent("dev", {digest, size, labels}, "pull-1")`,
// held by the lease; the manifest's record carries labels
// `containerd.io/gc.ref.content.l.0=<layer digest>` … naming its layers.
// Until the image record exists only the lease keeps all this alive: had the
// client died, a collection after the expiry time would delete the lease,
// the records, and return their digests so the blobs are removed.
// `DeleteNamespace("dev")` fails with FailedPrecondition, `namespace "dev"
// must be empty, but it still has blobs`, until the records are gone.
//
// Durability. Every call is one SQLite transaction in WAL mode with
// `synchronous=FULL`: once a call returns OK its change survives a crash or
// power loss; a call that fails changed nothing (AddContent's AlreadyExists
// is the one failure with an effect, see there).
//
// Threads. One MetadataStore is shared by all gRPC threads. Calls that
// change something are serialised on one writer connection; reads (Get…,
// List…, ContentReferenced) run on a small pool of read-only connections and
// see the last committed state without waiting for a write in progress —
// even a garbage collection of many thousands of records.
//
// Semantics follow containerd 1.6 (`metadata/namespaces.go`,
// `metadata/content.go`, `metadata/leases.go`, `metadata/gc.go`,
// `services/namespaces/local.go`), except where a contract below says
// otherwise.
#ifndef BERTH_STORE_METADATA_H_
#define BERTH_STORE_METADATA_H_

#include <compare>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "absl/types/span.h"

namespace berth::store {

struct Namespace {
  // An identifier (base/identifiers.h): it becomes a path component.
  std::string name;
  // Each key non-empty; key and value together at most 4096 bytes.
  std::map<std::string, std::string> labels;

  friend bool operator==(const Namespace&, const Namespace&) = default;
};

// One namespace's record of one blob.
struct ContentRecord {
  // `sha256:` followed by 64 lowercase hex digits.
  std::string digest;
  // In bytes, >= 0.
  int64_t size = 0;
  // Set by the store (the caller's values are ignored): when the record was
  // made, and when its labels last changed.
  absl::Time created_at;
  absl::Time updated_at;
  // As a namespace's. Labels that steer garbage collection:
  //  - `containerd.io/gc.root` (any value): the record is a root;
  //  - `containerd.io/gc.ref.content`, `containerd.io/gc.ref.content.<name>`
  //    or `…content/<name>` = a digest: this record keeps the namespace's
  //    record of that digest (if any) alive;
  //  - `containerd.io/gc.ref.snapshot.<snapshotter>[/<name>]` = a snapshot
  //    key: this record keeps the namespace's snapshot of that key alive.
  std::map<std::string, std::string> labels;

  friend bool operator==(const ContentRecord&, const ContentRecord&) = default;
};

// Label keys with a meaning to garbage collection.
inline constexpr char kLabelGcRoot[] = "containerd.io/gc.root";
inline constexpr char kLabelGcExpire[] = "containerd.io/gc.expire";
inline constexpr char kLabelGcFlat[] = "containerd.io/gc.flat";

// Resource types a lease can hold, as containerd names them.
inline constexpr char kResourceContent[] = "content";    // id: a digest
inline constexpr char kResourceIngests[] = "ingests";    // id: an ingest ref
inline constexpr char kResourceSnapshots[] = "snapshots";  // "snapshots/<snapshotter>", id: a key

// One thing a lease holds. `type` is "content" (id: a digest), "ingests"
// (id: a non-empty ingest ref, any bytes) or "snapshots/<snapshotter>" (a
// non-empty snapshotter name without "/"; id: a non-empty snapshot key).
struct LeaseResource {
  std::string type;
  std::string id;

  friend auto operator<=>(const LeaseResource&, const LeaseResource&) = default;
};

struct Lease {
  // An identifier (base/identifiers.h), unique in its namespace.
  std::string id;
  // Set by the store at creation (the caller's value is ignored).
  absl::Time created_at;
  // As a namespace's; fixed at creation. `containerd.io/gc.expire` = an
  // RFC 3339 time (`2024-05-01T12:00:00Z`, `…T14:00:00.5+02:00`) makes the
  // lease expire once a collection's `now` is after it (times past 2262,
  // beyond int64 nanoseconds, never come); a value that does not parse is
  // ignored — the lease never expires — as containerd ignores it. `containerd.io/gc.flat` (any value): the lease keeps its content
  // records alive but not what their labels reference.
  std::map<std::string, std::string> labels;

  friend bool operator==(const Lease&, const Lease&) = default;
};

// What an image points at: an OCI descriptor (its media type, digest, size
// and annotations; containerd stores no more of it).
struct Descriptor {
  std::string media_type;  // non-empty
  std::string digest;      // sha256:<64 lowercase hex>
  int64_t size = 0;        // > 0
  std::map<std::string, std::string> annotations;

  friend bool operator==(const Descriptor&, const Descriptor&) = default;
};

// A named image of a namespace: a GC root for its target's content record
// (and, through that record's containerd.io/gc.ref.content.* labels, for
// the manifests, configs and layers clients label it with).
struct Image {
  // Any non-empty string (`docker.io/library/busybox:latest`), unique in its
  // namespace.
  std::string name;
  std::map<std::string, std::string> labels;  // as a namespace's
  Descriptor target;
  // Set by the store: creation, and the last change.
  absl::Time created_at;
  absl::Time updated_at;

  friend bool operator==(const Image&, const Image&) = default;
};

// A protobuf `Any` as a client sent it: a type URL and the bytes of a value
// of that type. The store keeps both byte for byte and never reads them.
struct TypedValue {
  std::string type_url;
  std::string value;

  friend bool operator==(const TypedValue&, const TypedValue&) = default;
};

// A container of a namespace: the record of what to run — its OCI runtime
// spec, which runtime runs it, the snapshot that will be its root
// filesystem — not a running process (that is a task). A garbage-collection
// root for its snapshot and for what its labels reference.
struct Container {
  // An identifier (base/identifiers.h), unique in its namespace.
  std::string id;
  // As a namespace's. `containerd.io/gc.ref.content[.|/<name>]` = a digest
  // and `containerd.io/gc.ref.snapshot.<snapshotter>[/<name>]` = a key keep
  // that record or snapshot of the namespace alive, as on content records.
  std::map<std::string, std::string> labels;
  // The image it was made from, by name; any string (containerd checks none).
  std::string image;
  struct Runtime {
    // Non-empty: `io.containerd.runc.v2`.
    std::string name;
    // Absent is not the same as present and empty (ctr sends a type URL and
    // no bytes): both are kept as they came.
    std::optional<TypedValue> options;

    friend bool operator==(const Runtime&, const Runtime&) = default;
  } runtime;
  // Required. `ctr` sends `types.containerd.io/opencontainers/runtime-spec/1/
  // Spec` with the spec's JSON as the value.
  std::optional<TypedValue> spec;
  // The snapshot that is its root filesystem: key `snapshot_key` of the
  // namespace in snapshotter `snapshotter`. Both may be empty; a key needs
  // a snapshotter. Neither is checked against the snapshotters.
  std::string snapshotter;
  std::string snapshot_key;
  // Set by the store: creation, and the last change.
  absl::Time created_at;
  absl::Time updated_at;
  // What clients attach, by non-empty name.
  std::map<std::string, TypedValue> extensions;

  friend bool operator==(const Container&, const Container&) = default;
};

// An object named within a namespace: a content record (id = digest), a
// lease (id = lease id) or an ingest (id = ref).
struct NamespacedId {
  std::string ns;
  std::string id;

  friend auto operator<=>(const NamespacedId&, const NamespacedId&) = default;
};

// One namespace's snapshot in one snapshotter.
struct SnapshotRef {
  std::string ns;
  std::string snapshotter;
  std::string key;

  friend auto operator<=>(const SnapshotRef&, const SnapshotRef&) = default;
};

// A snapshot as garbage collection sees it. The snapshotters keep snapshots
// in databases of their own, so the collector hands them in.
struct SnapshotNode {
  SnapshotRef ref;
  // The parent's key (same namespace and snapshotter), "" for none.
  std::string parent;
  // Those that steer collection, as on content records: `containerd.io/
  // gc.root`, `containerd.io/gc.ref.content[.|/<name>]` and
  // `containerd.io/gc.ref.snapshot.<snapshotter>[/<name>]`.
  std::map<std::string, std::string> labels;
};

// What one garbage collection did, and what is left for the caller. Every
// list is sorted and has no duplicates.
struct GcResult {
  // Content records deleted.
  std::vector<NamespacedId> removed_content;
  // Leases deleted because they had expired, with their resources.
  std::vector<NamespacedId> removed_leases;
  // Digests of deleted records for which no namespace has a record any
  // more: the caller deletes these blobs — after checking ContentReferenced
  // again while it keeps new records from being added, since a commit may
  // have recorded one of them since.
  std::vector<std::string> unreferenced_digests;
  // Ingest refs held by a lease deleted now and by no remaining lease of the
  // same namespace: the caller aborts these ingests (Berth goes beyond
  // containerd here, whose expired ingests linger until their own expiry).
  std::vector<NamespacedId> expired_ingests;
  // Snapshots handed in that nothing live refers to, each before its parent
  // (not sorted): the caller removes these, in this order.
  std::vector<SnapshotRef> unreferenced_snapshots;
};

class MetadataStore {
 public:
  // Opens the database at `path`, creating it — and any missing parent
  // directories, with mode 0700 — if it does not exist, and applies the schema
  // migrations this binary knows that the file has not seen yet.
  //
  // Errors, each naming `path`:
  //  - DataLoss: the file is not a SQLite database (or is corrupt). The file
  //    is left untouched.
  //  - FailedPrecondition: the file is some other program's SQLite database,
  //    or its schema version is newer than this binary knows (both versions
  //    named). The file is left untouched.
  //  - Unavailable: another process holds the database locked for longer than
  //    the busy timeout (5 s).
  //  - the errno's code (PermissionDenied, NotFound …) when a directory or the
  //    file cannot be created or opened.
  static absl::StatusOr<std::unique_ptr<MetadataStore>> Open(const std::string& path);

  virtual ~MetadataStore() = default;

  // Every call below that takes a namespace `ns` answers InvalidArgument,
  // quoting it, when `ns` is not an identifier (no namespace could have that
  // name), and every call taking a digest answers InvalidArgument, quoting
  // it, when it is not `sha256:` + 64 lowercase hex digits. Nothing changes
  // on any error unless a contract says otherwise. Errors of SQLite itself
  // carry the codes store/sqlite.h maps them to (Unavailable when the
  // database stays locked, ResourceExhausted on a full disk, DataLoss on
  // corruption …).

  // ---- Namespaces ----

  // Creates `ns`. Labels with empty values are not stored.
  // InvalidArgument: bad name (quoted) or bad label; AlreadyExists: a
  // namespace of that name exists. Nothing is stored on error.
  virtual absl::Status CreateNamespace(const Namespace& ns) = 0;

  // The namespace called `name`, with its labels.
  // NotFound: no such namespace (containerd answers with empty labels
  // instead). InvalidArgument: `name` is not an identifier, so no namespace
  // could have it.
  virtual absl::StatusOr<Namespace> GetNamespace(absl::string_view name) = 0;

  // Every namespace with its labels, sorted by name (byte order).
  virtual absl::StatusOr<std::vector<Namespace>> ListNamespaces() = 0;

  // Updates the labels of the namespace called `ns.name`, as containerd's
  // namespaces service does, and returns it as it now is. Paths apply in order:
  //  - empty mask, or path "labels": the labels become exactly `ns.labels`;
  //  - "labels.<key>": label <key> becomes `ns.labels[<key>]`, or is removed
  //    when that is empty or absent. Labels of `ns` not named by a path are
  //    ignored (and not validated).
  // InvalidArgument: any other path (quoted; containerd also refuses "labels"
  // alone, Berth takes it as "replace all"), bad name, or a bad label about to
  // be written. NotFound: no such namespace (containerd would create its
  // labels bucket). Nothing changes on error.
  virtual absl::StatusOr<Namespace> UpdateNamespace(
      const Namespace& ns, const std::vector<std::string>& field_mask_paths) = 0;

  // Deletes the namespace called `name`, its labels and its leases (with
  // their resources; containerd drops them with the namespace too).
  // NotFound: no such namespace. InvalidArgument: bad name.
  // FailedPrecondition: objects still live in it —
  //   `namespace "dev" must be empty, but it still has blobs, containers`
  // (the tables holding them, by name: content records are "blobs", as
  // containerd calls them). Nothing changes on error.
  virtual absl::Status DeleteNamespace(absl::string_view name) = 0;

  // ---- Content records ----

  // Namespace `ns`'s record of `digest`.
  // NotFound: `ns` has no record of it (or `ns` does not exist).
  virtual absl::StatusOr<ContentRecord> GetContent(absl::string_view ns,
                                                   absl::string_view digest) = 0;

  // Every record of `ns`, sorted by digest; empty if `ns` does not exist.
  virtual absl::StatusOr<std::vector<ContentRecord>> ListContent(absl::string_view ns) = 0;

  // Records that `ns` has the blob `record.digest` of `record.size` bytes,
  // with `record.labels` (empty values not stored) and created_at =
  // updated_at = now; `ns` is created, without labels, if it does not
  // exist. With a non-empty `lease_id`, that lease of `ns` also gets the
  // resource {"content", digest}, in the same transaction.
  //  - InvalidArgument: bad namespace, digest, negative size, bad label, or a
  //    `lease_id` that is not an identifier. Nothing changes.
  //  - NotFound: `lease_id` names no lease of `ns`. Nothing changes (the
  //    namespace is not created either).
  //  - AlreadyExists: `ns` already has a record of the digest. That record is
  //    left as it was, but the lease, if given, still gets the digest —
  //    as containerd's commit does, so that a pull under a lease holds
  //    content that was already there.
  virtual absl::Status AddContent(absl::string_view ns, const ContentRecord& record,
                                  absl::string_view lease_id) = 0;

  // Updates the labels of `ns`'s record of `record.digest` exactly as
  // UpdateNamespace does with its mask, sets updated_at to now, and returns
  // the record as it now is. Size and created_at are never changed.
  // InvalidArgument: any path other than "labels" and "labels.<key>" (quoted;
  // containerd refuses the same), bad digest, bad label about to be written.
  // NotFound: no such record. Nothing changes on error.
  virtual absl::StatusOr<ContentRecord> UpdateContent(
      absl::string_view ns, const ContentRecord& record,
      const std::vector<std::string>& field_mask_paths) = 0;

  // Deletes `ns`'s record of `digest` with its labels. Leases that hold the
  // digest keep holding it (a record added again is held again), as in
  // containerd. The blob is the caller's: delete it once ContentReferenced
  // says no namespace records it.
  // NotFound: no such record.
  virtual absl::Status DeleteContent(absl::string_view ns, absl::string_view digest) = 0;

  // Whether any namespace has a record of `digest`: false means its blob may
  // be deleted (if nothing can add a record meanwhile).
  virtual absl::StatusOr<bool> ContentReferenced(absl::string_view digest) = 0;

  // ---- Leases ----
  //
  // Lease ids must be identifiers: a call naming a lease by anything else
  // answers InvalidArgument, quoting it.

  // Creates `lease` in `ns` (created, without labels, if it does not exist)
  // with created_at = now, and returns it as stored (labels with empty
  // values dropped).
  // InvalidArgument: bad namespace, id or label. AlreadyExists: `ns` has a
  // lease of that id. Nothing changes on error.
  virtual absl::StatusOr<Lease> CreateLease(absl::string_view ns, const Lease& lease) = 0;

  // The lease `id` of `ns`. NotFound: no such lease.
  virtual absl::StatusOr<Lease> GetLease(absl::string_view ns, absl::string_view id) = 0;

  // Every lease of `ns`, expired or not, sorted by id; empty if `ns` does not
  // exist.
  virtual absl::StatusOr<std::vector<Lease>> ListLeases(absl::string_view ns) = 0;

  // Deletes the lease `id` of `ns` and its resources, which are then
  // collectable unless something else holds them (containerd's Delete
  // without `sync`: the caller runs a collection if asked to wait).
  // NotFound: no such lease.
  virtual absl::Status DeleteLease(absl::string_view ns, absl::string_view id) = 0;

  // Adds `resource` to the lease `id` of `ns`; adding one it holds already is
  // a no-op. The resource need not exist (a digest not yet committed, a
  // snapshot not yet made): the lease holds the name.
  // InvalidArgument: a type other than "content", "ingests" and
  // "snapshots/<snapshotter>" (containerd answers NotImplemented for an
  // unknown type), a bad digest for "content", an empty id, snapshotter or
  // ingest ref — checked before the lease is looked up. NotFound: no such
  // lease.
  virtual absl::Status AddLeaseResource(absl::string_view ns, absl::string_view id,
                                        const LeaseResource& resource) = 0;

  // Removes `resource` from the lease `id` of `ns`; removing one it does not
  // hold is a no-op. Errors as AddLeaseResource.
  virtual absl::Status DeleteLeaseResource(absl::string_view ns, absl::string_view id,
                                           const LeaseResource& resource) = 0;

  // What the lease `id` of `ns` holds, sorted by type, then id ("content",
  // "ingests", "snapshots/…": containerd's order). NotFound: no such lease.
  virtual absl::StatusOr<std::vector<LeaseResource>> ListLeaseResources(
      absl::string_view ns, absl::string_view id) = 0;

  // ---- Garbage collection ----

  // One mark-and-sweep over every namespace, in one write transaction
  // (readers are not blocked; other writers wait for it).
  //
  // Marked (live): content records labelled `containerd.io/gc.root`, records
  // whose digest an image targets or an unexpired lease of the same
  // namespace holds; snapshots of `snapshots` labelled `containerd.io/
  // gc.root`, held by such a lease or that a container names as its
  // snapshot; what containers' reference labels name (see Container); and,
  // transitively, what a live record or snapshot refers to in its
  // namespace: a snapshot's parent, and what its `containerd.io/gc.ref.
  // content[.|/<name>]` and `containerd.io/gc.ref.snapshot.<snapshotter>
  // [/<name>]` labels name. A lease labelled `containerd.io/gc.flat` keeps
  // its own records but not what they reference. A lease has expired when
  // its `containerd.io/gc.expire` time is before `now`.
  //
  // Swept: expired leases (their resources with them), then every content
  // record not marked. Returns what was removed and what the caller must do
  // about blobs, ingests and the snapshots not marked (see GcResult).
  // Nothing changes on error.
  virtual absl::StatusOr<GcResult> CollectGarbage(absl::Time now,
                                                  absl::Span<const SnapshotNode> snapshots) = 0;

  // ---- Images ----
  //
  // Errors name the image and namespace: InvalidArgument for an empty name,
  // a bad label, a target without media type, with a size <= 0 or a digest
  // that is not sha256:<hex>; NotFound / AlreadyExists as the calls say.

  virtual absl::StatusOr<Image> GetImage(absl::string_view ns, absl::string_view name) = 0;
  // By name.
  virtual absl::StatusOr<std::vector<Image>> ListImages(absl::string_view ns) = 0;
  // Creates the namespace if needed. AlreadyExists if the name is taken.
  virtual absl::StatusOr<Image> CreateImage(absl::string_view ns, const Image& image) = 0;
  // `field_mask_paths`: "labels", "labels.<k>", "target", "annotations",
  // "annotations.<k>" (the target's); none replaces labels and target.
  // Other paths are InvalidArgument. NotFound if there is no such image.
  virtual absl::StatusOr<Image> UpdateImage(absl::string_view ns, const Image& image,
                                            const std::vector<std::string>& field_mask_paths) = 0;
  virtual absl::Status DeleteImage(absl::string_view ns, absl::string_view name) = 0;

  // ---- Containers ----
  //
  // containerd 1.6's rules (`metadata/containers.go`). Errors name the
  // container and its namespace.

  // NotFound if `ns` has no container `id` (whatever `id` is).
  virtual absl::StatusOr<Container> GetContainer(absl::string_view ns, absl::string_view id) = 0;
  // By id; empty if `ns` does not exist.
  virtual absl::StatusOr<std::vector<Container>> ListContainers(absl::string_view ns) = 0;
  // Stores `container` with created_at = updated_at = now, creating `ns` if
  // needed, and returns it as stored (labels with empty values dropped).
  // InvalidArgument: an id that is not an identifier (quoted), a bad label,
  // an empty extension name, no runtime name, no spec, or a snapshot key
  // without a snapshotter. AlreadyExists: `ns` has a container of that id.
  // Nothing is stored on error.
  virtual absl::StatusOr<Container> CreateContainer(absl::string_view ns,
                                                    const Container& container) = 0;
  // Updates the container `container.id` of `ns` with what `field_mask_paths`
  // take from `container`, sets updated_at to now and returns it as it now is:
  //  - "labels", "spec", "image", "snapshotkey", "extensions": that field
  //    whole (`snapshotkey` is snapshot_key);
  //  - "labels.<key>", "extensions.<name>": that one entry, removed when
  //    `container` has none (or, for a label, an empty value; containerd
  //    stores an empty extension instead); an empty <name> is refused;
  //  - no paths: labels, spec, extensions, image and snapshot key whole —
  //    and then a snapshotter or runtime name other than the stored ones is
  //    InvalidArgument (they cannot change; with paths they are ignored).
  // InvalidArgument: an empty id, any other path ("runtime" and
  // "snapshotter" included, as in containerd), or a result Create would
  // refuse. NotFound: no such container. Nothing changes on error.
  virtual absl::StatusOr<Container> UpdateContainer(
      absl::string_view ns, const Container& container,
      const std::vector<std::string>& field_mask_paths) = 0;
  // Deletes the container record; its snapshot stays until garbage
  // collection finds nothing else holds it. NotFound: no such container.
  virtual absl::Status DeleteContainer(absl::string_view ns, absl::string_view id) = 0;
};

}  // namespace berth::store

#endif  // BERTH_STORE_METADATA_H_
