// error_contract: slotguard's errors as data — the SQLSTATE table, the texts of the errors whose
// DETAIL carries facts a program needs (which row, which version, which rule), and the parsers
// that read those facts back. The extension formats its errors here before it raises them; the
// daemon parses them here to fill the `data` of a JSON-RPC error. Both sides therefore agree by
// construction, and the round trip is unit-tested (tests/unit/test_error_contract.cpp).
//
// The formats are documented in docs/errors.md. They are part of the public interface (drivers
// show them, applications match them): change one only together with that page.
//
// Pure C++: no PostgreSQL headers, so that the daemon and the unit tests share it. Parsers take
// text that carries user data (keys, names, holders) and run in linear time.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace sg::errors {

// sqlstate: the five-character codes. slotguard's own class is SG.
namespace sqlstate {
inline constexpr std::string_view kVersionConflict = "SG001";
inline constexpr std::string_view kNotFound = "SG002";
inline constexpr std::string_view kSoldOut = "SG003";
inline constexpr std::string_view kHoldExpired = "SG004";
inline constexpr std::string_view kInvalidTransition = "SG005";
// PostgreSQL's codes that slotguard raises or that the daemon treats specially.
inline constexpr std::string_view kExclusionViolation = "23P01";
inline constexpr std::string_view kSerializationFailure = "40001";
inline constexpr std::string_view kDeadlockDetected = "40P01";
inline constexpr std::string_view kInvalidParameterValue = "22023";
inline constexpr std::string_view kInsufficientPrivilege = "42501";
inline constexpr std::string_view kReadOnlySqlTransaction = "25006";
}  // namespace sqlstate

// SqlstateEntry is one row of the table below.
struct SqlstateEntry {
  std::string_view sqlstate;
  std::string_view reason;   // the daemon's error reason (docs/daemon.md "Error reasons")
  std::string_view meaning;  // one line for docs and tools
};

// kSlotguardSqlstates: slotguard's own SQLSTATEs, in order.
inline constexpr SqlstateEntry kSlotguardSqlstates[] = {
    {sqlstate::kVersionConflict, "version_conflict",
     "the row changed since it was read (optimistic locking)"},
    {sqlstate::kNotFound, "not_found", "no such slot or booking"},
    {sqlstate::kSoldOut, "sold_out", "not enough free seats, or the holder already has a booking"},
    {sqlstate::kHoldExpired, "hold_expired", "the hold expired before it was confirmed"},
    {sqlstate::kInvalidTransition, "invalid_transition",
     "the state change is not allowed by the table's transition rules"},
};

// is_connection_lost: the session is gone or going (class 08, admin / crash shutdown, cannot
// connect now). The daemon drops the connection, answers `unavailable` and reconnects.
bool is_connection_lost(std::string_view code);

// is_read_only_server: the server accepts no writes (25006: a standby, or a primary demoted by a
// failover). The daemon answers `unavailable` and reconnects, so that a multi-host conninfo with
// target_session_attrs=read-write finds the new primary.
bool is_read_only_server(std::string_view code);

// is_retryable: the transaction may simply be run again (serialization failure, deadlock).
bool is_retryable(std::string_view code);

// reason_for_sqlstate maps a SQLSTATE to the daemon's JSON-RPC error reason.
std::string_view reason_for_sqlstate(std::string_view code);

// ---- SG001 version_conflict ------------------------------------------------------------------
// DETAIL: "Table T, key K: expected version E, current version C."
// DETAIL: "Table T, key K: current version C; the table requires every UPDATE to set the version
//          it read."          (version_required: the UPDATE did not set the version column)
// T is a qualified name as quote_identifier writes it; K the row's primary key as JSON (or
// "(no primary key)"); E and C the versions' text.
struct VersionConflict {
  std::string table;
  std::string key;                      // JSON text, as the database wrote it
  std::optional<std::string> expected;  // absent for version_required
  std::string current;
};
std::string version_conflict_detail(std::string_view table, std::string_view key,
                                    std::string_view expected, std::string_view current);
std::string version_required_detail(std::string_view table, std::string_view key,
                                    std::string_view current);
std::optional<VersionConflict> parse_version_conflict(std::string_view detail);

// ---- SG002 not_found -------------------------------------------------------------------------
std::string slot_not_found_message(long long slot_id);        // "slot N does not exist"
std::string booking_not_found_message(long long booking_id);  // "booking N does not exist"

// ---- SG003 sold_out --------------------------------------------------------------------------
// message "slot N is sold out<suffix>", DETAIL "R seats requested, F free."
std::string sold_out_message(long long slot_id, std::string_view suffix);
std::string sold_out_detail(int requested, int free);
// one_per_holder: message 'holder "H" already has a booking for slot N', DETAIL from
// seats_free_detail ("<what>; F seats are free.").
std::string holder_conflict_message(std::string_view holder, long long slot_id);
std::optional<std::string> parse_holder_conflict(std::string_view message);
std::string seats_free_detail(std::string_view what, int free);

// ---- SG004 hold_expired ----------------------------------------------------------------------
std::string hold_expired_message(long long booking_id);  // "hold N has expired"
inline constexpr std::string_view kHoldExpiredDetail =
    "Its seats have been released; reserve again.";

// ---- 23P01 overlap ---------------------------------------------------------------------------
// DETAIL (capacity 1): 'Rule "R": the row overlaps K during P.'
// DETAIL (capacity k): 'Rule "R" allows k at once; n rows would overlap, among them K during P.'
// Without read access to the conflicting row its key and period are withheld:
//   'Rule "R": the row overlaps an existing row.' / 'Rule "R" allows k at once; n rows would
//   overlap.'
// K is the conflicting row's primary key as JSON, P its period as the range type prints it.
struct Overlap {
  std::string rule;
  std::string key;     // JSON text; empty when withheld
  std::string period;  // empty when withheld
  int capacity = 0;    // the rule's capacity k (1 for the first form)
  int covered = 0;     // capacity k: how many rows would overlap; 0 for capacity 1
};
std::string overlap_detail(std::string_view rule, std::string_view key, std::string_view period);
std::string overlap_detail_withheld(std::string_view rule);
std::string overlap_capacity_detail(std::string_view rule, int capacity, int covered,
                                    std::string_view key, std::string_view period);
std::string overlap_capacity_detail_withheld(std::string_view rule, int capacity, int covered);
std::optional<Overlap> parse_overlap(std::string_view detail);

// 40001 raised by an overlap rule under REPEATABLE READ / SERIALIZABLE when a conflicting row
// committed after the snapshot: 'Overlap rule "R": a conflicting row was committed after this
// transaction's snapshot: K during P.' (or without ': K during P' when withheld).
std::string overlap_serialization_detail(std::string_view rule, std::string_view key,
                                         std::string_view period);
std::string overlap_serialization_detail_withheld(std::string_view rule);
inline constexpr std::string_view kRetryHint = "The transaction might succeed if retried.";

// json_value_end returns the index just past the JSON value that starts at text[from] (an object,
// array, string, number or literal), or npos when none starts there. It finds the extent only;
// it does not validate.
std::size_t json_value_end(std::string_view text, std::size_t from);

}  // namespace sg::errors
