// The content store: immutable blobs named by their SHA-256 digest.
//
// The model. A blob is a byte string named by its digest, `sha256:` and 64
// lowercase hex digits; the name is the content, so a blob is written once
// and never changes. Blobs enter through an ingest: a client picks a ref (any
// string it likes: `layer-3`, `pull/docker.io/library/redis`) and opens a
// Writer on it. The writer appends bytes; Commit checks them against the
// size and digest the client expected and, when they match, publishes them
// as a blob with one atomic rename. Until then the bytes belong to the ingest,
// which outlives the Writer, the client's connection and the daemon: opening
// a writer on the same ref again resumes at the end of the bytes already
// there. One writer per ref at a time.
//
// A worked example. `ctr content ingest` of a 10 MiB layer under ref `L`: the
// service calls OpenWriter("L", 10485760, "sha256:ab…") and writes 4 MiB;
// then the connection drops and the Writer is destroyed. Status("L") now
// reports offset 4194304. berthd restarts; the client asks Status, opens the
// writer again (the store re-reads the 4 MiB to rebuild the running digest,
// so Writer::Status() also says 4194304), sends the other 6 MiB, and
// Commit(10485760, "sha256:ab…") fsyncs the bytes, renames them to
// `blobs/sha256/ab…` and removes the ingest. Had one byte been wrong, Commit
// would have answered FailedPrecondition, naming both digests, and kept the
// ingest for the client to Truncate(0) and write again. A second client
// ingesting the same layer under ref `M` meanwhile gets AlreadyExists, from
// OpenWriter if it named the expected digest, else from its Commit.
//
// On disk, under the root (berthd passes `<root>/io.containerd.content.v1.content`;
// the layout is containerd's):
//   blobs/sha256/<hex>        a committed blob, mode 0400
//   ingest/<sha256 of ref>/   one ingest; the ref is hashed into the name and
//                             never used as a path, so `../x`, `a/b` or a NUL
//                             byte in it are harmless
//     data                    the bytes written so far
//     ref                     the ref, verbatim (for ListStatuses)
//     total, expected         what the client declared (may be empty)
//     startedat, updatedat    RFC 3339 times
// Directories are 0700 and files 0600: the store is root's alone (containerd
// uses 0755 and 0444 for blobs).
//
// What this layer does not know: namespaces, labels, leases and garbage
// collection are the metadata store's. Here every blob is visible to every
// caller.
//
// Durability. A blob's bytes are fsynced before the rename that publishes it,
// and the directory after it: once Commit returns OK the blob survives power
// loss, and a blob on disk always matches its name. An ingest survives a
// killed daemon whole; after power loss it may be shorter or gone, and is
// resumed from what remains.
//
// Threads. A ContentStore may be called from any number of threads; a Writer
// or a BlobReader by one thread at a time.
// REQUIRES: every Writer and BlobReader is destroyed before its store.
//
// Semantics follow containerd 1.6's local store (`content/local/store.go`,
// `writer.go`) except where a contract below says otherwise.
#ifndef BERTH_STORE_CONTENT_STORE_H_
#define BERTH_STORE_CONTENT_STORE_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "base/digest.h"
#include "store/env.h"

namespace berth::store {

struct BlobInfo {
  std::string digest;
  int64_t size = 0;
  // Both are the blob file's modification time, i.e. when its last byte was
  // written (containerd reports the access time as updated_at, which mount
  // options make meaningless; the metadata store keeps the real one).
  absl::Time created_at;
  absl::Time updated_at;
};

struct IngestStatus {
  std::string ref;
  // Bytes written so far: where the next write goes.
  int64_t offset = 0;
  // The size the client declared, 0 if it did not.
  int64_t total = 0;
  // The digest the client declared, empty if it did not.
  std::string expected;
  absl::Time started_at;
  absl::Time updated_at;
};

// Reads one blob, in chunks of the caller's choosing. It holds the blob open:
// a Delete meanwhile does not disturb it.
class BlobReader {
 public:
  virtual ~BlobReader() = default;

  virtual int64_t Size() const = 0;

  // Replaces `*out` with up to `max_bytes` bytes starting at `offset`; fewer
  // only at the end of the blob, none at offset == Size().
  // Errors: InvalidArgument for offset < 0; OutOfRange for offset > Size().
  virtual absl::Status ReadAt(int64_t offset, size_t max_bytes, std::string* out) = 0;
};

// An open ingest. It holds its ref until destroyed or committed; destroying
// it without Commit keeps the bytes written (nothing is synced, though).
class Writer {
 public:
  virtual ~Writer() = default;

  // From memory: no I/O.
  virtual IngestStatus Status() const = 0;

  // Appends `data` at Status().offset.
  // On error (ResourceExhausted when the disk is full, …) the leading bytes
  // that did reach the file count as written: Status().offset and Digest()
  // include them, and a client resumes from Status().offset.
  // FailedPrecondition once committed.
  virtual absl::Status Write(absl::string_view data) = 0;

  // Discards every byte from `size` on; Truncate(0) restarts the ingest
  // (containerd supports only 0). InvalidArgument unless
  // 0 <= size <= Status().offset. Nothing changes on error.
  virtual absl::Status Truncate(int64_t size) = 0;

  // The digest of the bytes written so far.
  virtual std::string Digest() const = 0;

  // Publishes the bytes as a blob and returns its digest. They must be
  // `size` bytes long when size > 0, and hash to `expected` when it is not
  // empty; so too for the total and expected digest given to OpenWriter.
  // On OK the blob is durable, the ingest is gone and the writer is spent.
  // Errors:
  //  - InvalidArgument: size < 0, or `expected` fails digest::Validate.
  //  - FailedPrecondition: a size or digest mismatch, naming both values.
  //    Nothing is committed; the writer stays open for a retry (Truncate and
  //    write again, or Commit with the right values).
  //  - AlreadyExists: the blob exists already. The ingest is removed (as
  //    containerd does) and the writer is spent.
  //  - I/O errors from fsync or rename: nothing is committed, the writer
  //    stays open. Should only the final sync of blobs/ fail, the blob is in
  //    place but perhaps not durable: the error is returned, the ingest
  //    removed and the writer spent.
  virtual absl::StatusOr<std::string> Commit(int64_t size, absl::string_view expected) = 0;
};

class ContentStore {
 public:
  // Opens the store rooted at `root`, creating its directories (mode 0700)
  // as needed, and removes what an interrupted OpenWriter left behind.
  // Partial ingests are kept. `env` must outlive the store.
  static absl::StatusOr<std::unique_ptr<ContentStore>> Open(const std::string& root,
                                                            Env* env = Env::Default());

  virtual ~ContentStore() = default;

  // Errors for every method taking a digest: InvalidArgument when it fails
  // digest::Validate; NotFound (naming it) when there is no such blob.

  virtual absl::StatusOr<BlobInfo> Info(absl::string_view digest) = 0;

  virtual absl::StatusOr<std::unique_ptr<BlobReader>> OpenReader(absl::string_view digest) = 0;

  // Removes the blob. Readers already open keep reading it.
  virtual absl::Status Delete(absl::string_view digest) = 0;

  // Calls `fn` for each blob, in no particular order, and stops at the first
  // error `fn` returns, returning it. Files under blobs/ whose names are not
  // digests are skipped.
  virtual absl::Status Walk(const std::function<absl::Status(const BlobInfo&)>& fn) = 0;

  // Opens a writer on the ingest `ref`, creating the ingest, or resuming it
  // when one exists: the bytes already there are re-read to recover the
  // offset and the running digest. `total` (0: unknown) and `expected`
  // (empty: unknown) are recorded; on resume they must agree with what the
  // ingest recorded before, if it recorded anything.
  // Errors:
  //  - InvalidArgument: empty ref, total < 0, or `expected` fails digest::Validate.
  //  - Unavailable: another Writer holds `ref` ("ref X locked"); retry later.
  //  - AlreadyExists: `expected` names a blob the store holds already.
  //  - FailedPrecondition: resuming with a total or expected digest other
  //    than the one recorded (Abort the ingest to start over).
  //  - I/O errors (ResourceExhausted …): no ingest is created.
  virtual absl::StatusOr<std::unique_ptr<Writer>> OpenWriter(absl::string_view ref, int64_t total,
                                                             absl::string_view expected) = 0;

  // The ingest `ref`, read from disk (the offset is the size of its data, so
  // it follows a live Writer). NotFound when there is no such ingest.
  virtual absl::StatusOr<IngestStatus> Status(absl::string_view ref) = 0;

  // Every ingest, in no particular order. Ingests that vanish while being
  // listed, or are too damaged to name their ref, are left out.
  virtual absl::StatusOr<std::vector<IngestStatus>> ListStatuses() = 0;

  // Removes the ingest `ref` and its bytes. NotFound when there is none;
  // Unavailable while a Writer holds it (containerd removes it under the
  // writer's feet).
  virtual absl::Status Abort(absl::string_view ref) = 0;
};

}  // namespace berth::store

#endif  // BERTH_STORE_CONTENT_STORE_H_
