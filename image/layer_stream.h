// The byte streams under ApplyLayer and WriteDiff: SHA-256, incremental
// gzip/zstd decompression of a ByteSource and compression into a ByteSink,
// each hashing what passes through. Private to //image:layer.
#ifndef BERTH_IMAGE_LAYER_STREAM_H_
#define BERTH_IMAGE_LAYER_STREAM_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "base/sha256.h"
#include "image/layer.h"

namespace berth::image::layer_internal {

// Large enough that a read, a write or a decompressor call costs little
// beside the bytes it moves (the hot path of `ctr images import`).
inline constexpr size_t kBufferSize = 1 << 20;

// WriteDiff's levels (layer.h gives the reasons).
inline constexpr int kGzipLevel = 1;
inline constexpr int kZstdLevel = 3;

// The uncompressed bytes of a layer, pulled chunk by chunk from a ByteSource.
class UncompressedStream {
 public:
  // Reads the stream's first bytes to detect its compression (logging when
  // it disagrees with `hint`). `source` must outlive the stream.
  static absl::StatusOr<std::unique_ptr<UncompressedStream>> Open(ByteSource& source,
                                                                  Compression hint);
  virtual ~UncompressedStream() = default;

  // Fills `buf` with up to `cap` uncompressed bytes; 0 at the end.
  // InvalidArgument for a corrupt or truncated compressed stream.
  absl::StatusOr<size_t> Read(char* buf, size_t cap);

  Compression compression() const { return compression_; }

 protected:
  UncompressedStream(ByteSource& source, Compression compression);

  // Fills `out` with up to `cap` bytes, counting them in `*produced`; 0 only
  // at the end. On error `*produced` still counts the good bytes before it,
  // which Read hands out first, so the error is met inside the right entry.
  virtual absl::Status Produce(char* out, size_t cap, size_t* produced) = 0;

  // Reads more compressed input when all of it has been consumed; false at
  // the end of the source.
  absl::StatusOr<bool> Refill();

  ByteSource& source_;
  std::unique_ptr<char[]> in_;
  size_t in_pos_ = 0;
  size_t in_len_ = 0;
  bool source_done_ = false;

 private:
  Compression compression_;
  absl::Status error_;  // met after the last chunk handed out
};

// Reads an UncompressedStream ahead on a thread of its own, so that
// decompression (inflate alone is most of a gzip layer's apply) and the
// diff ID's hashing run on one core while the caller extracts on another.
class ReadAhead {
 public:
  // Starts reading. `stream` must outlive this, and is not to be touched
  // until this is destroyed (which stops and joins the thread).
  // Without `hash`, Digest() is empty.
  explicit ReadAhead(UncompressedStream& stream, bool hash = true);
  ~ReadAhead();
  ReadAhead(const ReadAhead&) = delete;
  ReadAhead& operator=(const ReadAhead&) = delete;

  // The next chunk, valid until the next call; empty at the end.
  absl::StatusOr<absl::string_view> Next();

  // Reads everything left.
  absl::Status Drain();

  // Of the whole stream, once Next has returned its end (or Drain OK).
  std::string Digest() const { return hashing_ ? hash_.Digest() : std::string(); }
  int64_t size() const { return size_; }

 private:
  static constexpr int kSlots = 4;

  void Run();
  bool CanFill() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stop_ || ready_ < kSlots - 1; }
  bool CanTake() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return ready_ > 0 || done_; }

  UncompressedStream& stream_;
  // A ring of buffers: the reader fills slot (taken_ + ready_) % kSlots; the
  // caller holds slot taken_ - 1 (the chunk it was last given) and takes
  // slot taken_ next.
  std::unique_ptr<char[]> slots_[kSlots];
  size_t sizes_[kSlots] = {};
  absl::Mutex mu_;
  int taken_ ABSL_GUARDED_BY(mu_) = 0;
  int ready_ ABSL_GUARDED_BY(mu_) = 0;
  bool done_ ABSL_GUARDED_BY(mu_) = false;  // the reader is finished
  bool stop_ ABSL_GUARDED_BY(mu_) = false;  // the caller is finished
  absl::Status error_ ABSL_GUARDED_BY(mu_);
  // The reader's, until it is done (which Next's end-of-stream publishes).
  const bool hashing_;
  Sha256 hash_;
  int64_t size_ = 0;
  std::thread thread_;
};

// Compresses what is written into a ByteSink, hashing both sides.
class CompressingWriter {
 public:
  static absl::StatusOr<std::unique_ptr<CompressingWriter>> Create(Compression compression,
                                                                   ByteSink& sink);
  virtual ~CompressingWriter() = default;

  absl::Status Write(absl::string_view data);
  // Ends the stream and writes what is buffered. No Write afterwards.
  absl::Status Finish();

  std::string UncompressedDigest() const { return uncompressed_hash_.Digest(); }
  int64_t uncompressed_size() const { return uncompressed_size_; }
  std::string CompressedDigest() const { return compressed_hash_.Digest(); }
  int64_t compressed_size() const { return compressed_size_; }

 protected:
  explicit CompressingWriter(ByteSink& sink);

  // Compresses `data` (all of it, finishing the stream when `finish`) into
  // out_, calling Flush whenever it fills.
  virtual absl::Status Compress(absl::string_view data, bool finish) = 0;
  // Passes out_[0, out_len_) to the sink.
  absl::Status Flush();

  std::unique_ptr<char[]> out_;
  size_t out_len_ = 0;

 private:
  ByteSink& sink_;
  Sha256 uncompressed_hash_;
  Sha256 compressed_hash_;
  int64_t uncompressed_size_ = 0;
  int64_t compressed_size_ = 0;
};

}  // namespace berth::image::layer_internal

#endif  // BERTH_IMAGE_LAYER_STREAM_H_
