#include "store/namespaced_content.h"

#include <algorithm>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "base/identifiers.h"
#include "base/status.h"

namespace berth::store {
namespace {

// Namespaces are identifiers (no "/"), so "<namespace>/<ref>" keeps every
// namespace's refs apart in the shared store and splits back unambiguously.
std::string BackendRef(absl::string_view ns, absl::string_view ref) {
  return absl::StrCat(ns, "/", ref);
}

absl::Status CheckRef(absl::string_view ref) {
  if (ref.empty()) return absl::InvalidArgumentError("ingest ref must not be empty");
  return absl::OkStatus();
}

}  // namespace

IngestStatus NamespacedWriter::Status() {
  IngestStatus status = writer_->Status();
  status.ref = ref_;
  return status;
}

absl::Status NamespacedWriter::Write(absl::string_view data) { return writer_->Write(data); }

absl::Status NamespacedWriter::Truncate(int64_t size) { return writer_->Truncate(size); }

std::string NamespacedWriter::Digest() { return writer_->Digest(); }

absl::StatusOr<std::string> NamespacedWriter::Commit(
    int64_t size, absl::string_view expected, const std::map<std::string, std::string>& labels) {
  const std::string digest = expected.empty() ? writer_->Digest() : std::string(expected);
  const int64_t written = writer_->Status().offset;
  ContentRecord record;
  {
    absl::ReaderMutexLock lock(&content_.commit_mu_);
    absl::StatusOr<std::string> committed = writer_->Commit(size, expected);
    // Another namespace's copy of the same bytes serves this one too.
    if (!committed.ok() && !absl::IsAlreadyExists(committed.status())) return committed.status();
    record.digest = committed.ok() ? *committed : digest;
    record.size = size > 0 ? size : written;
    record.labels = labels;
    BERTH_RETURN_IF_ERROR(content_.metadata_->AddContent(ns_, record, lease_));
  }
  content_.NotifyCommitted(ns_, record);
  return record.digest;
}

void NamespacedContent::OnCommit(CommitObserver observer) {
  absl::MutexLock lock(&observers_mu_);
  observers_.push_back(std::move(observer));
}

void NamespacedContent::NotifyCommitted(const std::string& ns, const ContentRecord& record) {
  std::vector<CommitObserver> observers;
  {
    absl::MutexLock lock(&observers_mu_);
    observers = observers_;
  }
  for (const CommitObserver& observer : observers) observer(ns, record);
}

absl::StatusOr<ContentRecord> NamespacedContent::Info(absl::string_view ns,
                                                      absl::string_view digest) {
  return metadata_->GetContent(ns, digest);
}

absl::StatusOr<std::vector<ContentRecord>> NamespacedContent::List(absl::string_view ns) {
  return metadata_->ListContent(ns);
}

absl::StatusOr<ContentRecord> NamespacedContent::Update(
    absl::string_view ns, const ContentRecord& record,
    const std::vector<std::string>& field_mask_paths) {
  return metadata_->UpdateContent(ns, record, field_mask_paths);
}

absl::Status NamespacedContent::Delete(absl::string_view ns, absl::string_view digest) {
  return metadata_->DeleteContent(ns, digest);
}

absl::StatusOr<std::unique_ptr<BlobReader>> NamespacedContent::Read(absl::string_view ns,
                                                                    absl::string_view digest) {
  BERTH_RETURN_IF_ERROR(metadata_->GetContent(ns, digest).status());
  return blobs_->OpenReader(digest);
}

absl::StatusOr<std::unique_ptr<NamespacedWriter>> NamespacedContent::Writer(
    absl::string_view ns, absl::string_view ref, int64_t total, absl::string_view expected,
    absl::string_view lease) {
  BERTH_RETURN_IF_ERROR(identifiers::Validate(ns));
  BERTH_RETURN_IF_ERROR(CheckRef(ref));
  if (!expected.empty()) {
    BERTH_RETURN_IF_ERROR(digest::Validate(expected));
    if (metadata_->GetContent(ns, expected).ok()) {
      return absl::AlreadyExistsError(absl::StrCat("content ", expected, ": already exists"));
    }
  }
  if (!lease.empty()) {
    BERTH_RETURN_IF_ERROR(metadata_->AddLeaseResource(
        ns, lease, LeaseResource{.type = "ingests", .id = std::string(ref)}));
  }
  // A blob another namespace holds is not an error here: the bytes are
  // written again and the commit links this namespace to the shared blob.
  absl::StatusOr<std::unique_ptr<store::Writer>> writer =
      blobs_->OpenWriter(BackendRef(ns, ref), total, "");
  if (!writer.ok()) return writer.status();
  return std::unique_ptr<NamespacedWriter>(new NamespacedWriter(
      *this, std::string(ns), std::string(ref), std::string(lease), *std::move(writer)));
}

absl::StatusOr<IngestStatus> NamespacedContent::Status(absl::string_view ns,
                                                       absl::string_view ref) {
  BERTH_RETURN_IF_ERROR(CheckRef(ref));
  BERTH_ASSIGN_OR_RETURN(IngestStatus status, blobs_->Status(BackendRef(ns, ref)));
  status.ref = std::string(ref);
  return status;
}

absl::StatusOr<std::vector<IngestStatus>> NamespacedContent::ListStatuses(absl::string_view ns) {
  BERTH_ASSIGN_OR_RETURN(std::vector<IngestStatus> all, blobs_->ListStatuses());
  const std::string prefix = BackendRef(ns, "");
  std::vector<IngestStatus> mine;
  for (IngestStatus& status : all) {
    if (!absl::StartsWith(status.ref, prefix)) continue;
    status.ref = status.ref.substr(prefix.size());
    mine.push_back(std::move(status));
  }
  return mine;
}

absl::Status NamespacedContent::Abort(absl::string_view ns, absl::string_view ref) {
  BERTH_RETURN_IF_ERROR(CheckRef(ref));
  return blobs_->Abort(BackendRef(ns, ref));
}

absl::Status NamespacedContent::RemoveUnreferencedBlobs(const std::vector<std::string>& digests) {
  // A few hundred at a time, so that a commit waits for one batch of
  // unlinks, not for a whole sweep.
  constexpr size_t kBatch = 256;
  for (size_t begin = 0; begin < digests.size(); begin += kBatch) {
    absl::MutexLock lock(&commit_mu_);
    for (size_t i = begin; i < std::min(digests.size(), begin + kBatch); ++i) {
      BERTH_ASSIGN_OR_RETURN(bool referenced, metadata_->ContentReferenced(digests[i]));
      if (referenced) continue;
      absl::Status deleted = blobs_->Delete(digests[i]);
      if (!deleted.ok() && !absl::IsNotFound(deleted)) return deleted;
    }
  }
  return absl::OkStatus();
}

absl::Status NamespacedContent::RemoveUnrecordedBlobs() {
  std::vector<std::string> digests;
  BERTH_RETURN_IF_ERROR(blobs_->Walk([&](const BlobInfo& blob) {
    digests.push_back(blob.digest);
    return absl::OkStatus();
  }));
  return RemoveUnreferencedBlobs(digests);
}

}  // namespace berth::store
