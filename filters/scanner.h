// The lexical layer of filter expressions, private to //filters.
//
// It reproduces containerd 1.6's filters scanner token for token, because the
// tokens decide which filters parse and what the errors say:
//   - a field is a run of [A-Za-z0-9_];
//   - `"`, `/` and `|` open a quoted literal that ends at the same rune, with
//     Go escapes (\a \b \f \n \r \t \v \\ \<quote> \ooo \xhh \uhhhh
//     \Uhhhhhhhh); a newline or the end of input inside one is an error;
//   - `,` and `.` are separators; a run of `=`, `!`, `~` is one operator;
//   - right after an operator, anything that is not a quote, separator,
//     operator or space starts an unquoted value that runs until a `,`, a
//     space or a rune that is not graphic;
//   - white space is skipped before a token, and only there;
//   - NUL and malformed UTF-8 (and a literal U+FFFD) are illegal runes.
#ifndef BERTH_FILTERS_SCANNER_H_
#define BERTH_FILTERS_SCANNER_H_

#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace berth::filters::internal {

// A Unicode code point, or one of the two pseudo-runes below.
using Rune = int32_t;
inline constexpr Rune kEofRune = -1;
inline constexpr Rune kIllegalRune = -2;

// The code point at the start of `text` and its length in bytes. Malformed
// UTF-8 decodes as U+FFFD with length 1, as Go's utf8.DecodeRuneInString.
// REQUIRES: !text.empty()
struct Decoded {
  Rune rune;
  size_t width;
};
Decoded DecodeRune(absl::string_view text);

// Whether `rune` may appear in an unquoted field: [A-Za-z0-9_].
bool IsFieldRune(Rune rune);

// The UTF-8 encoding of `rune`; U+FFFD for a pseudo-rune, a surrogate or a
// value beyond U+10FFFF, as Go's string(rune) and utf8.EncodeRune.
std::string EncodeRune(Rune rune);

enum class TokenKind {
  kEof,
  kIllegal,  // see Scanner::error() for why
  kQuoted,   // text includes both quote runes
  kValue,
  kField,
  kSeparator,
  kOperator,
  kUnexpected,  // a rune that starts no token; text is empty
};

struct Token {
  TokenKind kind;
  size_t pos;  // byte offset of the token's first rune (input size at EOF)
  absl::string_view text;
};

class Scanner {
 public:
  explicit Scanner(absl::string_view input) : input_(input) {}

  // Skips white space and returns the next token.
  Token Scan();

  // The next rune, unconsumed and with no white space skipped: the parser
  // decides on it, so `a==b ,c` is an error where `a==b, c` is not.
  Rune Peek();

  // Byte offset of the rune Peek() returns.
  size_t offset() const { return next_; }

  // The first lexical error met, kept even if later ones follow (the parser
  // reports it for any kIllegal token, as containerd does).
  const std::string& error() const { return error_; }

 private:
  Rune Next();
  void Fail(absl::string_view message);
  bool ScanQuoted(Rune quote);
  Rune ScanEscape(Rune quote, bool& legal);
  Rune ScanDigits(Rune ch, int base, int count, bool& legal);
  void SkipWhile(bool (*keep)(Rune));

  absl::string_view input_;
  size_t start_ = 0;           // offset of the rune Next() returned last
  size_t next_ = 0;            // offset just past it
  bool expect_value_ = false;  // an operator was the last token
  std::string error_;
};

// Decodes a kQuoted token's text (quotes included) the way Go's
// strconv.Unquote does, with `/` and `|` accepted as double-quote-like
// delimiters. Fails only on escapes the scanner lets through but that encode
// nothing (octal above \377, \U above U+10FFFF); the error is Go's text.
absl::StatusOr<std::string> Unquote(absl::string_view quoted);

}  // namespace berth::filters::internal

#endif  // BERTH_FILTERS_SCANNER_H_
