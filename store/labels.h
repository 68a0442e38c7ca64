// Label validation shared by every labelled object in the metadata store
// (namespaces now; images, containers, content, snapshots later), as
// containerd's `labels.Validate`.
#ifndef BERTH_STORE_LABELS_H_
#define BERTH_STORE_LABELS_H_

#include <cstddef>
#include <map>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace berth::store {

// containerd's bound on one label: key and value together.
inline constexpr size_t kMaxLabelSize = 4096;

// InvalidArgument if `key` is empty (containerd's bolt store refuses an empty
// key too, with an error that is not InvalidArgument) or key and value
// together exceed kMaxLabelSize; the message quotes the key (abbreviated).
absl::Status ValidateLabel(absl::string_view key, absl::string_view value);

// ValidateLabel for each, stopping at the first bad one.
absl::Status ValidateLabels(const std::map<std::string, std::string>& labels);

}  // namespace berth::store

#endif  // BERTH_STORE_LABELS_H_
