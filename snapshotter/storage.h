// The snapshotter's metadata: one SQLite database in its root, private to
// snapshotter/. Callers serialise all use with their own mutex.
//
// Checks that need the whole picture (does the parent exist, is the key free)
// are the caller's; the schema backs them with constraints, so a row that
// slipped past them still cannot be written: a duplicate key is AlreadyExists
// (UNIQUE), a missing parent or a parent with children FailedPrecondition
// (foreign keys).
#ifndef BERTH_SNAPSHOTTER_STORAGE_H_
#define BERTH_SNAPSHOTTER_STORAGE_H_

#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "snapshotter/snapshotter.h"
#include "store/sqlite.h"

namespace berth::snapshotter {

// One snapshot as stored.
struct Row {
  int64_t id = 0;  // also its directory's name under snapshots/
  std::string key;
  int64_t parent_id = 0;  // 0: none
  std::string parent_key;
  Kind kind = Kind::kActive;
  absl::Time created;
  absl::Time updated;
  Usage usage;  // measured at Commit; zero for the other kinds
  Labels labels;
};

class Storage {
 public:
  // Opens (creating and migrating) the database at `path`, in WAL mode with a
  // busy timeout. FailedPrecondition if it belongs to another program or to a
  // newer Berth.
  static absl::StatusOr<Storage> Open(const std::string& path);

  // The row for `key`, or nullopt.
  absl::StatusOr<std::optional<Row>> Find(absl::string_view key);

  // Every row, by key.
  absl::StatusOr<std::vector<Row>> List();

  // `id` and its ancestors' ids, nearest first.
  absl::StatusOr<std::vector<int64_t>> Chain(int64_t id);

  // The ids in use.
  absl::StatusOr<std::set<int64_t>> Ids();

  // The largest id ever handed out (rows since removed included), so ids are
  // not reused across restarts.
  absl::StatusOr<int64_t> LastId();

  // Adds `row` (its id chosen by the caller; parent_key, usage are ignored).
  absl::Status Insert(const Row& row);

  // Turns active row `id`, still named `key`, into committed `name`.
  // NotFound if no such active row remains (removed or committed meanwhile).
  absl::Status Commit(int64_t id, absl::string_view key, absl::string_view name,
                      const Labels& labels, const Usage& usage, absl::Time now);

  // Replaces row `id`'s labels and sets its updated time.
  absl::Status SetLabels(int64_t id, const Labels& labels, absl::Time now);

  // Deletes row `id` and its labels. FailedPrecondition if it has children.
  absl::Status Delete(int64_t id, absl::string_view key);

 private:
  explicit Storage(store::sqlite::Db db) : db_(std::move(db)) {}

  absl::StatusOr<Labels> ReadLabels(int64_t id);
  absl::Status WriteLabels(int64_t id, const Labels& labels);

  store::sqlite::Db db_;
};

}  // namespace berth::snapshotter

#endif  // BERTH_SNAPSHOTTER_STORAGE_H_
