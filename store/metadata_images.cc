// Images: a name in a namespace pointing at a target descriptor.
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "base/status.h"
#include "store/labels.h"
#include "store/metadata_internal.h"
#include "store/sqlite.h"

namespace berth::store::metadata_internal {
namespace {

using sqlite::Db;
using sqlite::Statement;

std::string ImageName(absl::string_view ns, absl::string_view name) {
  return absl::StrCat("image ", Quote(name), " in namespace ", Quote(ns));
}

absl::Status ImageNotFound(absl::string_view ns, absl::string_view name) {
  return absl::NotFoundError(absl::StrCat(ImageName(ns, name), ": not found"));
}

absl::Status ValidateName(absl::string_view ns, absl::string_view name) {
  BERTH_RETURN_IF_ERROR(ValidateNamespaceName(ns));
  if (name.empty()) return absl::InvalidArgumentError("image name must not be empty");
  return absl::OkStatus();
}

// containerd's rules for what it stores of a target.
absl::Status ValidateImage(absl::string_view ns, const Image& image) {
  BERTH_RETURN_IF_ERROR(ValidateName(ns, image.name));
  const std::string what = ImageName(ns, image.name);
  BERTH_RETURN_IF_ERROR(Prefixed(what, ValidateLabels(image.labels)));
  BERTH_RETURN_IF_ERROR(
      Prefixed(absl::StrCat(what, ": target digest"), digest::Validate(image.target.digest)));
  if (image.target.size <= 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, ": target size must be greater than zero, not ", image.target.size));
  }
  if (image.target.media_type.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(what, ": target media type must be set"));
  }
  return absl::OkStatus();
}

constexpr char kImageColumns[] =
    "id, name, target_media_type, target_digest, target_size, created_at, updated_at";

struct ImageRow {
  int64_t id;
  Image image;
};

ImageRow ReadImageRow(const Statement& stmt) {
  ImageRow row;
  row.id = stmt.ColumnInt(0);
  row.image.name = stmt.ColumnText(1);
  row.image.target.media_type = stmt.ColumnText(2);
  row.image.target.digest = stmt.ColumnText(3);
  row.image.target.size = stmt.ColumnInt(4);
  row.image.created_at = FromNanos(stmt.ColumnInt(5));
  row.image.updated_at = FromNanos(stmt.ColumnInt(6));
  return row;
}

absl::Status ReadParts(Db& db, ImageRow& row) {
  BERTH_ASSIGN_OR_RETURN(row.image.labels, ReadLabels(db, kImageLabels, row.id));
  BERTH_ASSIGN_OR_RETURN(row.image.target.annotations, ReadLabels(db, kImageAnnotations, row.id));
  return absl::OkStatus();
}

absl::StatusOr<ImageRow> FindImage(Db& db, absl::string_view ns, absl::string_view name) {
  BERTH_ASSIGN_OR_RETURN(
      Statement stmt, db.Prepare(absl::StrCat("SELECT ", kImageColumns,
                                              " FROM images WHERE namespace = ?1 AND name = ?2")));
  BERTH_RETURN_IF_ERROR(stmt.Bind(1, ns));
  BERTH_RETURN_IF_ERROR(stmt.Bind(2, name));
  BERTH_ASSIGN_OR_RETURN(bool found, stmt.Step());
  if (!found) return ImageNotFound(ns, name);
  ImageRow row = ReadImageRow(stmt);
  BERTH_RETURN_IF_ERROR(ReadParts(db, row));
  return row;
}

absl::Status WriteTarget(Db& db, int64_t id, const Image& image, int64_t now) {
  BERTH_ASSIGN_OR_RETURN(Statement update, db.Prepare(R"sql(
      UPDATE images SET target_media_type = ?2, target_digest = ?3, target_size = ?4,
                        updated_at = ?5
      WHERE id = ?1)sql"));
  BERTH_RETURN_IF_ERROR(update.Bind(1, id));
  BERTH_RETURN_IF_ERROR(update.Bind(2, image.target.media_type));
  BERTH_RETURN_IF_ERROR(update.Bind(3, image.target.digest));
  BERTH_RETURN_IF_ERROR(update.Bind(4, image.target.size));
  BERTH_RETURN_IF_ERROR(update.Bind(5, now));
  BERTH_RETURN_IF_ERROR(update.Run());
  BERTH_RETURN_IF_ERROR(ReplaceLabels(db, kImageLabels, id, image.labels));
  return ReplaceLabels(db, kImageAnnotations, id, image.target.annotations);
}

// `current` with what `paths` take from `requested` (containerd's image
// field masks); an empty mask takes labels and target whole.
absl::StatusOr<Image> Masked(Image current, const Image& requested,
                             const std::vector<std::string>& paths, absl::string_view what) {
  if (paths.empty()) {
    current.labels = requested.labels;
    current.target = requested.target;
    return current;
  }
  // (An empty value, copied, is dropped when the labels are written.)
  for (const std::string& path : paths) {
    if (path == "labels") {
      current.labels = requested.labels;
    } else if (absl::StartsWith(path, "labels.")) {
      CopyEntry(current.labels, requested.labels, path.substr(sizeof("labels.") - 1));
    } else if (path == "target") {
      current.target = requested.target;
    } else if (path == "annotations") {
      current.target.annotations = requested.target.annotations;
    } else if (absl::StartsWith(path, "annotations.")) {
      CopyEntry(current.target.annotations, requested.target.annotations,
                path.substr(sizeof("annotations.") - 1));
    } else {
      return absl::InvalidArgumentError(
          absl::StrCat("cannot update field ", Quote(path), " of ", what));
    }
  }
  return current;
}

}  // namespace

absl::StatusOr<Image> SqliteMetadataStore::GetImage(absl::string_view ns, absl::string_view name) {
  BERTH_RETURN_IF_ERROR(ValidateName(ns, name));
  return Read([&](Db& db) -> absl::StatusOr<Image> {
    BERTH_ASSIGN_OR_RETURN(ImageRow row, FindImage(db, ns, name));
    return std::move(row.image);
  });
}

absl::StatusOr<std::vector<Image>> SqliteMetadataStore::ListImages(absl::string_view ns) {
  BERTH_RETURN_IF_ERROR(ValidateNamespaceName(ns));
  return Read([&](Db& db) -> absl::StatusOr<std::vector<Image>> {
    BERTH_ASSIGN_OR_RETURN(Statement rows, db.Prepare(absl::StrCat(
                                               "SELECT ", kImageColumns,
                                               " FROM images WHERE namespace = ?1 ORDER BY name")));
    BERTH_RETURN_IF_ERROR(rows.Bind(1, ns));
    std::vector<Image> out;
    while (true) {
      BERTH_ASSIGN_OR_RETURN(bool found, rows.Step());
      if (!found) return out;
      ImageRow row = ReadImageRow(rows);
      BERTH_RETURN_IF_ERROR(ReadParts(db, row));
      out.push_back(std::move(row.image));
    }
  });
}

absl::StatusOr<Image> SqliteMetadataStore::CreateImage(absl::string_view ns, const Image& image) {
  BERTH_RETURN_IF_ERROR(ValidateImage(ns, image));
  const int64_t now = ToNanos(absl::Now());
  return Write([&](Db& db) -> absl::StatusOr<Image> {
    BERTH_RETURN_IF_ERROR(EnsureNamespace(db, ns));
    BERTH_ASSIGN_OR_RETURN(Statement insert, db.Prepare(R"sql(
        INSERT INTO images (namespace, name, target_media_type, target_digest, target_size,
                            created_at, updated_at)
        VALUES (?1, ?2, '', '', 0, ?3, ?3)
        ON CONFLICT (namespace, name) DO NOTHING
        RETURNING id)sql"));
    BERTH_RETURN_IF_ERROR(insert.Bind(1, ns));
    BERTH_RETURN_IF_ERROR(insert.Bind(2, image.name));
    BERTH_RETURN_IF_ERROR(insert.Bind(3, now));
    BERTH_ASSIGN_OR_RETURN(bool inserted, insert.Step());
    if (!inserted) {
      return absl::AlreadyExistsError(absl::StrCat(ImageName(ns, image.name), ": already exists"));
    }
    const int64_t id = insert.ColumnInt(0);
    BERTH_ASSIGN_OR_RETURN(bool more, insert.Step());
    if (more) return absl::InternalError("inserting one image returned two rows");
    BERTH_RETURN_IF_ERROR(WriteTarget(db, id, image, now));
    BERTH_ASSIGN_OR_RETURN(ImageRow row, FindImage(db, ns, image.name));
    return std::move(row.image);
  });
}

absl::StatusOr<Image> SqliteMetadataStore::UpdateImage(
    absl::string_view ns, const Image& image, const std::vector<std::string>& field_mask_paths) {
  BERTH_RETURN_IF_ERROR(ValidateName(ns, image.name));
  const int64_t now = ToNanos(absl::Now());
  return Write([&](Db& db) -> absl::StatusOr<Image> {
    BERTH_ASSIGN_OR_RETURN(ImageRow row, FindImage(db, ns, image.name));
    BERTH_ASSIGN_OR_RETURN(Image updated,
                           Masked(row.image, image, field_mask_paths, ImageName(ns, image.name)));
    BERTH_RETURN_IF_ERROR(ValidateImage(ns, updated));
    BERTH_RETURN_IF_ERROR(WriteTarget(db, row.id, updated, now));
    BERTH_ASSIGN_OR_RETURN(ImageRow written, FindImage(db, ns, image.name));
    return std::move(written.image);
  });
}

absl::Status SqliteMetadataStore::DeleteImage(absl::string_view ns, absl::string_view name) {
  BERTH_RETURN_IF_ERROR(ValidateName(ns, name));
  return Write([&](Db& db) -> absl::Status {
    // Its labels and annotations go with it (ON DELETE CASCADE).
    BERTH_ASSIGN_OR_RETURN(Statement erase,
                           db.Prepare("DELETE FROM images WHERE namespace = ?1 AND name = ?2"));
    BERTH_RETURN_IF_ERROR(erase.Bind(1, ns));
    BERTH_RETURN_IF_ERROR(erase.Bind(2, name));
    BERTH_RETURN_IF_ERROR(erase.Run());
    BERTH_ASSIGN_OR_RETURN(int64_t changed, sqlite::QueryInt(db, "SELECT changes()"));
    if (changed == 0) return ImageNotFound(ns, name);
    return absl::OkStatus();
  });
}

}  // namespace berth::store::metadata_internal
