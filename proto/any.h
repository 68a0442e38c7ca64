// google.protobuf.Any as containerd writes them: its type URLs are often
// the bare message name ("containerd.runc.v1.Options"), which protobuf's
// own Any::UnpackTo refuses (it wants ".../<name>") and PackFrom does not
// write. For the full runtime and the lite one alike.
#ifndef BERTH_PROTO_ANY_H_
#define BERTH_PROTO_ANY_H_

#include <string>

namespace berth::proto {

// Whether `any` holds a `Message` — its type URL is the message's name,
// bare or after a '/' — and, if so, parses it into `out`.
template <typename Any, typename Message>
bool UnpackAny(const Any& any, Message* out) {
  const std::string name = out->GetTypeName();
  const std::string& url = any.type_url();
  const bool named =
      url == name ||
      (url.size() > name.size() && url.compare(url.size() - name.size(), name.size(), name) == 0 &&
       url[url.size() - name.size() - 1] == '/');
  return named && out->ParseFromString(any.value());
}

// `message` into `out` under its bare name, as containerd names types.
template <typename Message, typename Any>
void PackAny(const Message& message, Any* out) {
  out->set_type_url(message.GetTypeName());
  out->set_value(message.SerializeAsString());
}

}  // namespace berth::proto

#endif  // BERTH_PROTO_ANY_H_
