#include "transition_rules.hpp"

#include <nlohmann/json.hpp>

namespace sg::core {

namespace {

using json = nlohmann::json;

// parse_map reads {"state": ["next", ...], ...}; `what` names the document in errors.
TransitionRules::Map parse_map(const json& doc, const std::string& what) {
  if (!doc.is_object()) throw RuleError(what + " must be a JSON object of state -> [next states]");
  TransitionRules::Map out;
  for (const auto& [from, nexts] : doc.items()) {
    if (!nexts.is_array())
      throw RuleError(what + ": the value for \"" + from + "\" must be an array of states");
    auto& set = out[from];
    for (const auto& next : nexts) {
      if (!next.is_string())
        throw RuleError(what + ": the states listed for \"" + from + "\" must be strings");
      auto s = next.get<std::string>();
      if (s.empty()) throw RuleError(what + ": \"\" is not a state (it marks initial states)");
      set.insert(std::move(s));
    }
  }
  return out;
}

json parse_json(std::string_view text, const std::string& what) {
  try {
    return json::parse(text);
  } catch (const json::exception&) {
    // parse_error, and also out_of_range for a number no double holds (1e1000)
    throw RuleError(what + " is not valid JSON");
  }
}

void add_next(const TransitionRules::Map& m, const std::string& key, std::set<std::string>* out) {
  auto it = m.find(key);
  if (it != m.end()) out->insert(it->second.begin(), it->second.end());
}

}  // namespace

TransitionRules TransitionRules::parse(std::string_view transitions, std::string_view by_role) {
  TransitionRules r;
  r.all_ = parse_map(parse_json(transitions, "transitions"), "transitions");
  if (!by_role.empty()) {
    json roles = parse_json(by_role, "by_role");
    if (!roles.is_null()) {
      if (!roles.is_object())
        throw RuleError("by_role must be a JSON object of role -> {state: [next states]}");
      for (const auto& [role, doc] : roles.items())
        r.roles_[role] = parse_map(doc, "by_role \"" + role + "\"");
    }
  }
  return r;
}

std::vector<std::string> TransitionRules::next_states(const std::optional<std::string>& from,
                                                      const std::string& role) const {
  const std::string key = from.value_or("");
  std::set<std::string> out;
  add_next(all_, key, &out);
  auto it = roles_.find(role);
  if (it != roles_.end()) add_next(it->second, key, &out);
  return {out.begin(), out.end()};
}

bool TransitionRules::restricts_initial(const std::string& role) const {
  if (all_.count("")) return true;
  auto it = roles_.find(role);
  return it != roles_.end() && it->second.count("");
}

bool TransitionRules::allowed(const std::optional<std::string>& from, const std::string& to,
                              const std::string& role) const {
  if (from && *from == to) return true;
  if (!from && !restricts_initial(role)) return true;
  for (const auto& s : next_states(from, role))
    if (s == to) return true;
  return false;
}

}  // namespace sg::core
