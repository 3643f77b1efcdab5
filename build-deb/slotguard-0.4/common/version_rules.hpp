// version_rules: the pure decision of the versioning trigger, free of PostgreSQL so that it can be
// unit-tested. The trigger feeds it what it read from the old and new row and applies the verdict.
#pragma once

#include <cstdint>
#include <string_view>

namespace sg::core {

// VersionStyle says what a writer that sets the version column asserts.
enum class VersionStyle {
  kAssert,     // SET version = <the version I read>; the database bumps it
  kIncrement,  // SET version = <read + 1> WHERE version = <read> (Rails, Hibernate, Mongoose)
};

// parse_version_style maps 'assert' / 'increment'; returns false for anything else.
bool parse_version_style(std::string_view text, VersionStyle* out);

// VersionVerdict is what the trigger must do with one updated row.
struct VersionVerdict {
  enum class Kind {
    kAccept,    // store `value` as the new version
    kStale,     // the writer asserted a version that is not the stored one: SG001
    kRequired,  // require_version is on and the UPDATE did not set the version: SG001
  };
  Kind kind;
  std::int64_t value;     // kAccept: the version to store
  std::int64_t expected;  // kStale: the version the writer's SET implied it had read
};

// decide_bigint decides an UPDATE of a row whose integer version is `stored`. `set` says whether
// the UPDATE's SET list names the version column, `given` is the value it put there.
VersionVerdict decide_bigint(VersionStyle style, bool require_version, bool set,
                             std::int64_t stored, std::int64_t given);

// UuidVerdict is decide_uuid's answer: for kAccept the trigger stores a fresh UUID.
VersionVerdict::Kind decide_uuid(bool require_version, bool set, bool given_equals_stored);

}  // namespace sg::core
