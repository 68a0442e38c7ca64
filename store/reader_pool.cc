#include "store/reader_pool.h"

#include <utility>

#include "base/status.h"

namespace berth::store {

ReaderPool::Borrowed::~Borrowed() {
  if (pool_ != nullptr) pool_->Return(std::move(db_));
}

absl::StatusOr<ReaderPool::Borrowed> ReaderPool::Borrow() {
  {
    absl::MutexLock lock(&mu_);
    auto available = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return !idle_.empty() || open_ < max_open_;
    };
    mu_.Await(absl::Condition(&available));
    if (!idle_.empty()) {
      std::unique_ptr<sqlite::Db> db = std::move(idle_.back());
      idle_.pop_back();
      return Borrowed(this, std::move(db));
    }
    ++open_;
  }
  // Opened outside the lock: opening reads the file.
  absl::StatusOr<sqlite::Db> db = sqlite::Db::OpenReadOnly(path_);
  if (!db.ok()) {
    absl::MutexLock lock(&mu_);
    --open_;
    return db.status();
  }
  return Borrowed(this, std::make_unique<sqlite::Db>(*std::move(db)));
}

void ReaderPool::Return(std::unique_ptr<sqlite::Db> db) {
  absl::MutexLock lock(&mu_);
  // A connection left inside a transaction (its rollback failed) would pin
  // an old snapshot forever: close it instead of lending it again.
  if (db->InTransaction()) {
    --open_;
    return;
  }
  idle_.push_back(std::move(db));
}

}  // namespace berth::store
