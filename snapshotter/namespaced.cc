// One namespace's view of a shared snapshotter (declared in snapshotter.h).
//
// Every key a namespace uses is stored as "<namespace>/<key>": namespaces are
// identifiers, so the prefix cannot collide with another namespace's, and a
// namespace never names, lists or removes another's snapshots. Errors from
// the shared snapshotter quote stored keys; the prefix is taken out of them
// again, so a client reads the key it sent.
#include <optional>
#include <string>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/synchronization/mutex.h"
#include "base/identifiers.h"
#include "base/status.h"
#include "base/strings.h"
#include "filters/filters.h"
#include "snapshotter/snapshotter.h"

namespace berth::snapshotter {
namespace {

using Backend = std::shared_ptr<Snapshotter>;

class NamespacedSnapshotter final : public Snapshotter {
 public:
  NamespacedSnapshotter(Backend backend, absl::string_view ns)
      : prefix_(StoredKey(ns, "")), backend_(std::move(backend)) {}

  absl::StatusOr<Info> Stat(absl::string_view key) override {
    BERTH_ASSIGN_OR_RETURN(Backend backend, Open(key));
    return Out(backend->Stat(In(key)));
  }

  absl::StatusOr<Info> Update(const Info& info, absl::Span<const std::string> field_paths) override {
    BERTH_ASSIGN_OR_RETURN(Backend backend, Open(info.name));
    Info stored = info;
    stored.name = In(info.name);
    return Out(backend->Update(stored, field_paths));
  }

  absl::StatusOr<snapshotter::Usage> Usage(absl::string_view key) override {
    BERTH_ASSIGN_OR_RETURN(Backend backend, Open(key));
    return Out(backend->Usage(In(key)));
  }

  absl::StatusOr<std::vector<Mount>> Mounts(absl::string_view key) override {
    BERTH_ASSIGN_OR_RETURN(Backend backend, Open(key));
    return Out(backend->Mounts(In(key)));
  }

  absl::StatusOr<std::vector<Mount>> Prepare(absl::string_view key, absl::string_view parent,
                                             const Labels& labels) override {
    BERTH_ASSIGN_OR_RETURN(Backend backend, Open(key));
    return Out(backend->Prepare(In(key), InParent(parent), labels));
  }

  absl::StatusOr<std::vector<Mount>> View(absl::string_view key, absl::string_view parent,
                                          const Labels& labels) override {
    BERTH_ASSIGN_OR_RETURN(Backend backend, Open(key));
    return Out(backend->View(In(key), InParent(parent), labels));
  }

  absl::Status Commit(absl::string_view name, absl::string_view key,
                      const Labels& labels) override {
    BERTH_RETURN_IF_ERROR(CheckKey(name));
    BERTH_ASSIGN_OR_RETURN(Backend backend, Open(key));
    return Out(backend->Commit(In(name), In(key), labels));
  }

  absl::Status Remove(absl::string_view key) override {
    BERTH_ASSIGN_OR_RETURN(Backend backend, Open(key));
    return Out(backend->Remove(In(key)));
  }

  absl::Status Walk(const WalkFunction& fn, absl::Span<const std::string> filter_strings) override {
    BERTH_ASSIGN_OR_RETURN(Backend backend, Open());
    // Filters see the namespace's names, so they are applied here, not by
    // the shared snapshotter.
    BERTH_ASSIGN_OR_RETURN(filters::Filter filter, filters::Filter::ParseAny(filter_strings));
    return Out(backend->Walk([&](const Info& stored) -> absl::Status {
      if (!absl::StartsWith(stored.name, prefix_)) return absl::OkStatus();
      Info info = Strip(stored);
      if (!filter.Match(InfoAdaptor(info))) return absl::OkStatus();
      return fn(info);
    }));
  }

  absl::Status Cleanup() override {
    BERTH_ASSIGN_OR_RETURN(Backend backend, Open());
    return Out(backend->Cleanup());
  }

  // Lets go of the shared snapshotter, which closes when its last user
  // does: the daemon keeps it open while any request runs.
  absl::Status Close() override {
    absl::MutexLock lock(&mu_);
    backend_.reset();
    return absl::OkStatus();
  }

 private:
  // The shared snapshotter, unless this view is closed.
  absl::StatusOr<Backend> Open() const {
    absl::MutexLock lock(&mu_);
    if (backend_ == nullptr) return absl::FailedPreconditionError("snapshotter is closed");
    return backend_;
  }
  absl::StatusOr<Backend> Open(absl::string_view key) const {
    BERTH_RETURN_IF_ERROR(CheckKey(key));
    return Open();
  }

  static absl::Status CheckKey(absl::string_view key) {
    if (key.empty()) return absl::InvalidArgumentError("snapshot key must not be empty");
    if (key.size() > kMaxKeyLength) {
      return absl::InvalidArgumentError(absl::StrCat("snapshot key ", Quote(key),
                                                     " is longer than ", kMaxKeyLength, " bytes"));
    }
    return absl::OkStatus();
  }

  std::string In(absl::string_view key) const { return absl::StrCat(prefix_, key); }
  std::string InParent(absl::string_view parent) const {
    return parent.empty() ? std::string() : In(parent);
  }

  Info Strip(Info info) const {
    if (absl::StartsWith(info.name, prefix_)) info.name.erase(0, prefix_.size());
    if (absl::StartsWith(info.parent, prefix_)) info.parent.erase(0, prefix_.size());
    return info;
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
    return Strip(*std::move(result));
  }

  const std::string prefix_;
  mutable absl::Mutex mu_;
  Backend backend_ ABSL_GUARDED_BY(mu_);
};

}  // namespace

std::unique_ptr<Snapshotter> InNamespace(std::shared_ptr<Snapshotter> backend, absl::string_view ns) {
  return std::make_unique<NamespacedSnapshotter>(std::move(backend), ns);
}

std::string StoredKey(absl::string_view ns, absl::string_view key) {
  return absl::StrCat(ns, "/", key);
}

std::optional<NamespacedKey> SplitStoredKey(absl::string_view stored) {
  const size_t slash = stored.find('/');
  if (slash == absl::string_view::npos || slash + 1 == stored.size()) return std::nullopt;
  absl::string_view ns = stored.substr(0, slash);
  if (!identifiers::Validate(ns).ok()) return std::nullopt;
  return NamespacedKey{std::string(ns), std::string(stored.substr(slash + 1))};
}

}  // namespace berth::snapshotter
