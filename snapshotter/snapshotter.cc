#include "snapshotter/snapshotter.h"

namespace berth::snapshotter {

absl::string_view KindName(Kind kind) {
  switch (kind) {
    case Kind::kView:
      return "view";
    case Kind::kActive:
      return "active";
    case Kind::kCommitted:
      return "committed";
  }
  return "unknown";
}

std::optional<std::string> InfoAdaptor::Field(const std::vector<std::string>& path) const {
  if (path.empty()) return std::nullopt;
  if (path[0] == "name") return info_.name;
  if (path[0] == "parent") return info_.parent;
  if (path[0] == "kind") return std::string(KindName(info_.kind));
  if (path[0] == "labels") {
    return filters::LabelField(info_.labels, absl::MakeConstSpan(path).subspan(1));
  }
  return std::nullopt;
}

}  // namespace berth::snapshotter
