// Read-only connections to the metadata database, shared by reader threads.
//
// The store writes through one connection behind one mutex; a reader that
// queued behind it would wait out a whole garbage collection. In WAL mode a
// second connection reads the last committed state while a write
// transaction is open, so readers borrow one of these instead:
//
//   BERTH_ASSIGN_OR_RETURN(ReaderPool::Borrowed reader, pool.Borrow());
//   BERTH_ASSIGN_OR_RETURN(Transaction tx, Transaction::Begin(reader.db(), Transaction::kRead));
//   ...  // the connection goes back to the pool when `reader` goes
#ifndef BERTH_STORE_READER_POOL_H_
#define BERTH_STORE_READER_POOL_H_

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "store/sqlite.h"

namespace berth::store {

class ReaderPool {
 public:
  // Connections to the existing database at `path` are opened when first
  // needed, at most `max_open` at a time.
  ReaderPool(std::string path, int max_open) : path_(std::move(path)), max_open_(max_open) {}
  ReaderPool(const ReaderPool&) = delete;
  ReaderPool& operator=(const ReaderPool&) = delete;

  // A connection lent to one thread; returned to the pool on destruction.
  class Borrowed {
   public:
    Borrowed(Borrowed&& other) noexcept
        : pool_(std::exchange(other.pool_, nullptr)), db_(std::move(other.db_)) {}
    Borrowed& operator=(Borrowed&&) = delete;
    Borrowed(const Borrowed&) = delete;
    Borrowed& operator=(const Borrowed&) = delete;
    ~Borrowed();

    sqlite::Db& db() { return *db_; }

   private:
    friend class ReaderPool;
    Borrowed(ReaderPool* pool, std::unique_ptr<sqlite::Db> db) : pool_(pool), db_(std::move(db)) {}

    ReaderPool* pool_;
    std::unique_ptr<sqlite::Db> db_;
  };

  // An idle connection, a new one while fewer than `max_open` exist, or else
  // the next one returned (waiting for it). Errors are Db::OpenReadOnly's.
  absl::StatusOr<Borrowed> Borrow() ABSL_LOCKS_EXCLUDED(mu_);

 private:
  void Return(std::unique_ptr<sqlite::Db> db) ABSL_LOCKS_EXCLUDED(mu_);

  const std::string path_;
  const int max_open_;
  absl::Mutex mu_;
  std::vector<std::unique_ptr<sqlite::Db>> idle_ ABSL_GUARDED_BY(mu_);
  int open_ ABSL_GUARDED_BY(mu_) = 0;  // idle or lent
};

}  // namespace berth::store

#endif  // BERTH_STORE_READER_POOL_H_
