// protocol: see protocol.hpp.
#include "protocol.hpp"

#include <stdexcept>

namespace sg::daemon {

namespace {

bool valid_id(const json& id) {
  return id.is_string() || id.is_number() || id.is_null();
}

RpcError invalid_request(std::string message) {
  return rpc_error(kInvalidRequest, std::move(message), "invalid_params");
}

// parse_envelope checks what makes j a JSON-RPC 2.0 request (an object, its id, "jsonrpc",
// "method") and returns its method; nullptr when e got an error instead.
const MethodSpec* parse_envelope(const json& j, Entry& e) {
  if (!j.is_object()) {
    e.error = invalid_request("a request must be a JSON object");
    return nullptr;
  }
  auto id = j.find("id");
  if (id == j.end()) {
    e.notification = true;
  } else if (valid_id(*id)) {
    e.id = *id;
  } else {
    e.error = invalid_request("id must be a string, a number or null");
    return nullptr;
  }
  auto version = j.find("jsonrpc");
  if (version == j.end() || *version != "2.0") {
    e.error = invalid_request("jsonrpc must be \"2.0\"");
    return nullptr;
  }
  auto method = j.find("method");
  if (method == j.end() || !method->is_string()) {
    e.error = invalid_request("method must be a string");
    return nullptr;
  }
  const MethodSpec* spec = find_method(method->get<std::string>());
  if (spec == nullptr) {
    e.error = rpc_error(kMethodNotFound,
                        "method not found: " + clip_utf8(method->get<std::string>(), 128),
                        "invalid_params");
  }
  return spec;
}

// check_param_names takes actor and actor_role into call and refuses a name the method does not
// take; the error, if any.
std::optional<RpcError> check_param_names(const json& params, Call& call) {
  const MethodSpec& spec = *call.method;
  for (auto it = params.begin(); it != params.end(); ++it) {
    const std::string& name = it.key();
    if (name == "actor" || name == "actor_role") {
      if (it->is_null()) continue;
      if (!it->is_string()) return invalid_params("params." + name + " must be a string");
      (name == "actor" ? call.actor : call.actor_role) = it->get<std::string>();
      continue;
    }
    bool known = false;
    for (const auto& ps : spec.params) known = known || name == ps.name;
    if (!known) {
      std::string names;
      for (const auto& ps : spec.params) names += std::string(names.empty() ? "" : ", ") + ps.name;
      return invalid_params("unknown parameter '" + clip_utf8(name, 128) + "' for " + spec.name +
                            (names.empty() ? " (it takes none)" : " (it takes " + names + ")"));
    }
  }
  return std::nullopt;
}

// convert_params turns the method's parameters, in the table's order, into call.args.
std::optional<RpcError> convert_params(const json& params, Call& call) {
  const MethodSpec& spec = *call.method;
  for (std::size_t i = 0; i < spec.params.size(); ++i) {
    const ParamSpec& ps = spec.params[i];
    auto v = params.find(ps.name);
    if (v == params.end() || v->is_null()) {
      if (ps.required) return invalid_params(std::string("missing parameter '") + ps.name + "'");
      continue;
    }
    auto arg = convert_param(*v, ps.type, i);
    if (!arg)
      return invalid_params(std::string("parameter '") + ps.name + "' must be " +
                            param_type_text(ps.type));
    call.args.push_back(std::move(*arg));
  }
  return std::nullopt;
}

Entry parse_entry(const json& j) {
  Entry e;
  const MethodSpec* spec = parse_envelope(j, e);
  if (spec == nullptr) return e;
  static const json no_params = json::object();
  const json* params = &no_params;  // the request's own, not a copy
  auto p = j.find("params");
  if (p != j.end() && !p->is_null()) {
    if (!p->is_object()) {
      e.error = invalid_params("params must be an object of named parameters");
      return e;
    }
    params = &*p;
  }
  Call call;
  call.id = e.id;
  call.notification = e.notification;
  call.method = spec;
  e.error = check_param_names(*params, call);
  if (!e.error) e.error = convert_params(*params, call);
  if (!e.error) e.call = std::move(call);
  return e;
}

}  // namespace

RpcError rpc_error(int code, std::string message, std::string reason) {
  RpcError e;
  e.code = code;
  e.message = std::move(message);
  e.reason = std::move(reason);
  return e;
}

RpcError invalid_params(std::string message) {
  return rpc_error(kInvalidParams, std::move(message), "invalid_params");
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
    r.error = invalid_request("request nested too deep: more than " +
                              std::to_string(limits.max_json_depth) +
                              " levels of arrays and objects (limits.max_json_depth)");
    return r;
  }
  if (shape.array && shape.elements > limits.max_batch) {
    r.batch = true;
    r.error =
        invalid_request("batch too long: " + std::to_string(shape.elements) +
                        " requests (limits.max_batch = " + std::to_string(limits.max_batch) + ")");
    return r;
  }
  // A NUL byte is never part of JSON text (a string spells it \u0000), but the parser takes one
  // for the end of input and would accept what comes before it.
  json j = line.find('\0') != std::string_view::npos
               ? json(json::value_t::discarded)
               : json::parse(line.begin(), line.end(), nullptr, false);
  if (j.is_discarded()) {
    r.error = rpc_error(kParseError, "parse error: not valid JSON", "invalid_params");
    return r;
  }
  if (j.is_array()) {
    r.batch = true;
    if (j.empty()) {
      r.error = invalid_request("an empty batch");
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

namespace {

// valid_utf8: text is well-formed UTF-8 (no overlong forms, surrogates or code points past
// U+10FFFF).
bool valid_utf8(std::string_view text) {
  const auto* s = reinterpret_cast<const unsigned char*>(text.data());
  const std::size_t n = text.size();
  for (std::size_t i = 0; i < n;) {
    const unsigned char c = s[i];
    if (c < 0x80) {
      ++i;
      continue;
    }
    std::size_t len = 0;
    unsigned char lo = 0x80, hi = 0xBF;  // the allowed range of the second byte
    if (c >= 0xC2 && c <= 0xDF) {
      len = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
      len = 3;
      if (c == 0xE0) lo = 0xA0;
      if (c == 0xED) hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
      len = 4;
      if (c == 0xF0) lo = 0x90;
      if (c == 0xF4) hi = 0x8F;
    } else {
      return false;
    }
    if (i + len > n || s[i + 1] < lo || s[i + 1] > hi) return false;
    for (std::size_t k = 2; k < len; ++k) {
      if ((s[i + k] & 0xC0) != 0x80) return false;
    }
    i += len;
  }
  return true;
}

// append_compact appends JSON text without the blanks between its tokens.
void append_compact(std::string& out, std::string_view text) {
  bool in_string = false;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char ch = text[i];
    if (in_string) {
      out += ch;
      if (ch == '\\' && i + 1 < text.size()) {
        out += text[++i];
      } else if (ch == '"') {
        in_string = false;
      }
      continue;
    }
    if (ch == ' ' || ch == '\n' || ch == '\t' || ch == '\r') continue;
    if (ch == '"') in_string = true;
    out += ch;
  }
}

}  // namespace

std::optional<std::string> result_line(const json& id, std::string_view text) {
  if (scan_json(text, kMaxResultDepth).depth > kMaxResultDepth || !valid_utf8(text))
    return std::nullopt;
  // The members in the order to_line writes them (sorted): id, jsonrpc, result.
  std::string line = "{\"id\":";
  line.reserve(text.size() + 48);
  line += to_line(id);
  line += ",\"jsonrpc\":\"2.0\",\"result\":";
  append_compact(line, text);
  line += '}';
  return line;
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
