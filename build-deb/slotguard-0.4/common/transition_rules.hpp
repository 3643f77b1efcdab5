// transition_rules: parsing and checking of a status column's allowed transitions, free of
// PostgreSQL so that it can be unit-tested. The extension's trigger keeps one TransitionRules per
// trigger and asks it about each row.
#pragma once

#include <map>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace sg::core {

// RuleError is a malformed rule document (transitions or by_role); its text names the problem.
class RuleError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// TransitionRules holds "from state -> allowed next states" for all writers and per role. The key
// "" lists the allowed initial states (checked on INSERT); without it any initial state is allowed.
class TransitionRules {
 public:
  using Map = std::map<std::string, std::set<std::string>>;

  // parse reads the JSON texts given to add_transition_rule; by_role may be empty (no roles).
  static TransitionRules parse(std::string_view transitions, std::string_view by_role);

  // allowed says whether a writer acting as `role` may change `from` to `to`. `from` empty
  // (std::nullopt) means a new row. An unchanged value is always allowed.
  bool allowed(const std::optional<std::string>& from, const std::string& to,
               const std::string& role) const;

  // next_states lists, sorted, what `role` may move `from` to (the HINT of SG005).
  std::vector<std::string> next_states(const std::optional<std::string>& from,
                                       const std::string& role) const;

  // restricts_initial says whether INSERTs are checked (the key "" is present somewhere).
  bool restricts_initial(const std::string& role) const;

  const Map& transitions() const { return all_; }
  const std::map<std::string, Map>& by_role() const { return roles_; }

 private:
  Map all_;
  std::map<std::string, Map> roles_;
};

}  // namespace sg::core
