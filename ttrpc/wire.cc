// The frame header and the Request/Response envelopes, encoded with
// protobuf's wire-format primitives (the envelopes are a handful of fields;
// generated classes would tie the library to one protobuf runtime, full or
// lite, while its users link either).
#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/io/zero_copy_stream_impl_lite.h>
#include <google/protobuf/wire_format_lite.h>

#include "absl/strings/str_cat.h"
#include "ttrpc/ttrpc.h"

namespace berth::ttrpc {
namespace {

using google::protobuf::internal::WireFormatLite;
using google::protobuf::io::CodedInputStream;
using google::protobuf::io::CodedOutputStream;
using google::protobuf::io::StringOutputStream;

// Calls `field(number, wire_type, in)` for each field of the message in
// `data`; `field` reads the value or returns false to have it skipped.
template <typename Field>
absl::Status ForEachField(absl::string_view data, absl::string_view what, Field field) {
  CodedInputStream in(reinterpret_cast<const uint8_t*>(data.data()), static_cast<int>(data.size()));
  for (;;) {
    uint32_t tag = in.ReadTag();
    if (tag == 0) {
      if (in.ConsumedEntireMessage()) return absl::OkStatus();
      break;  // a zero tag inside the bytes
    }
    absl::StatusOr<bool> read =
        field(WireFormatLite::GetTagFieldNumber(tag), WireFormatLite::GetTagWireType(tag), in);
    if (!read.ok()) return read.status();
    if (!*read && !WireFormatLite::SkipField(&in, tag)) break;
  }
  return absl::InvalidArgumentError(absl::StrCat("malformed ", what));
}

// The message `write` writes, as bytes (for nested messages too: a
// CodedOutputStream flushes into the string when it goes).
template <typename Write>
std::string Encode(Write write) {
  std::string out;
  {
    StringOutputStream stream(&out);
    CodedOutputStream coded(&stream);
    write(coded);
  }
  return out;
}

bool IsLengthDelimited(WireFormatLite::WireType type) {
  return type == WireFormatLite::WIRETYPE_LENGTH_DELIMITED;
}

// Reads a length-delimited value into `out`.
absl::StatusOr<bool> ReadBytes(CodedInputStream& in, std::string* out) {
  uint32_t length = 0;
  if (!in.ReadVarint32(&length) || !in.ReadString(out, static_cast<int>(length))) {
    return absl::InvalidArgumentError("truncated field");
  }
  return true;
}

absl::StatusOr<std::pair<std::string, std::string>> DecodeKeyValue(absl::string_view data) {
  std::pair<std::string, std::string> kv;
  absl::Status status = ForEachField(
      data, "metadata entry",
      [&](int number, WireFormatLite::WireType type, CodedInputStream& in) -> absl::StatusOr<bool> {
        if (!IsLengthDelimited(type)) return false;
        if (number == 1) return ReadBytes(in, &kv.first);
        if (number == 2) return ReadBytes(in, &kv.second);
        return false;
      });
  if (!status.ok()) return status;
  return kv;
}

// Sets `*out` to the absl::Status the google.rpc.Status in `data` stands
// for; InvalidArgument if `data` is not one.
absl::Status DecodeStatus(absl::string_view data, absl::Status* out) {
  int64_t code = 0;
  std::string message;
  absl::Status status = ForEachField(
      data, "status",
      [&](int number, WireFormatLite::WireType type, CodedInputStream& in) -> absl::StatusOr<bool> {
        if (number == 1 && type == WireFormatLite::WIRETYPE_VARINT) {
          uint64_t value = 0;
          if (!in.ReadVarint64(&value)) return absl::InvalidArgumentError("truncated code");
          code = static_cast<int64_t>(value);
          return true;
        }
        if (number == 2 && IsLengthDelimited(type)) return ReadBytes(in, &message);
        return false;  // details: dropped
      });
  if (!status.ok()) return status;
  if (code == 0) {
    *out = absl::OkStatus();
  } else if (code < 0 || code > static_cast<int64_t>(absl::StatusCode::kUnauthenticated)) {
    *out = absl::UnknownError(message);  // a code from a newer peer
  } else {
    *out = absl::Status(static_cast<absl::StatusCode>(code), message);  // gRPC's codes are absl's
  }
  return absl::OkStatus();
}

}  // namespace

void EncodeHeader(const FrameHeader& header, char out[kHeaderSize]) {
  auto put32 = [](uint32_t v, char* p) {
    p[0] = static_cast<char>(v >> 24);
    p[1] = static_cast<char>(v >> 16);
    p[2] = static_cast<char>(v >> 8);
    p[3] = static_cast<char>(v);
  };
  put32(header.length, out);
  put32(header.stream_id, out + 4);
  out[8] = static_cast<char>(header.type);
  out[9] = static_cast<char>(header.flags);
}

FrameHeader DecodeHeader(const char in[kHeaderSize]) {
  auto get32 = [](const char* p) {
    const auto* u = reinterpret_cast<const unsigned char*>(p);
    return (uint32_t{u[0]} << 24) | (uint32_t{u[1]} << 16) | (uint32_t{u[2]} << 8) | uint32_t{u[3]};
  };
  return FrameHeader{get32(in), get32(in + 4), static_cast<uint8_t>(in[8]),
                     static_cast<uint8_t>(in[9])};
}

std::string EncodeFrame(uint32_t stream_id, uint8_t type, absl::string_view payload) {
  std::string frame(kHeaderSize, '\0');
  EncodeHeader(FrameHeader{static_cast<uint32_t>(payload.size()), stream_id, type, 0},
               frame.data());
  frame.append(payload.data(), payload.size());
  return frame;
}

std::string EncodeRequest(const Request& request) {
  return Encode([&](CodedOutputStream& out) {
    if (!request.service.empty()) WireFormatLite::WriteString(1, request.service, &out);
    if (!request.method.empty()) WireFormatLite::WriteString(2, request.method, &out);
    if (!request.payload.empty()) WireFormatLite::WriteBytes(3, request.payload, &out);
    if (request.timeout_nano != 0) WireFormatLite::WriteInt64(4, request.timeout_nano, &out);
    for (const auto& [key, value] : request.metadata) {
      WireFormatLite::WriteBytes(5, Encode([&](CodedOutputStream& entry) {
                                   WireFormatLite::WriteString(1, key, &entry);
                                   WireFormatLite::WriteString(2, value, &entry);
                                 }),
                                 &out);
    }
  });
}

absl::StatusOr<Request> DecodeRequest(absl::string_view data) {
  Request request;
  absl::Status status = ForEachField(
      data, "request",
      [&](int number, WireFormatLite::WireType type, CodedInputStream& in) -> absl::StatusOr<bool> {
        if (number == 4 && type == WireFormatLite::WIRETYPE_VARINT) {
          uint64_t value = 0;
          if (!in.ReadVarint64(&value)) return absl::InvalidArgumentError("truncated timeout");
          request.timeout_nano = static_cast<int64_t>(value);
          return true;
        }
        if (!IsLengthDelimited(type)) return false;
        switch (number) {
          case 1:
            return ReadBytes(in, &request.service);
          case 2:
            return ReadBytes(in, &request.method);
          case 3:
            return ReadBytes(in, &request.payload);
          case 5: {
            std::string entry;
            if (absl::StatusOr<bool> read = ReadBytes(in, &entry); !read.ok()) return read;
            absl::StatusOr<std::pair<std::string, std::string>> kv = DecodeKeyValue(entry);
            if (!kv.ok()) return kv.status();
            request.metadata.push_back(*std::move(kv));
            return true;
          }
          default:
            return false;
        }
      });
  if (!status.ok()) return status;
  return request;
}

std::string EncodeResponse(const Response& response) {
  return Encode([&](CodedOutputStream& out) {
    if (!response.status.ok()) {
      WireFormatLite::WriteBytes(
          1, Encode([&](CodedOutputStream& status) {
            WireFormatLite::WriteInt32(1, static_cast<int32_t>(response.status.code()), &status);
            if (!response.status.message().empty()) {
              WireFormatLite::WriteString(2, std::string(response.status.message()), &status);
            }
          }),
          &out);
    }
    if (!response.payload.empty()) WireFormatLite::WriteBytes(2, response.payload, &out);
  });
}

absl::StatusOr<Response> DecodeResponse(absl::string_view data) {
  Response response;
  absl::Status status = ForEachField(
      data, "response",
      [&](int number, WireFormatLite::WireType type, CodedInputStream& in) -> absl::StatusOr<bool> {
        if (!IsLengthDelimited(type)) return false;
        if (number == 2) return ReadBytes(in, &response.payload);
        if (number != 1) return false;
        std::string encoded;
        if (absl::StatusOr<bool> read = ReadBytes(in, &encoded); !read.ok()) return read;
        if (absl::Status decoded = DecodeStatus(encoded, &response.status); !decoded.ok()) {
          return decoded;
        }
        return true;
      });
  if (!status.ok()) return status;
  return response;
}

}  // namespace berth::ttrpc
