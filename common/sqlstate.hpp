// sqlstate: slotguard's SQLSTATEs and the reason names the daemon reports for them. Shared by the
// extension (which raises them) and the daemon / CLI (which map them), free of PostgreSQL headers.
#pragma once

#include <string_view>

namespace sg::core {

inline constexpr std::string_view kVersionConflict = "SG001";
inline constexpr std::string_view kNotFound = "SG002";
inline constexpr std::string_view kSoldOut = "SG003";
inline constexpr std::string_view kHoldExpired = "SG004";
inline constexpr std::string_view kInvalidTransition = "SG005";

// reason_for_sqlstate maps a SQLSTATE to the JSON-RPC error reason of SPEC "slotguardd".
inline std::string_view reason_for_sqlstate(std::string_view sqlstate) {
  if (sqlstate == kVersionConflict) return "version_conflict";
  if (sqlstate == kNotFound) return "not_found";
  if (sqlstate == kSoldOut) return "sold_out";
  if (sqlstate == kHoldExpired) return "hold_expired";
  if (sqlstate == kInvalidTransition) return "invalid_transition";
  if (sqlstate == "23P01") return "overlap";
  // Other integrity constraints of the application's tables: CHECK, UNIQUE, NOT NULL, foreign
  // keys. A business error the caller can act on, not a fault of the daemon.
  if (sqlstate.substr(0, 2) == "23") return "constraint_violation";
  if (sqlstate == "22023" || sqlstate == "42703" || sqlstate.substr(0, 2) == "22")
    return "invalid_params";
  if (sqlstate == "42501") return "unauthorized";
  if (sqlstate.substr(0, 2) == "08" || sqlstate == "57P01" || sqlstate == "57P03")
    return "unavailable";
  return "internal";
}

// is_retryable says whether a failed transaction may simply be run again (40001, 40P01).
inline bool is_retryable(std::string_view sqlstate) {
  return sqlstate == "40001" || sqlstate == "40P01";
}

}  // namespace sg::core
