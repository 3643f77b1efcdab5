// sg_reservation_stress: randomized concurrency test of slot-seat reservation (docs/sql-api.md,
// "Slot-seat reservation"); tests/integration/reservation_random.sh runs it on the test cluster.
//
// N client threads, each with its own libpq connection, work on a few slots for D seconds with
// random reserve / reserve_seats / confirm / cancel / availability calls; a few clients also sweep
// with expire_holds. Some calls run in explicit READ COMMITTED, REPEATABLE READ or SERIALIZABLE
// transactions that linger before COMMIT or roll back. Holds are short (300 ms .. 2 s) so they
// expire during the run, and some confirms are aimed at the instant their hold expires. Requests
// are sometimes retried with the same idempotency key, and clients sometimes share a key.
//
// What is checked:
// - by a monitor thread at intervals, each time in one REPEATABLE READ snapshot, and at the end
//   (before and after a final sweep), from the tables (check_tables):
//     spec: for each slot, confirmed seats + seats of pending holds that have not expired never
//           exceed capacity; a seat label belongs to at most one such booking; on one_per_holder
//           slots no holder has two such bookings; no hold is marked expired before its expires_at;
//           a hold cancelled after its expiry is 'expired', not 'cancelled'; status and timestamps
//           agree (an expired booking was never confirmed: its expires_at is still set).
//     implementation (docs/design.md "Hot slots"): a plain slot's shard capacities add up to its
//     capacity;
//           a shard's `used` is the seats of its pending and confirmed bookings (so even counting
//           dead, unswept holds nothing exceeds capacity); its next_expiry is no later than its
//           earliest pending hold; a numbered seat points at the pending or confirmed booking that
//           holds it, and no label is in two such bookings.
// - by the clients, as answers arrive: a successful confirm has confirmed_at before the hold's
//   expires_at (an expired hold never becomes confirmed); SG004 for a confirm, or 'expired' from
//   cancel, never arrives before the hold's expires_at; an idempotency key always yields the same
//   booking; reserve returns what was asked for; availability adds up and is never negative.
// - at the end, against what the clients saw commit: a booking seen confirmed is still confirmed,
//   or cancelled by a cancel some client saw; a booking seen cancelled / expired is still so.
//   After the final sweep, no dead hold is left pending and next_expiry() is not in the past.
//
// Expected errors are counted: SG002, SG003, SG004, SG005, and 40001 / 40P01 (a call is tried up to
// three times with the same arguments). Any other error, a lost connection, or SG002 for a booking
// a client saw commit, is a failure. Deadlocks are expected, so the clients set deadlock_timeout to
// 100 ms (--deadlock-timeout-ms): waiting the default second for each stalls the whole run.
// Exit status: 0 when nothing was violated, 1 otherwise, 2 for bad usage or a failed setup.
//
// The slots (create_slots): plain capacity 20, 50 and 130 (more than 64, so shards hold several
// seats), 12 numbered seats A1..B6, and one_per_holder with capacity 14, whose holders come from a
// pool of clients/4 names shared by all clients.
//
// Connection: libpq's environment (PGHOST, PGPORT, PGUSER, PGDATABASE), or --conninfo. The
// database must have the extension; the final checks read slotguard's tables, so connect as a
// superuser (or the extension owner).
#include <libpq-fe.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <vector>

namespace {

using Params = std::vector<std::optional<std::string>>;

// ---- time -------------------------------------------------------------------------------------

// Wall-clock microseconds since the Unix epoch: the clock PostgreSQL's timestamps come from, so
// client and server times on one machine compare directly.
int64_t wall_us() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

void sleep_us(int64_t us) {
  if (us > 0) std::this_thread::sleep_for(std::chrono::microseconds(us));
}

std::string format_us(int64_t us) {
  char buf[64];
  const std::time_t s = static_cast<std::time_t>(us / 1000000);
  std::tm tm{};
  gmtime_r(&s, &tm);
  const size_t n = std::strftime(buf, sizeof buf, "%H:%M:%S", &tm);
  std::snprintf(buf + n, sizeof buf - n, ".%06lld", static_cast<long long>(us % 1000000));
  return buf;
}

// ---- libpq ------------------------------------------------------------------------------------

// Result of one statement, all values as text.
struct Result {
  bool ok = false;
  bool conn_lost = false;  // the connection is gone (the server crashed or was stopped)
  std::string sqlstate;    // empty when ok
  std::string message;
  std::vector<std::vector<std::optional<std::string>>> rows;

  bool null(size_t r, size_t c) const { return !rows.at(r).at(c).has_value(); }
  std::string text(size_t r, size_t c) const { return rows.at(r).at(c).value_or(""); }
  int64_t num(size_t r, size_t c) const { return null(r, c) ? 0 : std::stoll(*rows.at(r).at(c)); }
};

class Conn {
 public:
  Conn(const std::string& conninfo, const std::string& application_name) {
    const char* keys[] = {"dbname", "application_name", nullptr};
    const char* values[] = {conninfo.c_str(), application_name.c_str(), nullptr};
    conn_ = PQconnectdbParams(keys, values, 1);
    if (PQstatus(conn_) != CONNECTION_OK) {
      std::string msg = PQerrorMessage(conn_);
      PQfinish(conn_);
      throw std::runtime_error("cannot connect: " + msg);
    }
    PQsetNoticeProcessor(
        conn_, [](void*, const char*) {}, nullptr);
  }
  ~Conn() { PQfinish(conn_); }
  Conn(const Conn&) = delete;
  Conn& operator=(const Conn&) = delete;

  // exec runs one statement; `types` (optional) gives the parameters' type OIDs, needed when a
  // statement does not use every parameter.
  Result exec(const std::string& sql, const Params& params = {},
              const std::vector<Oid>& types = {}) {
    std::vector<const char*> values;
    for (const auto& p : params) values.push_back(p ? p->c_str() : nullptr);
    PGresult* res =
        PQexecParams(conn_, sql.c_str(), static_cast<int>(values.size()),
                     types.empty() ? nullptr : types.data(), values.data(), nullptr, nullptr, 0);
    Result r;
    const ExecStatusType st = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;
    if (st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK) {
      r.ok = true;
      const int nrows = PQntuples(res), ncols = PQnfields(res);
      r.rows.resize(static_cast<size_t>(nrows));
      for (int i = 0; i < nrows; i++)
        for (int j = 0; j < ncols; j++)
          r.rows[static_cast<size_t>(i)].push_back(
              PQgetisnull(res, i, j) ? std::nullopt
                                     : std::optional<std::string>(PQgetvalue(res, i, j)));
    } else {
      const char* state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : nullptr;
      r.sqlstate = state ? state : "";
      r.message = res ? PQresultErrorMessage(res) : PQerrorMessage(conn_);
      while (!r.message.empty() && r.message.back() == '\n') r.message.pop_back();
      if (PQstatus(conn_) != CONNECTION_OK) {
        r.conn_lost = true;
        if (r.sqlstate.empty()) r.sqlstate = "08006";
      }
    }
    PQclear(res);
    return r;
  }

  // exec_ok runs a statement that must succeed (setup and checks); throws otherwise.
  Result exec_ok(const std::string& sql, const Params& params = {},
                 const std::vector<Oid>& types = {}) {
    Result r = exec(sql, params, types);
    if (!r.ok) throw std::runtime_error(sql.substr(0, 80) + "...: " + r.sqlstate + " " + r.message);
    return r;
  }

 private:
  PGconn* conn_ = nullptr;
};

// ---- options ----------------------------------------------------------------------------------

enum class Txn { kAuto, kReadCommitted, kRepeatableRead, kSerializable };

const char* begin_sql(Txn t) {
  switch (t) {
    case Txn::kReadCommitted:
      return "BEGIN ISOLATION LEVEL READ COMMITTED";
    case Txn::kRepeatableRead:
      return "BEGIN ISOLATION LEVEL REPEATABLE READ";
    case Txn::kSerializable:
      return "BEGIN ISOLATION LEVEL SERIALIZABLE";
    case Txn::kAuto:
      break;
  }
  return nullptr;
}

struct Options {
  int clients = 32;
  int seconds = 20;
  int sweepers = 3;
  int monitor_ms = 250;
  int deadlock_timeout_ms = 100;  // the clients' deadlock_timeout (0: the server's)
  double txn_share = 0.3;         // share of calls run in an explicit transaction
  std::vector<Txn> levels{Txn::kReadCommitted, Txn::kRepeatableRead, Txn::kSerializable};
  uint64_t seed = 0;
  std::string conninfo;
  bool verbose = false;
};

void usage(FILE* out) {
  std::fprintf(
      out,
      "usage: sg_reservation_stress [options]\n"
      "  --clients N        concurrent clients, each with its own connection (32)\n"
      "  --seconds N        how long the clients run (20)\n"
      "  --sweepers N       clients that also run expire_holds (3)\n"
      "  --monitor-ms N     interval of the monitor's invariant checks (250)\n"
      "  --isolation LIST   levels of explicit transactions: comma-separated rc, rr,\n"
      "                     serializable, or none for autocommit only (rc,rr,serializable)\n"
      "  --txn-share F      share of calls run in an explicit transaction (0.3)\n"
      "  --deadlock-timeout-ms N  the clients' deadlock_timeout, 0 for the server's (100);\n"
      "                     deadlocks are expected, and waiting the default 1 s for each\n"
      "                     stalls every client queued behind the deadlocked ones\n"
      "  --seed N           random seed (default: from the clock; printed)\n"
      "  --conninfo STR     libpq connection string (default: PG* environment)\n"
      "  --verbose          print every unexpected answer as it happens\n");
}

Options parse_options(int argc, char** argv) {
  Options o;
  o.seed = static_cast<uint64_t>(wall_us());
  for (int i = 1; i < argc; i++) {
    const std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) throw std::invalid_argument(a + " needs a value");
      return argv[++i];
    };
    if (a == "--clients") {
      o.clients = std::stoi(value());
    } else if (a == "--seconds") {
      o.seconds = std::stoi(value());
    } else if (a == "--sweepers") {
      o.sweepers = std::stoi(value());
    } else if (a == "--monitor-ms") {
      o.monitor_ms = std::stoi(value());
    } else if (a == "--deadlock-timeout-ms") {
      o.deadlock_timeout_ms = std::stoi(value());
    } else if (a == "--txn-share") {
      o.txn_share = std::stod(value());
    } else if (a == "--seed") {
      o.seed = std::stoull(value());
    } else if (a == "--conninfo") {
      o.conninfo = value();
    } else if (a == "--verbose") {
      o.verbose = true;
    } else if (a == "--isolation") {
      o.levels.clear();
      std::stringstream list(value());
      std::string item;
      while (std::getline(list, item, ',')) {
        if (item == "rc") {
          o.levels.push_back(Txn::kReadCommitted);
        } else if (item == "rr") {
          o.levels.push_back(Txn::kRepeatableRead);
        } else if (item == "serializable") {
          o.levels.push_back(Txn::kSerializable);
        } else if (item != "none") {
          throw std::invalid_argument("unknown isolation level " + item);
        }
      }
    } else if (a == "--help" || a == "-h") {
      usage(stdout);
      std::exit(0);
    } else {
      throw std::invalid_argument("unknown option " + a);
    }
  }
  if (o.clients < 1 || o.seconds < 1 || o.sweepers < 0 || o.monitor_ms < 1 || o.txn_share < 0 ||
      o.txn_share > 1 || o.deadlock_timeout_ms < 0)
    throw std::invalid_argument("option out of range");
  return o;
}

// ---- what the run works on and what it saw ----------------------------------------------------

enum class Kind { kPlain, kNumbered, kOnePerHolder };

struct Slot {
  std::string name;
  Kind kind;
  int capacity;
  std::vector<std::string> labels;  // numbered seats
  int64_t id = 0;
};

// The run's slots, by their index in Shared::slots (create_slots makes them in this order).
enum SlotIndex : size_t { kPlain20, kPlain50, kPlain130, kNumbered12, kOnePerHolder14 };

enum Op { kReserve, kReserveSeats, kConfirm, kCancel, kAvailability, kSweep, kOpCount };
const char* const kOpNames[kOpCount] = {"reserve", "reserve_seats", "confirm",
                                        "cancel",  "availability",  "expire_holds"};

struct OpStats {
  uint64_t ok = 0;
  uint64_t rolled_back = 0;                // succeeded, then the client rolled its transaction back
  std::map<std::string, uint64_t> errors;  // by SQLSTATE
};

bool retryable(const std::string& state) {
  return state == "40001" || state == "40P01";
}
bool expected_error(const std::string& state) {
  return state == "SG002" || state == "SG003" || state == "SG004" || state == "SG005" ||
         retryable(state);
}

// Shared is everything the threads share: the slots, the stop flag, and what clients saw commit.
struct Shared {
  Options opt;
  std::vector<Slot> slots;
  std::string slot_ids;  // the slots' ids as an array literal, for the checks
  std::atomic<bool> stop{false};

  std::mutex mu;  // guards everything below
  std::vector<std::string> violations;
  std::unordered_map<int64_t, int64_t> hold_expiry;      // booking -> its hold's expires_at
  std::unordered_map<std::string, int64_t> key_booking;  // "slot/key" -> booking
  std::unordered_set<int64_t> seen_confirmed, seen_cancelled, seen_expired;
  std::vector<int64_t> recent;  // ring of recently seen bookings, for cancels of others' bookings
  size_t recent_next = 0;
  uint64_t monitor_checks = 0;
  std::unordered_set<std::string> monitor_seen;  // the monitor reports a lasting problem once
  uint64_t monitor_repeats = 0;

  void violation(const std::string& what) {
    std::lock_guard<std::mutex> g(mu);
    violation_locked(what);
  }
  // violation_locked records a violation (and prints the first ones at once); mu must be held.
  void violation_locked(const std::string& what) {
    if (violations.size() < 100) std::fprintf(stderr, "VIOLATION: %s\n", what.c_str());
    violations.push_back(what);
  }
  size_t violation_count() {
    std::lock_guard<std::mutex> g(mu);
    return violations.size();
  }
};

// A booking as the functions return it (kBookingColumns).
struct Booking {
  int64_t id = 0;
  int64_t slot_id = 0;
  std::string status;
  std::string holder;
  int seats = 0;
  std::vector<std::string> labels;
  int64_t expires_us = 0;    // 0: NULL
  int64_t confirmed_us = 0;  // 0: NULL
};

constexpr const char* kBookingColumns =
    "id, slot_id, status, holder, seats, array_to_string(seat_labels, ','), "
    "(extract(epoch FROM expires_at) * 1000000)::bigint, "
    "(extract(epoch FROM confirmed_at) * 1000000)::bigint";

Booking parse_booking(const Result& r) {
  Booking b;
  b.id = r.num(0, 0);
  b.slot_id = r.num(0, 1);
  b.status = r.text(0, 2);
  b.holder = r.text(0, 3);
  b.seats = static_cast<int>(r.num(0, 4));
  if (!r.null(0, 5)) {
    std::stringstream list(r.text(0, 5));
    std::string item;
    while (std::getline(list, item, ',')) b.labels.push_back(item);
  }
  b.expires_us = r.num(0, 6);
  b.confirmed_us = r.num(0, 7);
  return b;
}

// ---- the invariants, from the tables ----------------------------------------------------------

// Each check is a query over the run's slots ($2, a bigint[] literal) as of time $1 (a timestamptz
// no earlier than the snapshot) that returns one line of text per violation.
struct TableCheck {
  const char* name;
  const char* sql;
};

const TableCheck kTableChecks[] = {
    {"capacity",  // spec; the second half is implied by `used` (all holds, dead or not, counted)
     "SELECT format('slot %s: capacity %s, confirmed %s + live held %s = %s%s', s.id, s.capacity,"
     "  c.confirmed, c.live, c.confirmed + c.live,"
     "  CASE WHEN c.confirmed + c.live <= s.capacity"
     "  THEN format(' (but %s with the dead holds not yet taken back)', c.all_held) END)"
     " FROM slotguard.slots s CROSS JOIN LATERAL (SELECT"
     "  coalesce(sum(b.seats) FILTER (WHERE b.status = 'confirmed'), 0) AS confirmed,"
     "  coalesce(sum(b.seats) FILTER (WHERE b.status = 'pending' AND b.expires_at > $1), 0) AS "
     "live,"
     "  coalesce(sum(b.seats), 0) AS all_held"
     "  FROM slotguard.bookings b"
     "  WHERE b.slot_id = s.id AND b.status IN ('pending', 'confirmed')) c"
     " WHERE s.id = ANY ($2::bigint[]) AND c.all_held > s.capacity"},
    {"seat labels",  // spec for live bookings; pending dead ones too (a seat is reused only after
                     // its old hold is marked expired)
     "SELECT format('slot %s: seat %s belongs to %s bookings (%s live): %s', b.slot_id, l.label,"
     "  count(*), count(*) FILTER (WHERE b.status = 'confirmed' OR b.expires_at > $1),"
     "  string_agg(format('%s %s %s', b.id, b.status, b.expires_at), ', ' ORDER BY b.id))"
     " FROM slotguard.bookings b CROSS JOIN LATERAL unnest(b.seat_labels) AS l(label)"
     " WHERE b.slot_id = ANY ($2::bigint[]) AND b.status IN ('pending', 'confirmed')"
     " GROUP BY b.slot_id, l.label HAVING count(*) > 1"},
    {"one per holder",  // spec
     "SELECT format('slot %s (one_per_holder): holder %s has %s live bookings: %s', b.slot_id,"
     "  b.holder, count(*), string_agg(format('%s %s, created %s, expires %s, confirmed %s',"
     "  b.id, b.status, b.created_at, b.expires_at, b.confirmed_at), '; ' ORDER BY b.id))"
     " FROM slotguard.bookings b JOIN slotguard.slots s ON s.id = b.slot_id AND s.one_per_holder"
     " WHERE b.slot_id = ANY ($2::bigint[])"
     "  AND (b.status = 'confirmed' OR (b.status = 'pending' AND b.expires_at > $1))"
     " GROUP BY b.slot_id, b.holder HAVING count(*) > 1"},
    {"booking rows",  // spec: statuses and timestamps agree; implementation: shard / labels
     "SELECT format('booking %s (slot %s, %s, seats %s, shard %s, labels %s, expires %s,"
     "  confirmed %s, cancelled %s): %s', b.id, b.slot_id, b.status, b.seats, b.shard,"
     "  b.seat_labels, b.expires_at, b.confirmed_at, b.cancelled_at, p.problem)"
     " FROM slotguard.bookings b JOIN slotguard.slots s ON s.id = b.slot_id"
     " CROSS JOIN LATERAL (SELECT CASE"
     "  WHEN b.status = 'expired' AND b.expires_at IS NULL"
     "   THEN 'expired, but it has no hold: it was confirmed'"
     "  WHEN b.status = 'expired' AND b.expires_at > $1 THEN 'marked expired before its time'"
     "  WHEN b.status = 'confirmed' AND (b.expires_at IS NOT NULL OR b.confirmed_at IS NULL)"
     "   THEN 'confirmed, but expires_at is set or confirmed_at is not'"
     "  WHEN b.status = 'pending' AND (b.expires_at IS NULL OR b.confirmed_at IS NOT NULL)"
     "   THEN 'pending without a hold, or with confirmed_at'"
     "  WHEN b.status = 'cancelled' AND b.cancelled_at IS NULL THEN 'cancelled without "
     "cancelled_at'"
     "  WHEN b.status = 'cancelled' AND b.confirmed_at IS NULL AND b.cancelled_at >= b.expires_at"
     "   THEN 'a hold cancelled after it had expired must be expired, not cancelled'"
     "  WHEN s.seat_labels IS NULL AND (b.seat_labels IS NOT NULL OR b.shard IS NULL"
     "   OR b.shard < 0 OR b.shard >= s.shards) THEN 'plain-slot booking without a valid shard'"
     "  WHEN s.seat_labels IS NOT NULL AND (b.shard IS NOT NULL"
     "   OR cardinality(b.seat_labels) IS DISTINCT FROM b.seats"
     "   OR NOT b.seat_labels <@ s.seat_labels)"
     "   THEN 'numbered-seat booking whose labels do not match its seats or the slot'"
     "  END AS problem) p"
     " WHERE b.slot_id = ANY ($2::bigint[]) AND p.problem IS NOT NULL"},
    {"shard capacities",  // implementation
     "SELECT format('slot %s: capacity %s, shards %s, but %s shard rows with capacities adding"
     "  up to %s', s.id, s.capacity, s.shards, count(sh.shard), coalesce(sum(sh.capacity), 0))"
     " FROM slotguard.slots s LEFT JOIN slotguard.slot_shards sh ON sh.slot_id = s.id"
     " WHERE s.id = ANY ($2::bigint[]) AND s.seat_labels IS NULL"
     " GROUP BY s.id HAVING coalesce(sum(sh.capacity), 0) <> s.capacity"
     "  OR count(sh.shard) <> s.shards"},
    {"shard usage",  // implementation
     "SELECT format('slot %s shard %s: capacity %s, used %s, next_expiry %s; its pending and"
     "  confirmed bookings hold %s seats, earliest pending expiry %s', sh.slot_id, sh.shard,"
     "  sh.capacity, sh.used, sh.next_expiry, b.seats, b.first_expiry)"
     " FROM slotguard.slot_shards sh CROSS JOIN LATERAL (SELECT"
     "  coalesce(sum(seats), 0) AS seats,"
     "  min(expires_at) FILTER (WHERE status = 'pending') AS first_expiry"
     "  FROM slotguard.bookings WHERE slot_id = sh.slot_id AND shard = sh.shard"
     "  AND status IN ('pending', 'confirmed')) b"
     " WHERE sh.slot_id = ANY ($2::bigint[]) AND (sh.used <> b.seats OR sh.used > sh.capacity"
     "  OR (b.first_expiry IS NOT NULL"
     "   AND (sh.next_expiry IS NULL OR sh.next_expiry > b.first_expiry)))"},
    {"seat rows",  // implementation: a held seat points at the booking holding it
     "SELECT format('slot %s: booking %s (%s) has seat %s, but the seat row points at %s',"
     "  b.slot_id, b.id, b.status, l.label, coalesce(se.booking_id::text, 'nothing'))"
     " FROM slotguard.bookings b CROSS JOIN LATERAL unnest(b.seat_labels) AS l(label)"
     " LEFT JOIN slotguard.seats se ON se.slot_id = b.slot_id AND se.label = l.label"
     " WHERE b.slot_id = ANY ($2::bigint[]) AND b.status IN ('pending', 'confirmed')"
     "  AND se.booking_id IS DISTINCT FROM b.id"},
};

// Type OIDs of the checks' parameters (fixed in PostgreSQL's pg_type.dat).
constexpr Oid kTimestamptzOid = 1184, kInt8ArrayOid = 1016;

// check_tables runs every TableCheck in one REPEATABLE READ snapshot; returns how many
// violations it found (each is recorded with `when`; with `dedupe`, only the first time).
size_t check_tables(Conn& c, Shared& sh, const std::string& when, bool dedupe = false) {
  c.exec_ok("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
  size_t found = 0;
  try {
    // The first statement takes the snapshot; clock_timestamp() is read after it, so every
    // transaction in the snapshot decided with a clock reading no later than `at`.
    const std::string at = c.exec_ok("SELECT clock_timestamp()::text").text(0, 0);
    for (const TableCheck& check : kTableChecks) {
      const Result r = c.exec_ok(check.sql, {at, sh.slot_ids}, {kTimestamptzOid, kInt8ArrayOid});
      for (size_t i = 0; i < r.rows.size(); i++, found++) {
        const std::string what = std::string(check.name) + ": " + r.text(i, 0);
        std::lock_guard<std::mutex> g(sh.mu);
        if (dedupe && !sh.monitor_seen.insert(what).second)
          sh.monitor_repeats++;
        else
          sh.violation_locked(when + " at " + at + ", " + what);
      }
    }
  } catch (...) {
    c.exec("ROLLBACK");
    throw;
  }
  c.exec_ok("COMMIT");
  return found;
}

// ---- a client ---------------------------------------------------------------------------------

class Client {
 public:
  Client(Shared& sh, int index)
      : sh_(sh),
        index_(index),
        sweeper_(index < sh.opt.sweepers),
        rng_(sh.opt.seed * 1000003 + static_cast<uint64_t>(index)),
        conn_(sh.opt.conninfo, "sg_stress_client_" + std::to_string(index)),
        holder_("client" + std::to_string(index)) {
    if (sh.opt.deadlock_timeout_ms > 0)  // a superuser setting: the test connects as one
      conn_.exec_ok("SET deadlock_timeout = " + std::to_string(sh.opt.deadlock_timeout_ms));
  }

  // run: the mix is reserve 45%, reserve_seats 12%, confirm 17%, cancel 16%, availability 10%
  // (a sweeper runs expire_holds in place of 25 of the 45 points of reserve), plus the aimed
  // confirms whenever one is due.
  void run() {
    while (!sh_.stop.load()) {
      if (confirm_aimed()) continue;
      const int r = uniform(0, 99);
      if (sweeper_ && r < 25) {
        op_sweep();
        sleep_us(uniform(5, 50) * 1000);
      } else if (r < 45) {
        op_reserve(false);
      } else if (r < 57) {
        op_reserve(true);
      } else if (r < 74) {
        op_confirm();
      } else if (r < 90) {
        op_cancel();
      } else {
        op_availability();
      }
    }
  }

  const std::array<OpStats, kOpCount>& stats() const { return stats_; }
  uint64_t aimed() const { return aimed_; }

 private:
  // A hold this client got and may confirm.
  struct Hold {
    int64_t id;
    int64_t expires_us;
    bool aim;  // to be confirmed at the instant it expires (confirm_aimed)
  };
  // The arguments of a reserve / reserve_seats call (kept to retry with the same idempotency key).
  struct ReserveArgs {
    size_t slot = 0;
    bool with_labels = false;
    std::string holder;
    int seats = 1;
    std::vector<std::string> labels;
    int ttl_ms = 1000;
    std::optional<std::string> key;
    bool shared_key = false;  // other clients use the key too, with their own arguments
    bool confirm = false;
  };
  // What became of one call.
  struct Outcome {
    bool committed = false;    // it succeeded and its transaction committed
    bool rolled_back = false;  // it succeeded and the client rolled back
    Result res;                // the call's answer (on a failed COMMIT, COMMIT's)
    int64_t recv_us = 0;       // when the call's answer arrived
  };

  int uniform(int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng_); }
  bool chance(double p) { return std::uniform_real_distribution<double>(0, 1)(rng_) < p; }
  template <typename T>
  size_t pick(const std::vector<T>& v) {
    return static_cast<size_t>(uniform(0, static_cast<int>(v.size()) - 1));
  }
  std::string who() const { return "client " + std::to_string(index_); }

  Txn pick_txn(bool force_explicit) {
    const auto& levels = sh_.opt.levels;
    if (levels.empty() || (!force_explicit && !chance(sh_.opt.txn_share))) return Txn::kAuto;
    return levels[pick(levels)];
  }

  // attempt runs one call, maybe inside an explicit transaction that lingers (linger_ms, or a
  // random 0..15 ms half the time when negative) before it commits or, now and then, rolls back.
  Outcome attempt(const std::string& sql, const Params& params, bool force_explicit,
                  int linger_ms) {
    Outcome o;
    const Txn txn = pick_txn(force_explicit);
    if (txn == Txn::kAuto) {
      o.res = conn_.exec(sql, params);
      o.recv_us = wall_us();
      o.committed = o.res.ok;
      return o;
    }
    o.res = conn_.exec(begin_sql(txn));
    if (!o.res.ok) return o;
    o.res = conn_.exec(sql, params);
    o.recv_us = wall_us();
    if (!o.res.ok) {
      conn_.exec("ROLLBACK");
      return o;
    }
    if (linger_ms < 0 && chance(0.5)) linger_ms = uniform(0, 15);
    if (linger_ms > 0) sleep_us(linger_ms * 1000);
    if (chance(0.08)) {
      conn_.exec("ROLLBACK");
      o.rolled_back = true;
      return o;
    }
    Result commit = conn_.exec("COMMIT");
    if (commit.ok) {
      o.committed = true;
    } else {
      o.res = commit;  // e.g. a serialization failure at commit
    }
    return o;
  }

  // call runs `sql` as operation `op`, trying up to three times on 40001 / 40P01, and counts the
  // outcome. An error that is not expected, or a lost connection, is a violation.
  Outcome call(Op op, const std::string& sql, const Params& params, bool force_explicit = false,
               int linger_ms = -1) {
    OpStats& st = stats_[op];
    for (int tries = 1;; tries++) {
      Outcome o = attempt(sql, params, force_explicit, linger_ms);
      if (o.committed) {
        st.ok++;
        return o;
      }
      if (o.rolled_back) {
        st.rolled_back++;
        return o;
      }
      st.errors[o.res.sqlstate]++;
      if (o.res.conn_lost) {
        sh_.violation(who() + ": lost the connection during " + kOpNames[op] + ": " +
                      o.res.message);
        sh_.stop = true;
        return o;
      }
      if (retryable(o.res.sqlstate) && tries < 3 && !sh_.stop.load()) {
        sleep_us(uniform(1, 10) * 1000);
        continue;
      }
      if (!expected_error(o.res.sqlstate))
        sh_.violation(who() + ": " + kOpNames[op] + " failed unexpectedly: " + o.res.sqlstate +
                      " " + o.res.message + " [" + sql + "]");
      else if (sh_.opt.verbose && !retryable(o.res.sqlstate))
        std::fprintf(stderr, "%s: %s: %s %s\n", who().c_str(), kOpNames[op], o.res.sqlstate.c_str(),
                     o.res.message.c_str());
      return o;
    }
  }

  void note_recent(int64_t id) {
    std::lock_guard<std::mutex> g(sh_.mu);
    if (sh_.recent.size() < 256) {
      sh_.recent.push_back(id);
    } else {
      sh_.recent[sh_.recent_next] = id;
      sh_.recent_next = (sh_.recent_next + 1) % sh_.recent.size();
    }
  }

  int64_t hold_expiry(int64_t id) {
    std::lock_guard<std::mutex> g(sh_.mu);
    auto it = sh_.hold_expiry.find(id);
    return it == sh_.hold_expiry.end() ? 0 : it->second;
  }

  void forget(int64_t id) {
    auto gone = [id](const Hold& h) { return h.id == id; };
    pending_.erase(std::remove_if(pending_.begin(), pending_.end(), gone), pending_.end());
    confirmed_.erase(std::remove(confirmed_.begin(), confirmed_.end(), id), confirmed_.end());
  }

  // -- reserve / reserve_seats ------------------------------------------------------------------

  void op_reserve(bool with_labels) {
    const int r = uniform(0, 99);
    if (r < 10 && !own_keys_.empty()) {  // a retry: same key, same arguments
      reserve(own_keys_[pick(own_keys_)]);
      return;
    }
    ReserveArgs a;
    a.with_labels = with_labels;
    if (with_labels) {
      a.slot = kNumbered12;
    } else {
      const int s = uniform(0, 99);
      a.slot = s < 20   ? kPlain20
               : s < 35 ? kPlain50
               : s < 50 ? kPlain130
               : s < 65 ? kNumbered12
                        : kOnePerHolder14;
    }
    const Slot& slot = sh_.slots[a.slot];
    if (slot.kind == Kind::kOnePerHolder) {
      // A small pool of holders shared by all clients, so that they race for the same holder.
      a.holder = "h" + std::to_string(uniform(0, std::max(4, sh_.opt.clients / 4) - 1));
      a.seats = uniform(1, 2);
    } else {
      a.holder = holder_;
      a.seats = uniform(1, 3);
    }
    if (with_labels) {
      std::vector<std::string> labels = slot.labels;
      std::shuffle(labels.begin(), labels.end(), rng_);
      labels.resize(static_cast<size_t>(a.seats));
      a.labels = labels;
    }
    a.ttl_ms = uniform(300, 2000);
    a.confirm = chance(0.15);
    if (r < 35) {
      a.key = "c" + std::to_string(index_) + "-" + std::to_string(next_key_++);
    } else if (r < 42) {
      // Clients that pick a shared key in the same quarter second race with the same key, as
      // one client's retries on several connections do: with the same holder (a key reused by
      // another holder is 22023 and never returns that holder's booking).
      a.key = "shared-" + std::to_string(wall_us() / 250000);
      a.holder = "shared-holder";
      a.shared_key = true;
    }
    reserve(a);
    if (a.key && !a.shared_key) {
      if (own_keys_.size() >= 32) own_keys_.erase(own_keys_.begin());
      own_keys_.push_back(a);
    }
  }

  void reserve(const ReserveArgs& a) {
    const Slot& slot = sh_.slots[a.slot];
    std::string seats = std::to_string(a.seats);
    if (a.with_labels) {
      seats = "{";
      for (size_t i = 0; i < a.labels.size(); i++) seats += (i ? "," : "") + a.labels[i];
      seats += "}";
    }
    const std::string sql =
        std::string("SELECT ") + kBookingColumns +
        (a.with_labels ? " FROM slotguard.reserve_seats($1::bigint, $2, $3::text[], "
                       : " FROM slotguard.reserve($1::bigint, $2, $3::int, ") +
        "$4::interval, $5, $6::boolean)";
    const int64_t sent_us = wall_us();
    const Outcome o =
        call(a.with_labels ? kReserveSeats : kReserve, sql,
             {std::to_string(slot.id), a.holder, seats, std::to_string(a.ttl_ms) + " milliseconds",
              a.key, a.confirm ? "true" : "false"});
    if (!o.committed) return;
    const Booking b = parse_booking(o.res);
    std::string what = who() + ": " + kOpNames[a.with_labels ? kReserveSeats : kReserve] +
                       " on slot " + slot.name + " returned booking " + std::to_string(b.id) +
                       " (" + b.status + ")";
    // What came back must be what was asked for (a shared key returns whoever's booking won).
    if (b.slot_id != slot.id) sh_.violation(what + " of slot " + std::to_string(b.slot_id));
    if (!a.shared_key && (b.holder != a.holder || b.seats != a.seats))
      sh_.violation(what + " for holder " + b.holder + " with " + std::to_string(b.seats) +
                    " seats; asked: " + a.holder + ", " + std::to_string(a.seats));
    if (!a.key && b.status != (a.confirm ? "confirmed" : "pending"))
      sh_.violation(what + ": a new booking must be " + (a.confirm ? "confirmed" : "pending"));
    if (!a.key && !a.confirm &&
        (b.expires_us < sent_us + a.ttl_ms * 1000LL ||
         b.expires_us > o.recv_us + a.ttl_ms * 1000LL))
      sh_.violation(what + ": expires_at " + format_us(b.expires_us) + " is not " +
                    std::to_string(a.ttl_ms) + " ms after the call (" + format_us(sent_us) +
                    " .. " + format_us(o.recv_us) + ")");
    if (slot.kind == Kind::kNumbered) {
      bool known = b.labels.size() == static_cast<size_t>(b.seats);
      for (const auto& l : b.labels)
        known = known && std::find(slot.labels.begin(), slot.labels.end(), l) != slot.labels.end();
      if (!known) sh_.violation(what + ": its seat labels do not match its seats");
      if (a.with_labels && !a.shared_key &&
          std::set<std::string>(b.labels.begin(), b.labels.end()) !=
              std::set<std::string>(a.labels.begin(), a.labels.end()))
        sh_.violation(what + ": it has other seats than the ones asked for");
    } else if (!b.labels.empty()) {
      sh_.violation(what + ": seat labels on a slot without numbered seats");
    }
    {
      std::lock_guard<std::mutex> g(sh_.mu);
      if (a.key) {
        const auto [it, inserted] =
            sh_.key_booking.emplace(std::to_string(slot.id) + "/" + *a.key, b.id);
        if (!inserted && it->second != b.id)
          sh_.violation_locked(what + ", but idempotency key " + *a.key + " already gave booking " +
                               std::to_string(it->second));
      }
      if (b.expires_us != 0) sh_.hold_expiry.emplace(b.id, b.expires_us);
      if (b.status == "confirmed") sh_.seen_confirmed.insert(b.id);
    }
    note_recent(b.id);
    if (b.status == "pending" && std::none_of(pending_.begin(), pending_.end(),
                                              [&](const Hold& h) { return h.id == b.id; })) {
      if (pending_.size() >= 48) pending_.erase(pending_.begin());
      // Aim at the expiry of many holds of the one_per_holder slot: a confirm that commits after
      // the expiry races with the same holder's next reservation.
      pending_.push_back({b.id, b.expires_us, chance(a.slot == kOnePerHolder14 ? 0.5 : 0.2)});
    }
    if (b.status == "confirmed") remember_confirmed(b.id);
  }

  void remember_confirmed(int64_t id) {
    if (std::find(confirmed_.begin(), confirmed_.end(), id) != confirmed_.end()) return;
    if (confirmed_.size() >= 32) confirmed_.erase(confirmed_.begin());
    confirmed_.push_back(id);
  }

  // -- confirm ----------------------------------------------------------------------------------

  // pick_hold picks one of the client's holds, leaving alone those kept for confirm_aimed (until
  // their time has passed); with `expiring`, preferably one that expires in the next 150 ms.
  std::optional<size_t> pick_hold(bool expiring) {
    const int64_t now = wall_us();
    std::vector<size_t> usable, soon;
    for (size_t i = 0; i < pending_.size(); i++) {
      const int64_t left = pending_[i].expires_us - now;
      if (pending_[i].aim && left > 0) continue;
      usable.push_back(i);
      if (left > 0 && left < 150000) soon.push_back(i);
    }
    if (expiring && !soon.empty()) return soon[pick(soon)];
    if (usable.empty()) return std::nullopt;
    return usable[pick(usable)];
  }

  // op_confirm confirms one of the client's holds, often one about to expire.
  void op_confirm() {
    if (const auto i = pick_hold(chance(0.5))) {
      confirm(*i, false);
    } else {
      op_reserve(false);
    }
  }

  // confirm_aimed confirms a hold that was picked, when it was reserved, for a confirm at the
  // instant it expires — if one is due in the next 150 ms. Returns whether it did.
  bool confirm_aimed() {
    const int64_t now = wall_us();
    for (size_t i = 0; i < pending_.size(); i++) {
      const int64_t left = pending_[i].expires_us - now;
      if (pending_[i].aim && left > 0 && left <= 150000) {
        confirm(i, true);
        return true;
      }
    }
    return false;
  }

  // confirm confirms pending_[i]. An aimed confirm waits for the instant the hold expires (give
  // or take a few ms) and runs in a transaction that lingers before COMMIT: it races with buyers
  // taking the seats back and with reservations by the same holder.
  void confirm(size_t i, bool aim) {
    const Hold h = pending_[i];
    if (aim) {
      aimed_++;
      sleep_us(h.expires_us - wall_us() + uniform(-8000, 2000));
    }
    const Outcome o =
        call(kConfirm, std::string("SELECT ") + kBookingColumns + " FROM slotguard.confirm($1)",
             {std::to_string(h.id)}, aim, aim ? uniform(5, 100) : -1);
    const std::string what = who() + ": confirm of booking " + std::to_string(h.id) +
                             " (hold until " + format_us(h.expires_us) + ")";
    if (o.committed) {
      const Booking b = parse_booking(o.res);
      if (b.status != "confirmed")
        sh_.violation(what + " returned status " + b.status);
      else if (b.confirmed_us == 0 || b.confirmed_us >= h.expires_us)
        sh_.violation(what + " succeeded with confirmed_at " + format_us(b.confirmed_us) +
                      ": an expired hold became confirmed");
      {
        std::lock_guard<std::mutex> g(sh_.mu);
        sh_.seen_confirmed.insert(h.id);
      }
      forget(h.id);
      remember_confirmed(h.id);
    } else if (o.res.sqlstate == "SG004") {
      if (o.recv_us < h.expires_us)
        sh_.violation(what + " got SG004 at " + format_us(o.recv_us) + ", before the hold expired");
      forget(h.id);
    } else if (o.res.sqlstate == "SG005") {
      forget(h.id);  // another client cancelled it
    } else if (o.res.sqlstate == "SG002") {
      sh_.violation(what + ": SG002, but the booking was committed");
      forget(h.id);
    }
  }

  // -- cancel -----------------------------------------------------------------------------------

  void op_cancel() {
    int64_t id = 0;
    const int r = uniform(0, 99);
    const auto hold = pick_hold(false);
    if (r < 40 && hold) {
      id = pending_[*hold].id;
    } else if (r < 80 && !confirmed_.empty()) {
      id = confirmed_[pick(confirmed_)];
    } else {
      std::lock_guard<std::mutex> g(sh_.mu);
      if (!sh_.recent.empty()) id = sh_.recent[pick(sh_.recent)];
    }
    if (id == 0) {
      op_availability();
      return;
    }
    const Outcome o =
        call(kCancel, std::string("SELECT ") + kBookingColumns + " FROM slotguard.cancel($1)",
             {std::to_string(id)});
    const std::string what = who() + ": cancel of booking " + std::to_string(id);
    if (o.committed) {
      const Booking b = parse_booking(o.res);
      const int64_t expires = hold_expiry(id);
      std::lock_guard<std::mutex> g(sh_.mu);
      if (b.status == "cancelled") {
        sh_.seen_cancelled.insert(id);
      } else if (b.status == "expired") {
        sh_.seen_expired.insert(id);
        if (expires == 0 || o.recv_us < expires)
          sh_.violation_locked(what + " answered 'expired' at " + format_us(o.recv_us) +
                               ", but its hold expires at " + format_us(expires));
      } else {
        sh_.violation_locked(what + " returned status " + b.status);
      }
    } else if (o.res.sqlstate == "SG002") {
      sh_.violation(what + ": SG002, but the booking was committed");
    }
    if (o.committed || o.res.sqlstate == "SG002") forget(id);
  }

  // -- availability and sweeps ------------------------------------------------------------------

  void op_availability() {
    const Slot& slot = sh_.slots[pick(sh_.slots)];
    const Outcome o = call(kAvailability,
                           "SELECT capacity, confirmed, held, free FROM slotguard.availability($1)",
                           {std::to_string(slot.id)});
    if (!o.committed) return;
    const int64_t cap = o.res.num(0, 0), confirmed = o.res.num(0, 1), held = o.res.num(0, 2),
                  free = o.res.num(0, 3);
    if (o.res.rows.size() != 1 || cap != slot.capacity || confirmed < 0 || held < 0 || free < 0 ||
        confirmed + held + free != cap)
      sh_.violation(who() + ": availability of slot " + slot.name + ": capacity " +
                    std::to_string(cap) + ", confirmed " + std::to_string(confirmed) + ", held " +
                    std::to_string(held) + ", free " + std::to_string(free));
  }

  void op_sweep() {
    static const int kBatches[] = {1, 10, 100, 10000};
    const int batch = kBatches[uniform(0, 3)];
    const Outcome o = call(kSweep, "SELECT slotguard.expire_holds($1)", {std::to_string(batch)});
    if (o.committed && (o.res.num(0, 0) < 0 || o.res.num(0, 0) > batch))
      sh_.violation(who() + ": expire_holds(" + std::to_string(batch) + ") returned " +
                    o.res.text(0, 0));
  }

  Shared& sh_;
  const int index_;
  const bool sweeper_;
  std::mt19937_64 rng_;
  Conn conn_;
  const std::string holder_;
  std::array<OpStats, kOpCount> stats_{};
  std::vector<Hold> pending_;          // own holds that may still be confirmed
  std::vector<int64_t> confirmed_;     // own confirmed bookings, to cancel some
  std::vector<ReserveArgs> own_keys_;  // requests made with an own idempotency key, to retry
  uint64_t next_key_ = 0;
  uint64_t aimed_ = 0;  // confirms aimed at the instant their hold expires
};

// ---- setup, the final checks, the summary -----------------------------------------------------

void create_slots(Conn& c, Shared& sh) {
  std::vector<std::string> labels;
  for (const char* row : {"A", "B"})
    for (int n = 1; n <= 6; n++) labels.push_back(row + std::to_string(n));
  // In the order of SlotIndex.
  sh.slots = {{"plain20", Kind::kPlain, 20, {}},
              {"plain50", Kind::kPlain, 50, {}},
              {"plain130", Kind::kPlain, 130, {}},  // more than 64: shards of 2 or 3 seats
              {"numbered12", Kind::kNumbered, 12, labels},
              {"one_per_holder14", Kind::kOnePerHolder, 14, {}}};
  sh.slot_ids = "{";
  for (Slot& s : sh.slots) {
    std::string label_list;
    for (size_t i = 0; i < s.labels.size(); i++) label_list += (i ? "," : "") + s.labels[i];
    const Result r = c.exec_ok(
        "SELECT slotguard.create_slot($1::int, resource => $2, hold_ttl => '1 second',"
        " seat_labels => $3::text[], one_per_holder => $4::boolean)",
        {std::to_string(s.capacity), "sg_reservation_stress " + s.name,
         s.labels.empty() ? std::nullopt : std::optional<std::string>("{" + label_list + "}"),
         s.kind == Kind::kOnePerHolder ? "true" : "false"});
    s.id = r.num(0, 0);
    sh.slot_ids += (sh.slot_ids.size() > 1 ? "," : "") + std::to_string(s.id);
  }
  sh.slot_ids += "}";
}

// check_observations compares what the clients saw commit with the bookings' final statuses.
void check_observations(Conn& c, Shared& sh) {
  const Result r =
      c.exec_ok("SELECT id, status FROM slotguard.bookings WHERE slot_id = ANY ($1::bigint[])",
                {sh.slot_ids});
  std::unordered_map<int64_t, std::string> status;
  for (size_t i = 0; i < r.rows.size(); i++) status[r.num(i, 0)] = r.text(i, 1);
  auto final_status = [&](int64_t id) {
    auto it = status.find(id);
    return it == status.end() ? std::string("missing") : it->second;
  };
  std::lock_guard<std::mutex> g(sh.mu);
  auto bad = [&](int64_t id, const std::string& seen) {
    sh.violation_locked("end: booking " + std::to_string(id) + " was seen " + seen +
                        ", but its status is " + final_status(id));
  };
  for (int64_t id : sh.seen_confirmed) {
    const std::string s = final_status(id);
    if (s == "confirmed") continue;
    if (s == "cancelled" && sh.seen_cancelled.count(id)) continue;
    bad(id, sh.seen_cancelled.count(id) ? "confirmed and cancelled"
                                        : "confirmed (and never cancelled)");
  }
  for (int64_t id : sh.seen_cancelled)
    if (final_status(id) != "cancelled") bad(id, "cancelled");
  for (int64_t id : sh.seen_expired) {
    if (final_status(id) != "expired") bad(id, "expired");
    if (sh.seen_confirmed.count(id)) bad(id, "expired and confirmed");
  }
  for (const auto& [key, id] : sh.key_booking)
    if (!status.count(id)) bad(id, "as the booking of idempotency key " + key);
}

// final_sweep runs expire_holds until it finds nothing and next_expiry() is not in the past (a
// call visits at most 64 shards with a stale next_expiry, so that can take a few calls), then
// checks that no dead hold is left pending and that next_expiry() has caught up.
void final_sweep(Conn& c, Shared& sh) {
  const std::string before = c.exec_ok("SELECT clock_timestamp()::text").text(0, 0);
  int64_t swept = 0;
  int calls = 0;
  bool stale = true;
  while (calls < 20) {
    const int64_t n = c.exec_ok("SELECT slotguard.expire_holds()").num(0, 0);
    calls++;
    swept += n;
    stale =
        c.exec_ok("SELECT slotguard.next_expiry() <= $1::timestamptz", {before}).text(0, 0) == "t";
    if (n == 0 && !stale) break;
  }
  const Result left = c.exec_ok(
      "SELECT count(*), string_agg(id::text, ', ' ORDER BY id) FROM slotguard.bookings"
      " WHERE slot_id = ANY ($2::bigint[]) AND status = 'pending' AND expires_at <= $1",
      {before, sh.slot_ids});
  if (left.num(0, 0) > 0)
    sh.violation("end: after " + std::to_string(calls) + " calls of expire_holds, " +
                 left.text(0, 0) + " holds that expired before " + before +
                 " are still pending: " + left.text(0, 1));
  if (stale)
    sh.violation("end: after " + std::to_string(calls) + " calls of expire_holds from " + before +
                 " on, next_expiry() is still " +
                 c.exec_ok("SELECT slotguard.next_expiry()::text").text(0, 0));
  std::printf("final sweep: %d calls of expire_holds marked %lld holds expired\n", calls,
              static_cast<long long>(swept));
}

void print_summary(Conn& c, Shared& sh, const std::vector<std::unique_ptr<Client>>& clients,
                   double elapsed) {
  std::array<OpStats, kOpCount> total{};
  for (const auto& cl : clients)
    for (int op = 0; op < kOpCount; op++) {
      total[op].ok += cl->stats()[op].ok;
      total[op].rolled_back += cl->stats()[op].rolled_back;
      for (const auto& [state, n] : cl->stats()[op].errors) total[op].errors[state] += n;
    }
  uint64_t calls = 0, aimed = 0;
  for (const auto& cl : clients) aimed += cl->aimed();
  std::map<std::string, uint64_t> errors;
  std::printf("\noperations (ok = committed; rb = succeeded, then rolled back by the client):\n");
  for (int op = 0; op < kOpCount; op++) {
    uint64_t n = total[op].ok + total[op].rolled_back;
    std::string errs;
    for (const auto& [state, k] : total[op].errors) {
      n += k;
      errors[state] += k;
      errs += "  " + state + " " + std::to_string(k);
    }
    calls += n;
    std::printf("  %-14s %8llu calls  ok %8llu  rb %5llu %s\n", kOpNames[op],
                static_cast<unsigned long long>(n), static_cast<unsigned long long>(total[op].ok),
                static_cast<unsigned long long>(total[op].rolled_back), errs.c_str());
  }
  std::printf("  total          %8llu calls in %.1f s = %.0f calls/s\n",
              static_cast<unsigned long long>(calls), elapsed,
              static_cast<double>(calls) / elapsed);
  std::printf("  (%llu confirms were aimed at the instant their hold expired)\n",
              static_cast<unsigned long long>(aimed));
  std::printf("errors by SQLSTATE:");
  for (const auto& [state, k] : errors)
    std::printf(" %s %llu", state.c_str(), static_cast<unsigned long long>(k));
  std::printf("%s\n", errors.empty() ? " none" : "");

  const Result r = c.exec_ok(
      "SELECT s.id, count(b.id), count(*) FILTER (WHERE b.status = 'pending'),"
      " count(*) FILTER (WHERE b.status = 'confirmed'),"
      " count(*) FILTER (WHERE b.status = 'expired'),"
      " count(*) FILTER (WHERE b.status = 'cancelled'),"
      " coalesce(sum(b.seats) FILTER (WHERE b.status = 'confirmed'), 0)"
      " FROM slotguard.slots s LEFT JOIN slotguard.bookings b ON b.slot_id = s.id"
      " WHERE s.id = ANY ($1::bigint[]) GROUP BY s.id ORDER BY s.id",
      {sh.slot_ids});
  std::printf("bookings by status:\n");
  for (size_t i = 0; i < r.rows.size(); i++) {
    const int64_t id = r.num(i, 0);
    const auto it =
        std::find_if(sh.slots.begin(), sh.slots.end(), [id](const Slot& s) { return s.id == id; });
    std::printf(
        "  %-17s (id %lld, capacity %3d): %6lld bookings: pending %lld, confirmed %lld "
        "(%lld seats), expired %lld, cancelled %lld\n",
        it->name.c_str(), static_cast<long long>(id), it->capacity,
        static_cast<long long>(r.num(i, 1)), static_cast<long long>(r.num(i, 2)),
        static_cast<long long>(r.num(i, 3)), static_cast<long long>(r.num(i, 6)),
        static_cast<long long>(r.num(i, 4)), static_cast<long long>(r.num(i, 5)));
  }
  std::lock_guard<std::mutex> g(sh.mu);
  std::printf(
      "client observations: %zu confirmations, %zu cancellations, %zu expirations, "
      "%zu idempotency keys\n",
      sh.seen_confirmed.size(), sh.seen_cancelled.size(), sh.seen_expired.size(),
      sh.key_booking.size());
  std::printf("monitor: %llu snapshots checked during the run%s\n",
              static_cast<unsigned long long>(sh.monitor_checks),
              sh.monitor_repeats ? (" (and " + std::to_string(sh.monitor_repeats) +
                                    " violations seen again in later snapshots)")
                                       .c_str()
                                 : "");
}

std::string levels_text(const std::vector<Txn>& levels) {
  std::string s;
  for (Txn t : levels)
    s += std::string(s.empty() ? "" : ",") + (t == Txn::kReadCommitted    ? "rc"
                                              : t == Txn::kRepeatableRead ? "rr"
                                                                          : "serializable");
  return s.empty() ? "none" : s;
}

int run(const Options& opt) {
  Shared sh;
  sh.opt = opt;
  Conn main_conn(opt.conninfo, "sg_stress_main");
  if (main_conn.exec_ok("SELECT 1 FROM pg_extension WHERE extname = 'slotguard'").rows.empty())
    throw std::runtime_error("the database has no slotguard extension");
  create_slots(main_conn, sh);
  std::printf(
      "sg_reservation_stress: %d clients (%d sweepers), %d s, seed %llu, explicit "
      "transactions %.0f%% (%s)\nslots:",
      opt.clients, std::min(opt.sweepers, opt.clients), opt.seconds,
      static_cast<unsigned long long>(opt.seed), opt.txn_share * 100,
      levels_text(opt.levels).c_str());
  for (const Slot& s : sh.slots)
    std::printf(" %s=%lld", s.name.c_str(), static_cast<long long>(s.id));
  std::printf("\n");
  std::fflush(stdout);

  std::vector<std::unique_ptr<Client>> clients;
  for (int i = 0; i < opt.clients; i++) clients.push_back(std::make_unique<Client>(sh, i));

  // A client thread that throws (it should not) counts as a violation and stops the run.
  auto guarded = [&sh](const std::string& who, auto&& body) {
    try {
      body();
    } catch (const std::exception& e) {
      sh.violation(who + ": " + e.what());
      sh.stop = true;
    }
  };
  Conn monitor_conn(opt.conninfo, "sg_stress_monitor");
  std::vector<std::thread> threads;
  for (auto& cl : clients)
    threads.emplace_back([&, c = cl.get()] { guarded("client thread", [c] { c->run(); }); });
  std::thread monitor([&] {
    guarded("monitor", [&] {
      while (!sh.stop.load()) {
        check_tables(monitor_conn, sh, "during the run", true);
        {
          std::lock_guard<std::mutex> g(sh.mu);
          sh.monitor_checks++;
        }
        sleep_us(opt.monitor_ms * 1000LL);
      }
    });
  });

  const auto start = std::chrono::steady_clock::now();
  const auto deadline = start + std::chrono::seconds(opt.seconds);
  auto next_report = start + std::chrono::seconds(5);
  while (!sh.stop.load() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    if (std::chrono::steady_clock::now() >= next_report) {
      std::printf(
          "  %lds: %zu violations so far\n",
          static_cast<long>(
              std::chrono::duration_cast<std::chrono::seconds>(next_report - start).count()),
          sh.violation_count());
      std::fflush(stdout);
      next_report += std::chrono::seconds(5);
    }
  }
  sh.stop = true;
  for (auto& t : threads) t.join();
  monitor.join();
  const double elapsed =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();

  check_tables(main_conn, sh, "end");
  final_sweep(main_conn, sh);
  check_tables(main_conn, sh, "end, after the sweep");
  check_observations(main_conn, sh);
  print_summary(main_conn, sh, clients, elapsed);

  std::lock_guard<std::mutex> g(sh.mu);
  if (sh.violations.empty()) {
    std::printf("OK: no invariant was violated\n");
    return 0;
  }
  std::printf("FAILED: %zu violations; the first ones:\n", sh.violations.size());
  for (size_t i = 0; i < sh.violations.size() && i < 30; i++)
    std::printf("  %s\n", sh.violations[i].c_str());
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  Options opt;
  try {
    opt = parse_options(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "sg_reservation_stress: %s\n", e.what());
    usage(stderr);
    return 2;
  }
  try {
    return run(opt);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "sg_reservation_stress: %s\n", e.what());
    return 2;
  }
}
