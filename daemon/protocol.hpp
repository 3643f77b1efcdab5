// protocol: slotguardd's JSON-RPC 2.0 (docs/daemon.md, protocol): one request or batch per line,
// parsed and validated into calls of the methods of methods.hpp; answers and errors written as
// one line each, errors carrying data.reason (and data.sqlstate when the database raised them).
// Bounds on what a line may hold, checked before it is parsed. Pure C++, unit-tested without a
// database.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "methods.hpp"

namespace sg::daemon {

// JSON-RPC error codes. -32000 carries the business errors the database raised and the daemon's
// own server conditions (unavailable, unauthorized); data.reason tells them apart.
inline constexpr int kParseError = -32700;
inline constexpr int kInvalidRequest = -32600;
inline constexpr int kMethodNotFound = -32601;
inline constexpr int kInvalidParams = -32602;
inline constexpr int kInternalError = -32603;
inline constexpr int kServerError = -32000;

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

RpcError rpc_error(int code, std::string message, std::string reason);
RpcError invalid_params(std::string message);

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

// RequestLimits bound what one request line may hold. They are checked by a linear scan of the
// text before anything builds, copies or writes a document: nlohmann::json parses iteratively,
// but copying and dump() recurse once per level, so an unbounded depth would overflow the stack.
inline constexpr std::size_t kDefaultMaxJsonDepth = 64;
inline constexpr std::size_t kDefaultMaxBatch = 1000;
struct RequestLimits {
  std::size_t max_json_depth = kDefaultMaxJsonDepth;  // arrays and objects open at once
  std::size_t max_batch = kDefaultMaxBatch;           // elements of a batch
};

// JsonShape is what scan_json learns from a text without parsing it: the deepest nesting of
// arrays and objects outside strings, and when the text is an array the number of its elements
// (commas at the top level + 1; exact for valid JSON). The scan stops as soon as the depth passes
// stop_depth (depth is then stop_depth + 1).
struct JsonShape {
  std::size_t depth = 0;
  bool array = false;
  std::size_t elements = 0;
};
JsonShape scan_json(std::string_view text, std::size_t stop_depth);

// parse_request parses and validates one line. A line nested deeper than limits.max_json_depth or
// a batch longer than limits.max_batch is refused (kInvalidRequest) before it is parsed; a line
// that is not valid JSON (also invalid UTF-8) is a parse error. Needs no database.
Request parse_request(std::string_view line, const RequestLimits& limits = {});

// request_id_of returns the id of a request line when it is a JSON object with a usable id and
// nests no deeper than max_depth, else null (for the answer to a peer that may not be served).
json request_id_of(std::string_view line, std::size_t max_depth = kDefaultMaxJsonDepth);

// kMaxResultDepth bounds the nesting of a result the database returned (a row may hold a jsonb
// document of any depth): a deeper one is answered with an error instead of being written.
inline constexpr std::size_t kMaxResultDepth = 2000;

// parse_result parses a JSON text the database returned; a text nested deeper than
// kMaxResultDepth throws std::length_error, one that does not parse throws json::parse_error.
json parse_result(std::string_view text);

// result_line writes the answer to a request of id whose result is `text`, JSON the database
// wrote (jsonb's output), as one line without parsing it again: `text` goes in as it is, only
// the blanks jsonb puts between tokens left out. nullopt when the text cannot go in as it is
// (nested deeper than kMaxResultDepth, or not valid UTF-8): parse_result and make_result then
// say what is wrong with it, as for any result.
std::optional<std::string> result_line(const json& id, std::string_view text);

// clip_utf8 cuts text to at most max_bytes bytes without splitting a UTF-8 character, and
// marks a cut with "...": the cut text, its mark included, fits in max_bytes (max_bytes >= 3).
std::string clip_utf8(std::string_view text, std::size_t max_bytes);

// kMaxErrorText bounds message, detail and hint of an error answer.
inline constexpr std::size_t kMaxErrorText = 8192;

// to_line writes an answer as one line of JSON; invalid UTF-8 in a string (a database in
// SQL_ASCII) is replaced with U+FFFD instead of failing the answer.
std::string to_line(const json& answer);

// code_for_reason is the JSON-RPC code that goes with a reason.
int code_for_reason(std::string_view reason);

json make_result(const json& id, json result);
json make_error(const json& id, const RpcError& error);

}  // namespace sg::daemon
