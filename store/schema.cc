#include "store/schema.h"

namespace berth::store {

// Conventions every table follows:
//
// - A table whose rows are objects that live in a namespace (images,
//   containers, blobs, snapshots …) has a column named exactly `namespace`
//   referencing namespaces (name). DeleteNamespace finds such tables through
//   that name alone, so it needs no update when a table is added, and refuses
//   while any of them has rows for the namespace — naming the table in its
//   message ("… still has images, containers"). A table of an object's parts
//   (its labels, its layers) therefore refers to the object by the object's
//   rowid and does NOT repeat a `namespace` column, or the message would
//   name it as well.
// - Two tables have a `namespace` column yet do not hold a namespace open,
//   and DeleteNamespace skips them by name: `namespace_labels` (its parts)
//   and `leases`, which containerd deletes with their namespace — so they
//   reference it ON DELETE CASCADE, and their parts cascade from them.
// - Times are INTEGER nanoseconds since the Unix epoch (UTC), as
//   absl::ToUnixNanos gives them.
// - STRICT tables, so a value of the wrong type is an error, not a coercion.
// - A migration is a plain script: no BEGIN/COMMIT (Migrate wraps each one,
//   with its PRAGMA user_version bump, in one transaction) and no PRAGMA
//   foreign_keys (it cannot change inside a transaction; a migration that
//   rebuilds a referenced table must keep the references valid itself).
namespace {

constexpr sqlite::Migration kMigrations[] = {
    {1, R"sql(
PRAGMA application_id = 1114797133;

CREATE TABLE namespaces (
  name TEXT NOT NULL PRIMARY KEY
) STRICT, WITHOUT ROWID;

-- Keyed by the namespace's name and excluded by name from DeleteNamespace's
-- search: the one table of parts that repeats the `namespace` column.
CREATE TABLE namespace_labels (
  namespace TEXT NOT NULL REFERENCES namespaces (name) ON DELETE CASCADE,
  key TEXT NOT NULL,
  value TEXT NOT NULL,
  PRIMARY KEY (namespace, key)
) STRICT, WITHOUT ROWID;
)sql"},
    {2, R"sql(
-- Content records: namespace N has blob `digest`. Named `blobs`, as
-- containerd's bucket, so DeleteNamespace says "still has blobs" as it does.
-- No cascade from namespaces: DeleteNamespace refuses while rows remain.
CREATE TABLE blobs (
  id INTEGER PRIMARY KEY,
  namespace TEXT NOT NULL REFERENCES namespaces (name),
  digest TEXT NOT NULL,
  size INTEGER NOT NULL,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL,
  UNIQUE (namespace, digest)
) STRICT;

-- "Does any namespace still record this blob?"
CREATE INDEX blobs_by_digest ON blobs (digest);

CREATE TABLE blob_labels (
  blob INTEGER NOT NULL REFERENCES blobs (id) ON DELETE CASCADE,
  key TEXT NOT NULL,
  value TEXT NOT NULL,
  PRIMARY KEY (blob, key)
) STRICT, WITHOUT ROWID;

-- Garbage collection's roots. Partial: an index of every key would be
-- maintained on every label write for this one lookup.
CREATE INDEX blob_roots ON blob_labels (blob) WHERE key = 'containerd.io/gc.root';

CREATE TABLE leases (
  id INTEGER PRIMARY KEY,
  namespace TEXT NOT NULL REFERENCES namespaces (name) ON DELETE CASCADE,
  -- The lease's id, as clients name it.
  name TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  -- Parsed from label containerd.io/gc.expire when the lease is created
  -- (a lease's labels never change); NULL: never expires.
  expires_at INTEGER,
  UNIQUE (namespace, name)
) STRICT;

CREATE TABLE lease_labels (
  lease INTEGER NOT NULL REFERENCES leases (id) ON DELETE CASCADE,
  key TEXT NOT NULL,
  value TEXT NOT NULL,
  PRIMARY KEY (lease, key)
) STRICT, WITHOUT ROWID;

-- type: content, ingests or snapshots/<snapshotter>; resource: the digest,
-- ingest ref or snapshot key.
CREATE TABLE lease_resources (
  lease INTEGER NOT NULL REFERENCES leases (id) ON DELETE CASCADE,
  type TEXT NOT NULL,
  resource TEXT NOT NULL,
  PRIMARY KEY (lease, type, resource)
) STRICT, WITHOUT ROWID;

-- "Does another lease still hold this ingest?"
CREATE INDEX lease_resources_by_resource ON lease_resources (type, resource);
)sql"},
    {3, R"sql(
CREATE TABLE images (
  id INTEGER PRIMARY KEY,
  namespace TEXT NOT NULL REFERENCES namespaces (name),
  name TEXT NOT NULL,
  target_media_type TEXT NOT NULL,
  target_digest TEXT NOT NULL,
  target_size INTEGER NOT NULL,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL,
  UNIQUE (namespace, name)
) STRICT;

-- Garbage collection's roots: the content records images point at.
CREATE INDEX images_by_target ON images (namespace, target_digest);

CREATE TABLE image_labels (
  image INTEGER NOT NULL REFERENCES images (id) ON DELETE CASCADE,
  key TEXT NOT NULL,
  value TEXT NOT NULL,
  PRIMARY KEY (image, key)
) STRICT, WITHOUT ROWID;

-- The target descriptor's annotations.
CREATE TABLE image_annotations (
  image INTEGER NOT NULL REFERENCES images (id) ON DELETE CASCADE,
  key TEXT NOT NULL,
  value TEXT NOT NULL,
  PRIMARY KEY (image, key)
) STRICT, WITHOUT ROWID;
)sql"},
    {4, R"sql(
-- Values of protobuf Anys are the client's bytes, as they came.
CREATE TABLE containers (
  id INTEGER PRIMARY KEY,
  namespace TEXT NOT NULL REFERENCES namespaces (name),
  -- The container's id, as clients name it.
  name TEXT NOT NULL,
  image TEXT NOT NULL,
  runtime_name TEXT NOT NULL,
  -- Both NULL: no options (not the same as options of an empty value).
  runtime_options_type_url TEXT,
  runtime_options BLOB,
  spec_type_url TEXT NOT NULL,
  spec BLOB NOT NULL,
  -- '' for none.
  snapshotter TEXT NOT NULL,
  snapshot_key TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL,
  UNIQUE (namespace, name)
) STRICT;

CREATE TABLE container_labels (
  container INTEGER NOT NULL REFERENCES containers (id) ON DELETE CASCADE,
  key TEXT NOT NULL,
  value TEXT NOT NULL,
  PRIMARY KEY (container, key)
) STRICT, WITHOUT ROWID;

CREATE TABLE container_extensions (
  container INTEGER NOT NULL REFERENCES containers (id) ON DELETE CASCADE,
  name TEXT NOT NULL,
  type_url TEXT NOT NULL,
  value BLOB NOT NULL,
  PRIMARY KEY (container, name)
) STRICT, WITHOUT ROWID;
)sql"},
};

static_assert(kApplicationId == 1114797133, "the first migration spells kApplicationId out");

}  // namespace

absl::Span<const sqlite::Migration> Migrations() { return kMigrations; }

}  // namespace berth::store
