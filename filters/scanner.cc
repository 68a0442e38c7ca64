#include "filters/scanner.h"

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "re2/re2.h"

namespace berth::filters::internal {
namespace {

constexpr Rune kReplacementRune = 0xFFFD;
constexpr Rune kMaxRune = 0x10FFFF;

bool IsQuoteRune(Rune r) { return r == '"' || r == '/' || r == '|'; }

bool IsSeparatorRune(Rune r) { return r == ',' || r == '.'; }

bool IsOperatorRune(Rune r) { return r == '=' || r == '!' || r == '~'; }

// Go's unicode.IsSpace: the White_Space property.
bool IsSpace(Rune r) {
  switch (r) {
    case '\t':
    case '\n':
    case '\v':
    case '\f':
    case '\r':
    case ' ':
    case 0x85:
    case 0xA0:
    case 0x1680:
    case 0x2028:
    case 0x2029:
    case 0x202F:
    case 0x205F:
    case 0x3000: return true;
    default: return r >= 0x2000 && r <= 0x200A;
  }
}

// Go's unicode.IsGraphic minus spaces: letters, marks, numbers, punctuation
// and symbols. RE2 carries the Unicode tables, so it answers for non-ASCII.
bool IsGraphicNonSpace(Rune r) {
  if (r < 0x80) return r > ' ' && r < 0x7F;
  static const RE2* const kGraphic = new RE2(R"([\p{L}\p{M}\p{N}\p{P}\p{S}])");
  return RE2::FullMatch(EncodeRune(r), *kGraphic);
}

bool IsValueRune(Rune r) { return r >= 0 && r != ',' && IsGraphicNonSpace(r); }

int DigitValue(Rune r) {
  if (r >= '0' && r <= '9') return r - '0';
  if (r >= 'a' && r <= 'f') return r - 'a' + 10;
  if (r >= 'A' && r <= 'F') return r - 'A' + 10;
  return 16;  // larger than any digit of any base we read
}

}  // namespace

Decoded DecodeRune(absl::string_view text) {
  constexpr Decoded kMalformed{kReplacementRune, 1};
  const auto* bytes = reinterpret_cast<const unsigned char*>(text.data());
  const unsigned lead = bytes[0];
  if (lead < 0x80) return {static_cast<Rune>(lead), 1};

  // The second byte's range excludes overlong forms, surrogates and values
  // past U+10FFFF, as Go's decoder does.
  size_t width;
  Rune rune;
  unsigned low = 0x80, high = 0xBF;
  if (lead >= 0xC2 && lead <= 0xDF) {
    width = 2;
    rune = lead & 0x1F;
  } else if (lead >= 0xE0 && lead <= 0xEF) {
    width = 3;
    rune = lead & 0x0F;
    if (lead == 0xE0) low = 0xA0;
    if (lead == 0xED) high = 0x9F;
  } else if (lead >= 0xF0 && lead <= 0xF4) {
    width = 4;
    rune = lead & 0x07;
    if (lead == 0xF0) low = 0x90;
    if (lead == 0xF4) high = 0x8F;
  } else {
    return kMalformed;
  }
  if (text.size() < width || bytes[1] < low || bytes[1] > high) return kMalformed;
  for (size_t i = 1; i < width; ++i) {
    if (i > 1 && (bytes[i] < 0x80 || bytes[i] > 0xBF)) return kMalformed;
    rune = (rune << 6) | (bytes[i] & 0x3F);
  }
  return {rune, width};
}

bool IsFieldRune(Rune r) {
  return r == '_' || (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z') || (r >= '0' && r <= '9');
}

std::string EncodeRune(Rune rune) {
  if (rune < 0 || rune > kMaxRune || (rune >= 0xD800 && rune <= 0xDFFF)) rune = kReplacementRune;
  std::string out;
  if (rune < 0x80) {
    out.push_back(static_cast<char>(rune));
  } else if (rune < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (rune >> 6)));
    out.push_back(static_cast<char>(0x80 | (rune & 0x3F)));
  } else if (rune < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (rune >> 12)));
    out.push_back(static_cast<char>(0x80 | ((rune >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (rune & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (rune >> 18)));
    out.push_back(static_cast<char>(0x80 | ((rune >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((rune >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (rune & 0x3F)));
  }
  return out;
}

Rune Scanner::Next() {
  start_ = next_;
  if (next_ >= input_.size()) return kEofRune;
  const Decoded decoded = DecodeRune(input_.substr(next_));
  next_ += decoded.width;
  // containerd rejects a literal U+FFFD too: it cannot tell it from a decoding
  // failure.
  if (decoded.rune == kReplacementRune) {
    Fail("rune error");
    return kIllegalRune;
  }
  if (decoded.rune == 0) {
    Fail("unexpected null");
    return kIllegalRune;
  }
  return decoded.rune;
}

Rune Scanner::Peek() {
  const size_t start = start_, next = next_;
  const Rune rune = Next();
  start_ = start;
  next_ = next;
  return rune;
}

void Scanner::Fail(absl::string_view message) {
  if (error_.empty()) error_ = std::string(message);
}

void Scanner::SkipWhile(bool (*keep)(Rune)) {
  while (keep(Peek())) Next();
}

Token Scanner::Scan() {
  Rune ch = Next();
  while (IsSpace(ch)) ch = Next();
  const size_t pos = start_;
  const auto token = [&](TokenKind kind) {
    return Token{kind, pos, input_.substr(pos, next_ - pos)};
  };

  if (ch == kEofRune) return {TokenKind::kEof, pos, {}};
  if (ch == kIllegalRune) return {TokenKind::kIllegal, pos, {}};
  if (IsQuoteRune(ch)) return token(ScanQuoted(ch) ? TokenKind::kQuoted : TokenKind::kIllegal);
  if (IsSeparatorRune(ch)) {
    expect_value_ = false;
    return token(TokenKind::kSeparator);
  }
  if (IsOperatorRune(ch)) {
    SkipWhile(IsOperatorRune);
    expect_value_ = true;
    return token(TokenKind::kOperator);
  }
  // The first rune of a value is not checked: after an operator anything
  // left over starts one.
  if (expect_value_) {
    SkipWhile(IsValueRune);
    expect_value_ = false;
    return token(TokenKind::kValue);
  }
  if (IsFieldRune(ch)) {
    SkipWhile(IsFieldRune);
    return token(TokenKind::kField);
  }
  return {TokenKind::kUnexpected, pos, {}};
}

// A bad escape does not stop the scan: the literal still runs to its closing
// quote, so the error names the whole literal.
bool Scanner::ScanQuoted(Rune quote) {
  bool legal = true;
  Rune ch = Next();
  while (ch != quote) {
    if (ch == '\n' || ch < 0) {
      Fail("quoted literal not terminated");
      return false;
    }
    if (ch == '\\') {
      bool escape_legal;
      ch = ScanEscape(quote, escape_legal);
      legal = legal && escape_legal;
    } else {
      ch = Next();
    }
  }
  return legal;
}

// Returns the rune after the escape sequence.
Rune Scanner::ScanEscape(Rune quote, bool& legal) {
  const Rune ch = Next();
  switch (ch) {
    case 'a':
    case 'b':
    case 'f':
    case 'n':
    case 'r':
    case 't':
    case 'v':
    case '\\': legal = true; return Next();
    case '0':
    case '1':
    case '2':
    case '3':
    case '4':
    case '5':
    case '6':
    case '7': return ScanDigits(ch, 8, 3, legal);
    case 'x': return ScanDigits(Next(), 16, 2, legal);
    case 'u': return ScanDigits(Next(), 16, 4, legal);
    case 'U': return ScanDigits(Next(), 16, 8, legal);
  }
  if (ch == quote) {
    legal = true;
    return Next();
  }
  Fail("illegal escape sequence");
  legal = false;
  return ch;
}

// `ch` is the first digit; returns the rune after `count` digits.
Rune Scanner::ScanDigits(Rune ch, int base, int count, bool& legal) {
  for (; count > 0 && DigitValue(ch) < base; --count) ch = Next();
  legal = count == 0;
  if (!legal) Fail("illegal numeric escape sequence");
  return ch;
}

absl::StatusOr<std::string> Unquote(absl::string_view quoted) {
  const absl::Status syntax_error = absl::InvalidArgumentError("quote syntax error");
  if (quoted.size() < 2 || quoted.front() != quoted.back()) return syntax_error;
  const char quote = quoted.front();
  const absl::string_view body = quoted.substr(1, quoted.size() - 2);

  std::string out;
  size_t i = 0;
  while (i < body.size()) {
    const unsigned char c = body[i];
    if (c == quote || c == '\n') return syntax_error;
    if (c >= 0x80) {
      const Decoded decoded = DecodeRune(body.substr(i));
      out += EncodeRune(decoded.rune);
      i += decoded.width;
      continue;
    }
    if (c != '\\') {
      out.push_back(static_cast<char>(c));
      ++i;
      continue;
    }
    if (i + 1 >= body.size()) return syntax_error;
    const char escape = body[i + 1];
    i += 2;
    switch (escape) {
      case 'a': out.push_back('\a'); break;
      case 'b': out.push_back('\b'); break;
      case 'f': out.push_back('\f'); break;
      case 'n': out.push_back('\n'); break;
      case 'r': out.push_back('\r'); break;
      case 't': out.push_back('\t'); break;
      case 'v': out.push_back('\v'); break;
      case '\\': out.push_back('\\'); break;
      case '"':
      case '\'':
      case '/':
      case '|':
        if (escape != quote) return syntax_error;
        out.push_back(escape);
        break;
      case 'x':
      case 'u':
      case 'U': {
        const size_t digits = escape == 'x' ? 2 : escape == 'u' ? 4 : 8;
        if (body.size() - i < digits) return syntax_error;
        uint32_t value = 0;
        for (size_t j = 0; j < digits; ++j) {
          const int digit = DigitValue(static_cast<unsigned char>(body[i + j]));
          if (digit >= 16) return syntax_error;
          value = (value << 4) | static_cast<uint32_t>(digit);
        }
        i += digits;
        // \x names a byte, which need not be valid UTF-8; \u and \U name
        // code points.
        if (escape == 'x') {
          out.push_back(static_cast<char>(value));
        } else {
          if (value > static_cast<uint32_t>(kMaxRune)) return syntax_error;
          out += EncodeRune(static_cast<Rune>(value));
        }
        break;
      }
      case '0':
      case '1':
      case '2':
      case '3':
      case '4':
      case '5':
      case '6':
      case '7': {
        if (body.size() - i < 2) return syntax_error;
        Rune value = escape - '0';
        for (size_t j = 0; j < 2; ++j) {
          const char digit = body[i + j];
          if (digit < '0' || digit > '7') return syntax_error;
          value = (value << 3) | (digit - '0');
        }
        i += 2;
        if (value > 0xFF) return syntax_error;
        out.push_back(static_cast<char>(value));
        break;
      }
      default: return syntax_error;
    }
  }
  return out;
}

}  // namespace berth::filters::internal
