// sg_random_api: calls every SQL function of slotguard thousands of times with generated
// arguments — NULLs in every position, wrong and extreme values, huge arrays, deep jsonb, names
// that need quoting — on tables that are altered after slotguard was enabled on them (column types
// changed, columns dropped and renamed, partitions attached and detached, inheritance children)
// and with slotguard's trigger functions attached by hand with arguments of our choosing. Half of
// the calls run as a plain role.
//
// Pass: every statement returns a result or an error with a SQLSTATE; none loses its connection
// (a backend crash), none ignores a cancel, and none fails with XX000 (internal_error) or a 58xxx
// (system error). The caller (tests/integration/random_api.sh) also checks the server log.
//
// The function list and their argument types come from pg_proc, so new functions and parameters
// are called too. Arguments never depend on what the server answered, so a seed replays the same
// statements: --seed N. Every statement is written to --log with the role that ran it.
//
//   sg_random_api [--seed N] [--calls N] [--seconds S] [--log FILE] [--db NAME]
//   (libpq's PGHOST / PGPORT select the cluster; it connects as postgres, a superuser)
#include <libpq-fe.h>
#include <poll.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <algorithm>
#include <cinttypes>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <functional>
#include <map>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

// ---- deterministic random numbers (splitmix64: the same sequence on every platform) ---------

struct Rng {
  uint64_t s;
  uint64_t next() {
    uint64_t z = (s += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
  }
  uint64_t below(uint64_t n) { return n == 0 ? 0 : next() % n; }
  int range(int lo, int hi) {
    return lo + static_cast<int>(below(static_cast<uint64_t>(hi - lo + 1)));
  }
  bool pct(int p) { return static_cast<int>(below(100)) < p; }
  template <class T>
  const T& pick(const std::vector<T>& v) {
    return v[below(v.size())];
  }
};

std::string ident(const std::string& s) {  // always quoted: valid for every name
  std::string out = "\"";
  for (char c : s) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + "\"";
}

std::string lit(const std::string& s) {
  std::string out = "'";
  for (char c : s) {
    if (c == '\'') out += '\'';
    out += c;
  }
  return out + "'";
}

std::string join(const std::vector<std::string>& v, const char* sep) {
  std::string out;
  for (std::size_t i = 0; i < v.size(); i++) out += (i ? sep : "") + v[i];
  return out;
}

// ---- the fixture database's objects ----------------------------------------------------------

const char* const kAppRole = "sg_random_app";      // a plain role with USAGE on slotguard
const char* const kOtherRole = "sg_random_other";  // a plain role with nothing

enum class Kind { kPlain, kPartitioned, kPartition, kInheritParent, kInheritChild, kView };

struct Table {
  std::string schema, name;
  Kind kind;
  bool app_owned;
  std::string parent;  // partitions and inheritance children: the parent's qualified name
  std::string q() const { return ident(schema) + "." + ident(name); }
};

// Names that need quoting: spaces, quotes, mixed case, unicode, 63 bytes.
const std::string k63 = "t63_" + std::string(59, 'x');
const std::string kCol63 = "c63_" + std::string(59, 'y');

std::vector<Table> tables() {
  return {
      {"public", "plain", Kind::kPlain, false, ""},
      {"public", "Mixed Case", Kind::kPlain, false, ""},
      {"Fuzz Schema", "with \"quote\" and space", Kind::kPlain, true, ""},
      {"public", "ünïcødé_表", Kind::kPlain, true, ""},
      {"public", k63, Kind::kPlain, true, ""},
      {"public", "app t", Kind::kPlain, true, ""},
      {"public", "part", Kind::kPartitioned, false, ""},
      {"public", "part_1", Kind::kPartition, false, "public.part"},
      {"public", "part_2", Kind::kPartition, false, "public.part"},
      {"public", "Part App", Kind::kPartitioned, true, ""},
      {"public", "Part App 1", Kind::kPartition, true, "public.\"Part App\""},
      {"public", "inh_parent", Kind::kInheritParent, true, ""},
      {"public", "inh_child", Kind::kInheritChild, true, "public.inh_parent"},
      {"public", "a view", Kind::kView, false, "public.plain"},
  };
}

// Columns every table starts with (some left out at random), by raw name.
const std::vector<std::string> kColumns = {
    "id",   "room",    "status",     "starts_at",  "ends_at",    "during",    "amount",
    "f8",   "version", "created_at", "updated_at", "deleted_at", "Mixed Col", "sp ace",
    "q\"c", kCol63,    "day",        "t_from",     "t_to",       "n_from",    "n_to"};

// Values as untyped literals: PostgreSQL gives them the column's type, whatever it is now.
const std::vector<std::string> kValues = {"NULL",
                                          "'1'",
                                          "'2'",
                                          "'3'",
                                          "'0'",
                                          "'-1'",
                                          "'2147483647'",
                                          "'x'",
                                          "'new'",
                                          "'done'",
                                          "'cancelled'",
                                          "'2030-01-01 10:00+00'",
                                          "'2030-01-01 11:00+00'",
                                          "'2030-01-01 10:30+00'",
                                          "'infinity'",
                                          "'-infinity'",
                                          "'NaN'",
                                          "'[2030-01-01 10:00+00,2030-01-01 11:00+00)'",
                                          "'(2030-01-01 10:00+00,2030-01-01 12:00+00]'",
                                          "'empty'",
                                          "'(,)'",
                                          "'[1,5)'",
                                          "'(1,5)'",
                                          "'1e300'",
                                          "'00000000-0000-0000-0000-000000000000'",
                                          "''",
                                          "'2030-01-01'",
                                          "'10:00'",
                                          "'11:00'",
                                          "'1.5'",
                                          "'9223372036854775807'"};

// ---- one connection ----------------------------------------------------------------------------

struct Outcome {
  std::string sqlstate;  // "00000" for success
  std::string message;
  bool lost = false;  // the connection broke: a backend crash (or a FATAL)
  bool hung = false;  // ignored a cancel
};

struct Conn {
  std::string user;
  PGconn* pg = nullptr;
  int pid = 0;
};

void ignore_notice(void*, const PGresult*) {}

std::string g_db = "sg_random";

bool connect(Conn& c, int tries) {
  if (c.pg) PQfinish(c.pg);
  c.pg = nullptr;
  const std::string info = "dbname=" + g_db + " user=" + c.user + " application_name=sg_random";
  for (int i = 0; i < tries; i++) {
    c.pg = PQconnectdb(info.c_str());
    if (PQstatus(c.pg) == CONNECTION_OK) break;
    PQfinish(c.pg);
    c.pg = nullptr;
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
  }
  if (!c.pg) return false;
  PQsetNoticeReceiver(c.pg, ignore_notice, nullptr);
  c.pid = PQbackendPID(c.pg);
  PGresult* r = PQexec(c.pg,
                       "SET statement_timeout = '5s'; SET lock_timeout = '2s'; "
                       "SET idle_in_transaction_session_timeout = '60s'");
  PQclear(r);
  return true;
}

// run executes sql (with statement_timeout = timeout seconds); a cancel follows after three times
// that, and after eight times the backend is killed.
Outcome run(Conn& c, const std::string& sql, int timeout = 5) {
  Outcome o;
  o.sqlstate = "00000";
  if (!c.pg || PQstatus(c.pg) != CONNECTION_OK) {
    o.lost = true;
    o.sqlstate = "conn";
    o.message = "no connection";
    return o;
  }
  const std::string text = timeout == 5 ? sql
                                        : "SET statement_timeout = '" + std::to_string(timeout) +
                                              "s'; " + sql + "; RESET statement_timeout";
  if (!PQsendQuery(c.pg, text.c_str())) {
    o.lost = true;
    o.sqlstate = "conn";
    o.message = PQerrorMessage(c.pg);
    return o;
  }
  const auto start = Clock::now();
  bool cancelled = false, killed = false;
  while (PQisBusy(c.pg)) {
    pollfd p{PQsocket(c.pg), POLLIN, 0};
    poll(&p, 1, 200);
    if (!PQconsumeInput(c.pg)) break;
    const auto waited = std::chrono::duration_cast<std::chrono::seconds>(Clock::now() - start);
    if (!cancelled && waited.count() >= 3 * timeout) {
      if (PGcancel* k = PQgetCancel(c.pg)) {
        char err[256];
        PQcancel(k, err, sizeof err);
        PQfreeCancel(k);
      }
      cancelled = true;
    }
    if (!killed && waited.count() >= 8 * timeout) {
      // The backend ignored the cancel (no CHECK_FOR_INTERRUPTS in a loop). Kill it: this is a
      // throwaway cluster, and the report names the statement.
      o.hung = true;
      if (kill(c.pid, SIGKILL) != 0)
        std::fprintf(stderr, "could not kill backend %d: %s\n", c.pid, std::strerror(errno));
      killed = true;
    }
  }
  while (PGresult* r = PQgetResult(c.pg)) {
    if (PQresultStatus(r) == PGRES_FATAL_ERROR) {
      const char* state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
      if (o.sqlstate == "00000") {
        o.sqlstate = state ? state : "conn";
        o.message = PQresultErrorMessage(r);
      }
    } else if (PQresultStatus(r) == PGRES_COPY_IN) {
      PQputCopyEnd(c.pg, "no copy here");
    }
    PQclear(r);
  }
  if (PQstatus(c.pg) != CONNECTION_OK) {
    o.lost = true;
    if (o.sqlstate == "00000" || o.sqlstate == "conn") {
      o.sqlstate = "conn";
      if (o.message.empty()) o.message = PQerrorMessage(c.pg);
    }
    return o;
  }
  if (PQtransactionStatus(c.pg) != PQTRANS_IDLE) PQclear(PQexec(c.pg, "ROLLBACK"));
  return o;
}

// ---- the functions of schema slotguard, from pg_proc -------------------------------------------

struct Function {
  std::string name;
  std::vector<std::string> types;  // input argument types (format_type)
  std::vector<std::string> names;  // input argument names ("" when unnamed)
  int ndefaults = 0;
  bool trigger = false;  // returns trigger or event_trigger
};

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  if (s.empty()) return out;
  std::size_t from = 0;
  while (true) {
    const std::size_t at = s.find(sep, from);
    out.push_back(s.substr(from, at == std::string::npos ? std::string::npos : at - from));
    if (at == std::string::npos) break;
    from = at + 1;
  }
  return out;
}

std::vector<Function> load_functions(PGconn* pg) {
  PGresult* r = PQexec(
      pg,
      "SELECT p.proname, p.pronargdefaults, "
      "       p.prorettype IN ('trigger'::regtype, 'event_trigger'::regtype), "
      "       coalesce((SELECT string_agg(format_type(t, NULL), '|' ORDER BY o) "
      "                   FROM unnest(p.proargtypes::oid[]) WITH ORDINALITY u(t, o)), ''), "
      "       coalesce((SELECT string_agg(coalesce(n, ''), '|' ORDER BY o) "
      "                   FROM unnest(p.proargnames, p.proargmodes) WITH ORDINALITY u(n, m, o) "
      "                  WHERE m IS NULL OR m IN ('i', 'b', 'v')), '') "
      "  FROM pg_proc p WHERE p.pronamespace = 'slotguard'::regnamespace ORDER BY 1, 4");
  std::vector<Function> out;
  if (PQresultStatus(r) != PGRES_TUPLES_OK) {
    std::fprintf(stderr, "pg_proc: %s", PQresultErrorMessage(r));
    PQclear(r);
    return out;
  }
  for (int i = 0; i < PQntuples(r); i++) {
    Function f;
    f.name = PQgetvalue(r, i, 0);
    f.ndefaults = std::atoi(PQgetvalue(r, i, 1));
    f.trigger = PQgetvalue(r, i, 2)[0] == 't';
    f.types = split(PQgetvalue(r, i, 3), '|');
    f.names = split(PQgetvalue(r, i, 4), '|');
    f.names.resize(f.types.size());
    out.push_back(f);
  }
  PQclear(r);
  return out;
}

// ---- the generator -----------------------------------------------------------------------------

struct Statement {
  std::string label;  // what the summary counts it under
  std::string sql;
  bool as_app;      // run as the plain role
  int timeout = 5;  // its statement_timeout, seconds
};

class Generator {
 public:
  explicit Generator(uint64_t seed) : rng_{seed}, tables_(tables()) {}
  Rng& rng() { return rng_; }
  const std::vector<Table>& all_tables() const { return tables_; }

  std::string table_ref() {
    // A table of the fixture, or anything else a regclass can name.
    const int p = rng_.range(0, 99);
    if (p < 70) return lit(rng_.pick(tables_).q()) + "::regclass";
    static const std::vector<std::string> others = {"'slotguard.slots'",
                                                    "'slotguard.bookings'",
                                                    "'slotguard.audit'",
                                                    "'slotguard.seats'",
                                                    "'slotguard.overlap_rule_defs'",
                                                    "'slotguard.stats'",
                                                    "'slotguard.slots_id_seq'",
                                                    "'slotguard.slots_pkey'",
                                                    "'pg_catalog.pg_class'",
                                                    "'pg_catalog.pg_trigger'",
                                                    "'information_schema.tables'",
                                                    "'pg_toast.pg_toast_1255'",
                                                    "'public.a_sequence'",
                                                    "'public.a_matview'",
                                                    "'public.an_index'",
                                                    "'public.a_foreign'",
                                                    "'\"Fuzz Schema\".a_type'",
                                                    "'temp_t'"};
    if (p < 90) return rng_.pick(others) + "::regclass";
    if (p < 94) return "0::oid::regclass";
    if (p < 96) return "4294967295::oid::regclass";
    return std::to_string(rng_.range(1, 20000)) + "::oid::regclass";
  }

  std::string column_name() {
    const int p = rng_.range(0, 99);
    if (p < 65) return rng_.pick(kColumns);
    static const std::vector<std::string> odd = {"",
                                                 "ctid",
                                                 "xmin",
                                                 "tableoid",
                                                 "oid",
                                                 "nosuch",
                                                 "ID",
                                                 "Mixed col",
                                                 "version2",
                                                 "id\" text); DROP TABLE plain; --",
                                                 "表",
                                                 std::string(64, 'z'),
                                                 std::string(200, 'w'),
                                                 "created_at",
                                                 "updated_at",
                                                 "a'b",
                                                 "\\",
                                                 " "};
    return rng_.pick(odd);
  }

  std::string name_value() { return lit(column_name()) + "::name"; }

  std::string name_array() {
    const int p = rng_.range(0, 99);
    if (p < 4) return "'{}'::name[]";
    if (p < 7) return "ARRAY[NULL]::name[]";
    if (p < 10) return "'{{id,room},{starts_at,ends_at}}'::name[]";
    if (p < 12) return "'[0:1]={starts_at,ends_at}'::name[]";
    if (p < 14) return "(SELECT array_agg(('c' || i)::name) FROM generate_series(1, 100000) i)";
    if (p < 16) return "(SELECT array_agg('room'::name) FROM generate_series(1, 2000) i)";
    std::vector<std::string> items;
    const int n = rng_.pct(70) ? rng_.range(1, 2) : rng_.range(0, 5);
    static const std::vector<std::vector<std::string>> sane = {
        {"room"},           {"starts_at", "ends_at"}, {"during"},       {"room", "day"},
        {"t_from", "t_to"}, {"n_from", "n_to"},       {"amount", "f8"}, {"Mixed Col"},
        {"status"}};
    if (rng_.pct(50)) {
      for (const auto& s : rng_.pick(sane)) items.push_back(lit(s));
    } else {
      for (int i = 0; i < n; i++) items.push_back(lit(column_name()));
    }
    if (items.empty()) return "'{}'::name[]";
    return "ARRAY[" + join(items, ", ") + "]::name[]";
  }

  std::string text_value() {
    static const std::vector<std::string> pool = {"''",
                                                  "'x'",
                                                  "'bigint'",
                                                  "'uuid'",
                                                  "'integer'",
                                                  "'int'",
                                                  "'text'",
                                                  "'assert'",
                                                  "'increment'",
                                                  "'ASSERT'",
                                                  "'x''y'",
                                                  "'\"'",
                                                  "'\\'",
                                                  "'表'",
                                                  "'status <> ''cancelled'''",
                                                  "'true'",
                                                  "'false'",
                                                  "'1/0 = 1'",
                                                  "'room > 0'",
                                                  "'nosuch = 1'",
                                                  "'(SELECT count(*) FROM pg_class) > 0'",
                                                  "') OR (true'",
                                                  "'true; DROP TABLE plain; --'",
                                                  "'pg_catalog.pg_sleep(0) IS NOT NULL'",
                                                  "'room {room} at {starts_at}'",
                                                  "'{'",
                                                  "'{}'",
                                                  "'{nosuch}'",
                                                  "'%s%s%s%n'",
                                                  "'k1'",
                                                  "'k2'",
                                                  "'holder:1'",
                                                  "'holder:2'",
                                                  "repeat('x', 100000)",
                                                  "repeat('{room}', 5000)",
                                                  "'current_user = ''postgres'''",
                                                  "'status IS DISTINCT FROM NULL'",
                                                  "'slotguard.stats_reset() IS NULL'",
                                                  "'(SELECT pg_advisory_lock(1)) IS NULL'",
                                                  "'random() < 0.5'",
                                                  "E'\\u00e9\\u4e2d'",
                                                  "'$1'",
                                                  "'NULL'",
                                                  "'status <> ''x'' AND room IS NOT NULL'",
                                                  "'deleted_at IS NULL'"};
    return rng_.pick(pool);
  }

  std::string text_array() {
    const int p = rng_.range(0, 99);
    if (p < 4) return "'{}'::text[]";
    if (p < 7) return "ARRAY[NULL]::text[]";
    if (p < 9) return "ARRAY['']::text[]";
    if (p < 11) return "'{{A1,A2},{B1,B2}}'::text[]";
    if (p < 13) return "'[5:6]={A1,A2}'::text[]";
    if (p < 15) return "ARRAY['A1', 'A1']";
    if (p < 17 && rng_.pct(50))  // the stadium
      return "(SELECT array_agg('s' || i) FROM generate_series(1, 100000) i)";
    if (p < 18) return "(SELECT array_agg('s' || (i % 99999)) FROM generate_series(1, 100000) i)";
    if (p < 20) return "(SELECT array_agg('s' || i) FROM generate_series(1, 2000) i)";
    if (p < 22) return "ARRAY[repeat('L', 100000)]";
    std::vector<std::string> items;
    const int n = rng_.range(1, 6);
    for (int i = 0; i < n; i++)
      items.push_back(rng_.pct(90)
                          ? lit(std::string("A") + std::to_string(rng_.range(1, 8)))
                          : lit(rng_.pick(std::vector<std::string>{"", "表", "a b", "\"", "A1 "})));
    return "ARRAY[" + join(items, ", ") + "]::text[]";
  }

  std::string int_value() {
    static const std::vector<std::string> pool = {"0",
                                                  "-1",
                                                  "1",
                                                  "1",
                                                  "2",
                                                  "3",
                                                  "10",
                                                  "64",
                                                  "65",
                                                  "1000",
                                                  "100000",
                                                  "2147483647",
                                                  "(-2147483647 - 1)",
                                                  "5"};
    return rng_.pick(pool);
  }

  std::string bigint_value() {
    const int p = rng_.range(0, 99);
    if (p < 75) return std::to_string(rng_.range(1, 60));
    static const std::vector<std::string> pool = {
        "0", "-1", "9223372036854775807", "(-9223372036854775807 - 1)", "2147483648", "100000000"};
    return rng_.pick(pool);
  }

  std::string interval_value() {
    static const std::vector<std::string> pool = {"'0'",
                                                  "'-1 second'",
                                                  "'1 microsecond'",
                                                  "'1 second'",
                                                  "'2 minutes'",
                                                  "'2 minutes'",
                                                  "'1 day'",
                                                  "'1 mon'",
                                                  "'-1 mon 40 days'",
                                                  "'178000000 years'",
                                                  "'-178000000 years'",
                                                  "'2147483647 days'",
                                                  "'2562047788:00:54.775807'",
                                                  "'-2562047788:00:54.775808'",
                                                  "'1 mon -30 days'",
                                                  "'1 year -365 days 1 second'"};
    return rng_.pick(pool) + "::interval";
  }

  std::string timestamptz_value() {
    static const std::vector<std::string> pool = {"'infinity'",
                                                  "'-infinity'",
                                                  "'2030-01-01 10:00+00'",
                                                  "'2030-01-01 12:00+00'",
                                                  "'4713-01-01 00:00+00 BC'",
                                                  "'294276-12-31 23:59:59+00'",
                                                  "'epoch'",
                                                  "'2000-01-01'"};
    return rng_.pick(pool) + "::timestamptz";
  }

  std::string jsonb_value() {
    const int p = rng_.range(0, 99);
    if (p < 3) return "(repeat('[', 5000) || repeat(']', 5000))::jsonb";
    if (p < 5) return "(repeat('{\"a\":', 3000) || '1' || repeat('}', 3000))::jsonb";
    if (p < 6) return "(repeat('[', 200000) || repeat(']', 200000))::jsonb";
    if (p < 8) return "(SELECT jsonb_object_agg('k' || i, i) FROM generate_series(1, 100000) i)";
    if (p < 10) return "jsonb_build_object('status', repeat('[', 3000) || repeat(']', 3000))";
    if (p < 12)
      return "jsonb_build_object('id', 1, 'room', (repeat('[', 3000) || repeat(']', 3000))::jsonb)";
    static const std::vector<std::string> pool = {
        "'null'",
        "'{}'",
        "'[]'",
        "'1'",
        "'\"x\"'",
        "'true'",
        "'{\"id\": 1}'",
        "'{\"id\": 2}'",
        "'{\"id\": \"x\"}'",
        "'{\"id\": null}'",
        "'{\"id\": 1, \"room\": 1}'",
        "'{\"nosuch\": 1}'",
        "'{\"id\": 1e400}'",
        "'{\"id\": -0}'",
        "'{\"id\": [1]}'",
        "'{\"id\": {\"a\": 1}}'",
        "'{\"new\": [\"done\"], \"done\": []}'",
        "'{\"\": [\"new\"], \"new\": [\"done\", \"cancelled\"]}'",
        "'{\"a\": \"b\"}'",
        "'{\"a\": [1]}'",
        "'{\"a\": [null]}'",
        "'{\"r\": {\"a\": [\"b\"]}}'",
        "'{\"postgres\": {\"new\": [\"done\"]}}'",
        "'{\"r\": [\"x\"]}'",
        "'[\"new\", \"done\"]'",
        "'{\"status\": \"new\"}'",
        "'{\"status\": \"done\", \"room\": 2}'",
        "'{\"Mixed Col\": \"x\", \"sp ace\": 1, \"q\\\"c\": 2}'",
        "'{\"version\": 5}'",
        "'{\"updated_at\": \"2030-01-01\"}'",
        "'{\"deleted_at\": \"2030-01-01\"}'",
        "'{\"amount\": \"NaN\"}'",
        "'{\"amount\": 1e300}'",
        "'{\"f8\": \"Infinity\"}'",
        "'{\"\\u00e9\": 1}'",
        "'\"\\u00e9\"'",
        "'{\"room\": \"表\"}'",
        "'1e1000'"};
    if (p < 55) return rng_.pick(pool) + "::jsonb";
    // A candidate row for find_conflicts.
    std::vector<std::string> kv;
    static const std::vector<std::pair<std::string, std::vector<std::string>>> fields = {
        {"room", {"1", "2", "null", "\"1\"", "\"x\"", "1.5", "2147483648", "[1]"}},
        {"starts_at",
         {"\"2030-01-01 10:00+00\"", "\"infinity\"", "\"-infinity\"", "null", "\"x\"", "1"}},
        {"ends_at", {"\"2030-01-01 11:00+00\"", "\"infinity\"", "\"2029-01-01\"", "null"}},
        {"during",
         {"\"[2030-01-01 10:00+00,2030-01-01 11:00+00)\"", "\"empty\"", "\"(,)\"", "\"x\"", "null",
          "\"(2030-01-01 11:00+00,2030-01-01 10:00+00)\""}},
        {"status", {"\"new\"", "\"cancelled\"", "null", "1"}},
        {"amount", {"\"NaN\"", "1", "1e300", "\"Infinity\""}},
        {"n_from", {"\"NaN\"", "1", "5", "\"-Infinity\""}},
        {"n_to", {"\"NaN\"", "5", "1"}},
        {"f8", {"\"NaN\"", "\"Infinity\"", "1.5"}},
        {"day", {"\"2030-01-01\"", "\"infinity\""}},
        {"t_from", {"\"10:00\"", "\"24:00\""}},
        {"t_to", {"\"11:00\"", "\"00:00\""}},
        {"id", {"1", "2", "\"x\"", "null"}},
        {"version", {"1", "\"x\""}},
    };
    for (const auto& [k, vals] : fields)
      if (rng_.pct(45)) kv.push_back("\"" + k + "\": " + rng_.pick(vals));
    return lit("{" + join(kv, ", ") + "}") + "::jsonb";
  }

  std::string uuid_value() {
    static const std::vector<std::string> pool = {"'00000000-0000-0000-0000-000000000000'::uuid",
                                                  "'ffffffff-ffff-ffff-ffff-ffffffffffff'::uuid",
                                                  "'6ba7b810-9dad-11d1-80b4-00c04fd430c8'::uuid"};
    return rng_.pick(pool);
  }

  std::string regrole_value() {
    static const std::vector<std::string> pool = {"'postgres'::regrole",
                                                  std::string("'") + kAppRole + "'::regrole",
                                                  std::string("'") + kOtherRole + "'::regrole",
                                                  "'pg_monitor'::regrole",
                                                  "'-'::regrole",
                                                  "0::oid::regrole",
                                                  "4294967295::oid::regrole",
                                                  "'pg_database_owner'::regrole"};
    return rng_.pick(pool);
  }

  std::string bytea_value() {
    static const std::vector<std::string> pool = {"'\\x'::bytea",
                                                  "'\\x00'::bytea",
                                                  "'\\x610062'::bytea",
                                                  "'\\x61006200'::bytea",
                                                  "'\\xff00fe'::bytea",
                                                  "decode(repeat('00', 100000), 'hex')",
                                                  "decode(repeat('41', 100000), 'hex')"};
    return rng_.pick(pool);
  }

  // anycompatible pairs: both of one type.
  std::pair<std::string, std::string> anycompatible_pair() {
    static const std::vector<std::vector<std::string>> pools = {
        {"1", "2", "(-2147483647 - 1)", "2147483647"},
        {"'NaN'::numeric", "1::numeric", "'Infinity'::numeric", "1e-1000::numeric"},
        {"'NaN'::float8", "'Infinity'::float8", "'-Infinity'::float8", "0::float8", "'-0'::float8"},
        {"'infinity'::timestamptz", "'-infinity'::timestamptz", "'2030-01-01'::timestamptz"},
        {"'a'::text", "'b'::text", "'表'::text", "''::text"},
        {"'(1,2)'::point", "'(0,0)'::point"},
        {"'{}'::jsonb", "'[1]'::jsonb"},
        {"'{}'::json", "'[1]'::json"},
        {"'[1,2)'::int4range", "'empty'::int4range"},
        {"true", "false"},
        {"'2030-01-01'::date", "'infinity'::date"},
        {"'a'::\"char\"", "'b'::\"char\""},
        {"ROW(1, 'a')", "ROW(2, 'b')"},
        {"ARRAY[1, NULL]", "ARRAY[NULL, 2]"},
        {"'a'::xml", "'b'::xml"},
        {"'10:00'::time", "'24:00'::time"},
        {"'1 day'::interval", "'-1 mon'::interval"},
    };
    const auto& pool = rng_.pick(pools);
    return {rng_.pct(10) ? "NULL" : rng_.pick(pool), rng_.pct(10) ? "NULL" : rng_.pick(pool)};
  }

  std::string value_of(const std::string& type) {
    if (rng_.pct(12)) return "NULL::" + (type == "anycompatible" ? std::string("int") : type);
    if (type == "regclass") return table_ref();
    if (type == "name") return name_value();
    if (type == "name[]") return name_array();
    if (type == "text") return text_value();
    if (type == "text[]") return text_array();
    if (type == "integer") return int_value();
    if (type == "bigint") return bigint_value();
    if (type == "boolean") return rng_.pct(50) ? "true" : "false";
    if (type == "interval") return interval_value();
    if (type == "timestamp with time zone") return timestamptz_value();
    if (type == "jsonb") return jsonb_value();
    if (type == "uuid") return uuid_value();
    if (type == "regrole") return regrole_value();
    if (type == "bytea") return bytea_value();
    return "NULL::" + type;
  }

  // plausible_value: an argument a careful caller might pass, by the parameter's name, so that
  // calls get past the argument checks and into the code behind them.
  std::string plausible_value(const std::string& name, const std::string& type) {
    if (name == "tbl") return lit(rng_.pick(tables_).q()) + "::regclass";
    if (name == "key" || name == "ignore_key")
      return lit(rng_.pct(50) ? std::to_string(rng_.range(1, 30))
                              : "{\"id\": " + std::to_string(rng_.range(1, 30)) + "}") +
             "::jsonb";
    if (name == "changes")
      return rng_.pick(std::vector<std::string>{
                 R"x('{"status": "done"}')x", R"x('{"room": 2}')x",
                 R"x('{"Mixed Col": "x", "status": "new"}')x",
                 R"x('{"starts_at": "2030-01-01 10:00+00", "ends_at": "2030-01-01 12:00+00"}')x",
                 R"x('{"during": "[2030-01-01 10:00+00,2030-01-01 11:00+00)"}')x",
                 R"x('{"deleted_at": "2030-01-01"}')x",
                 R"x('{"updated_at": null, "created_at": null}')x"}) +
             "::jsonb";
    if (name == "expected_version")
      return type == "uuid" ? uuid_value() : std::to_string(rng_.range(0, 4));
    if (name == "rule_name")
      return lit(rng_.pick(std::vector<std::string>{"busy", "Busy Room", "q\"r", "長", k63})) +
             "::name";
    if (name == "key_columns")
      return rng_.pick(std::vector<std::string>{"'{room}'", "'{room,day}'", R"x('{"Mixed Col"}')x",
                                                "'{status}'"}) +
             "::name[]";
    if (name == "period_columns")
      return rng_.pick(std::vector<std::string>{"'{starts_at,ends_at}'", "'{during}'",
                                                "'{day,day}'", "'{t_from,t_to}'", "'{n_from,n_to}'",
                                                "'{f8,f8}'", "'{created_at,updated_at}'"}) +
             "::name[]";
    if (name == "capacity") return std::to_string(rng_.range(0, 5));
    if (name == "only_when")
      return rng_.pick(std::vector<std::string>{"'status IS DISTINCT FROM ''cancelled'''",
                                                "'room > 0'", "'deleted_at IS NULL'", "NULL"});
    if (name == "column_name" || name == "version_column")
      return lit(rng_.pick(std::vector<std::string>{"status", "version", "room", "Mixed Col"})) +
             "::name";
    if (name == "transitions")
      return R"x('{"": ["new"], "new": ["done", "cancelled"], "done": []}'::jsonb)x";
    if (name == "by_role")
      return lit(std::string("{\"") + kAppRole + "\": {\"new\": [\"done\"]}}") + "::jsonb";
    if (name == "version_type") return rng_.pct(70) ? "'bigint'" : "'uuid'";
    if (name == "version_style") return rng_.pct(70) ? "'assert'" : "'increment'";
    if (name == "slot_id") return std::to_string(rng_.range(1, 45));
    if (name == "booking_id") return std::to_string(rng_.range(1, 40));
    if (name == "holder") return lit("h" + std::to_string(rng_.range(1, 6)));
    if (name == "seats") return std::to_string(rng_.range(1, 3));
    if (name == "labels" || name == "seat_labels")
      return rng_.pick(std::vector<std::string>{"ARRAY['A1']", "ARRAY['A2', 'A3']",
                                                "ARRAY['A1', 'A2', 'A3']", "'{s1,s2,s3}'::text[]"});
    if (name == "idempotency_key") return lit("k" + std::to_string(rng_.range(1, 5)));
    if (name == "hold_ttl")
      return rng_.pct(80) ? "'2 minutes'::interval" : "'1 microsecond'::interval";
    if (name == "candidate") return jsonb_value();
    if (name == "max_rows") return std::to_string(rng_.range(1, 100));
    return value_of(type);
  }

  // call_function: one call with generated arguments, positional or named, defaults left out.
  Statement call(const Function& f) {
    const int n = static_cast<int>(f.types.size());
    int given = n;
    if (f.ndefaults > 0 && rng_.pct(50)) given = n - rng_.range(1, f.ndefaults);
    const bool named = rng_.pct(30) && given > 0 && !f.names[0].empty();
    std::vector<std::string> args;
    std::pair<std::string, std::string> pair;
    bool have_pair = false;
    const bool plausible = rng_.pct(60);
    for (int i = 0; i < given; i++) {
      std::string v;
      if (f.types[i] == "anycompatible") {
        if (!have_pair) pair = anycompatible_pair();
        v = have_pair ? pair.second : pair.first;
        have_pair = true;
      } else if (plausible && !rng_.pct(15)) {
        v = plausible_value(f.names[i], f.types[i]);
      } else {
        v = value_of(f.types[i]);
      }
      if (named && !f.names[i].empty())
        args.push_back(ident(f.names[i]) + " => " + v);
      else
        args.push_back(v);
    }
    // Named notation may also skip a defaulted argument in the middle.
    if (named && given == n && f.ndefaults >= 2 && rng_.pct(30)) {
      const int skip = n - rng_.range(2, f.ndefaults);
      if (!f.names[skip].empty()) args.erase(args.begin() + skip);
    }
    // A stadium: capacity must equal the number of labels for create_slot to get to them.
    for (std::size_t i = 0; i < args.size() && i < f.names.size(); i++) {
      if (f.names[i] != "capacity") continue;
      for (const auto& a : args)
        if (a.find("generate_series(1, 100000)") != std::string::npos && rng_.pct(80))
          args[i] = (named ? ident("capacity") + " => " : std::string()) + "100000";
    }
    std::string sql = "SELECT * FROM slotguard." + ident(f.name) + "(" + join(args, ", ") + ")";
    if (rng_.pct(10))
      sql = "BEGIN ISOLATION LEVEL SERIALIZABLE; " + sql + "; COMMIT";
    else if (rng_.pct(5))
      sql = "BEGIN; SAVEPOINT s; " + sql + "; ROLLBACK TO s; " + sql + "; COMMIT";
    return {f.name, sql, rng_.pct(50)};
  }

  // ---- fixture DDL ----

  std::string create_table(const Table& t, bool full = false) {
    std::vector<std::string> cols;
    const int id_kind = rng_.range(0, 9);
    const bool partitioned = t.kind == Kind::kPartitioned;
    std::string id_type = id_kind < 5   ? "int"
                          : id_kind < 7 ? "bigint"
                          : id_kind < 8 ? "text"
                                        : "uuid";
    if (partitioned) id_type = "int";
    const int pk = partitioned ? 0 : rng_.range(0, 9);  // 0-6 id, 7 (id, room), 8-9 none
    cols.push_back("id " + id_type + (pk < 7 ? " PRIMARY KEY" : " NOT NULL") +
                   (id_type == "uuid" ? " DEFAULT gen_random_uuid()" : ""));
    for (std::size_t i = 1; i < kColumns.size(); i++) {
      const std::string& c = kColumns[i];
      if (!full && rng_.pct(15) && c != "room") continue;
      std::string type;
      if (c == "room")
        type = rng_.pct(80) ? "int NOT NULL DEFAULT 1" : "text";
      else if (c == "status" || c == "Mixed Col" || c == "sp ace" || c == "q\"c" || c == kCol63)
        type = "text";
      else if (c == "starts_at" || c == "ends_at" || c == "deleted_at")
        type = "timestamptz";
      else if (c == "during")
        type = rng_.pct(80) ? "tstzrange" : "int4range";
      else if (c == "amount" || c == "n_from" || c == "n_to")
        type = "numeric";
      else if (c == "f8")
        type = "float8";
      else if (c == "day")
        type = "date";
      else if (c == "t_from" || c == "t_to")
        type = "time";
      else if (c == "version") {
        if (rng_.pct(40)) continue;  // enable_versioning adds it
        if (full) {
          cols.push_back(ident(c) + " bigint NOT NULL DEFAULT 0");
          continue;
        }
        type = rng_.pct(70)
                   ? "bigint NOT NULL DEFAULT 0"
                   : rng_.pick(std::vector<std::string>{"int DEFAULT 0", "smallint DEFAULT 32766",
                                                        "uuid", "text", "numeric"});
      } else if (c == "created_at" || c == "updated_at")
        type = rng_.pct(70) || full
                   ? "timestamptz"
                   : rng_.pick(std::vector<std::string>{"timestamp", "text", "date",
                                                        "timestamptz NOT NULL DEFAULT now()"});
      cols.push_back(ident(c) + " " + type);
    }
    if (pk == 7) cols.push_back("PRIMARY KEY (id, room)");
    std::string sql = "DROP TABLE IF EXISTS " + t.q() + " CASCADE; ";
    if (t.kind == Kind::kView)
      return "DROP VIEW IF EXISTS " + t.q() + "; CREATE VIEW " + t.q() + " AS SELECT * FROM " +
             t.parent;
    if (t.kind == Kind::kPartition) {
      const int lo = t.name.back() == '1' ? 0 : 1000;
      return sql + "CREATE TABLE " + t.q() + " PARTITION OF " + t.parent + " FOR VALUES FROM (" +
             std::to_string(lo) + ") TO (" + std::to_string(lo + 1000) + ")";
    }
    if (t.kind == Kind::kInheritChild)
      return sql + "CREATE TABLE " + t.q() + " (extra int) INHERITS (" + t.parent + ")";
    sql += "CREATE TABLE " + t.q() + " (" + join(cols, ", ") + ")";
    if (partitioned) sql += " PARTITION BY RANGE (id)";
    return sql;
  }

  // A sane slotguard setup for a table, so that the triggers exist to be fired and damaged.
  std::vector<std::string> setup(const Table& t, bool full = false) {
    std::vector<std::string> s;
    const std::string r = lit(t.q()) + "::regclass";
    if (full || rng_.pct(60))
      s.push_back("SELECT slotguard.enable_versioning(" + r + ", audit => " +
                  (rng_.pct(50) ? "true" : "false") + ", version_type => " +
                  (rng_.pct(25) ? "'uuid'" : "'bigint'") + ", version_style => " +
                  (rng_.pct(30) ? "'increment'" : "'assert'") + ", require_version => " +
                  (rng_.pct(20) ? "true" : "false") + ")");
    if (full || rng_.pct(50))
      s.push_back("SELECT slotguard.add_transition_rule(" + r +
                  ", 'status', '{\"\": [\"new\"], \"new\": [\"done\", \"cancelled\"]}')");
    if (full || rng_.pct(60)) {
      static const std::vector<std::string> periods = {"'{starts_at,ends_at}'", "'{during}'",
                                                       "'{day,day}'",           "'{t_from,t_to}'",
                                                       "'{n_from,n_to}'",       "'{f8,f8}'"};
      s.push_back("SELECT slotguard.add_overlap_rule(" + r + ", " +
                  lit(rng_.pick(std::vector<std::string>{"busy", "Busy Room", "q\"r", "長", k63})) +
                  ", '{room}', " + rng_.pick(periods) + ", capacity => " +
                  std::to_string(rng_.range(1, 3)) +
                  (rng_.pct(40) ? ", only_when => 'status IS DISTINCT FROM ''cancelled'''" : "") +
                  (rng_.pct(30) ? ", message => 'room {room} busy {nosuch} {starts_at}'" : "") +
                  ")");
    }
    return s;
  }

  std::string alter_table(const Table& t) {
    const std::string c = ident(rng_.pct(85) ? rng_.pick(kColumns) : column_name());
    const std::string a = "ALTER TABLE " + t.q() + " ";
    switch (rng_.range(0, 14)) {
      case 0:
      case 1:
      case 2: {
        static const std::vector<std::string> types = {
            "text",      "numeric",     "smallint",  "int",       "bigint", "uuid",    "date",
            "timestamp", "timestamptz", "tstzrange", "int4range", "float8", "boolean", "jsonb",
            "name",      "varchar(3)",  "char(1)",   "int[]",     "bytea"};
        const std::string ty = rng_.pick(types);
        const int how = rng_.range(0, 3);
        const std::string using_ = how == 0   ? ""
                                   : how == 1 ? " USING " + c + "::text::" + ty
                                   : how == 2 ? " USING NULL"
                                              : " USING " + rng_.pick(kValues) + "::" + ty;
        return a + "ALTER COLUMN " + c + " TYPE " + ty + using_;
      }
      case 3:
        return a + "DROP COLUMN " + c + (rng_.pct(50) ? " CASCADE" : "");
      case 4:
        return a + "RENAME COLUMN " + c + " TO " +
               ident(rng_.pick(kColumns) + (rng_.pct(50) ? "" : "2"));
      case 5:
        return a + "ADD COLUMN " + c + " " +
               rng_.pick(std::vector<std::string>{"bigint NOT NULL DEFAULT 0", "text", "uuid",
                                                  "timestamptz DEFAULT now()", "int4range"});
      case 6:
        return a + "ALTER COLUMN " + c + (rng_.pct(50) ? " DROP NOT NULL" : " SET NOT NULL");
      case 7:
        return a + "ALTER COLUMN " + c +
               (rng_.pct(50) ? " DROP DEFAULT" : " SET DEFAULT " + rng_.pick(kValues));
      case 8: {
        // partitions come and go
        if (t.kind == Kind::kPartition)
          return "ALTER TABLE " + t.parent + " DETACH PARTITION " + t.q();
        const Table& p = rng_.pick(tables_);
        if (p.kind == Kind::kPartitioned)
          return "ALTER TABLE " + p.q() + " ATTACH PARTITION " + t.q() + " FOR VALUES FROM (" +
                 std::to_string(rng_.range(0, 3) * 1000) + ") TO (" +
                 std::to_string(rng_.range(4, 9) * 1000) + ")";
        return "ALTER TABLE " + p.q() + " ATTACH PARTITION " + t.q() + " DEFAULT";
      }
      case 9: {
        const Table& p = rng_.pick(tables_);
        return a + (rng_.pct(60) ? "INHERIT " : "NO INHERIT ") + p.q();
      }
      case 10:
        return a + "ENABLE ROW LEVEL SECURITY; CREATE POLICY " +
               ident("p" + std::to_string(rng_.range(1, 3))) + " ON " + t.q() + " USING (room = 1)";
      case 11:
        return a + "OWNER TO " + (rng_.pct(50) ? std::string(kAppRole) : "postgres");
      case 12:
        return "CREATE INDEX ON " + t.q() +
               (rng_.pct(50) ? " USING gist (room, during)" : " (room, starts_at)");
      case 13:
        return "TRUNCATE " + t.q() + (rng_.pct(30) ? " CASCADE" : "");
      default:
        return a + "RENAME TO " + ident(rng_.pick(tables_).name);
    }
  }

  // hand_trigger attaches one of slotguard's trigger functions with arguments of our choosing.
  std::string hand_trigger(const Table& t) {
    static const std::vector<std::string> fns = {"version_trigger", "audit_trigger",
                                                 "transition_trigger", "overlap_trigger"};
    const std::string fn = rng_.pick(fns);
    static const std::vector<std::string> names = {"slotguard_10_version",
                                                   "slotguard_90_audit",
                                                   "slotguard_20_transition_status",
                                                   "slotguard_30_overlap_x",
                                                   "slotguard_30_overlap_busy",
                                                   "hand",
                                                   "zz last",
                                                   "AA first"};
    std::string name = rng_.pct(75) ? rng_.pick(names) : fn;
    std::vector<std::string> args;
    const int shape = rng_.range(0, 9);
    if (shape == 0) {
      // no arguments
    } else if (shape == 1) {
      const int n = rng_.pct(50) ? rng_.range(1, 20) : rng_.range(100, 2000);
      for (int i = 0; i < n; i++)
        args.push_back(lit(rng_.pct(50) ? column_name() : std::to_string(rng_.range(-5, 5))));
    } else if (fn == "version_trigger" || shape == 2) {
      args = {
          lit(rng_.pct(80) ? rng_.pick(std::vector<std::string>{
                                 "version", "created_at", "updated_at", "status", "id", "during"})
                           : column_name()),
          lit(rng_.pick(std::vector<std::string>{"bigint", "uuid", "", "text"})),
          lit(rng_.pick(std::vector<std::string>{"t", "f", "", "true"})),
          lit(rng_.pick(std::vector<std::string>{"t", "f", "x"})),
          lit(rng_.pick(std::vector<std::string>{"assert", "increment", "", "x"}))};
      if (rng_.pct(20)) args.resize(rng_.range(0, 6), "'x'");
    } else if (fn == "audit_trigger") {
      args = {lit(rng_.pct(70) ? "version" : column_name())};
      if (rng_.pct(20)) args.push_back("'x'");
    } else if (fn == "transition_trigger") {
      args = {lit(rng_.pct(70) ? rng_.pick(std::vector<std::string>{"status", "room", "during",
                                                                    "id", "version"})
                               : column_name()),
              lit(rng_.pick(std::vector<std::string>{
                  "{\"new\": [\"done\"]}", "", "x", "[]", "{\"a\": 1}", "null",
                  std::string(3000, '[') + std::string(3000, ']'), "{\"\": [\"new\"]}"})),
              lit(rng_.pick(std::vector<std::string>{"", "{\"postgres\": {\"new\": [\"x\"]}}", "x",
                                                     "[1]", "null"}))};
      if (rng_.pct(20)) args.resize(rng_.range(0, 5), "''");
    } else {
      // overlap: id, name, capacity, range type, only_when, message, nkeys, keys..., periods...
      args.push_back(lit(
          rng_.pick(std::vector<std::string>{"1", "2", "3", "-1", "0", "2147483648", "x", ""})));
      args.push_back(lit(rng_.pick(std::vector<std::string>{"busy", "x", "", "長"})));
      args.push_back(
          lit(rng_.pick(std::vector<std::string>{"1", "2", "0", "-1", "2147483647", "x"})));
      args.push_back(lit(rng_.pick(std::vector<std::string>{
          "pg_catalog.tstzrange", "pg_catalog.int4range", "", "slotguard.timerange",
          "pg_catalog.numrange", "pg_catalog.now", "pg_catalog.pg_sleep", "xyz(", "(SELECT 1)",
          "pg_catalog.daterange", "slotguard.float8range"})));
      args.push_back(lit(rng_.pick(std::vector<std::string>{
          "", "true", "1/0 = 1", "(SELECT count(*) FROM pg_catalog.pg_class) > 0", ") OR (",
          "room = 1", "slotguard.stats_reset() IS NULL"})));
      args.push_back(lit(rng_.pick(std::vector<std::string>{"", "{room}", "{nosuch}", "%n%s"})));
      const std::string nkeys =
          rng_.pick(std::vector<std::string>{"1", "1", "2", "0", "-1", "99", "x"});
      args.push_back(lit(nkeys));
      const int k = rng_.range(0, 3);
      for (int i = 0; i < k; i++)
        args.push_back(lit(rng_.pick(std::vector<std::string>{"room", "room", "id", "ctid", "xmin",
                                                              "nosuch", "status", "during"})));
      const int pcount = rng_.range(0, 3);
      static const std::vector<std::string> periods = {"starts_at", "ends_at", "during", "status",
                                                       "room",      "id",      "day",    "n_from",
                                                       "n_to",      "f8",      "t_from", "nosuch"};
      for (int i = 0; i < pcount; i++) args.push_back(lit(rng_.pick(periods)));
    }
    // when and how it fires
    std::string when;
    std::string level = rng_.pct(80) ? " FOR EACH ROW" : " FOR EACH STATEMENT";
    std::string events = rng_.pick(std::vector<std::string>{
        "INSERT", "UPDATE", "DELETE", "INSERT OR UPDATE", "INSERT OR UPDATE OR DELETE",
        "UPDATE OF status", "UPDATE OF version", "TRUNCATE"});
    if (events == "TRUNCATE") level = " FOR EACH STATEMENT";
    const int timing = rng_.range(0, 9);
    std::string target = t.q();
    std::string constraint;
    std::string referencing;
    if (timing < 4) {
      when = "BEFORE";
    } else if (timing < 8) {
      when = "AFTER";
      if (rng_.pct(15) && events.find(" OR ") == std::string::npos &&
          events.find(" OF ") == std::string::npos && events != "TRUNCATE")
        referencing = events == "DELETE"   ? " REFERENCING OLD TABLE AS ot"
                      : events == "INSERT" ? " REFERENCING NEW TABLE AS nt"
                                           : " REFERENCING OLD TABLE AS ot NEW TABLE AS nt";
      if (rng_.pct(15) && events != "TRUNCATE") {
        constraint = "CONSTRAINT ";
        level = " DEFERRABLE INITIALLY " + std::string(rng_.pct(50) ? "DEFERRED" : "IMMEDIATE") +
                " FOR EACH ROW";
        referencing.clear();
      }
    } else {
      when = "INSTEAD OF";
      target = "public.\"a view\"";
      level = " FOR EACH ROW";
      if (events.find("OF ") != std::string::npos || events == "TRUNCATE") events = "UPDATE";
    }
    std::string drop = "DROP TRIGGER IF EXISTS " + ident(name) + " ON " + target + "; ";
    return drop + "CREATE " + constraint + "TRIGGER " + ident(name) + " " + when + " " + events +
           " ON " + target + referencing + level + " EXECUTE FUNCTION slotguard." + fn + "(" +
           join(args, ", ") + ")";
  }

  // A scenario: rows first, then a column slotguard relies on changes type, is dropped or
  // renamed, then the rows are written again (the triggers fire with what they learned before).
  std::vector<std::string> scenario(const Table& t) {
    std::vector<std::string> s;
    const std::string q = t.q();
    s.push_back(
        "INSERT INTO " + q +
        " (id, room, status, starts_at, ends_at, during, day, t_from, t_to, n_from, n_to, f8)"
        " VALUES ('1', '1', 'new', '2030-01-01 10:00+00', '2030-01-01 11:00+00',"
        " '[2030-01-01 10:00+00,2030-01-01 11:00+00)', '2030-01-01', '10:00', '11:00', '1',"
        " '5', '1'), ('2', '2', 'new', '2030-01-01 10:00+00', '2030-01-01 11:00+00',"
        " '[2030-01-01 10:00+00,2030-01-01 11:00+00)', '2030-01-01', '10:00', '11:00', '1',"
        " '5', '1')");
    static const std::vector<std::string> cols = {
        "version", "updated_at", "created_at", "status", "room",   "starts_at", "ends_at",
        "during",  "n_from",     "n_to",       "day",    "t_from", "f8",        "id"};
    static const std::vector<std::string> types = {
        "text",           "numeric",     "smallint",  "int",       "bigint",   "uuid",    "date",
        "timestamp",      "timestamptz", "tstzrange", "int4range", "float8",   "boolean", "jsonb",
        "varchar(2)",     "int[]",       "bytea",     "time",      "interval", "oid",     "name",
        "int4multirange", "point"};
    const int changes = rng_.range(1, 2);
    for (int i = 0; i < changes; i++) {
      const std::string c = ident(rng_.pick(cols));
      const int how = rng_.range(0, 9);
      if (how < 7) {
        const std::string ty = rng_.pick(types);
        const int u = rng_.range(0, 3);
        s.push_back("ALTER TABLE " + q + " ALTER COLUMN " + c + " DROP DEFAULT");
        s.push_back("ALTER TABLE " + q + " ALTER COLUMN " + c + " TYPE " + ty +
                    (u == 0   ? ""
                     : u == 1 ? " USING " + c + "::text::" + ty
                     : u == 2 ? " USING NULL"
                              : " USING " + rng_.pick(kValues) + "::" + ty));
      } else if (how < 8) {
        s.push_back("ALTER TABLE " + q + " DROP COLUMN " + c);
      } else if (how < 9) {
        s.push_back("ALTER TABLE " + q + " RENAME COLUMN " + c + " TO " +
                    ident(rng_.pick(cols) + "_old"));
      } else {
        s.push_back("ALTER TABLE " + q + " DROP COLUMN " + c + "; ALTER TABLE " + q +
                    " ADD COLUMN " + c + " " + rng_.pick(types));
      }
    }
    static const std::vector<std::string> writes = {
        "UPDATE %t SET status = status",
        "UPDATE %t SET status = 'done'",
        "UPDATE %t SET room = room",
        "UPDATE %t SET version = version",
        "UPDATE %t SET version = NULL",
        "UPDATE %t SET version = DEFAULT",
        "UPDATE %t SET starts_at = starts_at, ends_at = ends_at",
        "UPDATE %t SET during = during",
        "UPDATE %t SET n_from = n_from",
        "UPDATE %t SET id = id",
        "DELETE FROM %t",
        "UPDATE %t SET updated_at = updated_at, created_at = created_at",
        "INSERT INTO %t (id, room, starts_at, ends_at, during, status) VALUES ('3', '1', "
        "'2030-01-01 10:30+00', '2030-01-01 11:30+00', '[2030-01-01 10:30+00,2030-01-01 "
        "11:30+00)', 'new')",
        "INSERT INTO %t SELECT * FROM %t LIMIT 1",
        "UPDATE %t SET id = id + 1000"};
    const int nw = rng_.range(2, 4);
    for (int i = 0; i < nw; i++) {
      std::string w = rng_.pick(writes);
      for (std::size_t at; (at = w.find("%t")) != std::string::npos;) w.replace(at, 2, q);
      s.push_back(w);
    }
    if (rng_.pct(60))
      s.push_back("SELECT * FROM slotguard.find_conflicts(" + lit(q) + ", " + jsonb_value() + ")");
    if (rng_.pct(60))
      s.push_back("SELECT slotguard.update_versioned(" + lit(q) + ", '1', " +
                  (rng_.pct(80) ? std::to_string(rng_.range(0, 2)) : uuid_value()) + ", " +
                  plausible_value("changes", "jsonb") + ")");
    return s;
  }

  std::string dml(const Table& t) {
    const std::string c = ident(rng_.pick(kColumns));
    const std::string c2 = ident(rng_.pick(kColumns));
    const std::string v = rng_.pick(kValues);
    auto row = [&] {
      std::vector<std::string> cs, vs;
      cs.push_back("id");
      vs.push_back("'" + std::to_string(rng_.range(1, 30) + (rng_.pct(30) ? 1000 : 0)) + "'");
      for (const auto& name :
           {"room", "status", "starts_at", "ends_at", "during", "version", "day", "t_from", "t_to",
            "n_from", "n_to", "f8", "amount", "updated_at", "created_at"}) {
        if (!rng_.pct(40)) continue;
        cs.push_back(ident(name));
        vs.push_back(rng_.pick(kValues));
      }
      return std::make_pair(cs, vs);
    };
    switch (rng_.range(0, 11)) {
      case 0:
      case 1:
      case 2: {
        auto [cs, vs] = row();
        return "INSERT INTO " + t.q() + " (" + join(cs, ", ") + ") VALUES (" + join(vs, ", ") + ")";
      }
      case 3: {
        std::vector<std::string> rows;
        const int nrows = rng_.range(2, 5);
        for (int i = 0; i < nrows; i++)
          rows.push_back("(" + std::to_string(rng_.range(1, 40)) + ", " + rng_.pick(kValues) +
                         ", '2030-01-01 10:00+00', '2030-01-01 11:00+00')");
        return "INSERT INTO " + t.q() + " (id, room, starts_at, ends_at) VALUES " +
               join(rows, ", ");
      }
      case 4:
      case 5:
        return "UPDATE " + t.q() + " SET " + c + " = " + c +
               (rng_.pct(50) ? ", version = " + v : "") +
               (rng_.pct(60) ? " WHERE id = '" + std::to_string(rng_.range(1, 30)) + "'" : "");
      case 6:
        return "UPDATE " + t.q() + " SET " + c + " = " + v + ", " + c2 + " = " + c2;
      case 7:
        return "UPDATE " + t.q() + " SET id = id + 1000" +
               (rng_.pct(50) ? " WHERE id < 1000" : " WHERE id >= 1000");
      case 8:
        return "DELETE FROM " + t.q() +
               (rng_.pct(70) ? " WHERE id = '" + std::to_string(rng_.range(1, 30)) + "'" : "");
      case 9: {
        auto [cs, vs] = row();
        return "INSERT INTO " + t.q() + " (" + join(cs, ", ") + ") VALUES (" + join(vs, ", ") +
               ") ON CONFLICT (id) DO UPDATE SET status = excluded.status, version = " + v;
      }
      case 10:
        return "MERGE INTO " + t.q() + " t USING (VALUES ('" + std::to_string(rng_.range(1, 30)) +
               "', " + v + ")) s(k, v) ON t.id::text = s.k WHEN MATCHED THEN UPDATE SET " + c +
               " = " + c + " WHEN NOT MATCHED THEN INSERT (id) VALUES (s.k::int)";
      default:
        return "BEGIN ISOLATION LEVEL " +
               rng_.pick(
                   std::vector<std::string>{"READ COMMITTED", "REPEATABLE READ", "SERIALIZABLE"}) +
               "; UPDATE " + t.q() + " SET status = 'done', version = version; INSERT INTO " +
               t.q() + " SELECT * FROM " + t.q() + " LIMIT 1; COMMIT";
    }
  }

 private:
  Rng rng_;
  std::vector<Table> tables_;
};

// Slots to reserve on: plain, one per holder, numbered.
const char* const kSlots =
    "SELECT slotguard.create_slot(i % 7, resource => 'r' || i, one_per_holder => i % 3 = 0) "
    "FROM generate_series(1, 30) i; "
    "SELECT slotguard.create_slot(3, seat_labels => '{A1,A2,A3}') FROM generate_series(1, 10); "
    "SELECT slotguard.create_slot(3, seat_labels => '{s1,s2,s3}', one_per_holder => true) "
    "FROM generate_series(1, 5)";

// ---- the run ---------------------------------------------------------------------------------

struct Failure {
  long n;
  std::string role, label, sqlstate, message, sql;
};

std::string clip(const std::string& s, std::size_t n) {
  return s.size() <= n ? s : s.substr(0, n) + "... (" + std::to_string(s.size()) + " bytes)";
}

bool bad_sqlstate(const std::string& state) {
  if (state == "conn") return true;
  if (state == "53200") return true;  // out of memory: a bound is missing somewhere
  if (state.compare(0, 2, "58") == 0) return true;
  return state == "XX000" || state == "XX001" || state == "XX002";
}

}  // namespace

int main(int argc, char** argv) {
  uint64_t seed = 20261206;
  long calls = 4000;
  int seconds = 80;
  std::string log_path;
  for (int i = 1; i < argc; i++) {
    const std::string a = argv[i];
    auto next = [&]() -> std::string { return i + 1 < argc ? argv[++i] : ""; };
    if (a == "--seed") {
      const std::string s = next();
      seed = s == "random"
                 ? static_cast<uint64_t>(std::time(nullptr)) ^ static_cast<uint64_t>(getpid())
                 : std::strtoull(s.c_str(), nullptr, 10);
    } else if (a == "--calls") {
      calls = std::atol(next().c_str());
    } else if (a == "--seconds") {
      seconds = std::atoi(next().c_str());
    } else if (a == "--log") {
      log_path = next();
    } else if (a == "--db") {
      g_db = next();
    } else {
      std::fprintf(
          stderr,
          "usage: %s [--seed N|random] [--calls N] [--seconds S] [--log FILE] [--db NAME]\n",
          argv[0]);
      return 2;
    }
  }
  std::printf("sg_random_api: seed %" PRIu64 " (replay with SG_RANDOM_SEED=%" PRIu64
              "), up to %ld calls, up to %d s\n",
              seed, seed, calls, seconds);
  std::fflush(stdout);

  // The database, the roles and the objects that are not re-created during the run.
  {
    PGconn* admin = PQconnectdb("dbname=postgres user=postgres");
    if (PQstatus(admin) != CONNECTION_OK) {
      std::fprintf(stderr, "cannot connect: %s", PQerrorMessage(admin));
      return 1;
    }
    PQsetNoticeReceiver(admin, ignore_notice, nullptr);
    const std::vector<std::string> setup = {"DROP DATABASE IF EXISTS " + g_db + " WITH (FORCE)",
                                            "CREATE DATABASE " + g_db,
                                            std::string("DROP ROLE IF EXISTS ") + kAppRole,
                                            std::string("DROP ROLE IF EXISTS ") + kOtherRole,
                                            std::string("CREATE ROLE ") + kAppRole + " LOGIN",
                                            std::string("CREATE ROLE ") + kOtherRole + " LOGIN"};
    for (const auto& sql : setup) {
      PGresult* r = PQexec(admin, sql.c_str());
      if (PQresultStatus(r) != PGRES_COMMAND_OK) {
        std::fprintf(stderr, "setup: %s", PQresultErrorMessage(r));
        return 1;
      }
      PQclear(r);
    }
    PQfinish(admin);
  }
  Conn su{"postgres"}, app{kAppRole};
  if (!connect(su, 10)) {
    std::fprintf(stderr, "cannot connect to %s\n", g_db.c_str());
    return 1;
  }
  const std::string base =
      std::string("CREATE EXTENSION slotguard; CREATE EXTENSION IF NOT EXISTS btree_gist; ") +
      "GRANT USAGE ON SCHEMA slotguard TO " + kAppRole + "; " +
      "GRANT CREATE ON SCHEMA public TO " + kAppRole + "; " +
      "CREATE SCHEMA \"Fuzz Schema\" AUTHORIZATION " + kAppRole + "; " +
      "CREATE SEQUENCE public.a_sequence; CREATE MATERIALIZED VIEW public.a_matview AS SELECT 1 AS "
      "x; " +
      "CREATE TABLE public.idx_base (x int); CREATE INDEX an_index ON public.idx_base (x); " +
      "CREATE FOREIGN DATA WRAPPER fdw; CREATE SERVER srv FOREIGN DATA WRAPPER fdw; " +
      "CREATE FOREIGN TABLE public.a_foreign (x int) SERVER srv; " +
      "CREATE TYPE \"Fuzz Schema\".a_type AS (a int)";
  {
    const Outcome o = run(su, base);
    if (o.sqlstate != "00000") {
      std::fprintf(stderr, "fixture setup failed: %s", o.message.c_str());
      return 1;
    }
  }
  if (!connect(app, 10)) {
    std::fprintf(stderr, "cannot connect as %s\n", kAppRole);
    return 1;
  }
  std::vector<Function> functions = load_functions(su.pg);
  if (functions.empty()) return 1;
  std::printf("functions of schema slotguard: %zu\n", functions.size());

  std::FILE* log = log_path.empty() ? nullptr : std::fopen(log_path.c_str(), "w");
  Generator gen(seed);
  Rng& rng = gen.rng();
  std::map<std::string, std::map<std::string, long>> counts;
  std::vector<Failure> failures;
  struct Slow {
    long ms, n;
    std::string label, sql;
  };
  std::vector<Slow> slowest;
  long n = 0, crashes = 0, hangs = 0, as_app = 0;
  const auto start = Clock::now();

  auto exec = [&](const Statement& st) {
    Conn& c = st.as_app ? app : su;
    n++;
    if (st.as_app) as_app++;
    if (log) {
      std::fprintf(log, "-- #%ld as %s [%s]\n%s;\n", n, c.user.c_str(), st.label.c_str(),
                   st.sql.c_str());
      std::fflush(log);
    }
    const auto t0 = Clock::now();
    const Outcome o = run(c, st.sql, st.timeout);
    const long ms = static_cast<long>(
        std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0).count());
    slowest.push_back({ms, n, st.label, st.sql});
    std::sort(slowest.begin(), slowest.end(),
              [](const Slow& a, const Slow& b) { return a.ms > b.ms; });
    if (slowest.size() > 5) slowest.pop_back();
    counts[st.label][o.sqlstate]++;
    if (log) {
      std::string m = clip(o.message, 300);
      for (char& ch : m)
        if (ch == '\n') ch = ' ';
      std::fprintf(log, "-- => %s (%ld ms) %s\n", o.sqlstate.c_str(), ms, m.c_str());
    }
    if (o.hung) hangs++;
    // A statement that ran three times its statement_timeout ignored the cancel it implies.
    const bool slow = !o.lost && ms > 3000L * st.timeout;
    if (o.lost || o.hung || slow || bad_sqlstate(o.sqlstate)) {
      const std::string what = o.hung ? "hang" : slow ? "ignored statement_timeout" : o.sqlstate;
      failures.push_back({n, c.user, st.label, what, o.message, st.sql});
      std::printf("FAILURE #%ld as %s [%s] %s: %s  %s\n", n, c.user.c_str(), st.label.c_str(),
                  what.c_str(), clip(o.message, 300).c_str(), clip(st.sql, 1500).c_str());
      std::fflush(stdout);
    }
    if (o.lost) {
      crashes++;
      if (log) std::fprintf(log, "-- #%ld lost the connection\n", n);
      // A crash restarts every backend: wait for the server and reconnect both.
      if (!connect(su, 120) || !connect(app, 20)) {
        std::printf("the server did not come back\n");
        return false;
      }
    } else if (c.pg && PQstatus(c.pg) != CONNECTION_OK) {
      connect(c, 20);
    }
    return true;
  };

  // Initial fixture: every table created (by its owner) and given slotguard's rules.
  auto recreate = [&](const Table& t, bool with_setup, bool full = false) {
    bool ok = exec({"ddl:create", gen.create_table(t, full), t.app_owned});
    if (ok && with_setup && t.kind != Kind::kView)
      for (const std::string& s : gen.setup(t, full))
        if (ok) ok = exec({"setup", s, t.app_owned});
    return ok;
  };
  bool alive = true;
  for (const Table& t : gen.all_tables()) alive = alive && recreate(t, true);
  alive = alive && exec({"slots", kSlots, false});

  static const std::vector<std::string> views = {"stats", "versioned_tables", "transition_rules",
                                                 "overlap_rules"};
  while (alive && n < calls) {
    if (std::chrono::duration_cast<std::chrono::seconds>(Clock::now() - start).count() >= seconds) {
      std::printf("time budget of %d s reached\n", seconds);
      break;
    }
    const int p = rng.range(0, 99);
    const Table& t = rng.pick(gen.all_tables());
    Statement st;
    if (p < 45) {
      st = gen.call(rng.pick(functions));
    } else if (p < 48) {
      st = {"view:" + rng.pick(views), "SELECT * FROM slotguard." + rng.pick(views), rng.pct(50)};
    } else if (p < 73) {
      st = {"dml", gen.dml(t), rng.pct(80) ? t.app_owned : !t.app_owned};
    } else if (p < 84) {
      st = {"ddl:alter", gen.alter_table(t), rng.pct(85) ? t.app_owned : !t.app_owned};
    } else if (p < 90) {
      st = {"ddl:hand_trigger", gen.hand_trigger(t), rng.pct(85) ? t.app_owned : !t.app_owned};
    } else if (p < 94) {
      if (t.kind == Kind::kView) continue;
      alive = recreate(t, true, true);
      const bool as_app = t.app_owned && rng.pct(30);
      for (const std::string& s : gen.scenario(t))
        if (alive) alive = exec({"scenario", s, as_app});
      continue;
    } else if (p < 97) {
      alive = recreate(t, true);
      continue;
    } else if (p < 98 && rng.pct(3)) {
      // A stadium: 100,000 numbered seats, then one request for 20,000 (or a duplicate) of them.
      st = {"stadium",
            std::string("SELECT * FROM slotguard.reserve_seats((SELECT slotguard.create_slot(") +
                "100000, seat_labels => (SELECT array_agg('s' || i) FROM generate_series(1, "
                "100000) i))), 'fan', (SELECT array_agg('s' || (1 + i % " +
                (rng.pct(50) ? "20000" : "19999") + ")) FROM generate_series(1, 20000) i))",
            rng.pct(50), 20};
    } else if (p < 98) {
      st = {"ddl:temp",
            "CREATE TEMP TABLE IF NOT EXISTS temp_t (id int PRIMARY KEY, room int, "
            "starts_at timestamptz, ends_at timestamptz, status text); "
            "SELECT slotguard.enable_versioning('temp_t'); "
            "SELECT slotguard.add_overlap_rule('temp_t', 'tt', '{room}', "
            "'{starts_at,ends_at}'); INSERT INTO temp_t VALUES (1, 1, now(), now())",
            rng.pct(50)};
    } else if (p < 99 || rng.pct(80)) {
      st = {"ddl:search_path",
            rng.pct(50) ? "SET search_path = \"Fuzz Schema\", public" : "RESET search_path",
            rng.pct(50)};
    } else {
      // Rarely: the extension itself goes and comes back.
      st = {"ddl:extension",
            std::string("DROP EXTENSION slotguard CASCADE; CREATE EXTENSION slotguard; ") +
                "GRANT USAGE ON SCHEMA slotguard TO " + kAppRole + "; " + kSlots,
            false};
    }
    alive = exec(st);
  }
  const double elapsed =
      std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start).count() / 1000.0;

  // The summary: SQLSTATE counts per function (00000 = success).
  std::printf("\n%-28s %s\n", "function / statement", "SQLSTATE: count (00000 = success)");
  std::map<std::string, long> classes;
  for (const auto& [label, states] : counts) {
    std::string line;
    for (const auto& [state, k] : states) {
      line += " " + state + ":" + std::to_string(k);
      classes[state.substr(0, 2)] += k;
    }
    std::printf("%-28s%s\n", label.c_str(), line.c_str());
  }
  std::string cls;
  for (const auto& [c, k] : classes) cls += " " + c + ":" + std::to_string(k);
  std::printf("SQLSTATE classes:%s\n", cls.c_str());
  // Functions never called (a new function the generator does not know the types of still is).
  std::string missing;
  for (const auto& f : functions)
    if (!counts.count(f.name)) missing += " " + f.name;
  if (!missing.empty()) std::printf("functions not called this run:%s\n", missing.c_str());
  std::printf("\n%ld statements (%ld as %s) in %.1f s, seed %" PRIu64
              "; lost connections: %ld, ignored cancels: %ld, failures: %zu\n",
              n, as_app, kAppRole, elapsed, seed, crashes, hangs, failures.size());
  std::printf("slowest statements:\n");
  for (const auto& w : slowest)
    std::printf("  #%ld %ld ms [%s] %s\n", w.n, w.ms, w.label.c_str(), clip(w.sql, 200).c_str());
  if (log) std::fclose(log);
  if (!failures.empty()) {
    std::printf("\nfailures (the statement log has what ran before each):\n");
    for (const auto& f : failures)
      std::printf("  #%ld as %s [%s] %s: %s\n    %s\n", f.n, f.role.c_str(), f.label.c_str(),
                  f.sqlstate.c_str(), clip(f.message, 300).c_str(), clip(f.sql, 600).c_str());
  }
  PQfinish(su.pg);
  PQfinish(app.pg);
  return failures.empty() && alive ? 0 : 1;
}
