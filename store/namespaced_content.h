// Content as one namespace sees it.
//
// Blobs live once on disk in the ContentStore, shared by every namespace; a
// namespace sees a blob only while it has a record of it in the metadata
// store, with its own labels. NamespacedContent joins the two: reads check
// the record, ingests are kept apart per namespace (the same ref in two
// namespaces is two ingests), and a commit stores the blob and creates the
// record — tied to the request's lease, if any — as one step that garbage
// collection cannot cut in half.
//
//   auto writer = content.Writer("default", "upload-1", 0, "", /*lease=*/"");
//   (*writer)->Write(bytes);
//   (*writer)->Commit(0, "", {{"owner", "alice"}});   // record + blob
//   content.Info("default", digest);                    // found
//   content.Info("other", digest);                      // NotFound
//   content.Delete("default", digest);   // the record; the blob goes at the next GC
#ifndef BERTH_STORE_NAMESPACED_CONTENT_H_
#define BERTH_STORE_NAMESPACED_CONTENT_H_

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "store/content_store.h"
#include "store/metadata.h"

namespace berth::store {

class NamespacedContent;

// An open ingest of one namespace. Holds the ref until destroyed; the
// partial data stays for a later writer to resume.
class NamespacedWriter {
 public:
  IngestStatus Status();
  absl::Status Write(absl::string_view data);
  absl::Status Truncate(int64_t size);
  std::string Digest();

  // Stores the blob (size and expected digest checked when given: mismatch
  // is FailedPrecondition and the ingest stays) and creates the namespace's
  // record with `labels`, tied to the writer's lease. AlreadyExists when the
  // namespace already has this content; a blob another namespace stored is
  // shared, not written twice. Returns the digest.
  absl::StatusOr<std::string> Commit(int64_t size, absl::string_view expected,
                                     const std::map<std::string, std::string>& labels);

 private:
  friend class NamespacedContent;
  NamespacedWriter(NamespacedContent& content, std::string ns, std::string ref,
                   std::string lease, std::unique_ptr<Writer> writer)
      : content_(content), ns_(std::move(ns)), ref_(std::move(ref)), lease_(std::move(lease)),
        writer_(std::move(writer)) {}

  NamespacedContent& content_;
  const std::string ns_;
  const std::string ref_;
  const std::string lease_;
  std::unique_ptr<Writer> writer_;
};

class NamespacedContent {
 public:
  NamespacedContent(std::shared_ptr<ContentStore> blobs, std::shared_ptr<MetadataStore> metadata)
      : blobs_(std::move(blobs)), metadata_(std::move(metadata)) {}

  // Records: as MetadataStore's content functions (NotFound when the
  // namespace has no record).
  absl::StatusOr<ContentRecord> Info(absl::string_view ns, absl::string_view digest);
  absl::StatusOr<std::vector<ContentRecord>> List(absl::string_view ns);
  absl::StatusOr<ContentRecord> Update(absl::string_view ns, const ContentRecord& record,
                                       const std::vector<std::string>& field_mask_paths);
  // Removes the namespace's record; the blob stays until garbage collection
  // finds no namespace recording it.
  absl::Status Delete(absl::string_view ns, absl::string_view digest);

  // A reader of the blob, if the namespace has it.
  absl::StatusOr<std::unique_ptr<BlobReader>> Read(absl::string_view ns, absl::string_view digest);

  // Opens or resumes the namespace's ingest `ref`. AlreadyExists if
  // `expected` names content the namespace has; Unavailable while another
  // writer holds the ref; NotFound for an unknown `lease` (which, when
  // given, keeps the ingest and what it commits from garbage collection).
  absl::StatusOr<std::unique_ptr<NamespacedWriter>> Writer(absl::string_view ns,
                                                           absl::string_view ref, int64_t total,
                                                           absl::string_view expected,
                                                           absl::string_view lease);
  absl::StatusOr<IngestStatus> Status(absl::string_view ns, absl::string_view ref);
  absl::StatusOr<std::vector<IngestStatus>> ListStatuses(absl::string_view ns);
  absl::Status Abort(absl::string_view ns, absl::string_view ref);

  // Garbage collection's last step: deletes each blob of `digests` that no
  // namespace records, checked again while no commit can add a record.
  absl::Status RemoveUnreferencedBlobs(const std::vector<std::string>& digests);

  // Deletes every blob on disk that no namespace records: what a crash
  // between a blob's rename and its record's commit leaves behind.
  absl::Status RemoveUnrecordedBlobs();

  // Calls `observer` after each commit that records content (on the
  // committing thread, with no lock held: it must return quickly).
  using CommitObserver = std::function<void(const std::string& ns, const ContentRecord& record)>;
  void OnCommit(CommitObserver observer);

 private:
  friend class NamespacedWriter;
  void NotifyCommitted(const std::string& ns, const ContentRecord& record);

  // Held shared from a blob's commit until its record exists, exclusive
  // while blobs are removed: a blob just committed is never swept before
  // its record is written.
  absl::Mutex commit_mu_;
  const std::shared_ptr<ContentStore> blobs_;
  const std::shared_ptr<MetadataStore> metadata_;
  absl::Mutex observers_mu_;
  std::vector<CommitObserver> observers_ ABSL_GUARDED_BY(observers_mu_);
};

// What the metadata plugin provides: the metadata store, and content seen
// through it (sharing its commit lock with garbage collection), as
// containerd's metadata database provides its content store.
struct Database {
  std::shared_ptr<MetadataStore> metadata;
  std::shared_ptr<NamespacedContent> content;
};

}  // namespace berth::store

#endif  // BERTH_STORE_NAMESPACED_CONTENT_H_
