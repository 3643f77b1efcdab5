// methods: the JSON-RPC methods of slotguardd and how each becomes SQL (docs/daemon.md, methods).
// The method table names each method's slotguard function, its parameters with their types and
// the shape of its result; a supplied parameter becomes the text of a bound statement parameter
// (values are always bound, never pasted into SQL text) with its cast; a validated Call becomes one
// statement. Pure C++, unit-tested without a database.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace sg::daemon {

using json = nlohmann::json;

enum class ParamType {
  Int,
  BigInt,
  Text,
  Bool,
  Interval,
  Timestamptz,
  TextArray,
  Jsonb,
  Regclass,
  Regrole,
  Version
};

// How a method's SQL result becomes the JSON-RPC result.
enum class ResultKind {
  Row,     // a composite (booking, availability): the first row as an object, null if none
  Scalar,  // a single value (id, count, jsonb)
  Rows,    // a set of rows: an array of objects
  Stats,   // daemon counters + slotguard.stats
  Health,  // ok + database reachability
};

struct ParamSpec {
  const char* name;
  ParamType type;
  bool required;
};

struct MethodSpec {
  const char* name;      // JSON-RPC method
  const char* function;  // slotguard.<function>, empty for stats / health
  ResultKind result;
  std::vector<ParamSpec> params;
};

const std::vector<MethodSpec>& methods();
const MethodSpec* find_method(std::string_view name);

// Arg is one supplied parameter: its index in MethodSpec::params, its text value (bound as a
// statement parameter) and the SQL type it is cast to.
struct Arg {
  std::size_t index;
  std::string value;
  std::string cast;
};

// convert_param renders a JSON value as the text of a statement parameter of type `type` and its
// cast; nullopt when the value does not fit the type.
std::optional<Arg> convert_param(const json& value, ParamType type, std::size_t index);

// param_type_text says what a parameter of the type must be, for an error message.
const char* param_type_text(ParamType type);

// Call is one validated request.
struct Call {
  json id;  // string, number or null
  bool notification = false;
  const MethodSpec* method = nullptr;
  std::vector<Arg> args;  // in MethodSpec::params order, omitted parameters left out
  std::optional<std::string> actor;
  std::optional<std::string> actor_role;
};

// ArgShape is what, besides the method, decides a statement's text and so its name: which
// parameters are supplied (a bit per index in MethodSpec::params) and whether a version is a UUID.
struct ArgShape {
  unsigned long supplied = 0;
  bool uuid = false;
  bool operator<(const ArgShape& o) const {
    return supplied != o.supplied ? supplied < o.supplied : uuid < o.uuid;
  }
};
ArgShape arg_shape(const std::vector<Arg>& args);

// Statement is a call as SQL: a name under which it is prepared (one per method and set of
// supplied parameters), the text with $n placeholders, and the values bound to them.
struct Statement {
  std::string name;
  std::string sql;
  std::vector<std::string> values;
};

// build_statement turns a call to a database method into its statement; stats and health have
// none (their callers handle them).
Statement build_statement(const Call& call);

// build_single_statement is a call as ONE statement run in autocommit (one round trip): it sets
// slotguard.actor ($1) and, when with_role, slotguard.actor_role ($2; else it is reset) for its
// own transaction, then calls the function. The settings are made in a MATERIALIZED CTE whose
// columns also carry the call's arguments, and the function takes its arguments from that row,
// so the settings are in place before the function runs. values: actor, [role,] arguments.
Statement build_single_statement(const Call& call, const std::string& actor,
                                 const std::optional<std::string>& actor_role);

// retry_safe: running the call twice has the effect of running it once (reads; confirm, cancel,
// expire_holds; a reserve with an idempotency_key), so it may be retried when the connection was
// lost while it ran in autocommit and its outcome is unknown.
bool retry_safe(const Call& call);

// makes_hold: the call is a reserve or reserve_seats (whose result may be a pending hold).
bool makes_hold(const Call& call);

// pg_text_array renders strings as a PostgreSQL array literal (a bound value, not SQL text).
std::string pg_text_array(const std::vector<std::string>& items);

}  // namespace sg::daemon
