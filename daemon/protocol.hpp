// protocol: slotguardd's JSON-RPC 2.0 (SPEC "slotguardd"): one request or batch per line, parsed
// and validated into typed calls; each call becomes one parameterized SQL statement (values are
// always bound parameters, never pasted into SQL text); errors map to JSON-RPC errors carrying
// data.reason and data.sqlstate. Pure C++, unit-tested without a database.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace sg::daemon {

using json = nlohmann::json;

// JSON-RPC error codes. -32000 carries the business errors the database raised and the daemon's
// own server conditions (unavailable, unauthorized); data.reason tells them apart.
inline constexpr int kParseError = -32700;
inline constexpr int kInvalidRequest = -32600;
inline constexpr int kMethodNotFound = -32601;
inline constexpr int kInvalidParams = -32602;
inline constexpr int kInternalError = -32603;
inline constexpr int kServerError = -32000;

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

// RpcError is a JSON-RPC error: code, message and data.reason / data.sqlstate (+ detail, hint).
struct RpcError {
  int code = kInternalError;
  std::string message;
  std::string reason = "internal";
  std::string sqlstate;  // empty unless the database raised it
  std::string detail;
  std::string hint;
  // Structured facts taken from the database's error, merged into error.data: for a
  // version_conflict table, key, expected_version, current_version; for an overlap the rule;
  // for a constraint_violation the constraint and table.
  nlohmann::json fields = nlohmann::json::object();
};

RpcError invalid_params(std::string message);

// Arg is one supplied parameter: its index in MethodSpec::params, its text value (bound as a
// statement parameter) and the SQL type it is cast to.
struct Arg {
  std::size_t index;
  std::string value;
  std::string cast;
};

// Call is one validated request.
struct Call {
  json id;  // string, number or null
  bool notification = false;
  const MethodSpec* method = nullptr;
  std::vector<Arg> args;  // in MethodSpec::params order, omitted parameters left out
  std::optional<std::string> actor;
  std::optional<std::string> actor_role;
};

// Entry is one element of a request: a call, or the error it got during validation.
struct Entry {
  std::optional<Call> call;
  std::optional<RpcError> error;
  json id;  // for the error response (null when the id itself was unusable)
  bool notification = false;
};

// Request is one line: a single entry, or a batch of them; `error` is set when the line as a
// whole is unusable (not JSON, an empty batch), then entries is empty.
struct Request {
  bool batch = false;
  std::vector<Entry> entries;
  std::optional<RpcError> error;
};

Request parse_request(std::string_view line);

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

// pg_text_array renders strings as a PostgreSQL array literal (a bound value, not SQL text).
std::string pg_text_array(const std::vector<std::string>& items);

// error_from_database maps a database error (SQLSTATE and libpq's message "ERROR:  ...\nDETAIL:
// ...\nHINT:  ...") to its RpcError (reason per common/sqlstate.hpp).
RpcError error_from_database(const std::string& sqlstate, const std::string& message);

// code_for_reason is the JSON-RPC code that goes with a reason.
int code_for_reason(std::string_view reason);

json make_result(const json& id, json result);
json make_error(const json& id, const RpcError& error);

// answer_line renders an answer (a response or a batch of them) as one line of compact JSON.
// Texts that came from the database (messages, details, keys) may hold bytes that are not UTF-8
// (a database in another encoding): they become U+FFFD rather than failing the whole answer.
std::string answer_line(const json& answer);

}  // namespace sg::daemon
