// The metadata database's schema, as the ordered list of migrations that
// builds it.
#ifndef BERTH_STORE_SCHEMA_H_
#define BERTH_STORE_SCHEMA_H_

#include <cstdint>

#include "absl/types/span.h"
#include "store/sqlite.h"

namespace berth::store {

// PRAGMA application_id of a Berth metadata database ("BrtM"), set by the first
// migration, so Open can refuse some other program's SQLite file instead of
// adding tables to it.
inline constexpr int32_t kApplicationId = 0x4272744d;

// Every migration Berth has ever shipped, oldest first. Append only: a shipped
// migration has already run on databases in the field and is never edited.
absl::Span<const sqlite::Migration> Migrations();

}  // namespace berth::store

#endif  // BERTH_STORE_SCHEMA_H_
