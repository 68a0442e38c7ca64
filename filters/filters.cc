#include "filters/filters.h"

#include <algorithm>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "base/status.h"
#include "filters/scanner.h"
#include "re2/re2.h"

namespace berth::filters {
namespace {

using internal::DecodeRune;
using internal::Rune;
using internal::Scanner;
using internal::Token;
using internal::TokenKind;

enum class Operator { kPresent, kEqual, kNotEqual, kMatches };

absl::string_view OperatorText(Operator op) {
  switch (op) {
    case Operator::kPresent: return "";
    case Operator::kEqual: return "==";
    case Operator::kNotEqual: return "!=";
    case Operator::kMatches: return "~=";
  }
  return "";
}

struct Selector {
  std::vector<std::string> fieldpath;
  Operator op = Operator::kPresent;
  std::string value;
  size_t value_pos = 0;              // in the expression, for errors
  std::shared_ptr<const RE2> regex;  // set for kMatches

  bool Match(const Adaptor& object) const {
    const std::optional<std::string> field = object.Field(fieldpath);
    switch (op) {
      case Operator::kPresent: return field.has_value();
      case Operator::kEqual: return field.has_value() && *field == value;
      // containerd compares a missing field as "", so `a!=x` and `a~=^$`
      // select the objects that lack `a`.
      case Operator::kNotEqual: return field.value_or("") != value;
      case Operator::kMatches: return RE2::PartialMatch(field.value_or(""), *regex);
    }
    return false;
  }
};

using Conjunction = std::vector<Selector>;

// A double-quoted literal the scanner reads back as `text`.
std::string QuoteLiteral(absl::string_view text) {
  std::string out = "\"";
  size_t i = 0;
  while (i < text.size()) {
    const unsigned char c = text[i];
    const internal::Decoded decoded = DecodeRune(text.substr(i));
    i += decoded.width;
    switch (c) {
      case '"': out += "\\\""; continue;
      case '\\': out += "\\\\"; continue;
      case '\a': out += "\\a"; continue;
      case '\b': out += "\\b"; continue;
      case '\f': out += "\\f"; continue;
      case '\n': out += "\\n"; continue;
      case '\r': out += "\\r"; continue;
      case '\t': out += "\\t"; continue;
      case '\v': out += "\\v"; continue;
    }
    if (decoded.rune == 0xFFFD) {
      // The scanner refuses U+FFFD and malformed UTF-8 even inside quotes.
      out += decoded.width == 1 ? absl::StrCat("\\x", absl::Hex(c, absl::kZeroPad2))
                                : std::string("\\uFFFD");
    } else if (c < 0x20 || c == 0x7F) {
      out += absl::StrCat("\\x", absl::Hex(c, absl::kZeroPad2));
    } else {
      out.append(text.data() + i - decoded.width, decoded.width);
    }
  }
  out += "\"";
  return out;
}

std::string FieldText(absl::string_view field) {
  const bool bare = !field.empty() && std::all_of(field.begin(), field.end(), [](char c) {
    return internal::IsFieldRune(static_cast<unsigned char>(c));
  });
  return bare ? std::string(field) : QuoteLiteral(field);
}

std::string SelectorText(const Selector& selector) {
  std::string text =
      absl::StrJoin(selector.fieldpath, ".",
                    [](std::string* out, const std::string& f) { out->append(FieldText(f)); });
  if (selector.op != Operator::kPresent) {
    absl::StrAppend(&text, OperatorText(selector.op), QuoteLiteral(selector.value));
  }
  return text;
}

// A recursive-descent parser over the scanner's tokens, deciding on the same
// lookahead as containerd 1.6 so the same inputs fail with the same messages.
class Parser {
 public:
  explicit Parser(absl::string_view input) : input_(input), scanner_(input) {}

  absl::StatusOr<Conjunction> Parse() {
    Conjunction selectors;
    while (true) {
      BERTH_ASSIGN_OR_RETURN(Selector selector, ParseSelector());
      selectors.push_back(std::move(selector));
      const Rune next = scanner_.Peek();
      if (next == internal::kEofRune) break;
      if (next != ',') {
        return ErrorAt(scanner_.offset(),
                       absl::StrCat("unexpected input: ", internal::EncodeRune(next)));
      }
      scanner_.Scan();
    }
    BERTH_RETURN_IF_ERROR(CompileRegexes(selectors));
    return selectors;
  }

 private:
  absl::StatusOr<Selector> ParseSelector() {
    Selector selector;
    BERTH_ASSIGN_OR_RETURN(selector.fieldpath, ParseFieldPath());
    const Rune next = scanner_.Peek();
    if (next == ',' || next == internal::kEofRune) return selector;

    BERTH_ASSIGN_OR_RETURN(selector.op, ParseOperator());
    const Token token = scanner_.Scan();
    selector.value_pos = token.pos;
    BERTH_ASSIGN_OR_RETURN(
        selector.value, ValueOf(token, /*allow_regex_quotes=*/selector.op == Operator::kMatches));
    return selector;
  }

  // Only once the whole expression has parsed, so that an expression with
  // both a syntax error and a bad regular expression fails on the syntax
  // error, as in containerd (which only meets the regex when matching).
  absl::Status CompileRegexes(Conjunction& selectors) {
    for (Selector& selector : selectors) {
      if (selector.op != Operator::kMatches) continue;
      RE2::Options options;
      options.set_log_errors(false);
      auto regex = std::make_shared<const RE2>(selector.value, options);
      if (!regex->ok()) {
        return ErrorAt(selector.value_pos,
                       absl::StrCat("invalid regular expression ", QuoteLiteral(selector.value),
                                    ": ", regex->error()));
      }
      selector.regex = std::move(regex);
    }
    return absl::OkStatus();
  }

  absl::StatusOr<std::vector<std::string>> ParseFieldPath() {
    std::vector<std::string> fieldpath;
    while (true) {
      BERTH_ASSIGN_OR_RETURN(std::string field, ParseField());
      fieldpath.push_back(std::move(field));
      if (scanner_.Peek() != '.') return fieldpath;
      scanner_.Scan();
    }
  }

  absl::StatusOr<std::string> ParseField() {
    const Token token = scanner_.Scan();
    switch (token.kind) {
      case TokenKind::kField: return std::string(token.text);
      case TokenKind::kQuoted: return UnquoteAt(token, /*allow_regex_quotes=*/false);
      case TokenKind::kIllegal: return ErrorAt(token.pos, scanner_.error());
      default: return ErrorAt(token.pos, "expected field or quoted");
    }
  }

  absl::StatusOr<Operator> ParseOperator() {
    const Token token = scanner_.Scan();
    switch (token.kind) {
      case TokenKind::kOperator:
        if (token.text == "==") return Operator::kEqual;
        if (token.text == "!=") return Operator::kNotEqual;
        if (token.text == "~=") return Operator::kMatches;
        return ErrorAt(token.pos, absl::StrCat("unsupported operator \"", token.text, "\""));
      case TokenKind::kIllegal: return ErrorAt(token.pos, scanner_.error());
      default: return ErrorAt(token.pos, R"(expected an operator ("=="|"!="|"~="))");
    }
  }

  absl::StatusOr<std::string> ValueOf(const Token& token, bool allow_regex_quotes) {
    switch (token.kind) {
      case TokenKind::kValue:
      case TokenKind::kField: return std::string(token.text);
      case TokenKind::kQuoted: return UnquoteAt(token, allow_regex_quotes);
      case TokenKind::kIllegal: return ErrorAt(token.pos, scanner_.error());
      default: return ErrorAt(token.pos, "expected value or quoted");
    }
  }

  // `/…/` and `|…|` spare regular expressions an escape per slash; anywhere
  // else containerd wants double quotes.
  absl::StatusOr<std::string> UnquoteAt(const Token& token, bool allow_regex_quotes) {
    if (!allow_regex_quotes && token.text.front() != '"') {
      return ErrorAt(token.pos, "invalid quote encountered");
    }
    absl::StatusOr<std::string> unquoted = internal::Unquote(token.text);
    if (!unquoted.ok()) {
      return ErrorAt(token.pos, absl::StrCat("unquoting failed: ", unquoted.status().message()));
    }
    return unquoted;
  }

  // containerd's message: the whole input with the rune at `pos` marked, or
  // unmarked when the input ended too early.
  absl::Status ErrorAt(size_t pos, absl::string_view message) const {
    std::string where;
    if (pos < input_.size()) {
      const size_t width = DecodeRune(input_.substr(pos)).width;
      where = absl::StrCat(input_.substr(0, pos), " >|", input_.substr(pos, width), "|< ",
                           input_.substr(pos + width));
    } else {
      where = std::string(input_);
    }
    return absl::InvalidArgumentError(
        absl::StrCat("filters: parse error: [", where, "]: ", message));
  }

  absl::string_view input_;
  Scanner scanner_;
};

}  // namespace

// An object matches when all selectors of any one conjunction match.
struct Filter::Alternatives {
  std::vector<Conjunction> any;
};

absl::StatusOr<Filter> Filter::Parse(absl::string_view expression) {
  if (expression.empty()) return Always();
  BERTH_ASSIGN_OR_RETURN(Conjunction selectors, Parser(expression).Parse());
  auto alternatives = std::make_shared<Alternatives>();
  alternatives->any.push_back(std::move(selectors));
  return Filter(std::move(alternatives));
}

Filter Filter::Any(absl::Span<const Filter> alternatives) {
  if (alternatives.empty()) return Always();
  auto merged = std::make_shared<Alternatives>();
  for (const Filter& filter : alternatives) {
    for (const Conjunction& conjunction : filter.alternatives_->any) {
      if (conjunction.empty()) return Always();
      merged->any.push_back(conjunction);
    }
  }
  return Filter(std::move(merged));
}

Filter Filter::Always() {
  auto always = std::make_shared<Alternatives>();
  always->any.emplace_back();
  return Filter(std::move(always));
}

bool Filter::Match(const Adaptor& object) const {
  return std::any_of(alternatives_->any.begin(), alternatives_->any.end(),
                     [&](const Conjunction& all) {
                       return std::all_of(all.begin(), all.end(),
                                          [&](const Selector& s) { return s.Match(object); });
                     });
}

std::string Filter::DebugString() const {
  return absl::StrJoin(alternatives_->any, " OR ", [](std::string* out, const Conjunction& all) {
    out->append(absl::StrJoin(
        all, ",", [](std::string* o, const Selector& s) { o->append(SelectorText(s)); }));
  });
}

std::optional<std::string> LabelField(const std::map<std::string, std::string>& labels,
                                      absl::Span<const std::string> rest) {
  const auto it = labels.find(absl::StrJoin(rest, "."));
  if (it == labels.end()) return std::nullopt;
  return it->second;
}

}  // namespace berth::filters
