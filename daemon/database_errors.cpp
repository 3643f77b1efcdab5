// database_errors: see database_errors.hpp.
#include "database_errors.hpp"

#include <cctype>
#include <cstring>
#include <optional>
#include <sstream>

#include "sqlstate.hpp"

namespace sg::daemon {

namespace {

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

// add_error_fields fills e.fields from the message and DETAIL slotguard and PostgreSQL write
// (their wording is fixed: see README "Errors").
// between returns text[from, to) or "" when the positions are not usable.
std::string between(const std::string& text, std::size_t from, std::size_t to) {
  if (from == std::string::npos || to == std::string::npos || from > to || to > text.size())
    return {};
  return text.substr(from, to - from);
}

// quoted returns what follows `prefix"` in text up to the next '"' ("" if absent).
std::string quoted(const std::string& text, const std::string& prefix) {
  const std::size_t p = text.find(prefix + "\"");
  if (p == std::string::npos) return {};
  const std::size_t from = p + prefix.size() + 1;
  return between(text, from, text.find('"', from));
}

// key_json reads a key the database wrote as JSON; one that does not parse, or nests deeper than
// a request may, stays text.
json key_json(const std::string& text) {
  if (scan_json(text, kDefaultMaxJsonDepth).depth > kDefaultMaxJsonDepth) return json(text);
  json key = json::parse(text, nullptr, false);
  return key.is_discarded() ? json(text) : key;
}

bool starts_with(const std::string& s, std::string_view prefix) {
  return s.compare(0, prefix.size(), prefix) == 0;
}
bool ends_with(const std::string& s, std::string_view suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// add_error_fields fills e.fields from the message and DETAIL slotguard and PostgreSQL write
// (their wording is fixed: see README "Errors"). Plain string searches, no regular expressions:
// the texts carry user data (keys, names) and must cost linear time whatever they hold.
void add_error_fields(RpcError& e) {
  constexpr std::size_t kMaxText = 8192;
  if (e.detail.size() > kMaxText || e.message.size() > kMaxText) return;
  const std::string& d = e.detail;
  if (e.sqlstate == sg::core::kVersionConflict && starts_with(d, "Table ")) {
    // "Table public.t, key {"id": 7}: expected version 5, current version 6."
    // "Table public.t, key {"id": 7}: current version 6; the table requires every UPDATE ..."
    const std::size_t key_at = d.find(", key ");
    if (key_at == std::string::npos) return;
    const std::string required_tail = "; the table requires every UPDATE";
    std::size_t key_end;
    if (ends_with(d, ".") && d.rfind(required_tail) == std::string::npos) {
      const std::size_t cur = d.rfind(", current version ");
      const std::size_t exp = d.rfind(": expected version ", cur);
      if (cur == std::string::npos || exp == std::string::npos || exp < key_at) return;
      e.fields["expected_version"] =
          version_json(between(d, exp + std::strlen(": expected version "), cur));
      e.fields["current_version"] =
          version_json(between(d, cur + std::strlen(", current version "), d.size() - 1));
      key_end = exp;
    } else {
      const std::size_t tail = d.rfind(required_tail);
      const std::size_t cur = d.rfind(": current version ", tail);
      if (tail == std::string::npos || cur == std::string::npos || cur < key_at) return;
      e.fields["current_version"] =
          version_json(between(d, cur + std::strlen(": current version "), tail));
      key_end = cur;
    }
    e.fields["table"] = between(d, std::strlen("Table "), key_at);
    e.fields["key"] = key_json(between(d, key_at + std::strlen(", key "), key_end));
  } else if (e.sqlstate == sg::core::kSoldOut) {
    // holder "ann" already has a booking for slot 7 (one_per_holder)
    const std::string mark = "\" already has a booking for slot ";
    const std::size_t at = e.message.rfind(mark);
    if (starts_with(e.message, "holder \"") && at != std::string::npos) {
      e.fields["constraint"] = "one_per_holder";
      e.fields["holder"] = between(e.message, std::strlen("holder \""), at);
    }
  } else if (e.sqlstate == "23P01") {
    // DETAIL: Rule "room_busy": the row overlaps {"id": 12} during [...).
    //         Rule "room_busy" allows 3 at once; ..., among them {"id": 12} during [...).
    if (starts_with(d, "Rule \"")) {
      const std::string rule = between(d, 6, d.find('"', 6));
      if (!rule.empty()) e.fields["rule"] = rule;
    }
    std::size_t key_from = d.find(" overlaps {");
    std::size_t skip = std::strlen(" overlaps ");
    if (key_from == std::string::npos) {
      key_from = d.find(" among them {");
      skip = std::strlen(" among them ");
    }
    const std::size_t during = d.rfind(" during ");
    if (key_from != std::string::npos && during != std::string::npos && during > key_from &&
        ends_with(d, ".")) {
      const std::string text = between(d, key_from + skip, during);
      if (scan_json(text, kDefaultMaxJsonDepth).depth <= kDefaultMaxJsonDepth) {
        json key = json::parse(text, nullptr, false);
        if (!key.is_discarded()) e.fields["conflicting_key"] = std::move(key);
      }
      e.fields["conflicting_period"] = between(d, during + std::strlen(" during "), d.size() - 1);
    }
  } else if (e.sqlstate.compare(0, 2, "23") == 0) {
    // new row for relation "medicines" violates check constraint "medicines_stock_check"
    const std::string constraint = quoted(e.message, "constraint ");
    const std::string relation = quoted(e.message, "relation ");
    if (!constraint.empty()) e.fields["constraint"] = constraint;
    if (!relation.empty()) e.fields["table"] = relation;
  }
}

}  // namespace

RpcError error_from_database(const std::string& sqlstate, const std::string& message) {
  RpcError e;
  e.sqlstate = sqlstate;
  e.reason = std::string(sg::core::reason_for_sqlstate(sqlstate));
  // Over the socket the only table names come from a `tbl` parameter (a regclass): one that does
  // not parse (42602) or names no table (42P01) is the caller's bad parameter.
  if (sqlstate == "42602" || sqlstate == "42P01") e.reason = "invalid_params";
  e.code = code_for_reason(e.reason);
  std::istringstream in(message);
  std::string line;
  std::string* field = &e.message;
  bool first = true;
  auto strip = [](const std::string& s, const char* prefix) -> std::optional<std::string> {
    const std::string p(prefix);
    if (s.compare(0, p.size(), p) != 0) return std::nullopt;
    std::size_t i = p.size();
    while (i < s.size() && s[i] == ' ') ++i;
    return s.substr(i);
  };
  while (std::getline(in, line)) {
    if (first) {
      first = false;
      for (const char* sev : {"ERROR:", "FATAL:", "PANIC:"}) {
        if (auto rest = strip(line, sev)) {
          line = *rest;
          break;
        }
      }
      e.message = line;
      continue;
    }
    if (auto rest = strip(line, "DETAIL:")) {
      e.detail = *rest;
      field = &e.detail;
    } else if (auto rest2 = strip(line, "HINT:")) {
      e.hint = *rest2;
      field = &e.hint;
    } else if (strip(line, "CONTEXT:") || strip(line, "LINE ") || strip(line, "QUERY:")) {
      field = nullptr;
    } else if (field != nullptr && !line.empty()) {
      *field += "\n" + line;
    }
  }
  if (e.message.empty()) e.message = "database error " + clip_utf8(sqlstate, 16);
  add_error_fields(e);
  // Texts carry user data (keys, labels, names) of any length: bound them, whole characters.
  e.message = clip_utf8(e.message, kMaxErrorText);
  e.detail = clip_utf8(e.detail, kMaxErrorText);
  e.hint = clip_utf8(e.hint, kMaxErrorText);
  return e;
}

}  // namespace sg::daemon
