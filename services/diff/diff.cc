#include "services/diff/diff.h"

#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "base/log.h"
#include "base/random.h"
#include "base/status.h"
#include "base/unique_fd.h"
#include "github.com/containerd/containerd/api/services/diff/v1/diff.grpc.pb.h"
#include "image/layer.h"
#include "services/diff/early_unpack.h"
#include "services/edge.h"
#include "snapshotter/mount.h"
#include "snapshotter/snapshotter.h"
#include "store/namespaced_content.h"

namespace berth::services::diff {
namespace {

namespace api = ::containerd::services::diff::v1;
using snapshotter::Mount;
using snapshotter::MountedTree;

constexpr char kUncompressedLabel[] = "containerd.io/uncompressed";

std::vector<Mount> FromProto(const google::protobuf::RepeatedPtrField<::containerd::types::Mount>& in) {
  std::vector<Mount> out;
  for (const auto& m : in) {
    out.push_back(Mount{m.type(), m.source(), m.target(), {m.options().begin(), m.options().end()}});
  }
  return out;
}

// Writes the bytes a ByteSink gets into an ingest of the content store.
class IngestSink final : public image::ByteSink {
 public:
  explicit IngestSink(store::NamespacedWriter& writer) : writer_(writer) {}
  absl::Status Write(absl::string_view data) override { return writer_.Write(data); }

 private:
  store::NamespacedWriter& writer_;
};

// An ingest ref for a client that names none: random, as containerd's are.
std::string RandomRef() { return absl::StrCat("diff-", RandomHex(12)); }

class Service final : public api::Diff::CallbackService, public daemon::GrpcService {
 public:
  Service(std::shared_ptr<store::NamespacedContent> content, std::string scratch,
          std::shared_ptr<EarlyUnpacker> early)
      : content_(std::move(content)), scratch_(std::move(scratch)), early_(std::move(early)) {}

  void Register(grpc::ServerBuilder& builder) override { builder.RegisterService(this); }

  // Unpacking takes as long as the layer does; it runs on a gRPC callback
  // thread, bounded by the layer's size, never by a container.
  grpc::ServerUnaryReactor* Apply(grpc::CallbackServerContext* context,
                                  const api::ApplyRequest* request,
                                  api::ApplyResponse* response) override {
    return Finish(context, [&]() -> absl::Status {
      BERTH_ASSIGN_OR_RETURN(std::string ns, RequestNamespace(*context));
      const ::containerd::types::Descriptor& layer = request->diff();
      BERTH_RETURN_IF_ERROR(digest::Validate(layer.digest()));
      BERTH_ASSIGN_OR_RETURN(image::Compression compression,
                             image::CompressionFromMediaType(layer.media_type()));
      BERTH_ASSIGN_OR_RETURN(std::unique_ptr<store::BlobReader> blob,
                             content_->Read(ns, layer.digest()));
      BERTH_ASSIGN_OR_RETURN(std::unique_ptr<MountedTree> tree,
                             MountedTree::Open(FromProto(request->mounts()), scratch_, true));
      const absl::Time start = absl::Now();
      absl::StatusOr<image::ApplyResult> applied;
      std::optional<image::ApplyResult> early = early_->Take(layer.digest(), *tree);
      if (early.has_value()) {
        applied = *std::move(early);
      } else {
        std::unique_ptr<image::ByteSource> source = image::BlobSource(*blob);
        applied = image::ApplyLayerToTree(*source, compression, *tree, layer.digest());
      }
      if (!applied.ok()) {
        return absl::Status(applied.status().code(),
                            absl::StrCat("apply layer ", layer.digest(), ": ",
                                         applied.status().message()));
      }
      // As containerd's applier logs it, for timing imports.
      log::Debug("diff applied", {{"d", absl::FormatDuration(absl::Now() - start)},
                                  {"digest", layer.digest()},
                                  {"media", layer.media_type()},
                                  {"size", layer.size()},
                                  {"early", early.has_value() ? "true" : "false"}});
      ::containerd::types::Descriptor* out = response->mutable_applied();
      out->set_media_type(std::string(image::LayerMediaType(image::Compression::kNone)));
      out->set_digest(applied->diff_id);
      out->set_size(applied->size);
      return absl::OkStatus();
    }());
  }

  grpc::ServerUnaryReactor* Diff(grpc::CallbackServerContext* context,
                                 const api::DiffRequest* request,
                                 api::DiffResponse* response) override {
    return Finish(context, [&]() -> absl::Status {
      BERTH_ASSIGN_OR_RETURN(std::string ns, RequestNamespace(*context));
      image::Compression compression = image::Compression::kGzip;
      if (!request->media_type().empty()) {
        BERTH_ASSIGN_OR_RETURN(compression, image::CompressionFromMediaType(request->media_type()));
      }
      std::vector<Mount> right = FromProto(request->right());
      BERTH_ASSIGN_OR_RETURN(std::unique_ptr<MountedTree> upper,
                             MountedTree::Open(right, scratch_, true));
      std::unique_ptr<MountedTree> lower;
      image::DiffMode mode = image::DiffMode::kOverlayUpper;
      if (!upper->overlay_upper()) {
        mode = image::DiffMode::kCompare;
        if (!request->left().empty()) {
          BERTH_ASSIGN_OR_RETURN(lower,
                                 MountedTree::Open(FromProto(request->left()), scratch_, false));
        }
      }
      const std::string ref = request->ref().empty() ? RandomRef() : request->ref();
      BERTH_ASSIGN_OR_RETURN(std::unique_ptr<store::NamespacedWriter> writer,
                             content_->Writer(ns, ref, 0, "", RequestLease(*context)));
      IngestSink sink(*writer);
      // An empty lower for a right side with no parent: a fresh empty dir.
      UniqueFd empty;
      int lower_fd = lower ? lower->dir() : -1;
      if (mode == image::DiffMode::kCompare && lower_fd < 0) {
        std::string dir = absl::StrCat(scratch_, "/empty-XXXXXX");
        if (::mkdtemp(dir.data()) == nullptr) return ErrnoStatus("mkdtemp", dir);
        empty.Reset(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
        const int open_errno = errno;
        ::rmdir(dir.c_str());  // the open fd keeps an empty directory to read
        if (!empty.valid()) return ErrnoStatus(open_errno, "open", dir);
        lower_fd = empty.get();
      }
      BERTH_ASSIGN_OR_RETURN(image::DiffResult diff,
                             image::WriteDiff(lower_fd, upper->dir(), mode, compression, sink));
      std::map<std::string, std::string> labels = LabelsFromProto(request->labels());
      labels[kUncompressedLabel] = diff.diff_id;
      // The same changes committed before: the blob is already there.
      absl::StatusOr<std::string> committed = writer->Commit(diff.size, diff.digest, labels);
      if (!committed.ok() && !absl::IsAlreadyExists(committed.status())) {
        return committed.status();
      }
      ::containerd::types::Descriptor* out = response->mutable_diff();
      out->set_media_type(request->media_type().empty()
                              ? std::string(image::LayerMediaType(compression))
                              : request->media_type());
      out->set_digest(diff.digest);
      out->set_size(diff.size);
      return absl::OkStatus();
    }());
  }

 private:
  const std::shared_ptr<store::NamespacedContent> content_;
  const std::string scratch_;  // where mounts that need mounting are mounted
  const std::shared_ptr<EarlyUnpacker> early_;
};

}  // namespace

void Register(daemon::Registry& registry) {
  registry.Register({.type = daemon::kGrpcPlugin,
                     .id = "diff",
                     .requires_types = {daemon::kMetadataPlugin},
                     .init = [](daemon::InitContext& ic) -> absl::StatusOr<std::any> {
                       BERTH_ASSIGN_OR_RETURN(auto db, ic.Get<store::Database>(daemon::kMetadataPlugin));
                       for (const std::string& dir : {ic.state(), ic.root()}) {
                         if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) {
                           return ErrnoStatus("mkdir", dir);
                         }
                       }
                       // Beside the snapshots, on their filesystem (trees are
                       // renamed into them).
                       BERTH_ASSIGN_OR_RETURN(
                           std::shared_ptr<EarlyUnpacker> early,
                           EarlyUnpacker::Create(db->content, ic.root() + "/early"));
                       db->content->OnCommit(
                           [weak = std::weak_ptr<EarlyUnpacker>(early)](
                               const std::string& ns, const store::ContentRecord& record) {
                             if (auto early = weak.lock()) early->Offer(ns, record);
                           });
                       return std::shared_ptr<daemon::GrpcService>(
                           std::make_shared<Service>(db->content, ic.state(), std::move(early)));
                     }});
}

}  // namespace berth::services::diff
