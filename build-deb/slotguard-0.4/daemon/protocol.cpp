// protocol: see protocol.hpp.
#include "protocol.hpp"

#include <cctype>
#include <cmath>
#include <cstring>
#include <limits>
#include <sstream>
#include <stdexcept>

#include "error_contract.hpp"

namespace sg::daemon {

namespace {

using PT = ParamType;

bool digits_only(const std::string& s) {
  std::size_t i = (!s.empty() && (s[0] == '-' || s[0] == '+')) ? 1 : 0;
  if (i >= s.size() || s.size() > 20) return false;
  for (; i < s.size(); ++i) {
    if (!std::isdigit(static_cast<unsigned char>(s[i]))) return false;
  }
  return true;
}

// integer_text renders an integral JSON value (or a string of digits) within [min, max].
std::optional<std::string> integer_text(const json& v, long long min, long long max) {
  long long n = 0;
  if (v.is_number_integer()) {
    if (v.is_number_unsigned() &&
        v.get<unsigned long long>() >
            static_cast<unsigned long long>(std::numeric_limits<long long>::max()))
      return std::nullopt;
    n = v.get<long long>();
  } else if (v.is_number_float()) {
    const double d = v.get<double>();
    if (!std::isfinite(d) || std::floor(d) != d || std::fabs(d) > 9.0e18) return std::nullopt;
    n = static_cast<long long>(d);
  } else if (v.is_string() && digits_only(v.get<std::string>())) {
    try {
      n = std::stoll(v.get<std::string>());
    } catch (const std::exception&) {
      return std::nullopt;
    }
  } else {
    return std::nullopt;
  }
  if (n < min || n > max) return std::nullopt;
  return std::to_string(n);
}

const char* type_name(ParamType t) {
  switch (t) {
    case PT::Int:
    case PT::BigInt:
      return "an integer";
    case PT::Text:
    case PT::Regclass:
    case PT::Regrole:
      return "a string";
    case PT::Bool:
      return "true or false";
    case PT::Interval:
      return "an interval (\"90 seconds\", \"2 minutes\") or a number of seconds";
    case PT::Timestamptz:
      return "a timestamp string";
    case PT::TextArray:
      return "an array of strings";
    case PT::Jsonb:
      return "a JSON value";
    case PT::Version:
      return "an integer or a UUID string";
  }
  return "a value";
}

// convert renders a JSON value as the text of a statement parameter and its SQL cast.
std::optional<Arg> convert(const json& v, ParamType type, std::size_t index) {
  Arg a{index, "", ""};
  switch (type) {
    case PT::Int: {
      auto t = integer_text(v, std::numeric_limits<int>::min(), std::numeric_limits<int>::max());
      if (!t) return std::nullopt;
      a.value = *t;
      a.cast = "integer";
      return a;
    }
    case PT::BigInt: {
      auto t = integer_text(v, std::numeric_limits<long long>::min(),
                            std::numeric_limits<long long>::max());
      if (!t) return std::nullopt;
      a.value = *t;
      a.cast = "bigint";
      return a;
    }
    case PT::Text:
      if (v.is_string()) {
        a.value = v.get<std::string>();
      } else if (v.is_number() || v.is_boolean()) {
        a.value = v.dump();
      } else {
        return std::nullopt;
      }
      a.cast = "text";
      return a;
    case PT::Regclass:
      if (!v.is_string() || v.get<std::string>().empty()) return std::nullopt;
      a.value = v.get<std::string>();
      a.cast = "regclass";
      return a;
    case PT::Regrole:
      if (!v.is_string() || v.get<std::string>().empty()) return std::nullopt;
      a.value = v.get<std::string>();
      a.cast = "regrole";
      return a;
    case PT::Bool:
      if (v.is_boolean()) {
        a.value = v.get<bool>() ? "true" : "false";
      } else if (v.is_string() && (v == "true" || v == "false")) {
        a.value = v.get<std::string>();
      } else {
        return std::nullopt;
      }
      a.cast = "boolean";
      return a;
    case PT::Interval:
      if (v.is_string()) {
        a.value = v.get<std::string>();
      } else if (v.is_number() && std::isfinite(v.get<double>())) {
        a.value = v.dump() + " seconds";
      } else {
        return std::nullopt;
      }
      a.cast = "interval";
      return a;
    case PT::Timestamptz:
      if (!v.is_string()) return std::nullopt;
      a.value = v.get<std::string>();
      a.cast = "timestamptz";
      return a;
    case PT::TextArray: {
      if (!v.is_array()) return std::nullopt;
      std::vector<std::string> items;
      for (const auto& e : v) {
        if (e.is_string()) {
          items.push_back(e.get<std::string>());
        } else if (e.is_number()) {
          items.push_back(e.dump());
        } else {
          return std::nullopt;
        }
      }
      a.value = pg_text_array(items);
      a.cast = "text[]";
      return a;
    }
    case PT::Jsonb:
      a.value = v.dump();
      a.cast = "jsonb";
      return a;
    case PT::Version:
      if (auto t = integer_text(v, std::numeric_limits<long long>::min(),
                                std::numeric_limits<long long>::max())) {
        a.value = *t;
        a.cast = "bigint";
        return a;
      }
      if (!v.is_string()) return std::nullopt;
      a.value = v.get<std::string>();
      a.cast = "uuid";
      return a;
  }
  return std::nullopt;
}

bool valid_id(const json& id) {
  return id.is_string() || id.is_number() || id.is_null();
}

Entry parse_entry(const json& j) {
  Entry e;
  if (!j.is_object()) {
    e.error =
        RpcError{kInvalidRequest, "a request must be a JSON object", "invalid_params", "", "", ""};
    return e;
  }
  auto id = j.find("id");
  if (id == j.end()) {
    e.notification = true;
  } else if (valid_id(*id)) {
    e.id = *id;
  } else {
    e.error = RpcError{
        kInvalidRequest, "id must be a string, a number or null", "invalid_params", "", "", ""};
    return e;
  }
  auto version = j.find("jsonrpc");
  if (version == j.end() || *version != "2.0") {
    e.error = RpcError{kInvalidRequest, "jsonrpc must be \"2.0\"", "invalid_params", "", "", ""};
    return e;
  }
  auto method = j.find("method");
  if (method == j.end() || !method->is_string()) {
    e.error = RpcError{kInvalidRequest, "method must be a string", "invalid_params", "", "", ""};
    return e;
  }
  const MethodSpec* spec = find_method(method->get<std::string>());
  if (spec == nullptr) {
    e.error = RpcError{kMethodNotFound,
                       "method not found: " + clip_utf8(method->get<std::string>(), 128),
                       "invalid_params",
                       "",
                       "",
                       ""};
    return e;
  }
  json params = json::object();
  auto p = j.find("params");
  if (p != j.end() && !p->is_null()) {
    if (!p->is_object()) {
      e.error = invalid_params("params must be an object of named parameters");
      return e;
    }
    params = *p;
  }

  Call call;
  call.id = e.id;
  call.notification = e.notification;
  call.method = spec;
  for (auto it = params.begin(); it != params.end(); ++it) {
    const std::string& name = it.key();
    if (name == "actor" || name == "actor_role") {
      if (it->is_null()) continue;
      if (!it->is_string()) {
        e.error = invalid_params("params." + name + " must be a string");
        return e;
      }
      (name == "actor" ? call.actor : call.actor_role) = it->get<std::string>();
      continue;
    }
    bool known = false;
    for (const auto& ps : spec->params) known = known || name == ps.name;
    if (!known) {
      std::string names;
      for (const auto& ps : spec->params) names += std::string(names.empty() ? "" : ", ") + ps.name;
      e.error =
          invalid_params("unknown parameter '" + clip_utf8(name, 128) + "' for " + spec->name +
                         (names.empty() ? " (it takes none)" : " (it takes " + names + ")"));
      return e;
    }
  }
  for (std::size_t i = 0; i < spec->params.size(); ++i) {
    const ParamSpec& ps = spec->params[i];
    auto v = params.find(ps.name);
    if (v == params.end() || v->is_null()) {
      if (ps.required) {
        e.error = invalid_params(std::string("missing parameter '") + ps.name + "'");
        return e;
      }
      continue;
    }
    auto arg = convert(*v, ps.type, i);
    if (!arg) {
      e.error =
          invalid_params(std::string("parameter '") + ps.name + "' must be " + type_name(ps.type));
      return e;
    }
    call.args.push_back(std::move(*arg));
  }
  e.call = std::move(call);
  return e;
}

}  // namespace

const std::vector<MethodSpec>& methods() {
  static const std::vector<MethodSpec> all = {
      {"reserve",
       "reserve",
       ResultKind::Row,
       {{"slot_id", PT::BigInt, true},
        {"holder", PT::Text, true},
        {"seats", PT::Int, false},
        {"hold_ttl", PT::Interval, false},
        {"idempotency_key", PT::Text, false},
        {"confirm", PT::Bool, false}}},
      {"reserve_seats",
       "reserve_seats",
       ResultKind::Row,
       {{"slot_id", PT::BigInt, true},
        {"holder", PT::Text, true},
        {"labels", PT::TextArray, true},
        {"hold_ttl", PT::Interval, false},
        {"idempotency_key", PT::Text, false},
        {"confirm", PT::Bool, false}}},
      {"confirm", "confirm", ResultKind::Row, {{"booking_id", PT::BigInt, true}}},
      {"cancel", "cancel", ResultKind::Row, {{"booking_id", PT::BigInt, true}}},
      {"booking", "booking", ResultKind::Row, {{"booking_id", PT::BigInt, true}}},
      {"availability", "availability", ResultKind::Row, {{"slot_id", PT::BigInt, true}}},
      {"create_slot",
       "create_slot",
       ResultKind::Scalar,
       {{"capacity", PT::Int, true},
        {"starts_at", PT::Timestamptz, false},
        {"ends_at", PT::Timestamptz, false},
        {"resource", PT::Text, false},
        {"hold_ttl", PT::Interval, false},
        {"seat_labels", PT::TextArray, false},
        {"one_per_holder", PT::Bool, false},
        {"managed_by", PT::Regrole, false}}},
      {"update_versioned",
       "update_versioned",
       ResultKind::Scalar,
       {{"tbl", PT::Regclass, true},
        {"key", PT::Jsonb, true},
        {"expected_version", PT::Version, true},
        {"changes", PT::Jsonb, true}}},
      {"find_conflicts",
       "find_conflicts",
       ResultKind::Rows,
       {{"tbl", PT::Regclass, true},
        {"candidate", PT::Jsonb, true},
        {"ignore_key", PT::Jsonb, false}}},
      {"expire_holds", "expire_holds", ResultKind::Scalar, {{"max_rows", PT::Int, false}}},
      {"stats", "", ResultKind::Stats, {}},
      {"health", "", ResultKind::Health, {}},
  };
  return all;
}

const MethodSpec* find_method(std::string_view name) {
  for (const auto& m : methods()) {
    if (name == m.name) return &m;
  }
  return nullptr;
}

RpcError invalid_params(std::string message) {
  return RpcError{kInvalidParams, std::move(message), "invalid_params", "", "", ""};
}

JsonShape scan_json(std::string_view text, std::size_t stop_depth) {
  JsonShape shape;
  std::size_t depth = 0;
  bool in_string = false;
  bool seen = false;  // a character other than white space came before
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char ch = text[i];
    if (in_string) {
      if (ch == '\\') {
        ++i;  // the escaped character, whatever it is
      } else if (ch == '"') {
        in_string = false;
      }
      continue;
    }
    switch (ch) {
      case '"':
        in_string = true;
        break;
      case '[':
      case '{':
        if (!seen && ch == '[') {
          shape.array = true;
          shape.elements = 1;
        }
        if (++depth > shape.depth) {
          shape.depth = depth;
          if (depth > stop_depth) return shape;
        }
        break;
      case ']':
      case '}':
        if (depth > 0) --depth;
        break;
      case ',':
        if (depth == 1 && shape.array) ++shape.elements;
        break;
      default:
        break;
    }
    if (ch != ' ' && ch != '\t' && ch != '\r' && ch != '\n') seen = true;
  }
  return shape;
}

Request parse_request(std::string_view line, const RequestLimits& limits) {
  Request r;
  // Bounds first, on the text: nothing below may see a document nested without limit.
  const JsonShape shape = scan_json(line, limits.max_json_depth);
  if (shape.depth > limits.max_json_depth) {
    r.error =
        RpcError{kInvalidRequest,
                 "request nested too deep: more than " + std::to_string(limits.max_json_depth) +
                     " levels of arrays and objects (limits.max_json_depth)",
                 "invalid_params",
                 "",
                 "",
                 ""};
    return r;
  }
  if (shape.array && shape.elements > limits.max_batch) {
    r.batch = true;
    r.error =
        RpcError{kInvalidRequest,
                 "batch too long: " + std::to_string(shape.elements) +
                     " requests (limits.max_batch = " + std::to_string(limits.max_batch) + ")",
                 "invalid_params",
                 "",
                 "",
                 ""};
    return r;
  }
  // A NUL byte is never part of JSON text (a string spells it \u0000), but the parser takes one
  // for the end of input and would accept what comes before it.
  json j = line.find('\0') != std::string_view::npos
               ? json(json::value_t::discarded)
               : json::parse(line.begin(), line.end(), nullptr, false);
  if (j.is_discarded()) {
    r.error = RpcError{kParseError, "parse error: not valid JSON", "invalid_params", "", "", ""};
    return r;
  }
  if (j.is_array()) {
    r.batch = true;
    if (j.empty()) {
      r.error = RpcError{kInvalidRequest, "an empty batch", "invalid_params", "", "", ""};
      return r;
    }
    r.entries.reserve(j.size());
    for (const auto& item : j) r.entries.push_back(parse_entry(item));
    return r;
  }
  r.entries.push_back(parse_entry(j));
  return r;
}

json request_id_of(std::string_view line, std::size_t max_depth) {
  if (scan_json(line, max_depth).depth > max_depth || line.find('\0') != std::string_view::npos)
    return nullptr;
  const json j = json::parse(line.begin(), line.end(), nullptr, false);
  if (!j.is_object()) return nullptr;
  const auto id = j.find("id");
  if (id == j.end() || !valid_id(*id)) return nullptr;
  return *id;
}

json parse_result(std::string_view text) {
  if (scan_json(text, kMaxResultDepth).depth > kMaxResultDepth)
    throw std::length_error("the result nests arrays and objects deeper than " +
                            std::to_string(kMaxResultDepth) + " levels");
  return json::parse(text.begin(), text.end());
}

std::string clip_utf8(std::string_view text, std::size_t max_bytes) {
  if (text.size() <= max_bytes) return std::string(text);
  std::size_t cut = max_bytes >= 3 ? max_bytes - 3 : 0;
  // text[cut] is the first byte left out: while it continues a character, that character began
  // before the cut and goes too.
  while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80) --cut;
  return std::string(text.substr(0, cut)) + "...";
}

std::string to_line(const json& answer) {
  return answer.dump(-1, ' ', false, json::error_handler_t::replace);
}

std::string pg_text_array(const std::vector<std::string>& items) {
  std::string out = "{";
  for (std::size_t i = 0; i < items.size(); ++i) {
    if (i > 0) out += ',';
    out += '"';
    for (char c : items[i]) {
      if (c == '"' || c == '\\') out += '\\';
      out += c;
    }
    out += '"';
  }
  out += '}';
  return out;
}

Statement build_statement(const Call& call) {
  Statement st;
  const MethodSpec& m = *call.method;
  std::string args;
  unsigned long mask = 0;
  bool uuid = false;
  for (std::size_t i = 0; i < call.args.size(); ++i) {
    const Arg& a = call.args[i];
    mask |= 1UL << a.index;
    if (a.cast == "uuid") uuid = true;
    if (i > 0) args += ", ";
    args += std::string(m.params[a.index].name) + " => $" + std::to_string(i + 1) + "::" + a.cast;
    st.values.push_back(a.value);
  }
  const std::string fn = std::string("slotguard.") + m.function + "(" + args + ")";
  switch (m.result) {
    case ResultKind::Row:
      st.sql = "SELECT pg_catalog.to_jsonb(r) FROM " + fn + " AS r";
      break;
    case ResultKind::Scalar:
      st.sql = "SELECT pg_catalog.to_jsonb(" + fn + ")";
      break;
    case ResultKind::Rows:
      st.sql =
          "SELECT COALESCE(pg_catalog.jsonb_agg(pg_catalog.to_jsonb(r)), "
          "'[]'::pg_catalog.jsonb) FROM " +
          fn + " AS r";
      break;
    case ResultKind::Stats:
    case ResultKind::Health:
      return st;
  }
  std::ostringstream name;
  name << "sg_" << m.name << "_" << std::hex << mask << (uuid ? "_u" : "");
  st.name = name.str();
  return st;
}

Statement build_single_statement(const Call& call, const std::string& actor,
                                 const std::optional<std::string>& actor_role) {
  Statement st;
  const MethodSpec& m = *call.method;
  st.values.push_back(actor);
  std::string cte =
      "WITH a AS MATERIALIZED (SELECT pg_catalog.set_config('slotguard.actor', $1, true) AS "
      "sg_actor, ";
  int n = 1;
  if (actor_role) {
    st.values.push_back(*actor_role);
    cte += "pg_catalog.set_config('slotguard.actor_role', $2, true) AS sg_role";
    n = 2;
  } else {
    cte += "pg_catalog.set_config('slotguard.actor_role', NULL, true) AS sg_role";
  }
  std::string args;
  unsigned long mask = 0;
  bool uuid = false;
  for (std::size_t i = 0; i < call.args.size(); ++i) {
    const Arg& a = call.args[i];
    mask |= 1UL << a.index;
    if (a.cast == "uuid") uuid = true;
    cte += ", $" + std::to_string(++n) + "::" + a.cast + " AS p" + std::to_string(i);
    if (i > 0) args += ", ";
    args += std::string(m.params[a.index].name) + " => a.p" + std::to_string(i);
    st.values.push_back(a.value);
  }
  cte += ") ";
  const std::string fn = std::string("slotguard.") + m.function + "(" + args + ")";
  switch (m.result) {
    case ResultKind::Row:
      st.sql = cte + "SELECT pg_catalog.to_jsonb(r) FROM a CROSS JOIN LATERAL " + fn + " AS r";
      break;
    case ResultKind::Scalar:
      st.sql = cte + "SELECT pg_catalog.to_jsonb(" + fn + ") FROM a";
      break;
    case ResultKind::Rows:
      st.sql = cte +
               "SELECT COALESCE(pg_catalog.jsonb_agg(pg_catalog.to_jsonb(r)), "
               "'[]'::pg_catalog.jsonb) FROM a CROSS JOIN LATERAL " +
               fn + " AS r";
      break;
    case ResultKind::Stats:
    case ResultKind::Health:
      return st;
  }
  std::ostringstream name;
  name << "sg1_" << m.name << "_" << std::hex << mask << (uuid ? "_u" : "")
       << (actor_role ? "_r" : "");
  st.name = name.str();
  return st;
}

bool retry_safe(const Call& call) {
  const std::string name = call.method->name;
  if (name == "availability" || name == "booking" || name == "find_conflicts" ||
      name == "confirm" || name == "cancel" || name == "expire_holds" || name == "stats" ||
      name == "health")
    return true;
  if (name == "reserve" || name == "reserve_seats") {
    for (const Arg& a : call.args) {
      if (std::string(call.method->params[a.index].name) == "idempotency_key") return true;
    }
  }
  return false;
}

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
  if (e.sqlstate == sg::errors::sqlstate::kVersionConflict && starts_with(d, "Table ")) {
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
  } else if (e.sqlstate == sg::errors::sqlstate::kSoldOut) {
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
  e.reason = std::string(sg::errors::reason_for_sqlstate(sqlstate));
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

int code_for_reason(std::string_view reason) {
  if (reason == "invalid_params") return kInvalidParams;
  if (reason == "internal") return kInternalError;
  return kServerError;
}

json make_result(const json& id, json result) {
  return json{{"jsonrpc", "2.0"}, {"result", std::move(result)}, {"id", id}};
}

json make_error(const json& id, const RpcError& error) {
  json data = {{"reason", error.reason}};
  if (!error.sqlstate.empty()) data["sqlstate"] = error.sqlstate;
  if (!error.detail.empty()) data["detail"] = error.detail;
  if (!error.hint.empty()) data["hint"] = error.hint;
  for (const auto& [k, v] : error.fields.items()) data[k] = v;
  return json{{"jsonrpc", "2.0"},
              {"error", {{"code", error.code}, {"message", error.message}, {"data", data}}},
              {"id", id}};
}

}  // namespace sg::daemon
