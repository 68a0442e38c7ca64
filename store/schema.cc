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
};

static_assert(kApplicationId == 1114797133, "the first migration spells kApplicationId out");

}  // namespace

absl::Span<const sqlite::Migration> Migrations() { return kMigrations; }

}  // namespace berth::store
