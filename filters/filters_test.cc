#include "filters/filters.h"

#include <array>
#include <map>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/status/status.h"
#include "absl/types/span.h"
#include "base/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace berth::filters {
namespace {

using ::std::string_literals::operator""s;

// An image as containerd's metadata adaptor presents one: `name` and the
// target's fields are present only when non-empty, labels whenever the key
// exists.
struct Image {
  std::string name;
  std::string digest;
  std::string media_type;
  std::map<std::string, std::string> labels;
};

class ImageAdaptor final : public Adaptor {
 public:
  explicit ImageAdaptor(const Image& image) : image_(image) {}

  std::optional<std::string> Field(const std::vector<std::string>& path) const override {
    if (path.empty()) return std::nullopt;
    if (path[0] == "name") return NonEmpty(image_.name);
    if (path[0] == "labels") return LabelField(image_.labels, absl::MakeConstSpan(path).subspan(1));
    if (path[0] == "target" && path.size() == 2) {
      if (path[1] == "digest") return NonEmpty(image_.digest);
      if (path[1] == "mediatype") return NonEmpty(image_.media_type);
    }
    return std::nullopt;
  }

 private:
  static std::optional<std::string> NonEmpty(const std::string& value) {
    if (value.empty()) return std::nullopt;
    return value;
  }

  const Image& image_;
};

const Image& Busybox() {
  static const Image* const kImage = new Image{
      .name = "docker.io/library/busybox:latest",
      .digest = "sha256:abc",
      .media_type = "application/vnd.oci.image.index.v1+json",
      .labels = {{"containerd.io/gc.root", "1"},
                 {"a.b", "dotted"},
                 {"empty", ""},
                 {"foo", "omg_asdf.asdf-qwer"},
                 {"more complex label with \\ and \"", "present"}},
  };
  return *kImage;
}

bool MatchesBusybox(const Filter& filter) { return filter.Match(ImageAdaptor(Busybox())); }

// ---------------------------------------------------------------------------
// Valid expressions, each with the canonical form it parses to.

struct ParseCase {
  std::string name;
  std::string expression;
  std::string canonical;

  friend void PrintTo(const ParseCase& c, std::ostream* os) {
    *os << c.name << ": " << absl::CHexEscape(c.expression);  // XML reports need text
  }
};

class ParseTest : public testing::TestWithParam<ParseCase> {};

TEST_P(ParseTest, ParsesToCanonicalForm) {
  absl::StatusOr<Filter> filter = Filter::Parse(GetParam().expression);
  ASSERT_THAT(filter, IsOk());
  EXPECT_EQ(filter->DebugString(), GetParam().canonical);
}

TEST_P(ParseTest, CanonicalFormParsesBackToItself) {
  absl::StatusOr<Filter> filter = Filter::Parse(GetParam().canonical);
  ASSERT_THAT(filter, IsOk());
  EXPECT_EQ(filter->DebugString(), GetParam().canonical);
}

INSTANTIATE_TEST_SUITE_P(
    Filters, ParseTest,
    testing::ValuesIn(std::vector<ParseCase>{
        {"Empty", "", ""},
        {"Presence", "name", "name"},
        {"Equal", "name==foo", R"(name=="foo")"},
        {"NotEqual", "name!=foo", R"(name!="foo")"},
        {"RegexUnquoted", R"(name~=^docker\.io/)", R"(name~="^docker\\.io/")"},
        {"RegexSlashQuoted", "name~=/[abc]{0,2}/", R"(name~="[abc]{0,2}")"},
        {"RegexSlashQuotedEscapedSlash", R"(name~=/library\/busybox/)",
         R"(name~="library/busybox")"},
        {"RegexPipeQuoted", "name~=|a/b|", R"(name~="a/b")"},
        {"RegexDoubleQuoted", R"(name~="a,b")", R"(name~="a,b")"},
        {"NestedPath", "target.digest==sha256:abc", R"(target.digest=="sha256:abc")"},
        {"QuotedFieldWithSlashAndDots", R"(labels."containerd.io/gc.root")",
         R"(labels."containerd.io/gc.root")"},
        {"QuotedFieldFirst", R"("leading quote".postquote==value)",
         R"("leading quote".postquote=="value")"},
        {"QuotedFieldWithEscapes", R"(labels."more complex label with \\ and \""==present)",
         R"(labels."more complex label with \\ and \""=="present")"},
        {"EmptyQuotedField", R"(labels."")", R"(labels."")"},
        {"FieldStartingWithDigit", "labels.1a_B", "labels.1a_B"},
        {"QuotedValueWithCommaAndSpace", R"(other=="too complex, yo")",
         R"(other=="too complex, yo")"},
        {"EmptyQuotedValue", R"(name=="")", R"(name=="")"},
        {"QuotedValueEscapes", R"(name=="\a\t\x41\u00e9\U0001F600\101\"")",
         "name==\"\\a\\tA\u00e9\U0001F600A\\\"\""},
        {"UnquotedValueWithDotsAndDashes", "labels.foo==omg_asdf.asdf-qwer",
         R"(labels.foo=="omg_asdf.asdf-qwer")"},
        {"UnquotedValueWithSlashesAndColon", "name==docker.io/library/busybox:latest",
         R"(name=="docker.io/library/busybox:latest")"},
        {"UnquotedValueWithOperatorRunesInside", "name==a=b!c~d", R"(name=="a=b!c~d")"},
        {"UnquotedValueWithQuoteRunesInside", R"(name==a"b/c|d)", R"(name=="a\"b/c|d")"},
        {"SingleQuotesAreLiteral", "name=='a'", R"(name=="'a'")"},
        {"UnquotedNonAsciiValue", "name~=牛,labels.moo==café", R"(name~="牛",labels.moo=="café")"},
        {"MultipleSelectors", "name==foo,labels.bar,labels.baz!=x",
         R"(name=="foo",labels.bar,labels.baz!="x")"},
        {"LeadingWhitespace", " \t name==foo", R"(name=="foo")"},
        {"SpacesAroundOperator", "name == foo", R"(name=="foo")"},
        {"SpaceAfterComma", "name==foo, labels.bar", R"(name=="foo",labels.bar)"},
        {"SpaceAfterDot", "labels. bar", "labels.bar"},
        {"NonAsciiSpaceSkipped", "\u3000name==foo", R"(name=="foo")"},
        {"ControlBytesInQuotedValueEscaped", R"(name=="\x01\x7f")", R"(name=="\x01\x7f")"},
        {"InvalidUtf8FromEscapeKeptAsBytes", R"(name=="\xff")", R"(name=="\xff")"},
    }),
    [](const testing::TestParamInfo<ParseCase>& info) { return info.param.name; });

// ---------------------------------------------------------------------------
// Matching one sample image.

struct MatchCase {
  std::string name;
  std::string expression;
  bool matches;

  friend void PrintTo(const MatchCase& c, std::ostream* os) {
    *os << c.name << ": " << absl::CHexEscape(c.expression);  // XML reports need text
  }
};

class MatchTest : public testing::TestWithParam<MatchCase> {};

TEST_P(MatchTest, MatchesSampleImage) {
  absl::StatusOr<Filter> filter = Filter::Parse(GetParam().expression);
  ASSERT_THAT(filter, IsOk());
  EXPECT_EQ(MatchesBusybox(*filter), GetParam().matches);
}

INSTANTIATE_TEST_SUITE_P(
    Filters, MatchTest,
    testing::ValuesIn(std::vector<MatchCase>{
        {"EmptyMatchesAll", "", true},
        {"NamePresent", "name", true},
        {"NameEqual", "name==docker.io/library/busybox:latest", true},
        {"NameEqualOther", "name==alpine", false},
        {"NameNotEqualOther", "name!=alpine", true},
        {"NameNotEqualItself", "name!=docker.io/library/busybox:latest", false},
        {"RegexSearchesUnanchored", "name~=busybox", true},
        {"RegexAnchoredMiss", "name~=^busybox", false},
        {"RegexAnchoredHit", R"(name~=^docker\.io/)", true},
        {"RegexSlashQuoted", R"(name~=/library\/busy/)", true},
        {"RegexCaseInsensitiveFlag", "name~=(?i)BUSYBOX", true},
        {"RegexIsCaseSensitive", "name~=BUSYBOX", false},
        {"NestedPath", "target.digest==sha256:abc", true},
        {"NestedPathMediaType", "target.mediatype~=index", true},
        {"NestedPathParentIsNotAField", "target", false},
        {"UnknownField", "size", false},
        {"LabelQuotedKeyWithDots", R"(labels."containerd.io/gc.root"==1)", true},
        {"LabelDottedKeyQuoted", R"(labels."a.b"==dotted)", true},
        {"LabelDottedKeyUnquotedJoins", "labels.a.b==dotted", true},
        {"LabelQuotedKeyWithEscapes", R"(labels."more complex label with \\ and \""==present)",
         true},
        {"LabelPunctuatedValue", "labels.foo==omg_asdf.asdf-qwer", true},
        {"LabelEmptyValueIsPresent", "labels.empty", true},
        {"LabelEmptyValueEqualsEmpty", R"(labels.empty=="")", true},
        {"LabelsAloneNamesTheEmptyKey", "labels", false},
        {"MissingLabelNotPresent", "labels.missing", false},
        {"MissingLabelNotEqualToEmpty", R"(labels.missing=="")", false},
        {"MissingLabelNotEqualMatches", "labels.missing!=x", true},
        {"MissingLabelNotEqualEmptyFails", R"(labels.missing!="")", false},
        {"MissingLabelRegexSeesEmpty", "labels.missing~=^$", true},
        {"MissingLabelRegexNonEmptyFails", "labels.missing~=x", false},
        {"MissingLabelRegexAnythingMatches", R"(labels.missing~=".*")", true},
        {"AllSelectorsMatch", R"(name~=busybox,labels."containerd.io/gc.root",target.digest)",
         true},
        {"OneSelectorFails", "name~=busybox,labels.missing", false},
        {"SingleQuotesCompareLiterally", "labels.foo=='omg_asdf.asdf-qwer'", false},
    }),
    [](const testing::TestParamInfo<MatchCase>& info) { return info.param.name; });

TEST(Match, PresenceIsWhatTheAdaptorSays) {
  const Image unnamed{.name = "", .digest = "", .media_type = "", .labels = {}};
  const Filter present = *Filter::Parse("name");
  const Filter not_equal = *Filter::Parse("name!=x");
  EXPECT_FALSE(present.Match(ImageAdaptor(unnamed)));
  EXPECT_TRUE(not_equal.Match(ImageAdaptor(unnamed)));
}

TEST(Match, FunctionAdaptorSeesParsedFieldPaths) {
  std::vector<std::vector<std::string>> seen;
  const FunctionAdaptor recorder(
      [&](const std::vector<std::string>& path) -> std::optional<std::string> {
        seen.push_back(path);
        return "v";
      });
  ASSERT_TRUE(Filter::Parse(R"(a.b,labels."c.d".e==v, f ~= v)")->Match(recorder));
  EXPECT_EQ(seen,
            (std::vector<std::vector<std::string>>{{"a", "b"}, {"labels", "c.d", "e"}, {"f"}}));
}

TEST(Match, CopiesShareTheParsedFilter) {
  const Filter original = *Filter::Parse("name~=busybox");
  const Filter copy = original;  // NOLINT(performance-unnecessary-copy-initialization)
  EXPECT_TRUE(MatchesBusybox(copy));
  EXPECT_EQ(copy.DebugString(), original.DebugString());
}

TEST(LabelField, JoinsTheRestWithDots) {
  const std::map<std::string, std::string> labels = {{"a.b.c", "x"}, {"", "root"}};
  EXPECT_EQ(LabelField(labels, std::vector<std::string>{"a", "b", "c"}), "x");
  EXPECT_EQ(LabelField(labels, std::vector<std::string>{"a.b", "c"}), "x");
  EXPECT_EQ(LabelField(labels, {}), "root");
  EXPECT_EQ(LabelField(labels, std::vector<std::string>{"a"}), std::nullopt);
  EXPECT_EQ(LabelField({}, std::vector<std::string>{"a"}), std::nullopt);
}

// ---------------------------------------------------------------------------
// Several filter strings: any may match.

TEST(ParseAny, NoExpressionsMatchEverything) {
  absl::StatusOr<Filter> filter = Filter::ParseAny(std::vector<std::string>{});
  ASSERT_THAT(filter, IsOk());
  EXPECT_TRUE(MatchesBusybox(*filter));
  EXPECT_EQ(filter->DebugString(), "");
}

TEST(ParseAny, MatchesWhenAnyExpressionMatches) {
  absl::StatusOr<Filter> filter =
      Filter::ParseAny(std::vector<std::string>{"name==alpine", "name~=busybox"});
  ASSERT_THAT(filter, IsOk());
  EXPECT_TRUE(MatchesBusybox(*filter));
  EXPECT_EQ(filter->DebugString(), R"(name=="alpine" OR name~="busybox")");
}

TEST(ParseAny, FailsWhenNoExpressionMatches) {
  absl::StatusOr<Filter> filter =
      Filter::ParseAny(std::vector<std::string>{"name==alpine", "labels.missing"});
  ASSERT_THAT(filter, IsOk());
  EXPECT_FALSE(MatchesBusybox(*filter));
}

TEST(ParseAny, AnEmptyExpressionMatchesEverything) {
  absl::StatusOr<Filter> filter = Filter::ParseAny(std::vector<std::string>{"name==alpine", ""});
  ASSERT_THAT(filter, IsOk());
  EXPECT_TRUE(MatchesBusybox(*filter));
  EXPECT_EQ(filter->DebugString(), "");
}

TEST(ParseAny, AcceptsAnyRangeOfStrings) {
  const std::array<const char*, 2> expressions = {"name==alpine", "target.digest==sha256:abc"};
  absl::StatusOr<Filter> filter = Filter::ParseAny(expressions);
  ASSERT_THAT(filter, IsOk());
  EXPECT_TRUE(MatchesBusybox(*filter));
}

TEST(ParseAny, OneMalformedExpressionFailsAll) {
  absl::StatusOr<Filter> filter =
      Filter::ParseAny(std::vector<std::string>{"name==alpine", "name=x"});
  EXPECT_THAT(filter, StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_EQ(filter.status().message(),
            R"(filters: parse error: [name >|=|< x]: unsupported operator "=")");
}

TEST(Any, CombinesParsedFilters) {
  const Filter alpine = *Filter::Parse("name==alpine");
  const Filter busybox = *Filter::Parse("name~=busybox");
  EXPECT_TRUE(MatchesBusybox(Filter::Any({alpine, busybox})));
  EXPECT_FALSE(MatchesBusybox(Filter::Any({alpine})));
  EXPECT_TRUE(MatchesBusybox(Filter::Any({})));
}

// ---------------------------------------------------------------------------
// Malformed expressions: InvalidArgument with containerd's message, which
// quotes the whole expression and marks where it went wrong.

struct ErrorCase {
  std::string name;
  std::string expression;
  std::string message;

  friend void PrintTo(const ErrorCase& c, std::ostream* os) {
    *os << c.name << ": " << absl::CHexEscape(c.expression);  // XML reports need text
  }
};

class ErrorTest : public testing::TestWithParam<ErrorCase> {};

TEST_P(ErrorTest, IsInvalidArgument) {
  EXPECT_THAT(Filter::Parse(GetParam().expression), StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST_P(ErrorTest, SaysWhereAndWhat) {
  EXPECT_EQ(Filter::Parse(GetParam().expression).status().message(),
            "filters: parse error: " + GetParam().message);
}

INSTANTIATE_TEST_SUITE_P(
    Filters, ErrorTest,
    testing::ValuesIn(std::vector<ErrorCase>{
        {"TrailingComma", "name==foo,", "[name==foo,]: expected field or quoted"},
        {"EmptySelectorBetweenCommas", "a,,b", "[a, >|,|< b]: expected field or quoted"},
        {"LeadingComma", ",name", "[ >|,|< name]: expected field or quoted"},
        {"NoFieldBeforeOperator", "==x", "[ >|=|< =x]: expected field or quoted"},
        {"OnlySpaces", "   ", "[   ]: expected field or quoted"},
        {"TrailingFieldSeparator", "labels.", "[labels.]: expected field or quoted"},
        {"UnexpectedRuneInFieldPath", R"(labels.?"x".post==present)",
         R"([labels. >|?|< "x".post==present]: expected field or quoted)"},
        {"SlashInUnquotedField", "labels.ns/key==value",
         "[labels.ns >|/|< key==value]: quoted literal not terminated"},
        {"HyphenInUnquotedField", "labels.foo-bar",
         R"([labels.foo >|-|< bar]: expected an operator ("=="|"!="|"~="))"},
        {"PipeQuotedField", "labels.|foo|==x",
         "[labels. >|||< foo|==x]: invalid quote encountered"},
        {"SlashQuotedField", "labels./foo/", "[labels. >|/|< foo/]: invalid quote encountered"},
        {"UnterminatedQuotedField", R"(labels."abc)",
         R"([labels. >|"|< abc]: quoted literal not terminated)"},
        {"UnterminatedQuotedValue", R"(name=="abc)",
         R"([name== >|"|< abc]: quoted literal not terminated)"},
        {"UnterminatedSlashValue", "labels.key~=/value",
         "[labels.key~= >|/|< value]: quoted literal not terminated"},
        {"NewlineInQuotedField", "labels.\"a\nb\"==x",
         "[labels. >|\"|< a\nb\"==x]: quoted literal not terminated"},
        {"SlashQuotedValueWithEquals", "name==/foo/",
         "[name== >|/|< foo/]: invalid quote encountered"},
        {"PipeQuotedValueWithNotEqual", "name!=|foo|",
         "[name!= >|||< foo|]: invalid quote encountered"},
        {"SingleEquals", "a=b", R"([a >|=|< b]: unsupported operator "=")"},
        {"TripleEquals", "a===b", R"([a >|=|< ==b]: unsupported operator "===")"},
        {"OperatorSwallowsBang", "a==!b", R"([a >|=|< =!b]: unsupported operator "==!")"},
        {"UnknownOperatorRune", "a<b", R"([a >|<|< b]: expected an operator ("=="|"!="|"~="))"},
        {"SpaceBetweenFields", "a b", R"([a  >|b|< ]: expected an operator ("=="|"!="|"~="))"},
        {"SpaceBeforeDot", "labels .foo",
         R"([labels  >|.|< foo]: expected an operator ("=="|"!="|"~="))"},
        {"TrailingSpaceAfterField", "name ", R"([name ]: expected an operator ("=="|"!="|"~="))"},
        {"MissingValueBeforeComma", "image~=,id?=?fbaq",
         "[image~= >|,|< id?=?fbaq]: expected value or quoted"},
        {"MissingValueAtEnd", "name==", "[name==]: expected value or quoted"},
        {"ValueStartingWithDot", "a==.b", "[a== >|.|< b]: expected value or quoted"},
        {"UnquotedRegexStartingWithDot", "a~=.*", "[a~= >|.|< *]: expected value or quoted"},
        {"TrailingSpaceAfterValue", "name==foo ", "[name==foo >| |< ]: unexpected input:  "},
        {"SpaceBeforeComma", "name==foo ,a", "[name==foo >| |< ,a]: unexpected input:  "},
        {"TwoValues", "name==a b", "[name==a >| |< b]: unexpected input:  "},
        {"TextAfterQuotedValue", R"(name=="a"b)", R"([name=="a" >|b|< ]: unexpected input: b)"},
        {"NonGraphicRuneEndsValue", "name==a\u200Bb",
         "[name==a >|\u200B|< b]: unexpected input: \u200B"},
        {"IllegalEscape", R"(labels."\g")", R"([labels. >|"|< \g"]: illegal escape sequence)"},
        {"RegexEscapeInSlashQuotes", R"(name~=/\d+/)",
         R"([name~= >|/|< \d+/]: illegal escape sequence)"},
        {"SingleQuoteEscapeInDoubleQuotes", R"(name=="\'")",
         R"([name== >|"|< \'"]: illegal escape sequence)"},
        {"IllegalNumericEscape", R"(labels."\xaz")",
         R"([labels. >|"|< \xaz"]: illegal numeric escape sequence)"},
        {"ShortUnicodeEscape", R"(name=="\u12")",
         R"([name== >|"|< \u12"]: illegal numeric escape sequence)"},
        {"BackslashAtEnd", R"(name=="\)", R"([name== >|"|< \]: illegal escape sequence)"},
        {"OctalEscapeOverByte", R"(name=="\400")",
         R"([name== >|"|< \400"]: unquoting failed: quote syntax error)"},
        {"UnicodeEscapeOverMaxRune", R"(name=="\U00110000")",
         R"([name== >|"|< \U00110000"]: unquoting failed: quote syntax error)"},
        {"NulInField", "na\0me"s, "[na >|\0|< me]: unexpected null"s},
        {"NulInQuotedValue", "a==\"x\0\""s, "[a== >|\"|< x\0\"]: unexpected null"s},
        {"MalformedUtf8InValue", "name==\xff", "[name== >|\xff|< ]: rune error"},
        {"MalformedUtf8AfterValue", "name==a\xff", "[name==a >|\xff|< ]: unexpected input: \uFFFD"},
        {"LiteralReplacementRune", "name==\uFFFD", "[name== >|\uFFFD|< ]: rune error"},
        {"InvalidRegexUnquoted", "a~=(",
         R"([a~= >|(|< ]: invalid regular expression "(": missing ): ()"},
        {"SyntaxErrorReportedBeforeBadRegex", "a~=(,b c",
         R"([a~=(,b  >|c|< ]: expected an operator ("=="|"!="|"~="))"},
        {"InvalidRegexQuoted", "a~=/x**/,b",
         R"([a~= >|/|< x**/,b]: invalid regular expression "x**": bad repetition operator: **)"},
    }),
    [](const testing::TestParamInfo<ErrorCase>& info) { return info.param.name; });

}  // namespace
}  // namespace berth::filters
