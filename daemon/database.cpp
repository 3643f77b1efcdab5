// database: see database.hpp.
#include "database.hpp"

#include <libpq-fe.h>
#include <poll.h>

#include <cstdio>
#include <utility>

#include <pqxx/pqxx>
#include <unordered_set>

#include "daemon_state.hpp"
#include "error_contract.hpp"
#include "log.hpp"

namespace sg::daemon {

namespace {

using Clock = std::chrono::steady_clock;

template <typename T>
bool is_a(const pqxx::sql_error& e) {
  return dynamic_cast<const T*>(&e) != nullptr;
}

// PqxxDatabase is a worker's libpqxx connection with the statements it has prepared.
class PqxxDatabase final : public Database {
 public:
  explicit PqxxDatabase(DaemonState& state) : state_(state), cancel_(state.cancellers) {}
  ~PqxxDatabase() override { drop(); }

  bool ensure(std::string& why) override {
    if (conn_) return true;
    try {
      const auto cfg = state_.config.get();
      // A statement that blocks (a lock held elsewhere, a hung table) must neither hold a worker
      // for ever nor keep a shutdown past its drain deadline.
      conn_ = connect(cfg->database, cfg->database.statement_timeout);
      cancel_.set(conn_.get());
      prepared_.clear();
      last_used_ = Clock::now();
      return true;
    } catch (const std::exception& e) {
      why = first_line(e.what());
      return false;
    }
  }
  void drop() override {
    cancel_.set(nullptr);
    conn_.reset();
    prepared_.clear();
  }
  bool open() const override { return conn_ != nullptr; }
  // closed_by_server: the idle connection has something to read, which on an idle session means
  // the server ended it (a shutdown's FATAL, or EOF).
  bool closed_by_server() override { return conn_ && idle_and_closed(conn_->sock(), last_used_); }
  std::unique_ptr<Transaction> begin(bool autocommit) override {
    const auto cfg = state_.config.get();
    if (cfg->database.pool_mode == Config::Database::PoolMode::kTransaction)
      return std::make_unique<PooledTransaction>(*conn_, autocommit,
                                                 cfg->database.statement_timeout);
    std::unique_ptr<pqxx::transaction_base> tx;
    if (autocommit) {
      tx = std::make_unique<pqxx::nontransaction>(*conn_);
    } else {
      tx = std::make_unique<pqxx::work>(*conn_);
    }
    return std::make_unique<PqxxTransaction>(*this, std::move(tx));
  }

 private:
  // first_value: the first column of the first row; nullopt when there is no row or it is NULL.
  static std::optional<std::string> first_value(const pqxx::result& r) {
    if (r.empty() || r[0][0].is_null()) return std::nullopt;
    return std::string(r[0][0].c_str());
  }

  // PqxxTransaction: session mode. Statements are prepared by name once per connection.
  class PqxxTransaction final : public Transaction {
   public:
    PqxxTransaction(PqxxDatabase& db, std::unique_ptr<pqxx::transaction_base> tx)
        : db_(db), tx_(std::move(tx)) {}
    std::optional<std::string> run(const std::string& name, const std::string& sql,
                                   const std::vector<std::string>& values) override {
      if (name.empty()) return first_value(tx_->exec(sql));
      db_.prepare(name, sql);
      return first_value(tx_->exec_prepared(name, pqxx::prepare::make_dynamic_params(values)));
    }
    void commit() override { tx_->commit(); }

   private:
    PqxxDatabase& db_;
    std::unique_ptr<pqxx::transaction_base> tx_;
  };

  // PooledTransaction: transaction mode (a transaction-pooling PgBouncer between the daemon and
  // PostgreSQL: each transaction may run on another server connection, and the server
  // connection serves other clients in between). Nothing outlives a transaction: statements go
  // unnamed (PQexecParams), and statement_timeout is set with SET LOCAL in each transaction. An
  // autocommit "transaction" runs each statement in a transaction of its own.
  class PooledTransaction final : public Transaction {
   public:
    PooledTransaction(pqxx::connection& conn, bool autocommit, std::chrono::milliseconds timeout)
        : conn_(conn), autocommit_(autocommit), timeout_(timeout) {
      if (!autocommit_) tx_ = open();
    }
    std::optional<std::string> run(const std::string&, const std::string& sql,
                                   const std::vector<std::string>& values) override {
      if (!autocommit_) return first_value(exec(*tx_, sql, values));
      auto tx = open();
      auto value = first_value(exec(*tx, sql, values));
      tx->commit();
      return value;
    }
    void commit() override {
      if (tx_) tx_->commit();
    }

   private:
    std::unique_ptr<pqxx::work> open() {
      auto tx = std::make_unique<pqxx::work>(conn_);
      if (timeout_.count() > 0)
        tx->exec("SET LOCAL statement_timeout = " + std::to_string(timeout_.count()));
      return tx;
    }
    static pqxx::result exec(pqxx::work& tx, const std::string& sql,
                             const std::vector<std::string>& values) {
      if (values.empty()) return tx.exec(sql);
      return tx.exec_params(sql, pqxx::prepare::make_dynamic_params(values));
    }
    pqxx::connection& conn_;
    const bool autocommit_;
    const std::chrono::milliseconds timeout_;
    std::unique_ptr<pqxx::work> tx_;
  };

  void prepare(const std::string& name, const std::string& sql) {
    if (prepared_.count(name) != 0) return;
    conn_->prepare(name, sql);
    prepared_.insert(name);
  }

  DaemonState& state_;
  CancelSlot cancel_;
  std::unique_ptr<pqxx::connection> conn_;
  std::unordered_set<std::string> prepared_;
  Clock::time_point last_used_{};
};

}  // namespace

std::unique_ptr<Database> pqxx_database(DaemonState& state) {
  return std::make_unique<PqxxDatabase>(state);
}

std::unique_ptr<pqxx::connection> connect(const Config::Database& database,
                                          std::chrono::milliseconds statement_timeout) {
  auto conn = std::make_unique<pqxx::connection>(database.conninfo);
  check_extension(*conn);
  // Behind a transaction-pooling PgBouncer a session setting would stay on a server connection
  // other clients get next: transactions set it themselves (SET LOCAL).
  if (statement_timeout.count() > 0 && database.pool_mode == Config::Database::PoolMode::kSession) {
    pqxx::nontransaction tx(*conn);
    tx.exec("SET statement_timeout = " + std::to_string(statement_timeout.count()));
  }
  return conn;
}

// A router database (slotguard_router, docs/router.md) has the same slot and booking API with
// slotguard on its shards, whose versions the router checks when a shard is added: it is accepted
// as it is.
void check_extension(pqxx::connection& conn) {
  pqxx::nontransaction tx(conn);
  const pqxx::result r = tx.exec(kExtensionQuery);
  if (r.empty()) return check_extension_found(std::nullopt, "");
  check_extension_found(std::string(r[0][0].c_str()), r[0][1].c_str());
}

void check_extension_found(const std::optional<std::string>& name, const std::string& version) {
  if (!name)
    throw ExtensionMismatch(
        "the database has no slotguard extension: run CREATE EXTENSION slotguard");
  if (*name == "slotguard_router") return;
  int major = -1, minor = -1;
  if (std::sscanf(version.c_str(), "%d.%d", &major, &minor) != 2 ||
      std::make_pair(major, minor) <
          std::make_pair(kMinExtensionVersion[0], kMinExtensionVersion[1]))
    throw ExtensionMismatch("the slotguard extension in this database is version " + version +
                            ", older than slotguardd needs (" +
                            std::to_string(kMinExtensionVersion[0]) + "." +
                            std::to_string(kMinExtensionVersion[1]) +
                            " or later): run ALTER EXTENSION slotguard UPDATE");
}

bool idle_and_closed(int fd, Clock::time_point& last_used) {
  // A connection used a moment ago is taken to be alive (no syscall on the hot path); one the
  // server dropped meanwhile fails as a lost connection, as it would had it dropped during the
  // statement. An idle connection with something to read was ended by the server (a shutdown's
  // FATAL, or EOF).
  constexpr std::chrono::milliseconds kIdleCheck{50};
  const auto now = Clock::now();
  const bool recent = now - last_used < kIdleCheck;
  last_used = now;
  if (recent) return false;
  if (fd < 0) return true;
  struct pollfd p = {fd, POLLIN, 0};
  return ::poll(&p, 1, 0) > 0;
}

std::string first_line(const std::string& text) {
  return text.substr(0, text.find('\n'));
}

std::string sqlstate_of(const pqxx::sql_error& e) {
  std::string state = e.sqlstate();
  if (!state.empty()) return state;
  // Most derived first.
  if (is_a<pqxx::insufficient_privilege>(e)) return "42501";
  if (is_a<pqxx::undefined_table>(e)) return "42P01";
  if (is_a<pqxx::undefined_column>(e)) return "42703";
  if (is_a<pqxx::undefined_function>(e)) return "42883";
  if (is_a<pqxx::syntax_error>(e)) return "42601";
  if (is_a<pqxx::not_null_violation>(e)) return "23502";
  if (is_a<pqxx::foreign_key_violation>(e)) return "23503";
  if (is_a<pqxx::unique_violation>(e)) return "23505";
  if (is_a<pqxx::check_violation>(e)) return "23514";
  if (is_a<pqxx::restrict_violation>(e)) return "23001";
  if (is_a<pqxx::integrity_constraint_violation>(e)) return "23000";
  if (is_a<pqxx::data_exception>(e)) return "22000";
  if (is_a<pqxx::feature_not_supported>(e)) return "0A000";
  if (is_a<pqxx::disk_full>(e)) return "53100";
  if (is_a<pqxx::out_of_memory>(e)) return "53200";
  if (is_a<pqxx::insufficient_resources>(e)) return "53000";
  if (is_a<pqxx::plpgsql_no_data_found>(e)) return "P0002";
  if (is_a<pqxx::plpgsql_too_many_rows>(e)) return "P0003";
  if (is_a<pqxx::plpgsql_raise>(e)) return "P0001";
  return state;
}

bool connection_lost(const std::exception& e) {
  if (dynamic_cast<const pqxx::broken_connection*>(&e) != nullptr) return true;
  const auto* sql = dynamic_cast<const pqxx::sql_error*>(&e);
  return sql != nullptr && sg::errors::is_connection_lost(sqlstate_of(*sql));
}

CancelSlot::CancelSlot(StatementCancellers& cancellers) : cancellers_(cancellers) {
  id_ = cancellers_.add([this] { cancel(); });
}

CancelSlot::~CancelSlot() {
  cancellers_.remove(id_);
  std::lock_guard<std::mutex> lock(mu_);
  clear();
}

void CancelSlot::set(pqxx::connection* conn) {
  std::lock_guard<std::mutex> lock(mu_);
  clear();
  conn_ = conn;
}

void CancelSlot::set_libpq(pg_cancel* cancel) {
  std::lock_guard<std::mutex> lock(mu_);
  clear();
  pq_cancel_ = cancel;
}

void CancelSlot::clear() {
  if (pq_cancel_ != nullptr) PQfreeCancel(pq_cancel_);
  pq_cancel_ = nullptr;
  conn_ = nullptr;
}

void CancelSlot::cancel() {
  std::lock_guard<std::mutex> lock(mu_);
  if (pq_cancel_ != nullptr) {
    char why[256];
    if (PQcancel(pq_cancel_, why, sizeof why) != 1)
      log::warning("cannot cancel a statement: ", first_line(why));
    return;
  }
  if (conn_ == nullptr) return;
  try {
    conn_->cancel_query();
  } catch (const std::exception& e) {
    log::warning("cannot cancel a statement: ", first_line(e.what()));
  }
}

}  // namespace sg::daemon
