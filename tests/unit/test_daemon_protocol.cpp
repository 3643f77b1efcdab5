// Unit tests of daemon/protocol: JSON-RPC 2.0 requests, batches, ids and notifications; params
// checked and turned into parameterized SQL; database errors mapped to reasons and codes.
#include <gtest/gtest.h>

#include <chrono>

#include <string>

#include "protocol.hpp"

namespace {

using namespace sg::daemon;

Request one(const std::string& line) {
  return parse_request(line);
}

TEST(DaemonProtocol, ValidRequestBecomesACall) {
  const Request r = one(
      R"({"jsonrpc":"2.0","id":7,"method":"reserve","params":{"slot_id":3,"holder":"ann","seats":2}})");
  ASSERT_FALSE(r.error);
  ASSERT_EQ(r.entries.size(), 1u);
  EXPECT_FALSE(r.batch);
  const Entry& e = r.entries[0];
  ASSERT_TRUE(e.call) << e.error->message;
  EXPECT_EQ(e.call->id, 7);
  EXPECT_FALSE(e.call->notification);
  EXPECT_STREQ(e.call->method->name, "reserve");
  ASSERT_EQ(e.call->args.size(), 3u);
  EXPECT_EQ(e.call->args[0].value, "3");
  EXPECT_EQ(e.call->args[1].value, "ann");
  EXPECT_EQ(e.call->args[2].value, "2");
}

TEST(DaemonProtocol, IdsMayBeStringsNumbersOrNull) {
  for (const char* id : {"\"abc\"", "12", "null", "1.5"}) {
    const Request r = one(std::string(R"({"jsonrpc":"2.0","method":"health","id":)") + id + "}");
    ASSERT_TRUE(r.entries[0].call) << id;
    EXPECT_EQ(r.entries[0].call->id, json::parse(id));
  }
  const Request bad = one(R"({"jsonrpc":"2.0","method":"health","id":{"x":1}})");
  ASSERT_TRUE(bad.entries[0].error);
  EXPECT_EQ(bad.entries[0].error->code, kInvalidRequest);
  EXPECT_TRUE(bad.entries[0].id.is_null());
}

TEST(DaemonProtocol, NoIdIsANotification) {
  const Request r = one(R"({"jsonrpc":"2.0","method":"health"})");
  ASSERT_TRUE(r.entries[0].call);
  EXPECT_TRUE(r.entries[0].notification);
  EXPECT_TRUE(r.entries[0].call->notification);
}

TEST(DaemonProtocol, ParseErrorAndInvalidRequests) {
  EXPECT_EQ(one("{not json").error->code, kParseError);
  EXPECT_EQ(one("").error->code, kParseError);
  EXPECT_EQ(one("[]").error->code, kInvalidRequest);
  EXPECT_EQ(one("42").entries[0].error->code, kInvalidRequest);
  EXPECT_EQ(one(R"({"id":1,"method":"health"})").entries[0].error->code, kInvalidRequest);
  EXPECT_EQ(one(R"({"jsonrpc":"1.0","id":1,"method":"health"})").entries[0].error->code,
            kInvalidRequest);
  EXPECT_EQ(one(R"({"jsonrpc":"2.0","id":1,"method":5})").entries[0].error->code, kInvalidRequest);
  EXPECT_EQ(one(R"({"jsonrpc":"2.0","id":1,"method":"drop_everything"})").entries[0].error->code,
            kMethodNotFound);
  EXPECT_EQ(one(R"({"jsonrpc":"2.0","id":1})").entries[0].error->code, kInvalidRequest);
  for (const char* s : {"{not json", "[]", "42"}) {
    const Request r = one(s);
    const RpcError& e = r.error ? *r.error : *r.entries[0].error;
    EXPECT_EQ(e.reason, "invalid_params") << s;
  }
}

TEST(DaemonProtocol, InvalidParams) {
  auto err = [](const std::string& params, const char* method = "reserve") {
    const Request r = one(std::string(R"({"jsonrpc":"2.0","id":1,"method":")") + method +
                          R"(","params":)" + params + "}");
    return r.entries[0].error ? r.entries[0].error->message : std::string();
  };
  EXPECT_NE(err(R"({"holder":"a"})").find("missing parameter 'slot_id'"), std::string::npos);
  EXPECT_NE(err(R"({"slot_id":1})").find("holder"), std::string::npos);
  EXPECT_NE(err(R"({"slot_id":"x1","holder":"a"})").find("slot_id"), std::string::npos);
  EXPECT_NE(err(R"({"slot_id":1.5,"holder":"a"})").find("slot_id"), std::string::npos);
  EXPECT_NE(err(R"({"slot_id":1,"holder":"a","seats":99999999999})").find("seats"),
            std::string::npos);
  EXPECT_NE(err(R"({"slot_id":1,"holder":"a","confirm":"yes"})").find("confirm"),
            std::string::npos);
  EXPECT_NE(err(R"({"slot_id":1,"holder":{"a":1}})").find("holder"), std::string::npos);
  EXPECT_NE(err(R"({"slot_id":1,"holder":"a","nope":1})").find("unknown parameter 'nope'"),
            std::string::npos);
  EXPECT_NE(err(R"({"slot_id":1,"holder":"a","actor":5})").find("actor"), std::string::npos);
  EXPECT_NE(err(R"([1,"a"])").find("named"), std::string::npos);
  EXPECT_NE(err(R"({"slot_id":1,"holder":"a","labels":"A1"})", "reserve_seats").find("labels"),
            std::string::npos);
  EXPECT_NE(err(R"({"x":1})", "health").find("takes none"), std::string::npos);
  const Request r = one(R"({"jsonrpc":"2.0","id":1,"method":"reserve","params":{}})");
  EXPECT_EQ(r.entries[0].error->code, kInvalidParams);
  EXPECT_EQ(r.entries[0].error->reason, "invalid_params");
}

TEST(DaemonProtocol, ActorAndRoleAreTakenApart) {
  const Request r = one(
      R"({"jsonrpc":"2.0","id":1,"method":"confirm","params":{"booking_id":4,"actor":"alice","actor_role":"doctor"}})");
  ASSERT_TRUE(r.entries[0].call);
  EXPECT_EQ(*r.entries[0].call->actor, "alice");
  EXPECT_EQ(*r.entries[0].call->actor_role, "doctor");
  EXPECT_EQ(r.entries[0].call->args.size(), 1u);
}

TEST(DaemonProtocol, BatchKeepsOrderAndPerEntryErrors) {
  const Request r = one(R"([
    {"jsonrpc":"2.0","id":1,"method":"availability","params":{"slot_id":1}},
    {"jsonrpc":"2.0","id":2,"method":"nope"},
    {"jsonrpc":"2.0","method":"expire_holds"},
    7])");
  ASSERT_FALSE(r.error);
  EXPECT_TRUE(r.batch);
  ASSERT_EQ(r.entries.size(), 4u);
  EXPECT_TRUE(r.entries[0].call);
  EXPECT_EQ(r.entries[1].error->code, kMethodNotFound);
  EXPECT_EQ(r.entries[1].id, 2);
  EXPECT_TRUE(r.entries[2].notification);
  EXPECT_EQ(r.entries[3].error->code, kInvalidRequest);
}

TEST(DaemonProtocol, StatementsUseNamedBoundParameters) {
  const Request r = one(
      R"({"jsonrpc":"2.0","id":1,"method":"reserve","params":{"slot_id":3,"holder":"x'); DROP TABLE t; --","hold_ttl":90,"confirm":true}})");
  const Statement st = build_statement(*r.entries[0].call);
  EXPECT_EQ(st.sql,
            "SELECT pg_catalog.to_jsonb(r) FROM slotguard.reserve(slot_id => $1::bigint, "
            "holder => $2::text, hold_ttl => $3::interval, confirm => $4::boolean) AS r");
  ASSERT_EQ(st.values.size(), 4u);
  EXPECT_EQ(st.values[1], "x'); DROP TABLE t; --");  // a value, never SQL
  EXPECT_EQ(st.values[2], "90 seconds");
  EXPECT_EQ(st.values[3], "true");
  EXPECT_EQ(st.sql.find("DROP"), std::string::npos);
}

TEST(DaemonProtocol, StatementNamesDependOnTheParametersGiven) {
  auto name = [](const std::string& params) {
    const Request r = one(R"({"jsonrpc":"2.0","id":1,"method":"reserve","params":)" + params + "}");
    return build_statement(*r.entries[0].call).name;
  };
  EXPECT_EQ(name(R"({"slot_id":1,"holder":"a"})"), name(R"({"slot_id":2,"holder":"b"})"));
  EXPECT_NE(name(R"({"slot_id":1,"holder":"a"})"), name(R"({"slot_id":1,"holder":"a","seats":2})"));
}

TEST(DaemonProtocol, ResultShapes) {
  auto sql = [](const std::string& method, const std::string& params) {
    const Request r =
        one(R"({"jsonrpc":"2.0","id":1,"method":")" + method + R"(","params":)" + params + "}");
    return build_statement(*r.entries[0].call).sql;
  };
  EXPECT_EQ(sql("create_slot", R"({"capacity":5,"seat_labels":["A","B\"C"]})"),
            "SELECT pg_catalog.to_jsonb(slotguard.create_slot(capacity => $1::integer, "
            "seat_labels => $2::text[]))");
  EXPECT_NE(sql("find_conflicts", R"({"tbl":"t","candidate":{"a":1}})").find("jsonb_agg"),
            std::string::npos);
  EXPECT_NE(sql("expire_holds", "{}").find("slotguard.expire_holds()"), std::string::npos);
}

TEST(DaemonProtocol, UpdateVersionedPicksBigintOrUuid) {
  auto st = [](const std::string& v) {
    const Request r = one(
        R"({"jsonrpc":"2.0","id":1,"method":"update_versioned","params":{"tbl":"t","key":7,"expected_version":)" +
        v + R"(,"changes":{"a":1}}})");
    return build_statement(*r.entries[0].call);
  };
  EXPECT_NE(st("3").sql.find("expected_version => $3::bigint"), std::string::npos);
  const Statement u = st(R"("6f1c3a52-0d7e-4a4e-9a59-2f6f5f6d2b11")");
  EXPECT_NE(u.sql.find("expected_version => $3::uuid"), std::string::npos);
  EXPECT_NE(u.name, st("3").name);
  EXPECT_EQ(st("3").values[1], "7");  // key as JSON text
  EXPECT_EQ(st("3").values[3], R"({"a":1})");
}

TEST(DaemonProtocol, TextArrayLiteralEscapes) {
  EXPECT_EQ(pg_text_array({}), "{}");
  EXPECT_EQ(pg_text_array({"A1", "b c"}), R"({"A1","b c"})");
  EXPECT_EQ(pg_text_array({R"(q"u\o)", "NULL", "{,}"}), R"({"q\"u\\o","NULL","{,}"})");
}

TEST(DaemonErrors, DatabaseErrorsMapToReasonsAndCodes) {
  struct Case {
    const char* sqlstate;
    const char* reason;
    int code;
  };
  const Case cases[] = {
      {"SG001", "version_conflict", kServerError},
      {"SG002", "not_found", kServerError},
      {"SG003", "sold_out", kServerError},
      {"SG004", "hold_expired", kServerError},
      {"SG005", "invalid_transition", kServerError},
      {"23P01", "overlap", kServerError},
      {"22023", "invalid_params", kInvalidParams},
      {"42703", "invalid_params", kInvalidParams},
      {"22007", "invalid_params", kInvalidParams},
      {"42P01", "invalid_params", kInvalidParams},
      {"42602", "invalid_params", kInvalidParams},
      {"42501", "unauthorized", kServerError},
      {"08006", "unavailable", kServerError},
      {"57P01", "unavailable", kServerError},
      {"23514", "constraint_violation", kServerError},
      {"XX000", "internal", kInternalError},
  };
  for (const auto& c : cases) {
    const RpcError e = error_from_database(c.sqlstate, "ERROR:  boom\n");
    EXPECT_EQ(e.reason, c.reason) << c.sqlstate;
    EXPECT_EQ(e.code, c.code) << c.sqlstate;
    EXPECT_EQ(e.sqlstate, c.sqlstate);
    EXPECT_EQ(e.message, "boom");
  }
}

TEST(DaemonErrors, MessageDetailAndHintAreSplit) {
  const RpcError e = error_from_database(
      "SG001",
      "ERROR:  version conflict on \"public.t\"\nDETAIL:  expected version 1, current 2.\n"
      "HINT:  Re-read the row.\nCONTEXT:  SQL function\n");
  EXPECT_EQ(e.message, "version conflict on \"public.t\"");
  EXPECT_EQ(e.detail, "expected version 1, current 2.");
  EXPECT_EQ(e.hint, "Re-read the row.");
  const json j = make_error(5, e);
  EXPECT_EQ(j["jsonrpc"], "2.0");
  EXPECT_EQ(j["id"], 5);
  EXPECT_EQ(j["error"]["code"], kServerError);
  EXPECT_EQ(j["error"]["data"]["reason"], "version_conflict");
  EXPECT_EQ(j["error"]["data"]["sqlstate"], "SG001");
  EXPECT_EQ(j["error"]["data"]["hint"], "Re-read the row.");
}

TEST(DaemonErrors, ErrorsWithoutSqlstateCarryOnlyTheReason) {
  const json j = make_error(nullptr, invalid_params("x"));
  EXPECT_TRUE(j["id"].is_null());
  EXPECT_EQ(j["error"]["data"]["reason"], "invalid_params");
  EXPECT_FALSE(j["error"]["data"].contains("sqlstate"));
  const json ok = make_result("a", json{{"free", 2}});
  EXPECT_EQ(ok["result"]["free"], 2);
  EXPECT_FALSE(ok.contains("error"));
}

}  // namespace

TEST(DaemonErrors, VersionConflictCarriesVersionsTableAndKey) {
  const RpcError e = error_from_database(
      "SG001",
      "ERROR:  version conflict on \"public.medicines\"\n"
      "DETAIL:  Table public.medicines, key {\"id\": 7}: expected version 5, current version 6.\n"
      "HINT:  Re-read the row and apply the change to its current version.\n");
  const json d = make_error(1, e)["error"]["data"];
  EXPECT_EQ(d["reason"], "version_conflict");
  EXPECT_EQ(d["table"], "public.medicines");
  EXPECT_EQ(d["key"], json({{"id", 7}}));
  EXPECT_EQ(d["expected_version"], 5);
  EXPECT_EQ(d["current_version"], 6);
}

TEST(DaemonErrors, UuidVersionConflictKeepsVersionsAsStrings) {
  const RpcError e =
      error_from_database("SG001",
                          "ERROR:  version conflict on \"public.c\"\n"
                          "DETAIL:  Table public.c, key {\"id\": \"a1\"}: expected version "
                          "0b6f9e9e-0000-4000-8000-000000000001, current version "
                          "0b6f9e9e-0000-4000-8000-000000000002.\n");
  EXPECT_EQ(e.fields["expected_version"], "0b6f9e9e-0000-4000-8000-000000000001");
  EXPECT_EQ(e.fields["current_version"], "0b6f9e9e-0000-4000-8000-000000000002");
  EXPECT_EQ(e.fields["key"], json({{"id", "a1"}}));
}

TEST(DaemonErrors, RequiredVersionConflictCarriesCurrentVersion) {
  const RpcError e = error_from_database(
      "SG001",
      "ERROR:  update of \"public.t\" does not set the version column \"version\"\n"
      "DETAIL:  Table public.t, key {\"id\": 1}: current version 3; the table requires every "
      "UPDATE to set the version it read.\n");
  EXPECT_EQ(e.fields["current_version"], 3);
  EXPECT_FALSE(e.fields.contains("expected_version"));
}

TEST(DaemonErrors, UnparsableDetailAddsNoFields) {
  const RpcError e = error_from_database("SG001", "ERROR:  x\nDETAIL:  something else.\n");
  EXPECT_TRUE(e.fields.empty());
  EXPECT_FALSE(make_error(1, e)["error"]["data"].contains("current_version"));
}

TEST(DaemonErrors, OverlapNamesTheRule) {
  const RpcError e = error_from_database(
      "23P01",
      "ERROR:  Room 101 is taken\nDETAIL:  Rule \"room_busy\": the row overlaps {\"id\": 1} "
      "during [1,2).\n");
  const json d = make_error(1, e)["error"]["data"];
  EXPECT_EQ(d["rule"], "room_busy");
  EXPECT_EQ(d["conflicting_key"], json({{"id", 1}}));
  EXPECT_EQ(d["conflicting_period"], "[1,2)");
  const RpcError k = error_from_database(
      "23P01",
      "ERROR:  full\nDETAIL:  Rule \"busy\" allows 3 at once; 4 rows would overlap, among them "
      "{\"a\": 1, \"b\": \"x\"} during [\"2030-01-01 09:00:00+00\",\"2030-01-01 10:00:00+00\").\n");
  EXPECT_EQ(k.fields["rule"], "busy");
  EXPECT_EQ(k.fields["conflicting_key"], json({{"a", 1}, {"b", "x"}}));
}

TEST(DaemonErrors, OnePerHolderIsToldApartFromSoldOut) {
  const RpcError e =
      error_from_database("SG003",
                          "ERROR:  holder \"ann\" already has a booking for slot 7\n"
                          "DETAIL:  The slot allows one live booking per holder; 2 seats free.\n");
  EXPECT_EQ(e.reason, "sold_out");
  EXPECT_EQ(e.fields["constraint"], "one_per_holder");
  EXPECT_EQ(e.fields["holder"], "ann");
  const RpcError full = error_from_database(
      "SG003", "ERROR:  slot 7 is sold out\nDETAIL:  1 seat requested, 0 free.\n");
  EXPECT_FALSE(full.fields.contains("constraint"));
}

TEST(DaemonErrors, CheckViolationNamesConstraintAndTable) {
  const RpcError e = error_from_database(
      "23514",
      "ERROR:  new row for relation \"medicines\" violates check constraint "
      "\"medicines_stock_check\"\nDETAIL:  Failing row contains (1, aspirin, -2, 3).\n");
  const json d = make_error(1, e)["error"]["data"];
  EXPECT_EQ(d["reason"], "constraint_violation");
  EXPECT_EQ(d["constraint"], "medicines_stock_check");
  EXPECT_EQ(d["table"], "medicines");
  EXPECT_EQ(e.code, kServerError);
}

TEST(DaemonErrors, VersionConflictKeyMayContainTheSeparators) {
  const RpcError e = error_from_database(
      "SG001",
      "ERROR:  version conflict on \"public.t\"\n"
      "DETAIL:  Table public.t, key {\"code\": \", key : expected version 1, current version 2\"}: "
      "expected version 5, current version 6.\n");
  EXPECT_EQ(e.fields["table"], "public.t");
  EXPECT_EQ(e.fields["key"], json({{"code", ", key : expected version 1, current version 2"}}));
  EXPECT_EQ(e.fields["expected_version"], 5);
  EXPECT_EQ(e.fields["current_version"], 6);
}

TEST(DaemonErrors, TruncatedOrHostileDetailsCostLinearTimeAndAddNothingWrong) {
  // A DETAIL cut short (no final '.') and one made of thousands of separators: no fields that
  // are wrong, and no super-linear matching (this finishes at once).
  std::string hostile = "Table t, key ";
  while (hostile.size() < 8000) hostile += ", key : expected version , current version ";
  for (const std::string& detail : {hostile, hostile + ".", std::string("Table t, key {")}) {
    const auto t0 = std::chrono::steady_clock::now();
    const RpcError e = error_from_database("SG001", "ERROR:  x\nDETAIL:  " + detail + "\n");
    const auto ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0)
            .count();
    EXPECT_LT(ms, 100);
    if (e.fields.contains("current_version")) {
      EXPECT_TRUE(e.fields["current_version"].is_string() ||
                  e.fields["current_version"].is_number());
    }
  }
  std::string rules = "Rule \"r\": the row overlaps ";
  while (rules.size() < 8000) rules += "{ during ";
  const RpcError o = error_from_database("23P01", "ERROR:  x\nDETAIL:  " + rules + "\n");
  EXPECT_EQ(o.fields["rule"], "r");
  EXPECT_FALSE(o.fields.contains("conflicting_key"));
}

// A database message that is not UTF-8 (a database in another encoding, a message cut inside a
// character) still gives the caller its error, with its id (found by tests/fuzz: the answer's
// dump threw, and the request got an id-less "internal error").
TEST(DaemonProtocol, AnswerLineReplacesBytesThatAreNotUtf8) {
  const RpcError e = error_from_database(
      "SG003",
      "ERROR:  holder \"Zo\xeb\" already has a booking for slot 7 (one_per_holder)\n"
      "DETAIL:  cut \xc3");
  const std::string line = answer_line(make_error(5, e));
  const json j = json::parse(line);
  EXPECT_EQ(j["id"], 5);
  EXPECT_EQ(j["error"]["data"]["reason"], "sold_out");
  EXPECT_EQ(j["error"]["data"]["holder"], "Zo\xef\xbf\xbd");
  EXPECT_EQ(j["error"]["data"]["detail"], "cut \xef\xbf\xbd");
  EXPECT_EQ(answer_line(json::array({make_result(1, json::object())})),
            R"([{"id":1,"jsonrpc":"2.0","result":{}}])");
}
