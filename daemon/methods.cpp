// methods: see methods.hpp.
#include "methods.hpp"

#include <cctype>
#include <cmath>
#include <cstring>
#include <limits>
#include <sstream>

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

std::optional<std::string> bigint_text(const json& v) {
  return integer_text(v, std::numeric_limits<long long>::min(),
                      std::numeric_limits<long long>::max());
}

// text_value: a string, or a number or boolean as its JSON text.
std::optional<std::string> text_value(const json& v) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_number() || v.is_boolean()) return v.dump();
  return std::nullopt;
}

// name_value: a non-empty string (a table or role name, resolved by the database).
std::optional<std::string> name_value(const json& v) {
  if (!v.is_string() || v.get<std::string>().empty()) return std::nullopt;
  return v.get<std::string>();
}

std::optional<std::string> bool_value(const json& v) {
  if (v.is_boolean()) return v.get<bool>() ? "true" : "false";
  if (v.is_string() && (v == "true" || v == "false")) return v.get<std::string>();
  return std::nullopt;
}

// interval_value: an interval's text, or a number of seconds.
std::optional<std::string> interval_value(const json& v) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_number() && std::isfinite(v.get<double>())) return v.dump() + " seconds";
  return std::nullopt;
}

std::optional<std::string> string_value(const json& v) {
  if (!v.is_string()) return std::nullopt;
  return v.get<std::string>();
}

// text_array_value: an array of strings (numbers as their text) as an array literal.
std::optional<std::string> text_array_value(const json& v) {
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
  return pg_text_array(items);
}

std::optional<std::string> int_text(const json& v) {
  return integer_text(v, std::numeric_limits<int>::min(), std::numeric_limits<int>::max());
}

std::optional<std::string> jsonb_text(const json& v) {
  return v.dump();
}

// ParamConversion: how a JSON value becomes a parameter's text, and the cast that goes with it.
struct ParamConversion {
  std::optional<std::string> (*value)(const json&);
  const char* cast;
};

// conversion_of is the conversion of each type (a Version is either bigint or uuid: see
// convert_param).
ParamConversion conversion_of(ParamType type) {
  switch (type) {
    case PT::Int:
      return {int_text, "integer"};
    case PT::BigInt:
      return {bigint_text, "bigint"};
    case PT::Text:
      return {text_value, "text"};
    case PT::Regclass:
      return {name_value, "regclass"};
    case PT::Regrole:
      return {name_value, "regrole"};
    case PT::Bool:
      return {bool_value, "boolean"};
    case PT::Interval:
      return {interval_value, "interval"};
    case PT::Timestamptz:
      return {string_value, "timestamptz"};
    case PT::TextArray:
      return {text_array_value, "text[]"};
    case PT::Jsonb:
      return {jsonb_text, "jsonb"};
    case PT::Version:
      return {bigint_text, "bigint"};
  }
  return {jsonb_text, "jsonb"};
}

// Builders of a statement's text, shared by its two forms (build_statement: the function's
// arguments are $n; build_single_statement: they come from the CTE row `a`).

std::string function_call(const MethodSpec& m, const std::string& args) {
  return std::string("slotguard.") + m.function + "(" + args + ")";
}

// select_result selects the function's result as one jsonb value; from_cte: the function takes
// its arguments from the CTE row `a`.
std::string select_result(ResultKind kind, const std::string& fn, bool from_cte) {
  const std::string rows = from_cte ? "a CROSS JOIN LATERAL " + fn + " AS r" : fn + " AS r";
  switch (kind) {
    case ResultKind::Row:
      return "SELECT pg_catalog.to_jsonb(r) FROM " + rows;
    case ResultKind::Scalar:
      return "SELECT pg_catalog.to_jsonb(" + fn + ")" + (from_cte ? " FROM a" : "");
    case ResultKind::Rows:
      return "SELECT COALESCE(pg_catalog.jsonb_agg(pg_catalog.to_jsonb(r)), "
             "'[]'::pg_catalog.jsonb) FROM " +
             rows;
    case ResultKind::Stats:
    case ResultKind::Health:
      break;
  }
  return {};
}

std::string statement_name(const char* prefix, const MethodSpec& m, const ArgShape& shape,
                           const char* suffix) {
  std::ostringstream name;
  name << prefix << m.name << "_" << std::hex << shape.supplied << (shape.uuid ? "_u" : "")
       << suffix;
  return name.str();
}

bool has_sql(const MethodSpec& m) {
  return m.result != ResultKind::Stats && m.result != ResultKind::Health;
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

const char* param_type_text(ParamType t) {
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

std::optional<Arg> convert_param(const json& v, ParamType type, std::size_t index) {
  if (type == PT::Version) {
    // A bigint version, else a UUID's text.
    if (auto number = bigint_text(v)) return Arg{index, std::move(*number), "bigint"};
    if (auto uuid = string_value(v)) return Arg{index, std::move(*uuid), "uuid"};
    return std::nullopt;
  }
  const ParamConversion conversion = conversion_of(type);
  std::optional<std::string> value = conversion.value(v);
  if (!value) return std::nullopt;
  return Arg{index, std::move(*value), conversion.cast};
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

ArgShape arg_shape(const std::vector<Arg>& args) {
  ArgShape shape;
  for (const Arg& a : args) {
    shape.supplied |= 1UL << a.index;
    if (a.cast == "uuid") shape.uuid = true;
  }
  return shape;
}

Statement build_statement(const Call& call) {
  Statement st;
  const MethodSpec& m = *call.method;
  if (!has_sql(m)) return st;
  std::string args;
  for (std::size_t i = 0; i < call.args.size(); ++i) {
    const Arg& a = call.args[i];
    if (i > 0) args += ", ";
    args += std::string(m.params[a.index].name) + " => $" + std::to_string(i + 1) + "::" + a.cast;
    st.values.push_back(a.value);
  }
  st.sql = select_result(m.result, function_call(m, args), false);
  st.name = statement_name("sg_", m, arg_shape(call.args), "");
  return st;
}

Statement build_single_statement(const Call& call, const std::string& actor,
                                 const std::optional<std::string>& actor_role) {
  Statement st;
  const MethodSpec& m = *call.method;
  if (!has_sql(m)) return st;
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
  for (std::size_t i = 0; i < call.args.size(); ++i) {
    const Arg& a = call.args[i];
    cte += ", $" + std::to_string(++n) + "::" + a.cast + " AS p" + std::to_string(i);
    if (i > 0) args += ", ";
    args += std::string(m.params[a.index].name) + " => a.p" + std::to_string(i);
    st.values.push_back(a.value);
  }
  cte += ") ";
  st.sql = cte + select_result(m.result, function_call(m, args), true);
  st.name = statement_name("sg1_", m, arg_shape(call.args), actor_role ? "_r" : "");
  return st;
}

bool retry_safe(const Call& call) {
  const std::string name = call.method->name;
  if (name == "availability" || name == "booking" || name == "find_conflicts" ||
      name == "confirm" || name == "cancel" || name == "expire_holds" || name == "stats" ||
      name == "health")
    return true;
  if (makes_hold(call)) {
    for (const Arg& a : call.args) {
      if (std::string(call.method->params[a.index].name) == "idempotency_key") return true;
    }
  }
  return false;
}

bool makes_hold(const Call& call) {
  return std::strcmp(call.method->name, "reserve") == 0 ||
         std::strcmp(call.method->name, "reserve_seats") == 0;
}

}  // namespace sg::daemon
