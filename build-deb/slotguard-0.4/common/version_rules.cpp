#include "version_rules.hpp"

#include <limits>

namespace sg::core {

bool parse_version_style(std::string_view text, VersionStyle* out) {
  if (text == "assert") {
    *out = VersionStyle::kAssert;
    return true;
  }
  if (text == "increment") {
    *out = VersionStyle::kIncrement;
    return true;
  }
  return false;
}

namespace {
// next_version bumps a version; it wraps to 1 rather than overflowing (never reached in practice).
std::int64_t next_version(std::int64_t v) {
  return v == std::numeric_limits<std::int64_t>::max() ? 1 : v + 1;
}
}  // namespace

VersionVerdict decide_bigint(VersionStyle style, bool require_version, bool set,
                             std::int64_t stored, std::int64_t given) {
  using Kind = VersionVerdict::Kind;
  if (!set) {
    if (require_version) return {Kind::kRequired, 0, 0};
    return {Kind::kAccept, next_version(stored), 0};
  }
  if (style == VersionStyle::kAssert) {
    if (given != stored) return {Kind::kStale, 0, given};
    return {Kind::kAccept, next_version(stored), 0};
  }
  // increment: the writer read `given - 1` and must have read the stored version.
  if (given != next_version(stored))
    return {Kind::kStale, 0, given == std::numeric_limits<std::int64_t>::min() ? given : given - 1};
  return {Kind::kAccept, given, 0};
}

VersionVerdict::Kind decide_uuid(bool require_version, bool set, bool given_equals_stored) {
  using Kind = VersionVerdict::Kind;
  if (!set) return require_version ? Kind::kRequired : Kind::kAccept;
  return given_equals_stored ? Kind::kAccept : Kind::kStale;
}

}  // namespace sg::core
