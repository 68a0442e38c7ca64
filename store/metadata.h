// Berth's metadata: one SQLite database holding every object the daemon
// knows by name — namespaces now; content labels, leases, images, containers
// and snapshot keys as they arrive.
//
// The model. A namespace is a named, labelled tenant (`default`, `k8s.io`,
// `moby`); every other object lives in exactly one namespace, and two
// namespaces never see each other's objects. A namespace is created
// explicitly, and can only be deleted once it holds nothing. Labels are
// free-form string pairs; a label with an empty value does not exist, so
// setting a label to "" removes it (containerd's rule).
//
// A worked example. berthd opens `/var/lib/berth/metadata.db` at start-up: the
// directory is created (mode 0700) if missing and the schema is brought up to
// this binary's version. A client creates namespace `dev` with label
// `team=infra`. `UpdateNamespace({"dev", {{"owner", "ana"}}}, {"labels.owner"})`
// adds `owner=ana` and keeps `team`; the same call with an empty mask would
// have replaced all labels, dropping `team`. The client then pulls an image
// into `dev`: `DeleteNamespace("dev")` now fails with FailedPrecondition,
// `namespace "dev" must be empty, but it still has images`, until the image
// is removed.
//
// Durability. Every call is one SQLite transaction in WAL mode with
// `synchronous=FULL`: once a call returns OK its change survives a crash or
// power loss; a call that fails changed nothing.
//
// Threads. One MetadataStore is shared by all gRPC threads; calls are
// serialised inside it.
//
// Semantics follow containerd 1.6 (`metadata/namespaces.go`,
// `services/namespaces/local.go`), except where a contract below says
// otherwise.
#ifndef BERTH_STORE_METADATA_H_
#define BERTH_STORE_METADATA_H_

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace berth::store {

struct Namespace {
  // An identifier (base/identifiers.h): it becomes a path component.
  std::string name;
  // Each key non-empty; key and value together at most 4096 bytes.
  std::map<std::string, std::string> labels;

  friend bool operator==(const Namespace&, const Namespace&) = default;
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

  // Deletes the namespace called `name` and its labels.
  // NotFound: no such namespace. InvalidArgument: bad name.
  // FailedPrecondition: objects still live in it —
  //   `namespace "dev" must be empty, but it still has containers, images`
  // (the tables holding them, by name). Nothing changes on error.
  virtual absl::Status DeleteNamespace(absl::string_view name) = 0;
};

}  // namespace berth::store

#endif  // BERTH_STORE_METADATA_H_
