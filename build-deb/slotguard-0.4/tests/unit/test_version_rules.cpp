// Unit tests of common/version_rules: the versioning trigger's decision for one updated row.
#include "version_rules.hpp"

#include <cstdint>
#include <limits>

#include <gtest/gtest.h>

namespace {

using sg::core::decide_bigint;
using sg::core::decide_uuid;
using sg::core::parse_version_style;
using sg::core::VersionStyle;
using Kind = sg::core::VersionVerdict::Kind;

constexpr std::int64_t kMax = std::numeric_limits<std::int64_t>::max();

TEST(ParseVersionStyle, KnownNames) {
  VersionStyle style = VersionStyle::kIncrement;
  ASSERT_TRUE(parse_version_style("assert", &style));
  EXPECT_EQ(style, VersionStyle::kAssert);
  ASSERT_TRUE(parse_version_style("increment", &style));
  EXPECT_EQ(style, VersionStyle::kIncrement);
}

TEST(ParseVersionStyle, UnknownNamesAreRejectedAndLeaveOutputAlone) {
  for (const char* bad : {"", "Assert", "INCREMENT", "incr", "assert ", " increment", "bump"}) {
    VersionStyle style = VersionStyle::kIncrement;
    EXPECT_FALSE(parse_version_style(bad, &style)) << "'" << bad << "'";
    EXPECT_EQ(style, VersionStyle::kIncrement) << "'" << bad << "'";
  }
}

// --- assert style: SET version = <the version I read>; the database bumps it ---

TEST(DecideBigintAssert, EqualVersionIsAcceptedAndBumped) {
  auto v = decide_bigint(VersionStyle::kAssert, false, true, 5, 5);
  EXPECT_EQ(v.kind, Kind::kAccept);
  EXPECT_EQ(v.value, 6);
}

TEST(DecideBigintAssert, OlderVersionIsStale) {
  auto v = decide_bigint(VersionStyle::kAssert, false, true, 5, 4);
  EXPECT_EQ(v.kind, Kind::kStale);
  EXPECT_EQ(v.expected, 4);
}

TEST(DecideBigintAssert, NewerVersionIsStale) {
  auto v = decide_bigint(VersionStyle::kAssert, false, true, 5, 6);
  EXPECT_EQ(v.kind, Kind::kStale);
  EXPECT_EQ(v.expected, 6);
}

TEST(DecideBigintAssert, OmittedVersionIsBumped) {
  auto v = decide_bigint(VersionStyle::kAssert, false, false, 5, 0);
  EXPECT_EQ(v.kind, Kind::kAccept);
  EXPECT_EQ(v.value, 6);
}

TEST(DecideBigintAssert, OmittedVersionIgnoresGiven) {
  // When the SET list does not name the column, `given` is just the old value carried over.
  auto v = decide_bigint(VersionStyle::kAssert, false, false, 5, 123);
  EXPECT_EQ(v.kind, Kind::kAccept);
  EXPECT_EQ(v.value, 6);
}

TEST(DecideBigintAssert, FirstUpdateFromZero) {
  auto v = decide_bigint(VersionStyle::kAssert, false, true, 0, 0);
  EXPECT_EQ(v.kind, Kind::kAccept);
  EXPECT_EQ(v.value, 1);
}

TEST(DecideBigintAssert, RequireVersionRefusesOmission) {
  auto v = decide_bigint(VersionStyle::kAssert, true, false, 5, 5);
  EXPECT_EQ(v.kind, Kind::kRequired);
}

TEST(DecideBigintAssert, RequireVersionAcceptsCorrectAssertion) {
  auto v = decide_bigint(VersionStyle::kAssert, true, true, 5, 5);
  EXPECT_EQ(v.kind, Kind::kAccept);
  EXPECT_EQ(v.value, 6);
}

TEST(DecideBigintAssert, RequireVersionStillReportsStale) {
  auto v = decide_bigint(VersionStyle::kAssert, true, true, 5, 3);
  EXPECT_EQ(v.kind, Kind::kStale);
  EXPECT_EQ(v.expected, 3);
}

TEST(DecideBigintAssert, BumpWrapsToOneInsteadOfOverflowing) {
  auto v = decide_bigint(VersionStyle::kAssert, false, true, kMax, kMax);
  EXPECT_EQ(v.kind, Kind::kAccept);
  EXPECT_EQ(v.value, 1);
  v = decide_bigint(VersionStyle::kAssert, false, false, kMax, 0);
  EXPECT_EQ(v.kind, Kind::kAccept);
  EXPECT_EQ(v.value, 1);
}

// --- increment style: SET version = read + 1 WHERE version = read ---

TEST(DecideBigintIncrement, StoredPlusOneIsAcceptedAndKept) {
  auto v = decide_bigint(VersionStyle::kIncrement, false, true, 5, 6);
  EXPECT_EQ(v.kind, Kind::kAccept);
  EXPECT_EQ(v.value, 6);  // kept, not bumped again to 7
}

TEST(DecideBigintIncrement, StoredValueItselfIsStale) {
  // Writing the stored value means the writer read stored - 1.
  auto v = decide_bigint(VersionStyle::kIncrement, false, true, 5, 5);
  EXPECT_EQ(v.kind, Kind::kStale);
  EXPECT_EQ(v.expected, 4);
}

TEST(DecideBigintIncrement, OtherValuesAreStale) {
  for (std::int64_t given : {-1, 0, 1, 4, 7, 100}) {
    auto v = decide_bigint(VersionStyle::kIncrement, false, true, 5, given);
    EXPECT_EQ(v.kind, Kind::kStale) << "given " << given;
    EXPECT_EQ(v.expected, given - 1) << "given " << given;
  }
}

TEST(DecideBigintIncrement, OmittedVersionIsBumped) {
  auto v = decide_bigint(VersionStyle::kIncrement, false, false, 5, 5);
  EXPECT_EQ(v.kind, Kind::kAccept);
  EXPECT_EQ(v.value, 6);
}

TEST(DecideBigintIncrement, RequireVersionRefusesOmission) {
  auto v = decide_bigint(VersionStyle::kIncrement, true, false, 5, 5);
  EXPECT_EQ(v.kind, Kind::kRequired);
}

TEST(DecideBigintIncrement, RequireVersionAcceptsStoredPlusOne) {
  auto v = decide_bigint(VersionStyle::kIncrement, true, true, 5, 6);
  EXPECT_EQ(v.kind, Kind::kAccept);
  EXPECT_EQ(v.value, 6);
}

TEST(DecideBigintIncrement, WrapsLikeTheBump) {
  auto v = decide_bigint(VersionStyle::kIncrement, false, true, kMax, 1);
  EXPECT_EQ(v.kind, Kind::kAccept);
  EXPECT_EQ(v.value, 1);
  v = decide_bigint(VersionStyle::kIncrement, false, true, kMax, kMax);
  EXPECT_EQ(v.kind, Kind::kStale);
}

TEST(DecideBigintIncrement, SequenceOfWritersEachReadingTheLatest) {
  std::int64_t stored = 0;
  for (int i = 0; i < 5; ++i) {
    auto v = decide_bigint(VersionStyle::kIncrement, false, true, stored, stored + 1);
    ASSERT_EQ(v.kind, Kind::kAccept);
    stored = v.value;
  }
  EXPECT_EQ(stored, 5);
  // A writer that read version 3 is now stale.
  EXPECT_EQ(decide_bigint(VersionStyle::kIncrement, false, true, stored, 4).kind, Kind::kStale);
}

// --- uuid versions: the writer asserts the uuid it read; the trigger stores a fresh one ---

TEST(DecideUuid, OmittedIsAccepted) {
  EXPECT_EQ(decide_uuid(false, false, false), Kind::kAccept);
  EXPECT_EQ(decide_uuid(false, false, true), Kind::kAccept);
}

TEST(DecideUuid, OmittedWithRequireIsRefused) {
  EXPECT_EQ(decide_uuid(true, false, false), Kind::kRequired);
  EXPECT_EQ(decide_uuid(true, false, true), Kind::kRequired);
}

TEST(DecideUuid, EqualIsAccepted) {
  EXPECT_EQ(decide_uuid(false, true, true), Kind::kAccept);
  EXPECT_EQ(decide_uuid(true, true, true), Kind::kAccept);
}

TEST(DecideUuid, DifferentIsStale) {
  EXPECT_EQ(decide_uuid(false, true, false), Kind::kStale);
  EXPECT_EQ(decide_uuid(true, true, false), Kind::kStale);
}

}  // namespace
