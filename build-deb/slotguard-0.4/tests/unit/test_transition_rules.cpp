// Unit tests of common/transition_rules: parsing add_transition_rule's JSON and deciding
// whether a status change (or an initial status) is allowed for a role.
#include "transition_rules.hpp"

#include <optional>
#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace {

using sg::core::RuleError;
using sg::core::TransitionRules;
using States = std::vector<std::string>;

const std::optional<std::string> kNew = std::nullopt;  // the "from" of an INSERT

constexpr const char* kAppointment =
    R"({"pending": ["confirmed", "rejected", "cancelled"], "confirmed": ["completed", "cancelled"]})";
constexpr const char* kAppointmentRoles =
    R"({"doctor":  {"pending": ["confirmed", "rejected"], "confirmed": ["completed"]},
        "patient": {"pending": ["cancelled"], "confirmed": ["cancelled"]}})";

std::optional<std::string> from(const char* s) {
  return std::string(s);
}

// parse_error returns the RuleError text of parsing, or "" if parsing succeeded.
std::string parse_error(const std::string& transitions, const std::string& by_role = "") {
  try {
    TransitionRules::parse(transitions, by_role);
  } catch (const RuleError& e) {
    return e.what();
  }
  return "";
}

// --- parsing ---

TEST(TransitionRulesParse, AcceptsTheSpecExample) {
  auto r = TransitionRules::parse(kAppointment, kAppointmentRoles);
  ASSERT_EQ(r.transitions().size(), 2u);
  EXPECT_EQ(r.transitions().at("pending").size(), 3u);
  EXPECT_EQ(r.transitions().at("confirmed").size(), 2u);
  ASSERT_EQ(r.by_role().size(), 2u);
  EXPECT_EQ(r.by_role().at("doctor").at("pending").size(), 2u);
  EXPECT_EQ(r.by_role().at("patient").at("confirmed").count("cancelled"), 1u);
}

// A number beyond double's range (valid JSON, valid jsonb) is a RuleError, not another exception
// (found by tests/integration/random_api.sh: it became XX000).
TEST(TransitionRulesParse, HugeNumberIsARuleError) {
  EXPECT_EQ(parse_error(R"({"new": [1e1000]})"), "transitions is not valid JSON");
  EXPECT_EQ(parse_error("1e1000"), "transitions is not valid JSON");
  EXPECT_EQ(parse_error(R"({"new": ["done"]})", R"({"r": {"new": [-1e400]}})"),
            "by_role is not valid JSON");
}

TEST(TransitionRulesParse, EmptyObjectIsValid) {
  auto r = TransitionRules::parse("{}", "");
  EXPECT_TRUE(r.transitions().empty());
  EXPECT_TRUE(r.by_role().empty());
}

TEST(TransitionRulesParse, EmptyOrNullByRoleMeansNoRoles) {
  EXPECT_TRUE(TransitionRules::parse(kAppointment, "").by_role().empty());
  EXPECT_TRUE(TransitionRules::parse(kAppointment, "null").by_role().empty());
}

TEST(TransitionRulesParse, DuplicateTargetsCollapse) {
  auto r = TransitionRules::parse(R"({"a": ["b", "b", "c"]})", "");
  EXPECT_EQ(r.next_states(from("a"), ""), (States{"b", "c"}));
}

TEST(TransitionRulesParse, EmptyKeyListsInitialStates) {
  auto r = TransitionRules::parse(R"({"": ["pending"], "pending": ["done"]})", "");
  EXPECT_EQ(r.transitions().count(""), 1u);
}

TEST(TransitionRulesParse, BadJson) {
  for (const char* bad : {"", "{", "{\"a\": [\"b\"", "not json", "{'a': ['b']}"}) {
    std::string err = parse_error(bad);
    EXPECT_NE(err.find("transitions is not valid JSON"), std::string::npos) << bad << " -> " << err;
  }
}

TEST(TransitionRulesParse, NonObject) {
  for (const char* bad : {"[]", "[\"a\"]", "\"pending\"", "42", "null", "true"}) {
    std::string err = parse_error(bad);
    EXPECT_NE(err.find("transitions must be a JSON object"), std::string::npos)
        << bad << " -> " << err;
  }
}

TEST(TransitionRulesParse, NonArrayValue) {
  std::string err = parse_error(R"({"pending": "confirmed"})");
  EXPECT_NE(err.find("\"pending\""), std::string::npos) << err;
  EXPECT_NE(err.find("must be an array"), std::string::npos) << err;
  EXPECT_NE(parse_error(R"({"pending": {"confirmed": true}})"), "");
  EXPECT_NE(parse_error(R"({"pending": null})"), "");
}

TEST(TransitionRulesParse, NonStringTarget) {
  for (const char* bad : {R"({"pending": [1]})", R"({"pending": ["ok", null]})",
                          R"({"pending": [["confirmed"]]})", R"({"pending": [{"a": 1}]})"}) {
    std::string err = parse_error(bad);
    EXPECT_NE(err.find("must be strings"), std::string::npos) << bad << " -> " << err;
  }
}

TEST(TransitionRulesParse, EmptyStringTargetIsRejected) {
  std::string err = parse_error(R"({"pending": ["confirmed", ""]})");
  EXPECT_NE(err.find("\"\" is not a state"), std::string::npos) << err;
  EXPECT_NE(parse_error(R"({"": [""]})"), "");
}

TEST(TransitionRulesParse, ByRoleBadJson) {
  std::string err = parse_error(kAppointment, "{");
  EXPECT_NE(err.find("by_role is not valid JSON"), std::string::npos) << err;
}

TEST(TransitionRulesParse, ByRoleNonObject) {
  for (const char* bad : {"[]", "\"doctor\"", "1"}) {
    std::string err = parse_error(kAppointment, bad);
    EXPECT_NE(err.find("by_role must be a JSON object"), std::string::npos) << bad << " -> " << err;
  }
}

TEST(TransitionRulesParse, ByRoleErrorsNameTheRole) {
  std::string err = parse_error(kAppointment, R"({"doctor": ["confirmed"]})");
  EXPECT_NE(err.find("by_role \"doctor\""), std::string::npos) << err;
  EXPECT_NE(err.find("must be a JSON object"), std::string::npos) << err;

  err = parse_error(kAppointment, R"({"nurse": {"pending": "confirmed"}})");
  EXPECT_NE(err.find("by_role \"nurse\""), std::string::npos) << err;

  err = parse_error(kAppointment, R"({"nurse": {"pending": [7]}})");
  EXPECT_NE(err.find("by_role \"nurse\""), std::string::npos) << err;

  err = parse_error(kAppointment, R"({"nurse": {"pending": [""]}})");
  EXPECT_NE(err.find("by_role \"nurse\""), std::string::npos) << err;
}

TEST(TransitionRulesParse, RuleErrorIsARuntimeError) {
  EXPECT_THROW(TransitionRules::parse("[]", ""), std::runtime_error);
}

// --- allowed / next_states for all writers ---

TEST(TransitionRulesAllowed, ListedTransitionsAreAllowed) {
  auto r = TransitionRules::parse(kAppointment, "");
  EXPECT_TRUE(r.allowed(from("pending"), "confirmed", "anyone"));
  EXPECT_TRUE(r.allowed(from("pending"), "rejected", "anyone"));
  EXPECT_TRUE(r.allowed(from("pending"), "cancelled", "anyone"));
  EXPECT_TRUE(r.allowed(from("confirmed"), "completed", "anyone"));
  EXPECT_TRUE(r.allowed(from("confirmed"), "cancelled", "anyone"));
}

TEST(TransitionRulesAllowed, UnlistedTransitionsAreRefused) {
  auto r = TransitionRules::parse(kAppointment, "");
  EXPECT_FALSE(r.allowed(from("pending"), "completed", "anyone"));
  EXPECT_FALSE(r.allowed(from("confirmed"), "pending", "anyone"));
  EXPECT_FALSE(r.allowed(from("completed"), "pending", "anyone"));  // terminal: no entry
  EXPECT_FALSE(r.allowed(from("cancelled"), "confirmed", "anyone"));
  EXPECT_FALSE(r.allowed(from("unknown"), "pending", "anyone"));
  EXPECT_FALSE(r.allowed(from("pending"), "Confirmed", "anyone"));  // case matters
}

TEST(TransitionRulesAllowed, UnchangedValueIsAlwaysAllowed) {
  auto r = TransitionRules::parse(kAppointment, "");
  EXPECT_TRUE(r.allowed(from("pending"), "pending", "anyone"));
  EXPECT_TRUE(r.allowed(from("completed"), "completed", "anyone"));
  EXPECT_TRUE(r.allowed(from("not-a-state"), "not-a-state", "anyone"));
  auto empty = TransitionRules::parse("{}", "");
  EXPECT_TRUE(empty.allowed(from("x"), "x", ""));
  EXPECT_FALSE(empty.allowed(from("x"), "y", ""));
}

TEST(TransitionRulesAllowed, NextStatesAreSorted) {
  auto r = TransitionRules::parse(kAppointment, "");
  EXPECT_EQ(r.next_states(from("pending"), "anyone"),
            (States{"cancelled", "confirmed", "rejected"}));
  EXPECT_EQ(r.next_states(from("confirmed"), "anyone"), (States{"cancelled", "completed"}));
  EXPECT_TRUE(r.next_states(from("completed"), "anyone").empty());
  EXPECT_TRUE(r.next_states(from("unknown"), "anyone").empty());
}

// --- roles ---

TEST(TransitionRulesRoles, RoleAddsItsTransitions) {
  auto r = TransitionRules::parse(R"({"pending": ["cancelled"]})", kAppointmentRoles);
  EXPECT_TRUE(r.allowed(from("pending"), "confirmed", "doctor"));
  EXPECT_TRUE(r.allowed(from("confirmed"), "completed", "doctor"));
  EXPECT_TRUE(r.allowed(from("pending"), "cancelled", "doctor"));  // from the common list
  EXPECT_FALSE(r.allowed(from("confirmed"), "cancelled", "doctor"));
}

TEST(TransitionRulesRoles, RoleDoesNotGetOtherRolesTransitions) {
  auto r = TransitionRules::parse(R"({"pending": ["cancelled"]})", kAppointmentRoles);
  EXPECT_FALSE(r.allowed(from("pending"), "confirmed", "patient"));
  EXPECT_TRUE(r.allowed(from("confirmed"), "cancelled", "patient"));
  EXPECT_FALSE(r.allowed(from("confirmed"), "completed", "patient"));
}

TEST(TransitionRulesRoles, UnknownRoleGetsOnlyTheCommonList) {
  auto r = TransitionRules::parse(R"({"pending": ["cancelled"]})", kAppointmentRoles);
  EXPECT_TRUE(r.allowed(from("pending"), "cancelled", "receptionist"));
  EXPECT_FALSE(r.allowed(from("pending"), "confirmed", "receptionist"));
  EXPECT_FALSE(r.allowed(from("pending"), "confirmed", ""));
  EXPECT_EQ(r.next_states(from("pending"), "receptionist"), (States{"cancelled"}));
}

TEST(TransitionRulesRoles, RoleNamesAreCaseSensitive) {
  auto r = TransitionRules::parse(R"({})", kAppointmentRoles);
  EXPECT_TRUE(r.allowed(from("pending"), "confirmed", "doctor"));
  EXPECT_FALSE(r.allowed(from("pending"), "confirmed", "Doctor"));
}

TEST(TransitionRulesRoles, NextStatesMergeCommonAndRole) {
  auto r = TransitionRules::parse(kAppointment, kAppointmentRoles);
  EXPECT_EQ(r.next_states(from("pending"), "doctor"),
            (States{"cancelled", "confirmed", "rejected"}));
  auto narrow = TransitionRules::parse(R"({"pending": ["cancelled"]})", kAppointmentRoles);
  EXPECT_EQ(narrow.next_states(from("pending"), "doctor"),
            (States{"cancelled", "confirmed", "rejected"}));
  EXPECT_EQ(narrow.next_states(from("confirmed"), "doctor"), (States{"completed"}));
  EXPECT_EQ(narrow.next_states(from("confirmed"), "patient"), (States{"cancelled"}));
}

// --- initial states (INSERT: from is nullopt) ---

TEST(TransitionRulesInitial, WithoutEmptyKeyAnyInitialStateIsAllowed) {
  auto r = TransitionRules::parse(kAppointment, kAppointmentRoles);
  EXPECT_FALSE(r.restricts_initial("anyone"));
  EXPECT_FALSE(r.restricts_initial("doctor"));
  EXPECT_TRUE(r.allowed(kNew, "pending", "anyone"));
  EXPECT_TRUE(r.allowed(kNew, "completed", "anyone"));
  EXPECT_TRUE(r.allowed(kNew, "whatever", "doctor"));
}

TEST(TransitionRulesInitial, EmptyKeyRestrictsInitialStates) {
  auto r = TransitionRules::parse(R"({"": ["pending"], "pending": ["confirmed"]})", "");
  EXPECT_TRUE(r.restricts_initial("anyone"));
  EXPECT_TRUE(r.allowed(kNew, "pending", "anyone"));
  EXPECT_FALSE(r.allowed(kNew, "confirmed", "anyone"));
  EXPECT_EQ(r.next_states(kNew, "anyone"), (States{"pending"}));
}

TEST(TransitionRulesInitial, EmptyListAllowsNoInsert) {
  auto r = TransitionRules::parse(R"({"": []})", "");
  EXPECT_TRUE(r.restricts_initial("anyone"));
  EXPECT_FALSE(r.allowed(kNew, "pending", "anyone"));
  EXPECT_TRUE(r.next_states(kNew, "anyone").empty());
}

TEST(TransitionRulesInitial, RoleMayAddInitialStates) {
  auto r = TransitionRules::parse(R"({"": ["pending"]})", R"({"admin": {"": ["confirmed"]}})");
  EXPECT_TRUE(r.allowed(kNew, "pending", "admin"));
  EXPECT_TRUE(r.allowed(kNew, "confirmed", "admin"));
  EXPECT_FALSE(r.allowed(kNew, "confirmed", "clerk"));
  EXPECT_EQ(r.next_states(kNew, "admin"), (States{"confirmed", "pending"}));
}

TEST(TransitionRulesInitial, RoleOnlyEmptyKeyRestrictsOnlyThatRole) {
  auto r =
      TransitionRules::parse(R"({"pending": ["confirmed"]})", R"({"admin": {"": ["confirmed"]}})");
  EXPECT_TRUE(r.restricts_initial("admin"));
  EXPECT_FALSE(r.restricts_initial("clerk"));
  EXPECT_TRUE(r.allowed(kNew, "confirmed", "admin"));
  EXPECT_FALSE(r.allowed(kNew, "pending", "admin"));
  EXPECT_TRUE(r.allowed(kNew, "pending", "clerk"));
}

TEST(TransitionRulesInitial, EmptyKeyDoesNotAffectUpdates) {
  auto r = TransitionRules::parse(R"({"": ["pending"], "pending": ["confirmed"]})", "");
  EXPECT_TRUE(r.allowed(from("pending"), "confirmed", "anyone"));
  EXPECT_FALSE(r.allowed(from("confirmed"), "pending", "anyone"));
  // An UPDATE from an actual empty-string state is looked up under the "" key too.
  EXPECT_TRUE(r.allowed(from(""), "pending", "anyone"));
}

}  // namespace
