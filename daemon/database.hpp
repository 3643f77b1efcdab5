// database: the daemon's sessions with PostgreSQL. Database is one worker's session as the
// dispatcher uses it: libpqxx in the daemon (pqxx_database), a fake with canned answers in the
// fuzz tests (tests/fuzz/). Failures are thrown as libpqxx's exceptions (pqxx::sql_error with its
// SQLSTATE, pqxx::broken_connection, pqxx::in_doubt_error, ...), whoever throws them. Also the
// libpqxx helpers the sweeper and the reconnector share: connecting, the SQLSTATE of an error, a
// lost connection, cancelling from another thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include <pqxx/connection>
#include <pqxx/except>

#include "config.hpp"

namespace sg::daemon {

struct DaemonState;
class StatementCancellers;

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
};

// pqxx_database is the daemon's Database: a libpqxx connection to database.conninfo.
std::unique_ptr<Database> pqxx_database(DaemonState& state);

// connect opens a connection to database.conninfo and gives it statement_timeout (0: leave the
// database's own). Throws what libpqxx throws.
std::unique_ptr<pqxx::connection> connect(const Config::Database& database,
                                          std::chrono::milliseconds statement_timeout);

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
// at start-up, PQcancel is thread-safe). The owner sets the connection before using it and
// clears it before destroying it.
class CancelSlot {
 public:
  explicit CancelSlot(StatementCancellers& cancellers);
  ~CancelSlot();
  CancelSlot(const CancelSlot&) = delete;
  CancelSlot& operator=(const CancelSlot&) = delete;
  void set(pqxx::connection* conn);

 private:
  void cancel();
  StatementCancellers& cancellers_;
  std::uint64_t id_ = 0;
  std::mutex mu_;
  pqxx::connection* conn_ = nullptr;
};

}  // namespace sg::daemon
