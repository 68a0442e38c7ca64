#include "services/content/content.h"

#include <memory>

#include "base/log.h"
#include "base/status.h"
#include "events/exchange.h"
#include "filters/filters.h"
#include "github.com/containerd/containerd/api/events/content.pb.h"
#include "github.com/containerd/containerd/api/services/content/v1/content.grpc.pb.h"
#include "services/edge.h"
#include "store/content_store.h"
#include "store/gc.h"
#include "store/namespaced_content.h"

namespace berth::services::content {
namespace {

namespace api = ::containerd::services::content::v1;

// containerd reads and lists in pieces of this size.
constexpr int64_t kReadChunk = 1 << 20;
constexpr int kListBatch = 100;

void ToProto(const store::ContentRecord& record, api::Info* out) {
  out->set_digest(record.digest);
  out->set_size(record.size);
  *out->mutable_created_at() = ToTimestamp(record.created_at);
  *out->mutable_updated_at() = ToTimestamp(record.updated_at);
  LabelsToProto(record.labels, out->mutable_labels());
}

void ToProto(const store::IngestStatus& status, api::Status* out) {
  *out->mutable_started_at() = ToTimestamp(status.started_at);
  *out->mutable_updated_at() = ToTimestamp(status.updated_at);
  out->set_ref(status.ref);
  out->set_offset(status.offset);
  out->set_total(status.total);
  out->set_expected(status.expected);
}

// How content looks to a filter: digest, size and labels, as containerd's
// content adaptor shows it.
class RecordAdaptor final : public filters::Adaptor {
 public:
  explicit RecordAdaptor(const store::ContentRecord& record) : record_(record) {}
  std::optional<std::string> Field(const std::vector<std::string>& path) const override {
    if (path.empty()) return std::nullopt;
    if (path[0] == "digest") return record_.digest;
    if (path[0] == "size") return std::to_string(record_.size);
    if (path[0] == "labels") return filters::LabelField(record_.labels, absl::MakeConstSpan(path).subspan(1));
    return std::nullopt;
  }

 private:
  const store::ContentRecord& record_;
};

// An ingest as a filter sees it: its ref.
class StatusAdaptor final : public filters::Adaptor {
 public:
  explicit StatusAdaptor(const store::IngestStatus& status) : status_(status) {}
  std::optional<std::string> Field(const std::vector<std::string>& path) const override {
    if (path.size() == 1 && path[0] == "ref") return status_.ref;
    return std::nullopt;
  }

 private:
  const store::IngestStatus& status_;
};

// One Write stream: the first message names the ref and opens (or resumes)
// the ingest; every message gets one response, as containerd's service
// answers, and the ingest's lock is held until the stream ends. A client
// that goes away mid-write leaves the partial ingest resumable.
class WriteSession final : public grpc::ServerBidiReactor<api::WriteContentRequest,
                                                          api::WriteContentResponse> {
 public:
  WriteSession(std::shared_ptr<store::NamespacedContent> content, absl::StatusOr<std::string> ns,
               std::string lease)
      : content_(std::move(content)), lease_(std::move(lease)) {
    if (!ns.ok()) {
      Finish(ToGrpcStatus(ns.status()));
      return;
    }
    ns_ = *std::move(ns);
    StartRead(&request_);
  }

  void OnReadDone(bool ok) override {
    if (!ok) {  // the client closed its side: the session is complete
      Finish(grpc::Status::OK);
      return;
    }
    if (absl::Status status = Handle(); !status.ok()) {
      Finish(ToGrpcStatus(status));
      return;
    }
    StartWrite(&response_);
  }

  void OnWriteDone(bool ok) override {
    if (!ok) {
      Finish(grpc::Status::CANCELLED);
      return;
    }
    StartRead(&request_);
  }

  void OnDone() override { delete this; }

 private:
  absl::Status Handle() {
    if (writer_ == nullptr) {
      if (request_.ref().empty()) {
        return absl::InvalidArgumentError("first message must have a reference");
      }
      ref_ = request_.ref();
      total_ = request_.total();
      expected_ = request_.expected();
      BERTH_ASSIGN_OR_RETURN(writer_,
                             content_->Writer(ns_, ref_, total_, expected_, lease_));
    }
    response_.Clear();
    response_.set_action(request_.action());
    const store::IngestStatus status = writer_->Status();
    response_.set_offset(status.offset);
    if (!request_.expected().empty()) {
      expected_ = request_.expected();
      if (content_->Info(ns_, expected_).ok()) {
        writer_.reset();
        content_->Abort(ns_, ref_).IgnoreError();  // the content is there already
        return absl::AlreadyExistsError(
            absl::StrCat("blob with expected digest ", expected_, " exists"));
      }
    }
    if (request_.total() > 0) total_ = request_.total();

    switch (request_.action()) {
      case api::STAT:
        response_.set_digest(writer_->Digest());
        *response_.mutable_started_at() = ToTimestamp(status.started_at);
        *response_.mutable_updated_at() = ToTimestamp(status.updated_at);
        response_.set_total(total_);
        return absl::OkStatus();
      case api::WRITE:
      case api::COMMIT:
        break;
      default:
        return absl::InvalidArgumentError(
            absl::StrCat("write action ", request_.action(), " is not known"));
    }
    if (request_.offset() > 0 && request_.offset() != status.offset) {
      return absl::OutOfRangeError(absl::StrCat("write @", request_.offset(),
                                                " must occur at current offset ", status.offset));
    }
    if (request_.offset() < 0) {
      return absl::InvalidArgumentError(absl::StrCat("write offset ", request_.offset(), " is negative"));
    }
    // Offset 0 on a started ingest starts it over, as containerd does.
    if (request_.offset() == 0 && status.offset > 0) {
      BERTH_RETURN_IF_ERROR(writer_->Truncate(0));
      response_.set_offset(0);
    }
    if (!request_.data().empty()) {
      BERTH_RETURN_IF_ERROR(writer_->Write(request_.data()));
      response_.set_offset(response_.offset() + static_cast<int64_t>(request_.data().size()));
    }
    if (request_.action() == api::COMMIT) {
      BERTH_ASSIGN_OR_RETURN(std::string digest,
                             writer_->Commit(total_, expected_, LabelsFromProto(request_.labels())));
      response_.set_digest(digest);
      return absl::OkStatus();
    }
    response_.set_digest(writer_->Digest());
    return absl::OkStatus();
  }

  const std::shared_ptr<store::NamespacedContent> content_;
  const std::string lease_;
  std::string ns_;
  std::string ref_;
  int64_t total_ = 0;
  std::string expected_;
  std::unique_ptr<store::NamespacedWriter> writer_;
  api::WriteContentRequest request_;
  api::WriteContentResponse response_;
};

class Service final : public api::Content::CallbackService, public daemon::GrpcService {
 public:
  Service(std::shared_ptr<store::NamespacedContent> content,
          std::shared_ptr<events::Exchange> exchange, std::shared_ptr<store::GarbageCollector> gc)
      : content_(std::move(content)), exchange_(std::move(exchange)), gc_(std::move(gc)) {}

  void Register(grpc::ServerBuilder& builder) override { builder.RegisterService(this); }

  grpc::ServerUnaryReactor* Info(grpc::CallbackServerContext* context,
                                 const api::InfoRequest* request,
                                 api::InfoResponse* response) override {
    return Finish(context, [&]() -> absl::Status {
      BERTH_ASSIGN_OR_RETURN(std::string ns, RequestNamespace(*context));
      BERTH_RETURN_IF_ERROR(digest::Validate(request->digest()));
      BERTH_ASSIGN_OR_RETURN(store::ContentRecord record, content_->Info(ns, request->digest()));
      ToProto(record, response->mutable_info());
      return absl::OkStatus();
    }());
  }

  grpc::ServerUnaryReactor* Update(grpc::CallbackServerContext* context,
                                   const api::UpdateRequest* request,
                                   api::UpdateResponse* response) override {
    return Finish(context, [&]() -> absl::Status {
      BERTH_ASSIGN_OR_RETURN(std::string ns, RequestNamespace(*context));
      BERTH_RETURN_IF_ERROR(digest::Validate(request->info().digest()));
      store::ContentRecord record;
      record.digest = request->info().digest();
      record.labels = LabelsFromProto(request->info().labels());
      std::vector<std::string> paths(request->update_mask().paths().begin(),
                                     request->update_mask().paths().end());
      BERTH_ASSIGN_OR_RETURN(store::ContentRecord updated, content_->Update(ns, record, paths));
      ToProto(updated, response->mutable_info());
      return absl::OkStatus();
    }());
  }

  grpc::ServerWriteReactor<api::ListContentResponse>* List(
      grpc::CallbackServerContext* context, const api::ListContentRequest* request) override {
    auto records = std::make_shared<std::vector<store::ContentRecord>>();
    absl::Status status = [&]() -> absl::Status {
      BERTH_ASSIGN_OR_RETURN(std::string ns, RequestNamespace(*context));
      BERTH_ASSIGN_OR_RETURN(filters::Filter filter, filters::Filter::ParseAny(request->filters()));
      BERTH_ASSIGN_OR_RETURN(std::vector<store::ContentRecord> all, content_->List(ns));
      for (store::ContentRecord& record : all) {
        if (filter.Match(RecordAdaptor(record))) records->push_back(std::move(record));
      }
      return absl::OkStatus();
    }();
    size_t next = 0;
    return StreamFrom<api::ListContentResponse>(
        [status, records, next](api::ListContentResponse* out) mutable -> absl::StatusOr<bool> {
          if (!status.ok()) return status;
          if (next >= records->size()) return false;
          for (int n = 0; n < kListBatch && next < records->size(); ++n) {
            ToProto((*records)[next++], out->add_info());
          }
          return true;
        });
  }

  grpc::ServerUnaryReactor* Delete(grpc::CallbackServerContext* context,
                                   const api::DeleteContentRequest* request,
                                   google::protobuf::Empty*) override {
    return Finish(context, [&]() -> absl::Status {
      BERTH_ASSIGN_OR_RETURN(std::string ns, RequestNamespace(*context));
      BERTH_RETURN_IF_ERROR(digest::Validate(request->digest()));
      BERTH_RETURN_IF_ERROR(content_->Delete(ns, request->digest()));
      gc_->Schedule();
      ::containerd::events::ContentDelete event;
      event.set_digest(request->digest());
      PublishEvent(*exchange_, ns, "/content/delete", event);
      return absl::OkStatus();
    }());
  }

  grpc::ServerWriteReactor<api::ReadContentResponse>* Read(
      grpc::CallbackServerContext* context, const api::ReadContentRequest* request) override {
    std::shared_ptr<store::BlobReader> reader;
    int64_t offset = request->offset();
    int64_t end = 0;
    absl::Status status = [&]() -> absl::Status {
      BERTH_ASSIGN_OR_RETURN(std::string ns, RequestNamespace(*context));
      BERTH_RETURN_IF_ERROR(digest::Validate(request->digest()));
      BERTH_ASSIGN_OR_RETURN(reader, content_->Read(ns, request->digest()));
      const int64_t size = reader->Size();
      if (offset < 0 || request->size() < 0) {
        return absl::InvalidArgumentError(absl::StrCat("read of ", request->digest(), " at offset ",
                                                       offset, " size ", request->size()));
      }
      end = request->size() > 0 ? offset + request->size() : size;
      if (offset > size || end > size) {
        return absl::OutOfRangeError(absl::StrCat("read of ", request->digest(), " [", offset, ", ",
                                                  end, ") is past its size ", size));
      }
      return absl::OkStatus();
    }();
    bool sent_any = false;
    return StreamFrom<api::ReadContentResponse>(
        [status, reader, offset, end, sent_any](api::ReadContentResponse* out) mutable
        -> absl::StatusOr<bool> {
          if (!status.ok()) return status;
          // An empty blob still answers once, as containerd does.
          if (offset >= end && sent_any) return false;
          const int64_t n = std::min(kReadChunk, end - offset);
          out->set_offset(offset);
          BERTH_RETURN_IF_ERROR(reader->ReadAt(offset, n, out->mutable_data()));
          offset += n;
          sent_any = true;
          return true;
        });
  }

  grpc::ServerUnaryReactor* Status(grpc::CallbackServerContext* context,
                                   const api::StatusRequest* request,
                                   api::StatusResponse* response) override {
    return Finish(context, [&]() -> absl::Status {
      BERTH_ASSIGN_OR_RETURN(std::string ns, RequestNamespace(*context));
      BERTH_ASSIGN_OR_RETURN(store::IngestStatus status, content_->Status(ns, request->ref()));
      ToProto(status, response->mutable_status());
      return absl::OkStatus();
    }());
  }

  grpc::ServerUnaryReactor* ListStatuses(grpc::CallbackServerContext* context,
                                         const api::ListStatusesRequest* request,
                                         api::ListStatusesResponse* response) override {
    return Finish(context, [&]() -> absl::Status {
      BERTH_ASSIGN_OR_RETURN(std::string ns, RequestNamespace(*context));
      BERTH_ASSIGN_OR_RETURN(filters::Filter filter, filters::Filter::ParseAny(request->filters()));
      BERTH_ASSIGN_OR_RETURN(std::vector<store::IngestStatus> all, content_->ListStatuses(ns));
      for (const store::IngestStatus& status : all) {
        if (filter.Match(StatusAdaptor(status))) ToProto(status, response->add_statuses());
      }
      return absl::OkStatus();
    }());
  }

  grpc::ServerBidiReactor<api::WriteContentRequest, api::WriteContentResponse>* Write(
      grpc::CallbackServerContext* context) override {
    return new WriteSession(content_, RequestNamespace(*context), RequestLease(*context));
  }

  grpc::ServerUnaryReactor* Abort(grpc::CallbackServerContext* context,
                                  const api::AbortRequest* request,
                                  google::protobuf::Empty*) override {
    return Finish(context, [&]() -> absl::Status {
      BERTH_ASSIGN_OR_RETURN(std::string ns, RequestNamespace(*context));
      return content_->Abort(ns, request->ref());
    }());
  }

 private:
  const std::shared_ptr<store::NamespacedContent> content_;
  const std::shared_ptr<events::Exchange> exchange_;
  const std::shared_ptr<store::GarbageCollector> gc_;
};

}  // namespace

void Register(daemon::Registry& registry) {
  registry.Register({.type = daemon::kGrpcPlugin,
                     .id = "content",
                     .requires_types = {daemon::kMetadataPlugin, daemon::kEventPlugin,
                                        daemon::kGcPlugin},
                     .init = [](daemon::InitContext& ic) -> absl::StatusOr<std::any> {
                       BERTH_ASSIGN_OR_RETURN(auto db, ic.Get<store::Database>(daemon::kMetadataPlugin));
                       BERTH_ASSIGN_OR_RETURN(auto exchange, ic.Get<events::Exchange>(daemon::kEventPlugin));
                       BERTH_ASSIGN_OR_RETURN(auto gc, ic.Get<store::GarbageCollector>(daemon::kGcPlugin));
                       return std::shared_ptr<daemon::GrpcService>(
                           std::make_shared<Service>(db->content, std::move(exchange), std::move(gc)));
                     }});
}

}  // namespace berth::services::content
