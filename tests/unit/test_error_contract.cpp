// Unit tests of common/error_contract: the SQLSTATE table, and every DETAIL format read back by
// its parser (round trips), including user data that holds the format's own words.
#include "error_contract.hpp"

#include <gtest/gtest.h>

#include <set>
#include <string>

namespace {

namespace errors = sg::errors;
using errors::reason_for_sqlstate;

TEST(ErrorContractTable, SlotguardCodes) {
  EXPECT_EQ(errors::sqlstate::kVersionConflict, "SG001");
  EXPECT_EQ(errors::sqlstate::kNotFound, "SG002");
  EXPECT_EQ(errors::sqlstate::kSoldOut, "SG003");
  EXPECT_EQ(errors::sqlstate::kHoldExpired, "SG004");
  EXPECT_EQ(errors::sqlstate::kInvalidTransition, "SG005");
  std::set<std::string_view> codes, reasons;
  for (const auto& e : errors::kSlotguardSqlstates) {
    EXPECT_EQ(e.sqlstate.size(), 5u);
    EXPECT_EQ(e.sqlstate.substr(0, 2), "SG");
    EXPECT_FALSE(e.meaning.empty());
    codes.insert(e.sqlstate);
    reasons.insert(e.reason);
  }
  EXPECT_EQ(codes.size(), 5u);
  EXPECT_EQ(reasons.size(), 5u);
}

TEST(ErrorContractReason, SlotguardCodes) {
  EXPECT_EQ(reason_for_sqlstate("SG001"), "version_conflict");
  EXPECT_EQ(reason_for_sqlstate("SG002"), "not_found");
  EXPECT_EQ(reason_for_sqlstate("SG003"), "sold_out");
  EXPECT_EQ(reason_for_sqlstate("SG004"), "hold_expired");
  EXPECT_EQ(reason_for_sqlstate("SG005"), "invalid_transition");
}

TEST(ErrorContractReason, PostgresCodes) {
  EXPECT_EQ(reason_for_sqlstate("23P01"), "overlap");
  for (const char* c : {"23514", "23505", "23503", "23502"})
    EXPECT_EQ(reason_for_sqlstate(c), "constraint_violation") << c;
  for (const char* c : {"22023", "42703", "22P02", "22003", "22007", "22000"})
    EXPECT_EQ(reason_for_sqlstate(c), "invalid_params") << c;
  EXPECT_EQ(reason_for_sqlstate("42501"), "unauthorized");
  for (const char* c : {"08000", "08001", "08006", "57P01", "57P02", "57P03"})
    EXPECT_EQ(reason_for_sqlstate(c), "unavailable") << c;
  for (const char* c : {"XX000", "42P01", "40001", "SG999", "sg001", "", "2", "23", "08"})
    EXPECT_EQ(reason_for_sqlstate(c), "internal") << c;
}

// One list of connection-lost codes: the reason `unavailable` and the reconnect decision agree.
TEST(ErrorContractReason, ConnectionLostIsUnavailable) {
  for (const char* c : {"08000", "08003", "08006", "08P01", "57P01", "57P02", "57P03"}) {
    EXPECT_TRUE(errors::is_connection_lost(c)) << c;
    EXPECT_EQ(reason_for_sqlstate(c), "unavailable") << c;
  }
  for (const char* c : {"57014", "40001", "XX000", ""})
    EXPECT_FALSE(errors::is_connection_lost(c)) << c;
}

// A read-only server (a standby, a demoted primary) is unavailable for writes: the daemon
// reconnects to find the primary. It is not a lost connection.
TEST(ErrorContractReason, ReadOnlyServerIsUnavailable) {
  EXPECT_TRUE(errors::is_read_only_server("25006"));
  EXPECT_EQ(reason_for_sqlstate("25006"), "unavailable");
  EXPECT_FALSE(errors::is_connection_lost("25006"));
  for (const char* c : {"25001", "25P02", "08006", ""})
    EXPECT_FALSE(errors::is_read_only_server(c)) << c;
}

TEST(ErrorContractRetry, SerializationFailureAndDeadlockOnly) {
  EXPECT_TRUE(errors::is_retryable("40001"));
  EXPECT_TRUE(errors::is_retryable("40P01"));
  for (const char* c : {"40000", "40002", "40003", "23P01", "SG001", "55P03", "57014", ""})
    EXPECT_FALSE(errors::is_retryable(c)) << c;
}

TEST(ErrorContractVersion, ConflictTextIsStable) {
  EXPECT_EQ(errors::version_conflict_detail("public.t", R"({"id": 7})", "5", "6"),
            R"(Table public.t, key {"id": 7}: expected version 5, current version 6.)");
  EXPECT_EQ(errors::version_required_detail("public.t", R"({"id": 7})", "6"),
            R"(Table public.t, key {"id": 7}: current version 6; the table requires every )"
            "UPDATE to set the version it read.");
}

void expect_version_round_trip(const std::string& table, const std::string& key,
                               const std::string& expected, const std::string& current) {
  const auto v = errors::parse_version_conflict(
      errors::version_conflict_detail(table, key, expected, current));
  ASSERT_TRUE(v.has_value()) << table << " " << key;
  EXPECT_EQ(v->table, table);
  EXPECT_EQ(v->key, key);
  ASSERT_TRUE(v->expected.has_value());
  EXPECT_EQ(*v->expected, expected);
  EXPECT_EQ(v->current, current);
  const auto r =
      errors::parse_version_conflict(errors::version_required_detail(table, key, current));
  ASSERT_TRUE(r.has_value()) << table << " " << key;
  EXPECT_EQ(r->table, table);
  EXPECT_EQ(r->key, key);
  EXPECT_FALSE(r->expected.has_value());
  EXPECT_EQ(r->current, current);
}

TEST(ErrorContractVersion, RoundTrips) {
  expect_version_round_trip("public.t", R"({"id": 7})", "5", "6");
  expect_version_round_trip("t", R"({"id": 7, "k": "x"})", "-1", "9223372036854775807");
  expect_version_round_trip("s.t", "(no primary key)", "1", "2");
  expect_version_round_trip("public.t", R"({"id": 1})", "0b1e6c1a-6f1c-4a7e-9d3e-1f2a3b4c5d6e",
                            "7f9d2c1a-0000-4a7e-9d3e-1f2a3b4c5d6e");
  // Names and keys that hold the format's own words.
  expect_version_round_trip(R"("odd, key x"."a ""b"", key {")", R"({"id": 7})", "1", "2");
  expect_version_round_trip("public.t", R"({"n": ": expected version 1, current version 2."})", "3",
                            "4");
  expect_version_round_trip(
      "public.t", R"({"n": ": current version 1; the table requires every UPDATE to set"})", "3",
      "4");
  expect_version_round_trip("public.\"ключ\"", R"({"имя": "значение"})", "1", "2");
}

TEST(ErrorContractVersion, RejectsOtherTexts) {
  for (const char* d :
       {"", "Table ", "Table public.t", "Table public.t, key ", "Something else.",
        "Table \"unterminated, key {}: expected version 1, current version 2.",
        "Table public.t, key {}: expected version 1, current version 2",  // no final period
        "Table public.t, key {}: current version 2; the table requires"})
    EXPECT_FALSE(errors::parse_version_conflict(d).has_value()) << d;
}

TEST(ErrorContractSoldOut, Texts) {
  EXPECT_EQ(errors::sold_out_message(7, ""), "slot 7 is sold out");
  EXPECT_EQ(errors::sold_out_message(7, " (seats A1, A2 are taken)"),
            "slot 7 is sold out (seats A1, A2 are taken)");
  EXPECT_EQ(errors::sold_out_detail(1, 0), "1 seat requested, 0 free.");
  EXPECT_EQ(errors::sold_out_detail(3, 2), "3 seats requested, 2 free.");
  EXPECT_EQ(errors::seats_free_detail("The slot allows one live booking per holder", 1),
            "The slot allows one live booking per holder; 1 seat is free.");
  EXPECT_EQ(errors::seats_free_detail("X", 0), "X; 0 seats are free.");
  EXPECT_EQ(errors::slot_not_found_message(42), "slot 42 does not exist");
  EXPECT_EQ(errors::booking_not_found_message(-1), "booking -1 does not exist");
  EXPECT_EQ(errors::hold_expired_message(9), "hold 9 has expired");
}

TEST(ErrorContractSoldOut, HolderRoundTrips) {
  for (const std::string holder :
       {"ann", "", "a \"quoted\" one", "x\" already has a booking for slot 1", "名前", "a\nb"}) {
    const auto h = errors::parse_holder_conflict(errors::holder_conflict_message(holder, 12));
    ASSERT_TRUE(h.has_value()) << holder;
    EXPECT_EQ(*h, holder);
  }
  EXPECT_EQ(errors::holder_conflict_message("ann", 7),
            "holder \"ann\" already has a booking for slot 7");
  for (const char* m : {"slot 7 is sold out", "holder \"ann\" already has a booking for slot x",
                        "holder \"ann\" already has a booking for slot ", "holder \"ann"})
    EXPECT_FALSE(errors::parse_holder_conflict(m).has_value()) << m;
}

TEST(ErrorContractOverlap, TextsAreStable) {
  EXPECT_EQ(errors::overlap_detail("room_busy", R"({"id": 12})", "[1,5)"),
            R"(Rule "room_busy": the row overlaps {"id": 12} during [1,5).)");
  EXPECT_EQ(errors::overlap_detail_withheld("room_busy"),
            R"(Rule "room_busy": the row overlaps an existing row.)");
  EXPECT_EQ(
      errors::overlap_capacity_detail("r", 3, 4, R"({"id": 1})", "[1,2)"),
      R"(Rule "r" allows 3 at once; 4 rows would overlap, among them {"id": 1} during [1,2).)");
  EXPECT_EQ(errors::overlap_capacity_detail_withheld("r", 3, 4),
            R"(Rule "r" allows 3 at once; 4 rows would overlap.)");
  EXPECT_EQ(errors::overlap_serialization_detail("r", R"({"id": 1})", "[1,2)"),
            "Overlap rule \"r\": a conflicting row was committed after this transaction's "
            "snapshot: {\"id\": 1} during [1,2).");
  EXPECT_EQ(errors::overlap_serialization_detail_withheld("r"),
            "Overlap rule \"r\": a conflicting row was committed after this transaction's "
            "snapshot.");
}

TEST(ErrorContractOverlap, RoundTrips) {
  const std::string period = R"(["2026-01-05 09:00:00+00","2026-01-05 10:00:00+00"))";
  for (const std::string rule : {"room_busy", "a \"quoted\" rule", "", "правило"}) {
    for (const std::string key : {R"({"id": 12})", R"({"id": 1, "n": " during [1,2)."})",
                                  R"({"a": {"b": [1, "]}"]}})", R"({"q": "\" during "})"}) {
      auto o = errors::parse_overlap(errors::overlap_detail(rule, key, period));
      ASSERT_TRUE(o.has_value()) << rule << key;
      EXPECT_EQ(o->rule, rule);
      EXPECT_EQ(o->key, key);
      EXPECT_EQ(o->period, period);
      EXPECT_EQ(o->capacity, 1);
      o = errors::parse_overlap(errors::overlap_capacity_detail(rule, 3, 4, key, period));
      ASSERT_TRUE(o.has_value()) << rule << key;
      EXPECT_EQ(o->rule, rule);
      EXPECT_EQ(o->key, key);
      EXPECT_EQ(o->period, period);
      EXPECT_EQ(o->capacity, 3);
      EXPECT_EQ(o->covered, 4);
    }
    auto w = errors::parse_overlap(errors::overlap_detail_withheld(rule));
    ASSERT_TRUE(w.has_value());
    EXPECT_EQ(w->rule, rule);
    EXPECT_TRUE(w->key.empty());
    EXPECT_TRUE(w->period.empty());
    w = errors::parse_overlap(errors::overlap_capacity_detail_withheld(rule, 2, 3));
    ASSERT_TRUE(w.has_value());
    EXPECT_EQ(w->rule, rule);
    EXPECT_EQ(w->capacity, 2);
    EXPECT_EQ(w->covered, 3);
    EXPECT_TRUE(w->key.empty());
  }
}

TEST(ErrorContractOverlap, RejectsOtherTexts) {
  for (const char* d : {"", "Rule \"", "Rule \"r\"", "Rule \"r\": the row overlaps {\"id\": 1}",
                        "Rule \"r\": the row overlaps {\"id\": 1 during [1,2).",
                        "Rule \"r\" allows x at once; 4 rows would overlap.",
                        "Rule \"r\" allows 3 at once; 4 rows would overlap, among them"})
    EXPECT_FALSE(errors::parse_overlap(d).has_value()) << d;
}

TEST(ErrorContractJson, ValueExtent) {
  using errors::json_value_end;
  constexpr auto npos = std::string_view::npos;
  EXPECT_EQ(json_value_end(R"({"a": 1} rest)", 0), 8u);
  EXPECT_EQ(json_value_end(R"([1, [2], "]"] x)", 0), 13u);
  EXPECT_EQ(json_value_end(R"("a\"b" x)", 0), 6u);
  EXPECT_EQ(json_value_end("12.5e3 x", 0), 6u);
  EXPECT_EQ(json_value_end("null", 0), 4u);
  EXPECT_EQ(json_value_end(R"({"a": 1)", 0), npos);
  EXPECT_EQ(json_value_end("]", 0), npos);
  EXPECT_EQ(json_value_end(" 1", 0), npos);
  EXPECT_EQ(json_value_end("", 0), npos);
  EXPECT_EQ(json_value_end("x", 5), npos);
  // Deep nesting costs linear time and no recursion.
  const std::string deep = std::string(100000, '[') + std::string(100000, ']');
  EXPECT_EQ(json_value_end(deep, 0), deep.size());
}

}  // namespace
