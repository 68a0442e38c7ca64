// Filter expressions: the `filters` strings of containerd's List requests
// (`ctr images ls "name~=^docker.io/"`, events subscriptions, namespaces,
// containers, content, snapshots, leases), with containerd 1.6's grammar and
// matching rules.
//
// The model. An object is seen through an Adaptor: given a field path such as
// {"labels", "containerd.io/gc.root"} it returns that field's string value or
// nothing. A filter string is selectors joined by `,`, all of which must match
// (AND); a request carries any number of filter strings, any one of which may
// match (OR); a request with none, or with an empty string among them, matches
// everything. A selector is a field path, optionally followed by an operator
// and a value:
//
//   name==foo                 the field is present and equals "foo"
//   name!=foo                 the field does not equal "foo"; a missing field
//                             counts as "", so it matches objects without one
//   name~=^foo                RE2 (Go regexp) search; a missing field is ""
//   labels.foo                the field is present (present as the adaptor
//                             defines it: containerd reports a label present,
//                             even with an empty value, and most string fields
//                             present only when non-empty)
//
// A worked example. For an image named "docker.io/library/busybox:latest"
// with labels {"containerd.io/gc.root": "1"}, the request filters
//   { `name~=busybox,labels."containerd.io/gc.root"`, `name==alpine` }
// match: the first string's two selectors both hold. Its field path
// `labels."containerd.io/gc.root"` parses to {"labels",
// "containerd.io/gc.root"}; LabelField joins what follows "labels" with `.`,
// so `labels.a.b` and `labels."a.b"` name the same label.
//
// The lexical rules, which decide what parses:
//   - A field is [A-Za-z0-9_]+ or a "double-quoted" Go string literal. Dots
//     separate fields, so keys with `/`, `-` or `.` must be quoted.
//   - A value is a Go string literal in double quotes, or after `~=` also
//     between `/…/` or `|…|` (escape the delimiter as \/ or \|; other escapes
//     are Go's, so a regex's `\d` is written `\\d` inside quotes), or unquoted:
//     everything up to the next `,`, space or non-graphic rune, and not
//     starting with `.`, `,`, `=`, `!` or `~` (so `name~=.*` fails; write
//     `name~=".*"`). Single quotes are not quotes: `name=='a'` compares with
//     the three characters 'a'.
//   - White space may precede any token but not follow a field path or value:
//     ` name == foo` parses; `name==foo ` and `name==foo ,a` do not.
//
// Errors. A malformed expression is InvalidArgument, with containerd's message:
// the whole expression with the offending rune marked, then what was expected:
//   filters: parse error: [name==foo,]: expected field or quoted
//   filters: parse error: [labels. >|?|< x]: expected field or quoted
//   filters: parse error: [a >|=|< b]: unsupported operator "="
// Two deliberate differences from containerd 1.6: an invalid regular
// expression is refused with InvalidArgument naming it, once the rest has
// parsed (containerd 1.6 logs it when matching and matches nothing; containerd
// 2 refuses it too); and the marked rune is its whole UTF-8 sequence, where
// containerd marks one byte and so splits non-ASCII runes.
//
// Thread safety: a Filter is immutable; Match may run concurrently.
#ifndef BERTH_FILTERS_FILTERS_H_
#define BERTH_FILTERS_FILTERS_H_

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "base/status.h"

namespace berth::filters {

// How a filter sees one object.
class Adaptor {
 public:
  virtual ~Adaptor() = default;

  // The value at `fieldpath` (possibly ""), or nullopt when the object has no
  // such field. Unknown paths are simply absent.
  virtual std::optional<std::string> Field(const std::vector<std::string>& fieldpath) const = 0;
};

// An Adaptor made from a function, for one-off adaptors:
//   filter.Match(FunctionAdaptor([&](const std::vector<std::string>& path)
//                                    -> std::optional<std::string> { ... }));
class FunctionAdaptor final : public Adaptor {
 public:
  using Function = std::function<std::optional<std::string>(const std::vector<std::string>&)>;

  explicit FunctionAdaptor(Function field) : field_(std::move(field)) {}

  std::optional<std::string> Field(const std::vector<std::string>& fieldpath) const override {
    return field_(fieldpath);
  }

 private:
  Function field_;
};

class Filter {
 public:
  // Parses one filter string. "" matches everything.
  // On failure: InvalidArgument with containerd's message (see above).
  static absl::StatusOr<Filter> Parse(absl::string_view expression);

  // Parses each expression of `expressions` (any range of strings: a
  // std::vector<std::string>, a protobuf repeated string field, …) and
  // returns their OR; no expressions match everything. containerd calls this
  // ParseAll. On failure: the first failing expression's error.
  template <typename Strings>
  static absl::StatusOr<Filter> ParseAny(const Strings& expressions);

  // The OR of `alternatives`; none match everything.
  static Filter Any(absl::Span<const Filter> alternatives);

  // Matches every object.
  static Filter Always();

  // Whether `object` satisfies the filter. Asks `object` for each selector's
  // field path, stopping at the first alternative that matches.
  bool Match(const Adaptor& object) const;

  // The filter in canonical syntax, for logs and tests: fields bare when they
  // can be, values in double quotes, alternatives joined by " OR ". A filter
  // with one alternative parses back to an equal filter; Always() is "".
  std::string DebugString() const;

 private:
  struct Alternatives;

  explicit Filter(std::shared_ptr<const Alternatives> alternatives)
      : alternatives_(std::move(alternatives)) {}

  // Never null; shared because parsed filters are immutable.
  std::shared_ptr<const Alternatives> alternatives_;
};

// The label `rest` names, for adaptors answering `labels.<key>` paths:
// `rest` joined with "." is the key, as containerd does, so
// {"containerd.io", "gc.root"} and {"containerd.io.gc.root"} name the same
// label, and an empty `rest` names the key "". Present (even if its value
// is "") when the key is in `labels`.
std::optional<std::string> LabelField(const std::map<std::string, std::string>& labels,
                                      absl::Span<const std::string> rest);

template <typename Strings>
absl::StatusOr<Filter> Filter::ParseAny(const Strings& expressions) {
  std::vector<Filter> alternatives;
  for (const auto& expression : expressions) {
    BERTH_ASSIGN_OR_RETURN(Filter filter, Parse(expression));
    alternatives.push_back(std::move(filter));
  }
  return Any(alternatives);
}

}  // namespace berth::filters

#endif  // BERTH_FILTERS_FILTERS_H_
