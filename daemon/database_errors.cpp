// database_errors: see database_errors.hpp. slotguard's own DETAIL and message formats are read
// back with the parsers of common/error_contract.hpp, which the extension formats them with; only
// PostgreSQL's own constraint messages are read here.
#include "database_errors.hpp"

#include <cctype>
#include <optional>
#include <sstream>

#include "error_contract.hpp"

namespace sg::daemon {

namespace {

namespace sqlstate = sg::errors::sqlstate;

// kMaxParsedText: longer texts (user data of any length) are not parsed for fields.
constexpr std::size_t kMaxParsedText = 8192;

// version_json is a version as JSON: a bigint version as a number, a UUID as a string.
json version_json(const std::string& text) {
  const std::size_t digits_from = !text.empty() && text[0] == '-' ? 1 : 0;
  const std::size_t digits = text.size() - digits_from;
  bool number = digits >= 1 && digits <= 18;
  for (std::size_t i = digits_from; number && i < text.size(); ++i)
    number = std::isdigit(static_cast<unsigned char>(text[i])) != 0;
  if (number) return json(std::stoll(text));
  return json(text);
}

// key_json reads a key the database wrote as JSON; nullopt when it does not parse or nests
// deeper than a request may.
std::optional<json> key_json(const std::string& text) {
  if (scan_json(text, kDefaultMaxJsonDepth).depth > kDefaultMaxJsonDepth) return std::nullopt;
  json key = json::parse(text, nullptr, false);
  if (key.is_discarded()) return std::nullopt;
  return key;
}

// quoted returns what follows `prefix"` in a PostgreSQL message up to the next '"' ("" if
// absent): 'new row for relation "medicines" violates check constraint "medicines_stock_check"'.
std::string quoted(const std::string& text, const std::string& prefix) {
  const std::size_t p = text.find(prefix + "\"");
  if (p == std::string::npos) return {};
  const std::size_t from = p + prefix.size() + 1;
  const std::size_t to = text.find('"', from);
  if (to == std::string::npos) return {};
  return text.substr(from, to - from);
}

void add_version_conflict(RpcError& e) {
  const auto v = sg::errors::parse_version_conflict(e.detail);
  if (!v) return;
  if (v->expected) e.fields["expected_version"] = version_json(*v->expected);
  e.fields["current_version"] = version_json(v->current);
  e.fields["table"] = v->table;
  e.fields["key"] = key_json(v->key).value_or(json(v->key));
}

void add_holder_conflict(RpcError& e) {
  const auto holder = sg::errors::parse_holder_conflict(e.message);
  if (!holder) return;
  e.fields["constraint"] = "one_per_holder";
  e.fields["holder"] = *holder;
}

void add_overlap(RpcError& e) {
  const auto o = sg::errors::parse_overlap(e.detail);
  if (!o) return;
  if (!o->rule.empty()) e.fields["rule"] = o->rule;
  if (o->key.empty()) return;  // withheld: the caller may not read the conflicting row
  if (auto key = key_json(o->key)) e.fields["conflicting_key"] = std::move(*key);
  e.fields["conflicting_period"] = o->period;
}

void add_constraint(RpcError& e) {
  const std::string constraint = quoted(e.message, "constraint ");
  const std::string relation = quoted(e.message, "relation ");
  if (!constraint.empty()) e.fields["constraint"] = constraint;
  if (!relation.empty()) e.fields["table"] = relation;
}

// add_error_fields fills e.fields from the message and DETAIL (docs/errors.md).
void add_error_fields(RpcError& e) {
  if (e.detail.size() > kMaxParsedText || e.message.size() > kMaxParsedText) return;
  if (e.sqlstate == sqlstate::kVersionConflict) {
    add_version_conflict(e);
  } else if (e.sqlstate == sqlstate::kSoldOut) {
    add_holder_conflict(e);
  } else if (e.sqlstate == sqlstate::kExclusionViolation) {
    add_overlap(e);
  } else if (e.sqlstate.compare(0, 2, "23") == 0) {
    add_constraint(e);
  }
}

// strip returns what follows prefix (and the spaces after it) in s; nullopt when s does not start
// with it.
std::optional<std::string> strip(const std::string& s, const char* prefix) {
  const std::string p(prefix);
  if (s.compare(0, p.size(), p) != 0) return std::nullopt;
  std::size_t i = p.size();
  while (i < s.size() && s[i] == ' ') ++i;
  return s.substr(i);
}

// split_message takes libpq's text of an error apart: the first line (its severity cut off) is
// the message, DETAIL: and HINT: lines (with the lines that continue them) the detail and hint;
// CONTEXT, LINE and QUERY lines are left out.
void split_message(const std::string& message, RpcError& e) {
  std::istringstream in(message);
  std::string line;
  std::string* field = &e.message;
  bool first = true;
  while (std::getline(in, line)) {
    if (first) {
      first = false;
      for (const char* severity : {"ERROR:", "FATAL:", "PANIC:"}) {
        if (auto rest = strip(line, severity)) {
          line = *rest;
          break;
        }
      }
      e.message = line;
      continue;
    }
    if (auto detail = strip(line, "DETAIL:")) {
      e.detail = *detail;
      field = &e.detail;
    } else if (auto hint = strip(line, "HINT:")) {
      e.hint = *hint;
      field = &e.hint;
    } else if (strip(line, "CONTEXT:") || strip(line, "LINE ") || strip(line, "QUERY:")) {
      field = nullptr;
    } else if (field != nullptr && !line.empty()) {
      *field += "\n" + line;
    }
  }
}

}  // namespace

RpcError error_from_database(const std::string& sqlstate, const std::string& message) {
  RpcError e;
  e.sqlstate = sqlstate;
  e.reason = std::string(sg::errors::reason_for_sqlstate(sqlstate));
  // Over the socket the only table names come from a `tbl` parameter (a regclass): one that does
  // not parse (42602) or names no table (42P01) is the caller's bad parameter.
  if (sqlstate == "42602" || sqlstate == "42P01") e.reason = "invalid_params";
  e.code = code_for_reason(e.reason);
  split_message(message, e);
  if (e.message.empty()) e.message = "database error " + clip_utf8(sqlstate, 16);
  add_error_fields(e);
  // Texts carry user data (keys, labels, names) of any length: bound them, whole characters.
  e.message = clip_utf8(e.message, kMaxErrorText);
  e.detail = clip_utf8(e.detail, kMaxErrorText);
  e.hint = clip_utf8(e.hint, kMaxErrorText);
  return e;
}

}  // namespace sg::daemon
