#include "base/identifiers.h"

#include <string>

#include "base/status_matchers.h"
#include "gtest/gtest.h"

namespace berth::identifiers {
namespace {

struct Case {
  const char* name;
  std::string id;
};

using std::string_literals::operator""s;

const Case kValid[] = {
    {"Word", "default"},           {"SingleLetter", "a"},
    {"SingleDigit", "7"},          {"Dotted", "k8s.io"},
    {"EverySeparator", "a.b_c-d"}, {"MixedCase", "My_Ns-2"},
    {"AllUpper", "DEFAULT"},       {"LeadingDigit", "1abc"},
    {"DigitAfterDot", "v1.2.3"},   {"MaxLength", std::string(kMaxLength, 'a')},
};

const Case kInvalid[] = {
    {"Empty", ""},
    {"TooLong", std::string(kMaxLength + 1, 'a')},
    {"TooLongEvenIfOtherwiseValid", std::string(40, 'a') + "." + std::string(36, 'b')},
    {"LeadingDot", ".hidden"},
    {"LeadingDash", "-a"},
    {"LeadingUnderscore", "_a"},
    {"TrailingDot", "a."},
    {"TrailingDash", "a-"},
    {"DotDot", ".."},
    {"Dot", "."},
    {"DoubleSeparator", "a..b"},
    {"MixedDoubleSeparator", "a-_b"},
    {"Slash", "a/b"},
    {"ParentTraversal", "../etc"},
    {"Space", "a b"},
    {"Tab", "a\tb"},
    {"Newline", "a\n"},
    {"NulByte", "a\0b"s},
    {"Colon", "a:b"},
    {"Plus", "a+b"},
    {"NonAscii", "caf\xc3\xa9"},
    {"Latin1Letter", "caf\xe9"},
};

TEST(Identifiers, AcceptsValid) {
  for (const Case& c : kValid) {
    EXPECT_THAT(Validate(c.id), IsOk()) << c.name;
  }
}

TEST(Identifiers, RefusesInvalid) {
  for (const Case& c : kInvalid) {
    EXPECT_THAT(Validate(c.id), StatusIs(absl::StatusCode::kInvalidArgument)) << c.name;
  }
}

TEST(Identifiers, MessageQuotesTheIdentifierEscaped) {
  EXPECT_EQ(Validate("a/b").message(),
            "identifier \"a/b\" must match ^[A-Za-z0-9]+(?:[._-](?:[A-Za-z0-9]+))*$");
  EXPECT_EQ(Validate("a\0b"s).message(),
            "identifier \"a\\000b\" must match ^[A-Za-z0-9]+(?:[._-](?:[A-Za-z0-9]+))*$");
  EXPECT_EQ(
      Validate(std::string(77, 'x')).message(),
      "identifier \"" + std::string(77, 'x') + "\" greater than maximum length (76 characters)");
  EXPECT_EQ(Validate("").message(), "identifier must not be empty");
}

}  // namespace
}  // namespace berth::identifiers
