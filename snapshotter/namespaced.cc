// One namespace's view of a shared snapshotter (declared in snapshotter.h).
//
// Every key a namespace uses is stored as "<namespace>/<key>": namespaces are
// identifiers, so the prefix cannot collide with another namespace's, and a
// namespace never names, lists or removes another's snapshots. Errors from
// the shared snapshotter quote stored keys; the prefix is taken out of them
// again, so a client reads the key it sent.
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "base/status.h"
#include "filters/filters.h"
#include "snapshotter/snapshotter.h"

namespace berth::snapshotter {
namespace {

class NamespacedSnapshotter final : public Snapshotter {
 public:
  NamespacedSnapshotter(std::shared_ptr<Snapshotter> backend, absl::string_view ns)
      : backend_(std::move(backend)), prefix_(absl::StrCat(ns, "/")) {}

  absl::StatusOr<Info> Stat(absl::string_view key) override {
    BERTH_RETURN_IF_ERROR(CheckKey(key));
    return Out(backend_->Stat(In(key)));
  }

  absl::StatusOr<Info> Update(const Info& info, absl::Span<const std::string> field_paths) override {
    BERTH_RETURN_IF_ERROR(CheckKey(info.name));
    Info stored = info;
    stored.name = In(info.name);
    return Out(backend_->Update(stored, field_paths));
  }

  absl::StatusOr<snapshotter::Usage> Usage(absl::string_view key) override {
    BERTH_RETURN_IF_ERROR(CheckKey(key));
    return Out(backend_->Usage(In(key)));
  }

  absl::StatusOr<std::vector<Mount>> Mounts(absl::string_view key) override {
    BERTH_RETURN_IF_ERROR(CheckKey(key));
    return Out(backend_->Mounts(In(key)));
  }

  absl::StatusOr<std::vector<Mount>> Prepare(absl::string_view key, absl::string_view parent,
                                             const Labels& labels) override {
    BERTH_RETURN_IF_ERROR(CheckKey(key));
    return Out(backend_->Prepare(In(key), InParent(parent), labels));
  }

  absl::StatusOr<std::vector<Mount>> View(absl::string_view key, absl::string_view parent,
                                          const Labels& labels) override {
    BERTH_RETURN_IF_ERROR(CheckKey(key));
    return Out(backend_->View(In(key), InParent(parent), labels));
  }

  absl::Status Commit(absl::string_view name, absl::string_view key,
                      const Labels& labels) override {
    BERTH_RETURN_IF_ERROR(CheckKey(name));
    BERTH_RETURN_IF_ERROR(CheckKey(key));
    return Out(backend_->Commit(In(name), In(key), labels));
  }

  absl::Status Remove(absl::string_view key) override {
    BERTH_RETURN_IF_ERROR(CheckKey(key));
    return Out(backend_->Remove(In(key)));
  }

  absl::Status Walk(const WalkFunction& fn, absl::Span<const std::string> filter_strings) override {
    // Filters see the namespace's names, so they are applied here, not by
    // the shared snapshotter.
    BERTH_ASSIGN_OR_RETURN(filters::Filter filter, filters::Filter::ParseAny(filter_strings));
    return Out(backend_->Walk([&](const Info& stored) -> absl::Status {
      if (!absl::StartsWith(stored.name, prefix_)) return absl::OkStatus();
      Info info = stored;
      info.name = stored.name.substr(prefix_.size());
      info.parent = absl::StartsWith(stored.parent, prefix_)
                        ? stored.parent.substr(prefix_.size())
                        : stored.parent;
      if (!filter.Match(InfoAdaptor(info))) return absl::OkStatus();
      return fn(info);
    }));
  }

  absl::Status Cleanup() override { return Out(backend_->Cleanup()); }

  // The shared snapshotter outlives every namespace's view of it.
  absl::Status Close() override { return absl::OkStatus(); }

 private:
  static absl::Status CheckKey(absl::string_view key) {
    if (key.empty()) return absl::InvalidArgumentError("snapshot key must not be empty");
    return absl::OkStatus();
  }

  std::string In(absl::string_view key) const { return absl::StrCat(prefix_, key); }
  std::string InParent(absl::string_view parent) const {
    return parent.empty() ? std::string() : In(parent);
  }

  absl::Status Out(const absl::Status& status) const {
    if (status.ok()) return status;
    return absl::Status(status.code(),
                        absl::StrReplaceAll(status.message(), {{absl::StrCat("\"", prefix_), "\""}}));
  }
  template <typename T>
  absl::StatusOr<T> Out(absl::StatusOr<T> result) const {
    if (!result.ok()) return Out(result.status());
    return result;
  }
  absl::StatusOr<Info> Out(absl::StatusOr<Info> result) const {
    if (!result.ok()) return Out(result.status());
    result->name = result->name.substr(prefix_.size());
    if (absl::StartsWith(result->parent, prefix_)) result->parent = result->parent.substr(prefix_.size());
    return result;
  }

  const std::shared_ptr<Snapshotter> backend_;
  const std::string prefix_;
};

}  // namespace

std::unique_ptr<Snapshotter> InNamespace(std::shared_ptr<Snapshotter> backend, absl::string_view ns) {
  return std::make_unique<NamespacedSnapshotter>(std::move(backend), ns);
}

}  // namespace berth::snapshotter
