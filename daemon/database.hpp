// database: the daemon's sessions with PostgreSQL. Database is one worker's session as the
// dispatcher uses it: libpq itself with pipelining in session pool mode (pg_session.hpp),
// libpqxx behind a transaction-pooling PgBouncer (pqxx_database), a fake with canned answers in
// the fuzz tests (tests/fuzz/). Failures are thrown as libpqxx's exceptions (pqxx::sql_error with
// its SQLSTATE, pqxx::broken_connection, pqxx::in_doubt_error, ...), whoever throws them. Also the
// libpqxx helpers the sweeper and the reconnector share: connecting, the SQLSTATE of an error, a
// lost connection, cancelling from another thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include <pqxx/connection>
#include <pqxx/except>

#include "config.hpp"

struct pg_cancel;

namespace sg::daemon {

struct DaemonState;
class StatementCancellers;

// PipelinedStatement is one request's statement in a pipeline (Database::run_pipeline): prepared
// once per connection under name, values bound to its $n parameters.
struct PipelinedStatement {
  const std::string* name;
  const std::string* sql;
  const std::vector<std::string>* values;
};

// PipelinedOutcome is what became of one statement of a pipeline.
struct PipelinedOutcome {
  enum class Kind {
    kValue,    // text: the first column of the first row
    kNull,     // no row, or NULL
    kError,    // the database's error: sqlstate, text (libpq's message)
    kLost,     // the connection was lost after the statement was sent: it may have run
    kNotSent,  // the statement never reached the server (safe to run again)
  };
  Kind kind = Kind::kNotSent;
  std::string text;
  std::string sqlstate;
};

class Database {
 public:
  // Transaction: statements run in one transaction, or each in its own (autocommit).
  class Transaction {
   public:
    virtual ~Transaction() = default;
    // run executes sql with values bound to its $n parameters, prepared once per connection
    // under name (an empty name: sql has no parameters and runs as it is). Returns the first
    // column of the first row; nullopt when there is no row or the value is NULL.
    virtual std::optional<std::string> run(const std::string& name, const std::string& sql,
                                           const std::vector<std::string>& values) = 0;
    // commit ends the transaction; one destroyed without a commit is rolled back.
    virtual void commit() = 0;
  };

  virtual ~Database() = default;
  // ensure opens the connection when there is none; false (and why) when that fails.
  virtual bool ensure(std::string& why) = 0;
  virtual void drop() = 0;
  virtual bool open() const = 0;
  // closed_by_server: the idle connection was ended by the server (a restart).
  virtual bool closed_by_server() = 0;
  virtual std::unique_ptr<Transaction> begin(bool autocommit) = 0;
  // pipelines: run_pipeline is supported.
  virtual bool pipelines() const { return false; }
  // run_pipeline sends the statements back to back, each in autocommit with its own
  // synchronisation point (an error ends that statement's transaction alone), then reads their
  // outcomes in order and hands each to `sink` (index, outcome) as soon as it is read. The
  // connection is open (ensure). It does not throw once anything was sent (unless sink does).
  using OutcomeSink = std::function<void(std::size_t, PipelinedOutcome&)>;
  virtual void run_pipeline(const std::vector<PipelinedStatement>&, const OutcomeSink&) {
    throw std::logic_error("this database does not pipeline");
  }
};

// pqxx_database is the daemon's Database: a libpqxx connection to database.conninfo.
std::unique_ptr<Database> pqxx_database(DaemonState& state);

// connect opens a connection to database.conninfo and gives it statement_timeout (0: leave the
// database's own). Throws what libpqxx throws.
std::unique_ptr<pqxx::connection> connect(const Config::Database& database,
                                          std::chrono::milliseconds statement_timeout);

// kExtensionQuery reads the name and version of slotguard, or else of slotguard_router, in the
// database (the first row; none: neither is installed).
inline constexpr const char* kExtensionQuery =
    "SELECT extname, extversion FROM pg_catalog.pg_extension "
    "WHERE extname OPERATOR(pg_catalog.=) ANY ('{slotguard,slotguard_router}') ORDER BY extname";

// kMinExtensionVersion: the oldest extension version this daemon's statements work with.
inline constexpr int kMinExtensionVersion[2] = {0, 3};

// check_extension reads the slotguard extension's version in conn's database and throws
// ExtensionMismatch when there is none or it is older than kMinExtensionVersion, with a message
// that says what to run (docs/operations.md "Upgrades"); a router database (slotguard_router,
// docs/router.md) passes. Other failures: what libpqxx throws.
struct ExtensionMismatch : std::runtime_error {
  using std::runtime_error::runtime_error;
};
void check_extension(pqxx::connection& conn);
// check_extension_found: the same check on what kExtensionQuery found (name nullopt: nothing).
void check_extension_found(const std::optional<std::string>& name, const std::string& version);

// idle_and_closed: the connection on fd, last used at last_used (updated to now), was ended by
// the server while it idled (see Database::closed_by_server). One used within the last 50 ms is
// taken to be alive without a system call.
bool idle_and_closed(int fd, std::chrono::steady_clock::time_point& last_used);

// first_line: the first line of an error text (libpq's messages run over several).
std::string first_line(const std::string& text);

// sqlstate_of: the SQLSTATE of a database error. libpqxx 6 throws some of its sql_error
// subclasses without the SQLSTATE (insufficient_privilege, for one): the class tells it then.
std::string sqlstate_of(const pqxx::sql_error& e);

// connection_lost: e says the connection is gone (libpqxx's broken_connection, or a SQLSTATE
// sg::errors::is_connection_lost names: a lost connection or a server going away). A read-only
// server (25006) is not a lost connection: the server answered; its caller drops that connection
// and connects again, and only a reconnect that fails says the database is away.
bool connection_lost(const std::exception& e);

// CancelSlot lets StatementCancellers::cancel_all cancel the statement running on one connection
// from another thread (libpq's cancel request: PQgetCancel reads only what the connection fixed
// at start-up, PQcancel is thread-safe). The owner sets the connection (a libpqxx one, or libpq's
// cancel object, which the slot then owns) before using it and clears it before destroying it.
class CancelSlot {
 public:
  explicit CancelSlot(StatementCancellers& cancellers);
  ~CancelSlot();
  CancelSlot(const CancelSlot&) = delete;
  CancelSlot& operator=(const CancelSlot&) = delete;
  void set(pqxx::connection* conn);
  void set_libpq(pg_cancel* cancel);
  // cancel cancels the statement running now, if any (what cancel_all calls).
  void cancel();

 private:
  void clear();
  StatementCancellers& cancellers_;
  std::uint64_t id_ = 0;
  std::mutex mu_;
  pqxx::connection* conn_ = nullptr;
  pg_cancel* pq_cancel_ = nullptr;
};

}  // namespace sg::daemon
