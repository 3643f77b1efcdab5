// Unit tests of daemon/protocol, daemon/methods and daemon/database_errors: JSON-RPC 2.0 requests,
// batches, ids and notifications; params checked and turned into parameterized SQL; database
// errors mapped to reasons and codes.
#include <gtest/gtest.h>

#include <chrono>
#include <stdexcept>

#include <string>
#include <vector>

#include "database_errors.hpp"
#include "methods.hpp"
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
  EXPECT_FALSE(o.fields.contains("conflicting_key"));
  EXPECT_FALSE(o.fields.contains("conflicting_period"));
}

namespace {

// nest returns n levels of open ... close around 0.
std::string nest(std::size_t n, const std::string& open, const std::string& close) {
  std::string out;
  out.reserve(n * (open.size() + close.size()) + 1);
  for (std::size_t i = 0; i < n; ++i) out += open;
  out += '0';
  for (std::size_t i = 0; i < n; ++i) out += close;
  return out;
}

}  // namespace

// 300,000 levels of nesting anywhere in a request (params, id, method, a batch, an unterminated
// line) are refused before a document is built, copied or written; a deep document overflowed the
// stack in the copy of params or of the id, and in dump().
TEST(DaemonProtocol, DeepNestingIsRefusedBeforeParsing) {
  const std::string deep = nest(300000, "[", "]");
  const std::string deep_object = nest(300000, "{\"a\":", "}");
  const std::vector<std::string> lines = {
      R"({"jsonrpc":"2.0","id":1,"method":"health","params":{"x":)" + deep + "}}",
      R"({"jsonrpc":"2.0","id":1,"method":"health","params":)" + deep_object + "}",
      R"({"jsonrpc":"2.0","id":)" + deep + R"(,"method":"health"})",
      R"({"jsonrpc":"2.0","id":1,"method":)" + deep + "}",
      deep,
      R"([{"jsonrpc":"2.0","id":1,"method":"health"},)" + deep + "]",
      std::string(300000, '['),
  };
  for (const auto& line : lines) {
    const Request r = parse_request(line);
    ASSERT_TRUE(r.error) << line.substr(0, 80);
    EXPECT_EQ(r.error->code, kInvalidRequest);
    EXPECT_EQ(r.error->reason, "invalid_params");
    EXPECT_NE(r.error->message.find("max_json_depth"), std::string::npos);
    EXPECT_TRUE(r.entries.empty());
    // The answer is written without recursion trouble, with a null id.
    EXPECT_NE(to_line(make_error(nullptr, *r.error)).find("\"id\":null"), std::string::npos);
    EXPECT_TRUE(request_id_of(line).is_null());
  }
}

TEST(DaemonProtocol, DepthLimitIsExactAndIgnoresStrings) {
  RequestLimits limits;
  limits.max_json_depth = 5;
  // {params {x [[[0]]]}}: 5 levels.
  const std::string at_limit =
      R"({"jsonrpc":"2.0","id":1,"method":"health","params":{"x":[[[0]]]}})";
  const Request ok = parse_request(at_limit, limits);
  ASSERT_FALSE(ok.error);
  ASSERT_TRUE(ok.entries[0].error);  // health takes no x: refused later, as invalid_params
  EXPECT_EQ(ok.entries[0].error->code, kInvalidParams);
  const std::string over = R"({"jsonrpc":"2.0","id":1,"method":"health","params":{"x":[[[[0]]]]}})";
  const Request bad = parse_request(over, limits);
  ASSERT_TRUE(bad.error);
  EXPECT_EQ(bad.error->code, kInvalidRequest);
  // Brackets in strings, escaped quotes included, are not nesting.
  const std::string in_string = R"({"jsonrpc":"2.0","id":"[[[[[[\"[[[[","method":"health"})";
  const Request s = parse_request(in_string, limits);
  ASSERT_FALSE(s.error);
  ASSERT_TRUE(s.entries[0].call);
  EXPECT_EQ(s.entries[0].call->id, "[[[[[[\"[[[[");
  EXPECT_EQ(scan_json(R"(["]]]]", {"a": [1, 2]}, 3])", 100).depth, 3u);
  EXPECT_EQ(request_id_of(in_string, 5), "[[[[[[\"[[[[");
}

TEST(DaemonProtocol, JsonbParametersWithinTheLimitAreKept) {
  // request (1) > params (2) > changes (3) > 61 levels: 64, the default limit.
  const std::string head =
      R"({"jsonrpc":"2.0","id":1,"method":"update_versioned","params":{"tbl":"t","key":1,)"
      R"("expected_version":1,"changes":{"doc":)";
  const Request r = parse_request(head + nest(61, "[", "]") + "}}}");
  ASSERT_FALSE(r.error) << r.error->message;
  ASSERT_TRUE(r.entries[0].call);
  ASSERT_TRUE(parse_request(head + nest(62, "[", "]") + "}}}").error);
}

// A batch longer than limits.max_batch is refused before it is parsed.
TEST(DaemonProtocol, BatchLengthIsBounded) {
  RequestLimits limits;
  limits.max_batch = 3;
  const std::string call = R"({"jsonrpc":"2.0","id":1,"method":"health"})";
  const Request three = parse_request("[" + call + "," + call + "," + call + "]", limits);
  ASSERT_FALSE(three.error);
  EXPECT_EQ(three.entries.size(), 3u);
  const Request four =
      parse_request("[" + call + "," + call + "," + call + ", " + call + "]", limits);
  ASSERT_TRUE(four.error);
  EXPECT_TRUE(four.batch);
  EXPECT_EQ(four.error->code, kInvalidRequest);
  EXPECT_EQ(four.error->reason, "invalid_params");
  EXPECT_NE(four.error->message.find("limits.max_batch = 3"), std::string::npos);
  // Commas inside the elements do not count.
  const std::string wide = R"({"jsonrpc":"2.0","id":"a,b,c,d","method":"health","params":{}})";
  EXPECT_FALSE(parse_request("[" + wide + "," + wide + "]", limits).error);
  // The default: 1000.
  std::string big = "[";
  for (int i = 0; i < 1001; ++i) big += (i ? "," : "") + call;
  big += "]";
  ASSERT_TRUE(parse_request(big).error);
  EXPECT_NE(parse_request(big).error->message.find("1001"), std::string::npos);
}

// Texts are cut at a character boundary, never inside a UTF-8 sequence.
TEST(DaemonProtocol, ClipUtf8KeepsWholeCharacters) {
  EXPECT_EQ(clip_utf8("short", 10), "short");
  EXPECT_EQ(clip_utf8("abcdefghij", 8), "abcde...");
  // "é" is 2 bytes, "€" 3, "😀" 4: every cut position leaves valid UTF-8 within the bound.
  const std::string text = "aé€😀bé€😀cé€😀";
  for (std::size_t max = 3; max <= text.size() + 1; ++max) {
    const std::string cut = clip_utf8(text, max);
    EXPECT_LE(cut.size(), max);
    // Valid UTF-8: nlohmann refuses to write anything else in strict mode.
    EXPECT_NO_THROW((void)json(cut).dump()) << max;
  }
  EXPECT_EQ(clip_utf8("\xe2\x82\xac\xe2\x82\xac", 5), "...");  // "€€" into 5 bytes
}

TEST(DaemonProtocol, LongDatabaseTextsAreClippedAtCharacters) {
  std::string detail;
  for (int i = 0; i < 5000; ++i) detail += "€";  // 15,000 bytes
  const RpcError e = error_from_database("SG003", "ERROR:  slot 1 is sold out\nDETAIL:  " + detail);
  EXPECT_LE(e.detail.size(), kMaxErrorText);
  EXPECT_EQ(e.detail.substr(e.detail.size() - 3), "...");
  EXPECT_NO_THROW((void)to_line(make_error(1, e)));
  EXPECT_NO_THROW((void)json(e.detail).dump());
}

TEST(DaemonProtocol, InvalidUtf8AndNulBytes) {
  // A database in SQL_ASCII may hand back bytes that are not UTF-8: the answer replaces them
  // (U+FFFD) instead of failing.
  RpcError e;
  e.message = "holder \xff\xfe is bad";
  EXPECT_NE(to_line(make_error(1, e)).find("\xef\xbf\xbd"), std::string::npos);
  // Requests that are not UTF-8, or hold NUL bytes, are parse errors.
  EXPECT_EQ(
      parse_request("{\"jsonrpc\":\"2.0\",\"id\":\"\xff\",\"method\":\"health\"}").error->code,
      kParseError);
  const std::string nul_in_string("{\"jsonrpc\":\"2.0\",\"id\":\"a\0b\",\"method\":\"health\"}",
                                  46);
  ASSERT_TRUE(parse_request(nul_in_string).error);
  EXPECT_EQ(parse_request(nul_in_string).error->code, kParseError);
  const std::string nul_after("{\"jsonrpc\":\"2.0\"}\0", 18);
  ASSERT_TRUE(parse_request(nul_after).error);
  EXPECT_EQ(parse_request(nul_after).error->code, kParseError);
  // An unknown method of any length is echoed in whole characters, bounded.
  const std::string name(100000, 'x');
  const Request r = parse_request(R"({"jsonrpc":"2.0","id":1,"method":")" + name + "\"}");
  ASSERT_TRUE(r.entries[0].error);
  EXPECT_LT(r.entries[0].error->message.size(), 200u);
}

TEST(DaemonProtocol, DeepResultsAreRefusedNotWritten) {
  EXPECT_EQ(parse_result(nest(100, "[", "]")).dump().size(), 201u);
  EXPECT_THROW((void)parse_result(nest(kMaxResultDepth + 1, "[", "]")), std::length_error);
  EXPECT_THROW((void)parse_result(nest(300000, "{\"a\":", "}")), std::length_error);
  EXPECT_THROW((void)parse_result("{not json"), json::parse_error);
}

TEST(DaemonProtocol, ResultLinePassesTheDatabasesJsonThrough) {
  // jsonb's own text: blanks between tokens, none inside strings touched; the same answer as
  // parsing it and writing it again, member order aside.
  const std::string text =
      R"({"id": 17, "seats": 2, "holder": "ann  \"x\" \\ ,: ", "status": "pending", )"
      R"("labels": ["A1", "A2"], "expires_at": null, "n": -1.50e3, "ok": true, "é": "€"})";
  const auto line = result_line(json("r-1"), text);
  ASSERT_TRUE(line);
  EXPECT_EQ(
      *line,
      R"({"id":"r-1","jsonrpc":"2.0","result":{"id":17,"seats":2,"holder":"ann  \"x\" \\ ,: ",)"
      R"("status":"pending","labels":["A1","A2"],"expires_at":null,"n":-1.50e3,"ok":true,)"
      R"("é":"€"}})");
  EXPECT_EQ(json::parse(*line), json::parse(to_line(make_result("r-1", parse_result(text)))));
  EXPECT_EQ(*result_line(json(7), "42"), R"({"id":7,"jsonrpc":"2.0","result":42})");
  EXPECT_EQ(*result_line(json(nullptr), "[]"), R"({"id":null,"jsonrpc":"2.0","result":[]})");
  // What cannot go in as it is: too deep, or not UTF-8 (a database in SQL_ASCII).
  EXPECT_FALSE(result_line(
      json(1), std::string(kMaxResultDepth + 1, '[') + std::string(kMaxResultDepth + 1, ']')));
  EXPECT_TRUE(
      result_line(json(1), std::string(kMaxResultDepth, '[') + std::string(kMaxResultDepth, ']')));
  EXPECT_FALSE(result_line(json(1), "\"\xff\""));
  EXPECT_FALSE(result_line(json(1), "\"\xc0\xaf\""));          // overlong
  EXPECT_FALSE(result_line(json(1), "\"\xed\xa0\x80\""));      // a surrogate
  EXPECT_FALSE(result_line(json(1), "\"\xf4\x90\x80\x80\""));  // past U+10FFFF
  EXPECT_FALSE(result_line(json(1), "\"\xe2\x82\""));          // cut short
  EXPECT_TRUE(result_line(json(1), "\"\xf0\x9f\x98\x80\""));
}
