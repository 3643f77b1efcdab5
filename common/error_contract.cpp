// error_contract: see error_contract.hpp. Formatting is plain concatenation; parsing walks the
// fixed words of each format and reads user data (names, keys, holders) by its own grammar (a
// quoted identifier, a JSON value) or from the end, where only slotguard's own words follow.
#include "error_contract.hpp"

#include <cctype>
#include <initializer_list>

namespace sg::errors {

namespace {

constexpr std::string_view kVersionRequiredTail =
    "; the table requires every UPDATE to set the version it read.";

bool starts_with(std::string_view s, std::string_view prefix) {
  return s.substr(0, prefix.size()) == prefix;
}

bool ends_with(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

bool all_digits(std::string_view s) {
  if (s.empty()) return false;
  for (const char c : s)
    if (std::isdigit(static_cast<unsigned char>(c)) == 0) return false;
  return true;
}

std::string cat(std::initializer_list<std::string_view> parts) {
  std::size_t n = 0;
  for (const auto p : parts) n += p.size();
  std::string out;
  out.reserve(n);
  for (const auto p : parts) out.append(p);
  return out;
}

std::string seats(int n, std::string_view one, std::string_view many) {
  return std::to_string(n) + std::string(n == 1 ? one : many);
}

// identifier_end returns the index past the identifier at text[from] as quote_identifier writes
// it: "..." with "" for a quote inside, or a bare word up to '.', ',' or the end.
std::size_t identifier_end(std::string_view text, std::size_t from) {
  if (from >= text.size()) return std::string_view::npos;
  if (text[from] != '"') {
    std::size_t i = from;
    while (i < text.size() && text[i] != '.' && text[i] != ',') ++i;
    return i == from ? std::string_view::npos : i;
  }
  for (std::size_t i = from + 1; i < text.size(); ++i) {
    if (text[i] != '"') continue;
    if (i + 1 < text.size() && text[i + 1] == '"') {
      ++i;
      continue;
    }
    return i + 1;
  }
  return std::string_view::npos;
}

// qualified_name_end: identifier ('.' identifier)*.
std::size_t qualified_name_end(std::string_view text, std::size_t from) {
  std::size_t end = identifier_end(text, from);
  while (end != std::string_view::npos && end < text.size() && text[end] == '.')
    end = identifier_end(text, end + 1);
  return end;
}

// key_and_period reads "K during P." at text[from]: K a JSON value, P the rest up to the final
// period.
bool key_and_period(std::string_view text, std::size_t from, Overlap* out) {
  constexpr std::string_view kDuring = " during ";
  const std::size_t key_end = json_value_end(text, from);
  if (key_end == std::string_view::npos || text.substr(key_end, kDuring.size()) != kDuring ||
      !ends_with(text, "."))
    return false;
  const std::size_t period_from = key_end + kDuring.size();
  if (period_from > text.size() - 1) return false;
  out->key = std::string(text.substr(from, key_end - from));
  out->period = std::string(text.substr(period_from, text.size() - 1 - period_from));
  return true;
}

// leading_int reads the decimal number at text[*pos] and moves *pos past it.
bool leading_int(std::string_view text, std::size_t* pos, int* out) {
  std::size_t i = *pos;
  long long v = 0;
  while (i < text.size() && std::isdigit(static_cast<unsigned char>(text[i])) != 0 && i - *pos < 9)
    v = v * 10 + (text[i++] - '0');
  if (i == *pos) return false;
  *out = static_cast<int>(v);
  *pos = i;
  return true;
}

bool expect(std::string_view text, std::size_t* pos, std::string_view word) {
  if (text.substr(*pos, word.size()) != word) return false;
  *pos += word.size();
  return true;
}

// parse_capacity_overlap reads what follows 'Rule "R"' in the capacity-k form.
std::optional<Overlap> parse_capacity_overlap(std::string_view d, std::size_t pos, Overlap o) {
  if (!expect(d, &pos, "\" allows ") || !leading_int(d, &pos, &o.capacity) ||
      !expect(d, &pos, " at once; ") || !leading_int(d, &pos, &o.covered) ||
      !expect(d, &pos, " rows would overlap"))
    return std::nullopt;
  if (d.substr(pos) == ".") return o;
  if (!expect(d, &pos, ", among them ") || !key_and_period(d, pos, &o)) return std::nullopt;
  return o;
}

}  // namespace

std::size_t json_value_end(std::string_view text, std::size_t from) {
  constexpr std::size_t npos = std::string_view::npos;
  if (from >= text.size()) return npos;
  const char first = text[from];
  if (first != '{' && first != '[' && first != '"') {
    std::size_t i = from;
    while (i < text.size() && (std::isalnum(static_cast<unsigned char>(text[i])) != 0 ||
                               text[i] == '-' || text[i] == '+' || text[i] == '.'))
      ++i;
    return i == from ? npos : i;
  }
  std::size_t depth = 0;
  bool in_string = false;
  for (std::size_t i = from; i < text.size(); ++i) {
    const char c = text[i];
    if (in_string) {
      if (c == '\\')
        ++i;
      else if (c == '"')
        in_string = false;
      if (!in_string && depth == 0) return i + 1;
      continue;
    }
    if (c == '"') {
      in_string = true;
    } else if (c == '{' || c == '[') {
      ++depth;
    } else if (c == '}' || c == ']') {
      if (depth == 0) return npos;
      if (--depth == 0) return i + 1;
    }
  }
  return npos;
}

bool is_connection_lost(std::string_view code) {
  return starts_with(code, "08") || code == "57P01" || code == "57P02" || code == "57P03";
}

bool is_read_only_server(std::string_view code) {
  return code == sqlstate::kReadOnlySqlTransaction;
}

bool is_retryable(std::string_view code) {
  return code == sqlstate::kSerializationFailure || code == sqlstate::kDeadlockDetected;
}

std::string_view reason_for_sqlstate(std::string_view code) {
  for (const auto& e : kSlotguardSqlstates)
    if (code == e.sqlstate) return e.reason;
  if (code == sqlstate::kExclusionViolation) return "overlap";
  // Other integrity constraints of the application's tables: CHECK, UNIQUE, NOT NULL, foreign
  // keys. A business error the caller can act on, not a fault of the daemon.
  if (code.size() == 5 && starts_with(code, "23")) return "constraint_violation";
  if (code == "42703" || (code.size() == 5 && starts_with(code, "22"))) return "invalid_params";
  if (code == sqlstate::kInsufficientPrivilege) return "unauthorized";
  if (code.size() == 5 && (is_connection_lost(code) || is_read_only_server(code)))
    return "unavailable";
  return "internal";
}

std::string version_conflict_detail(std::string_view table, std::string_view key,
                                    std::string_view expected, std::string_view current) {
  return cat({"Table ", table, ", key ", key, ": expected version ", expected, ", current version ",
              current, "."});
}

std::string version_required_detail(std::string_view table, std::string_view key,
                                    std::string_view current) {
  return cat({"Table ", table, ", key ", key, ": current version ", current, kVersionRequiredTail});
}

std::optional<VersionConflict> parse_version_conflict(std::string_view d) {
  constexpr std::string_view kTable = "Table ", kKey = ", key ";
  constexpr std::string_view kExpected = ": expected version ", kCurrent = ", current version ";
  constexpr std::string_view kCurrentOnly = ": current version ";
  if (!starts_with(d, kTable)) return std::nullopt;
  const std::size_t table_end = qualified_name_end(d, kTable.size());
  if (table_end == std::string_view::npos || d.substr(table_end, kKey.size()) != kKey)
    return std::nullopt;
  const std::size_t key_from = table_end + kKey.size();
  VersionConflict v;
  v.table = std::string(d.substr(kTable.size(), table_end - kTable.size()));
  // Versions are integers or UUIDs: the words after the key are found from the end.
  std::size_t key_end;
  if (ends_with(d, kVersionRequiredTail)) {
    const std::size_t tail = d.size() - kVersionRequiredTail.size();
    key_end = d.rfind(kCurrentOnly, tail);
    if (key_end == std::string_view::npos || key_end < key_from) return std::nullopt;
    v.current =
        std::string(d.substr(key_end + kCurrentOnly.size(), tail - key_end - kCurrentOnly.size()));
  } else {
    if (!ends_with(d, ".")) return std::nullopt;
    const std::size_t cur = d.rfind(kCurrent);
    key_end = cur == std::string_view::npos ? cur : d.rfind(kExpected, cur);
    if (key_end == std::string_view::npos || key_end < key_from) return std::nullopt;
    const std::size_t exp_from = key_end + kExpected.size();
    v.expected = std::string(d.substr(exp_from, cur - exp_from));
    const std::size_t cur_from = cur + kCurrent.size();
    v.current = std::string(d.substr(cur_from, d.size() - 1 - cur_from));
  }
  v.key = std::string(d.substr(key_from, key_end - key_from));
  return v;
}

std::string slot_not_found_message(long long slot_id) {
  return cat({"slot ", std::to_string(slot_id), " does not exist"});
}

std::string booking_not_found_message(long long booking_id) {
  return cat({"booking ", std::to_string(booking_id), " does not exist"});
}

std::string sold_out_message(long long slot_id, std::string_view suffix) {
  return cat({"slot ", std::to_string(slot_id), " is sold out", suffix});
}

std::string sold_out_detail(int requested, int free) {
  return cat({seats(requested, " seat", " seats"), " requested, ", std::to_string(free), " free."});
}

std::string holder_conflict_message(std::string_view holder, long long slot_id) {
  return cat({"holder \"", holder, "\" already has a booking for slot ", std::to_string(slot_id)});
}

std::optional<std::string> parse_holder_conflict(std::string_view message) {
  constexpr std::string_view kHead = "holder \"", kTail = "\" already has a booking for slot ";
  if (!starts_with(message, kHead)) return std::nullopt;
  const std::size_t at = message.rfind(kTail);
  if (at == std::string_view::npos || at < kHead.size() ||
      !all_digits(message.substr(at + kTail.size())))
    return std::nullopt;
  return std::string(message.substr(kHead.size(), at - kHead.size()));
}

std::string seats_free_detail(std::string_view what, int free) {
  return cat({what, "; ", seats(free, " seat is", " seats are"), " free."});
}

std::string hold_expired_message(long long booking_id) {
  return cat({"hold ", std::to_string(booking_id), " has expired"});
}

std::string overlap_detail(std::string_view rule, std::string_view key, std::string_view period) {
  return cat({"Rule \"", rule, "\": the row overlaps ", key, " during ", period, "."});
}

std::string overlap_detail_withheld(std::string_view rule) {
  return cat({"Rule \"", rule, "\": the row overlaps an existing row."});
}

std::string overlap_capacity_detail(std::string_view rule, int capacity, int covered,
                                    std::string_view key, std::string_view period) {
  return cat({"Rule \"", rule, "\" allows ", std::to_string(capacity), " at once; ",
              std::to_string(covered), " rows would overlap, among them ", key, " during ", period,
              "."});
}

std::string overlap_capacity_detail_withheld(std::string_view rule, int capacity, int covered) {
  return cat({"Rule \"", rule, "\" allows ", std::to_string(capacity), " at once; ",
              std::to_string(covered), " rows would overlap."});
}

std::optional<Overlap> parse_overlap(std::string_view d) {
  constexpr std::string_view kRule = "Rule \"", kOverlaps = "\": the row overlaps ";
  constexpr std::string_view kAllows = "\" allows ";
  if (!starts_with(d, kRule)) return std::nullopt;
  // The rule name ends at the first of the two continuations (a name holding one of them is
  // read short; its key and period are still exact).
  const std::size_t one = d.find(kOverlaps, kRule.size());
  const std::size_t many = d.find(kAllows, kRule.size());
  Overlap o;
  if (many != std::string_view::npos && (one == std::string_view::npos || many < one)) {
    o.rule = std::string(d.substr(kRule.size(), many - kRule.size()));
    return parse_capacity_overlap(d, many, std::move(o));
  }
  if (one == std::string_view::npos) return std::nullopt;
  o.rule = std::string(d.substr(kRule.size(), one - kRule.size()));
  o.capacity = 1;
  const std::size_t rest = one + kOverlaps.size();
  if (d.substr(rest) == "an existing row.") return o;
  if (!key_and_period(d, rest, &o)) return std::nullopt;
  return o;
}

std::string overlap_serialization_detail(std::string_view rule, std::string_view key,
                                         std::string_view period) {
  return cat({"Overlap rule \"", rule,
              "\": a conflicting row was committed after this transaction's snapshot: ", key,
              " during ", period, "."});
}

std::string overlap_serialization_detail_withheld(std::string_view rule) {
  return cat({"Overlap rule \"", rule,
              "\": a conflicting row was committed after this transaction's snapshot."});
}

}  // namespace sg::errors
