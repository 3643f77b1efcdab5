// request_fuzzer: libFuzzer target for slotguardd's way from a received line to its answer: the
// line is parsed (parse_request) and answered by the dispatcher (Dispatcher::execute, or
// Dispatcher::execute_all on a database that pipelines, as a worker's turn runs it) on a fake
// database, so that every dispatch path (single calls, batches, pipelines, retries, lost
// connections, errors mapped to reasons) runs without PostgreSQL.
//
// Input: the request line as the daemon receives it (without its newline), then, optionally, a
// newline and a script. The script's first byte says whether the fake pipelines; then it decides,
// one database operation at a time, what the fake does:
// a plausible result, NULL, a text of the script's choosing as the result, a database error (one
// of the SQLSTATEs slotguard and PostgreSQL raise, with a realistic or arbitrary message), a lost
// connection, a deadlock, a COMMIT in doubt, ... Once the script is used up every operation
// succeeds; an input without a script is a request on a healthy database.
//
// Besides the sanitizers' checks, an input fails when: an exception escapes; the answer is not one
// JSON line (or is missing for a request that is not all notifications); a single answer is not a
// JSON-RPC 2.0 response with the request's id, or a batch's is not an array of one response per
// call; a statement has other placeholders than the values bound to it, or text outside the fixed
// SQL vocabulary (values are bound, never pasted); one statement name is prepared with two texts;
// a request is sent again after its outcome became unknown (a COMMIT in doubt; a call that is not
// safe to repeat, lost in autocommit). And for a line that is valid JSON: scan_json, which guards
// the parser against deep nesting, must see the depth (and a batch's length) that a real parser
// sees; request_id_of (the id for a peer that may not be served) must give a usable id.
#include <fuzzer/FuzzedDataProvider.h>
#include <sanitizer/common_interface_defs.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <optional>
#include <pqxx/except>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include "log.hpp"
#include "daemon_state.hpp"
#include "dispatcher.hpp"
#include "protocol.hpp"

namespace {

using sg::daemon::json;

// violated reports a broken check where the sanitizers report (libFuzzer's -close_fd_mask=2
// silences the daemon's own log on stderr, not that) and fails the input.
[[noreturn]] void violated(const std::string& what) {
  __sanitizer_report_error_summary(("request_fuzzer: " + what).c_str());
  std::abort();
}

// Canned database errors: SQLSTATE and the text libpq reports (message, DETAIL, HINT), as
// slotguard and PostgreSQL write them (docs/errors.md).
struct CannedError {
  const char* sqlstate;
  const char* message;
};
constexpr CannedError kErrors[] = {
    {"SG001",
     "ERROR:  version conflict on public.appointment\nDETAIL:  Table public.appointment, key "
     "{\"id\": 7}: expected version 5, current version 6.\nHINT:  Read the row again."},
    {"SG001",
     "ERROR:  version required\nDETAIL:  Table public.t, key {\"id\": 1}: current version "
     "00000000-0000-0000-0000-000000000001; the table requires every UPDATE to name it."},
    {"SG002", "ERROR:  booking 999 does not exist"},
    {"SG003", "ERROR:  slot 3 is sold out\nDETAIL:  2 of 2 seats are taken."},
    {"SG003", "ERROR:  holder \"ann\" already has a booking for slot 7 (one_per_holder)"},
    {"SG004", "ERROR:  the hold of booking 4 expired"},
    {"SG005",
     "ERROR:  invalid transition\nDETAIL:  status may not change from \"cancelled\" to "
     "\"confirmed\"."},
    {"23P01",
     "ERROR:  conflicting row\nDETAIL:  Rule \"room_busy\": the row overlaps {\"id\": 12} during "
     "[\"2030-01-01 10:00:00+00\",\"2030-01-01 11:00:00+00\")."},
    {"23P01",
     "ERROR:  too many rows\nDETAIL:  Rule \"lanes\" allows 3 at once; among them {\"id\": [1, "
     "2]} during [1,5)."},
    {"23514",
     "ERROR:  new row for relation \"medicines\" violates check constraint "
     "\"medicines_stock_check\"\nDETAIL:  Failing row contains (1, -1)."},
    {"23505",
     "ERROR:  duplicate key value violates unique constraint \"t_pkey\"\nDETAIL:  Key (id)=(1) "
     "already exists."},
    {"22023", "ERROR:  capacity must be positive\nHINT:  Pass 1 or more."},
    {"22P02", "ERROR:  invalid input syntax for type uuid: \"x\"\nLINE 1: SELECT $1::uuid"},
    {"42501", "ERROR:  permission denied for function reserve"},
    {"42602", "ERROR:  invalid name syntax"},
    {"42P01", "ERROR:  relation \"nope\" does not exist\nLINE 1: ...\n              ^"},
    {"42703", "ERROR:  column \"x\" does not exist\nQUERY:  SELECT x\nCONTEXT:  PL/pgSQL"},
    {"40001", "ERROR:  could not serialize access due to concurrent update"},
    {"40P01", "ERROR:  deadlock detected\nDETAIL:  Process 1 waits for ShareLock."},
    {"57P01", "FATAL:  terminating connection due to administrator command"},
    {"57014", "ERROR:  canceling statement due to statement timeout"},
    {"08006", "server closed the connection unexpectedly"},
    {"XX001", "ERROR:  boom\nCONTEXT:  PL/pgSQL function gadget_boom()"},
    {"P0001", "ERROR:  raised by a trigger"},
    {"", "ERROR:  no SQLSTATE"},
};

// canned_result is a plausible result of a statement (what to_jsonb would make of it).
std::string canned_result(const std::string& sql, FuzzedDataProvider& script) {
  if (sql == "SELECT 1") return "1";
  if (sql.find("slotguard.stats") != std::string::npos)
    return R"([{"slot_id": 1, "reserved": 3, "sold_out": 1, "conflicts": 0}])";
  auto calls = [&](const char* fn) {
    return sql.find(std::string("slotguard.") + fn + "(") != std::string::npos;
  };
  if (calls("reserve") || calls("reserve_seats") || calls("confirm") || calls("cancel") ||
      calls("booking")) {
    static const char* const kStatus[] = {"pending", "confirmed", "cancelled", "expired"};
    const char* status = kStatus[script.ConsumeIntegralInRange<int>(0, 3)];
    return std::string(R"({"id": 12, "slot_id": 3, "holder": "ann", "seats": 1, "status": ")") +
           status +
           R"(", "seat_labels": null, "expires_at": "2030-01-01T10:00:00+00:00", )"
           R"("idempotency_key": null})";
  }
  if (calls("availability"))
    return R"({"slot_id": 3, "capacity": 10, "confirmed": 2, "pending": 1, "free": 7})";
  if (calls("find_conflicts"))
    return R"j([{"rule_name": "one_per_room", "conflicting_key": {"id": 1}, "period": "[1,2)"}])j";
  if (calls("update_versioned")) return R"({"id": 1, "version": 2})";
  if (calls("create_slot")) return "7";
  if (calls("expire_holds")) return "0";
  return "null";
}

// FakeDatabase answers as the script says (see the head comment) and checks the statements.
class FakeDatabase final : public sg::daemon::Database {
 public:
  // once: the request is one call that is not safe to run twice (retry_safe): once the server
  // may have run it, it must not be sent again.
  FakeDatabase(FuzzedDataProvider& script, bool once)
      : script_(script), once_(once), pipelines_(script.ConsumeBool()) {}

  bool ensure(std::string& why) override {
    if (open_) return true;
    if (script_.ConsumeIntegralInRange<int>(0, 7) == 7) {
      why = "could not connect to server: " + script_.ConsumeRandomLengthString(64);
      return false;
    }
    open_ = true;
    prepared_.clear();
    return true;
  }
  void drop() override {
    open_ = false;
    prepared_.clear();
  }
  bool open() const override { return open_; }
  bool closed_by_server() override {
    if (!open_) violated("closed_by_server() asked without a connection");
    return script_.ConsumeIntegralInRange<int>(0, 7) == 7;
  }
  std::unique_ptr<Transaction> begin(bool autocommit) override {
    if (!open_) violated("a transaction begun without a connection");
    if (unknown_) violated("a request whose outcome is unknown was sent again");
    return std::make_unique<FakeTransaction>(*this, autocommit);
  }
  bool pipelines() const override { return pipelines_; }
  // run_pipeline: each statement as the script says, as libpq's pipeline reports it (the
  // database's results are JSON there: they go into the answer as they are).
  void run_pipeline(const std::vector<sg::daemon::PipelinedStatement>& sts,
                    const OutcomeSink& sink) override {
    using Kind = sg::daemon::PipelinedOutcome::Kind;
    if (!open_) violated("a pipeline without a connection");
    if (unknown_) violated("a request whose outcome is unknown was sent again");
    bool gone = false;
    for (std::size_t i = 0; i < sts.size(); ++i) {
      sg::daemon::PipelinedOutcome o;
      o.kind = Kind::kLost;
      o.text = "server closed the connection unexpectedly";
      if (!gone) {
        check(*sts[i].name, *sts[i].sql, *sts[i].values);
        in_pipeline_ = true;
        try {
          const auto v = answer(*sts[i].sql, Kind2::kAutocommit);
          o.kind = v ? Kind::kValue : Kind::kNull;
          if (v) o.text = *v;
        } catch (const pqxx::sql_error& e) {
          o = {Kind::kError, e.what(), sg::daemon::sqlstate_of(e)};
        } catch (const pqxx::deadlock_detected& e) {
          o = {Kind::kError, e.what(), "40P01"};
        } catch (const pqxx::serialization_failure& e) {
          o = {Kind::kError, e.what(), "40001"};
        } catch (const std::exception& e) {
          if (open_) o = {Kind::kError, e.what(), ""};
        }
        in_pipeline_ = false;
        gone = !open_;
      }
      sink(i, o);
    }
  }

 private:
  class FakeTransaction final : public Transaction {
   public:
    FakeTransaction(FakeDatabase& db, bool autocommit) : db_(db), autocommit_(autocommit) {}
    std::optional<std::string> run(const std::string& name, const std::string& sql,
                                   const std::vector<std::string>& values) override {
      if (done_) violated("a statement after COMMIT");
      db_.check(name, sql, values);
      return db_.answer(sql, autocommit_ ? Kind::kAutocommit : Kind::kInTransaction);
    }
    void commit() override {
      if (done_) violated("COMMIT twice");
      done_ = true;
      if (!autocommit_) db_.answer("COMMIT", Kind::kCommit);
    }

   private:
    FakeDatabase& db_;
    bool autocommit_;
    bool done_ = false;
  };

  void check(const std::string& name, const std::string& sql,
             const std::vector<std::string>& values) {
    if (!open_) violated("a statement without a connection");
    // Only the fixed vocabulary of the statements the daemon builds: method and parameter names,
    // casts, placeholders. A request's values never get here.
    for (unsigned char ch : sql) {
      if (!(std::isalnum(ch) || std::string_view(" _.,()$:=>'[]").find(static_cast<char>(ch)) !=
                                    std::string_view::npos))
        violated("unexpected character in a statement: " + sql);
    }
    std::set<unsigned long> placeholders;
    for (std::size_t i = sql.find('$'); i != std::string::npos; i = sql.find('$', i + 1)) {
      std::size_t end = i + 1;
      while (end < sql.size() && std::isdigit(static_cast<unsigned char>(sql[end]))) ++end;
      if (end == i + 1) violated("a '$' without a number: " + sql);
      placeholders.insert(std::stoul(sql.substr(i + 1, end - i - 1)));
    }
    if (placeholders.size() != values.size() ||
        (!placeholders.empty() &&
         (*placeholders.begin() != 1 || *placeholders.rbegin() != values.size())))
      violated("statement " + name + " has " + std::to_string(placeholders.size()) +
               " placeholders for " + std::to_string(values.size()) + " values: " + sql);
    if (name.empty()) {
      if (!values.empty()) violated("values for an unnamed statement");
      return;
    }
    auto [it, fresh] = prepared_.emplace(name, sql);
    if (!fresh && it->second != sql)
      violated("statement " + name + " prepared as\n  " + it->second + "\nand as\n  " + sql);
  }

  enum class Kind { kAutocommit, kInTransaction, kCommit };
  using Kind2 = Kind;

  // lost is what libpq and libpqxx do when the connection goes while a statement runs: a COMMIT's
  // outcome is then in doubt; a statement in autocommit may or may not have run; one inside a
  // transaction was rolled back with it.
  void lost(Kind kind, const std::string& sql) {
    open_ = false;
    if (kind == Kind::kCommit) {
      unknown_ = true;
      throw pqxx::in_doubt_error("connection lost during COMMIT");
    }
    if (kind == Kind::kAutocommit && once_ && sql != "SELECT 1") unknown_ = true;
  }

  // answer is what the script says a statement (or COMMIT) does.
  std::optional<std::string> answer(const std::string& sql, Kind kind) {
    const bool commit = kind == Kind::kCommit;
    const int what = script_.ConsumeIntegralInRange<int>(0, 15);
    switch (what) {
      case 0:
      case 1:
      case 2:
      case 3:
      case 4:
        if (commit) return std::nullopt;
        return canned_result(sql, script_);
      case 5:
        return std::nullopt;  // no row, or NULL
      case 6:
        // In a pipeline the text goes into the answer as it is: the database writes JSON there
        // (a string, its bytes perhaps not UTF-8, or deeply nested arrays).
        if (in_pipeline_) return json_text(script_.ConsumeRandomLengthString(4096));
        return script_.ConsumeRandomLengthString(4096);
      case 7:
      case 8: {
        const CannedError& e =
            kErrors[script_.ConsumeIntegralInRange<std::size_t>(0, std::size(kErrors) - 1)];
        throw_sql_error(e.sqlstate, e.message, sql, kind);
      }
      case 9: {
        const CannedError& e =
            kErrors[script_.ConsumeIntegralInRange<std::size_t>(0, std::size(kErrors) - 1)];
        throw_sql_error(e.sqlstate, script_.ConsumeRandomLengthString(4096), sql, kind);
      }
      case 10:
        lost(kind, sql);
        throw pqxx::broken_connection("server closed the connection unexpectedly");
      case 11:
        throw pqxx::deadlock_detected("deadlock detected");
      case 12:
        throw pqxx::serialization_failure("could not serialize access");
      case 13:
        lost(kind, sql);
        throw pqxx::statement_completion_unknown("connection lost; outcome unknown");
      case 14:
        throw pqxx::insufficient_privilege("ERROR:  permission denied for table t", sql);
      default:
        throw std::runtime_error("libpqxx: " + script_.ConsumeRandomLengthString(64));
    }
  }

  [[noreturn]] void throw_sql_error(const std::string& state, const std::string& message,
                                    const std::string& sql, Kind kind) {
    if (state.rfind("08", 0) == 0) lost(kind, sql);
    throw pqxx::sql_error(message, sql, state.empty() ? nullptr : state.c_str());
  }

  // json_text: JSON as jsonb writes it, from raw bytes: a string literal, or (a leading '[')
  // arrays nested as deep as the bytes are long.
  static std::string json_text(const std::string& raw) {
    if (!raw.empty() && raw[0] == '[')
      return std::string(raw.size() * 8, '[') + std::string(raw.size() * 8, ']');
    std::string out = "\"";
    for (unsigned char ch : raw) {
      if (ch == '"' || ch == '\\') {
        out += '\\';
        out += static_cast<char>(ch);
      } else if (ch < 0x20) {
        char buf[8];
        std::snprintf(buf, sizeof buf, "\\u%04x", ch);
        out += buf;
      } else {
        out += static_cast<char>(ch);
      }
    }
    return out + "\"";
  }

  FuzzedDataProvider& script_;
  const bool once_;
  const bool pipelines_;
  bool in_pipeline_ = false;
  bool unknown_ = false;  // the request may have run, and must not be sent again
  bool open_ = false;
  std::map<std::string, std::string> prepared_;
};

sg::daemon::DaemonState& daemon_state() {
  static sg::daemon::DaemonState* s = [] {
    sg::daemon::log::set_level(sg::daemon::LogLevel::error);
    auto config = std::make_shared<sg::daemon::Config>();
    config->retry.max_attempts = 3;
    config->retry.base_delay_ms = 0;  // retries without sleeping
    config->retry.max_delay_ms = 0;
    return new sg::daemon::DaemonState(config);
  }();
  return *s;
}

// Shape is what a SAX parse (iterative, no document built) finds: the deepest nesting and, for an
// array, the number of its elements.
class Shape final : public nlohmann::json_sax<json> {
 public:
  std::size_t depth = 0;
  std::size_t max_depth = 0;
  bool array = false;
  std::size_t elements = 0;

  bool null() override { return value(); }
  bool boolean(bool) override { return value(); }
  bool number_integer(number_integer_t) override { return value(); }
  bool number_unsigned(number_unsigned_t) override { return value(); }
  bool number_float(number_float_t, const string_t&) override { return value(); }
  bool string(string_t&) override { return value(); }
  bool binary(binary_t&) override { return value(); }
  bool start_object(std::size_t) override { return open(false); }
  bool key(string_t&) override { return true; }
  bool end_object() override { return close(); }
  bool start_array(std::size_t) override { return open(true); }
  bool end_array() override { return close(); }
  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception&) override {
    return false;
  }

 private:
  bool value() {
    if (depth == 1 && array) ++elements;
    return true;
  }
  bool open(bool is_array) {
    value();
    if (depth == 0) array = is_array;
    max_depth = std::max(max_depth, ++depth);
    return true;
  }
  bool close() {
    --depth;
    return true;
  }
};

void check_scan(const std::string& line) {
  // The parser takes a NUL byte for the end of the text; parse_request refuses such lines.
  if (line.find('\0') != std::string::npos) return;
  Shape sax;
  if (!json::sax_parse(line, &sax, json::input_format_t::json, true)) return;
  const sg::daemon::JsonShape scan = sg::daemon::scan_json(line, ~std::size_t{0});
  if (scan.depth != sax.max_depth)
    violated("scan_json sees depth " + std::to_string(scan.depth) + ", the parser " +
             std::to_string(sax.max_depth));
  if (scan.array != sax.array || (sax.elements > 0 && scan.elements != sax.elements))
    violated("scan_json sees " + std::to_string(scan.elements) + " elements, the parser " +
             std::to_string(sax.elements));
  const json id = sg::daemon::request_id_of(line);
  if (!id.is_null() && !id.is_string() && !id.is_number())
    violated("request_id_of gave " + id.dump());
}

// check_response: one JSON-RPC 2.0 response object carrying id.
void check_response(const json& r, const json* id) {
  if (!r.is_object() || r.value("jsonrpc", "") != "2.0" || !r.contains("id") ||
      (r.contains("result") == r.contains("error")))
    violated("not a JSON-RPC response: " + r.dump());
  if (id != nullptr && r["id"] != *id)
    violated("the response's id is " + r["id"].dump() + ", the request's " + id->dump());
  if (r.contains("error")) {
    const json& e = r["error"];
    if (!e.is_object() || !e.contains("code") || !e["code"].is_number_integer() ||
        !e.contains("message") || !e["message"].is_string() || !e.contains("data") ||
        !e["data"].is_object() || !e["data"].contains("reason"))
      violated("not a JSON-RPC error: " + r.dump());
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string input(reinterpret_cast<const char*>(data), size);
  const std::size_t newline = input.find('\n');
  const std::string line = input.substr(0, newline);
  const std::string script_bytes = newline == std::string::npos ? "" : input.substr(newline + 1);
  FuzzedDataProvider script(reinterpret_cast<const std::uint8_t*>(script_bytes.data()),
                            script_bytes.size());

  sg::daemon::DaemonState& s = daemon_state();
  s.circuit.mark_up();  // every input starts with the database reachable
  check_scan(line);
  sg::daemon::Job job;
  job.uid = 1000;
  job.request = sg::daemon::parse_request(line);
  const bool once = !job.request.batch && job.request.entries.size() == 1 &&
                    job.request.entries[0].call &&
                    !sg::daemon::retry_safe(*job.request.entries[0].call);
  auto fake = std::make_unique<FakeDatabase>(script, once);
  const bool dispatcher_pipelines = fake->pipelines();
  sg::daemon::Dispatcher dispatcher(s, std::move(fake));
  const std::size_t entries = job.request.entries.size();
  std::size_t expected = 0;  // answers: one per entry that is not a notification
  for (const auto& e : job.request.entries) expected += e.notification ? 0 : 1;
  const bool batch = job.request.batch;
  const bool whole_error = job.request.error.has_value();
  std::optional<json> single_id;
  if (!batch && entries == 1 && !job.request.entries[0].notification)
    single_id = job.request.entries[0].id;

  std::string answer;
  if (dispatcher_pipelines) {
    // As a worker's turn runs it: each job is handed back once, answered.
    std::vector<sg::daemon::Job> jobs;
    jobs.push_back(std::move(job));
    int handed = 0;
    dispatcher.execute_all(jobs, [&](sg::daemon::Job& j) {
      if (!j.answered || &j != &jobs[0]) violated("a job handed back unanswered or twice");
      ++handed;
    });
    if (handed != 1) violated("the job was handed back " + std::to_string(handed) + " times");
    job = std::move(jobs[0]);
    answer = job.answer;
  } else {
    answer = dispatcher.execute(job);
  }

  if (answer.empty()) {
    if (whole_error || expected > 0) violated("no answer to: " + line);
    return 0;
  }
  if (answer.find('\n') != std::string::npos) violated("a newline inside the answer: " + answer);
  const json a = json::parse(answer, nullptr, false);
  if (a.is_discarded()) violated("the answer is not JSON: " + answer);
  if (whole_error || !batch) {
    check_response(a, whole_error || !single_id ? nullptr : &*single_id);
    if (!whole_error && expected == 0) violated("an answer to a notification: " + answer);
    return 0;
  }
  if (!a.is_array() || a.size() != expected)
    violated("a batch of " + std::to_string(expected) + " calls answered by " + answer);
  std::size_t k = 0;
  for (const auto& e : job.request.entries) {
    if (e.notification) continue;
    check_response(a[k++], &e.id);
  }
  return 0;
}
