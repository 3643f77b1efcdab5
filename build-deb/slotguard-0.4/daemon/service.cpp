// service: see service.hpp.
#include "service.hpp"

#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cstring>
#include <map>
#include <pqxx/pqxx>
#include <random>
#include <stdexcept>
#include <tuple>
#include <unordered_set>

#include "backoff.hpp"
#include "log.hpp"
#include "error_contract.hpp"

namespace sg::daemon {

namespace {

using Clock = std::chrono::steady_clock;

template <typename T>
bool is_a(const pqxx::sql_error& e) {
  return dynamic_cast<const T*>(&e) != nullptr;
}

// sqlstate_of: the SQLSTATE of a database error. libpqxx 6 throws some of its sql_error
// subclasses without the SQLSTATE (insufficient_privilege, for one): the class tells it then.
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

RpcError unavailable(const std::string& why) {
  return RpcError{kServerError, "database unavailable: " + why, "unavailable", "", "", ""};
}

RpcError outcome_unknown() {
  return RpcError{kServerError,
                  "the connection was lost while the request ran; its outcome is unknown",
                  "unavailable",
                  "",
                  "",
                  ""};
}

std::string first_line(const std::string& s) {
  std::string out = s.substr(0, s.find('\n'));
  return out;
}

// set_statement_timeout gives a fresh connection the configured statement_timeout (0: leave the
// database's own); the sweeper passes its own default.
void set_statement_timeout(pqxx::connection& conn, std::chrono::milliseconds timeout) {
  if (timeout.count() <= 0) return;
  pqxx::nontransaction tx(conn);
  tx.exec("SET statement_timeout = " + std::to_string(timeout.count()));
}

// CancelSlot lets Shared::cancel_all cancel the statement running on one connection from
// another thread (libpq's cancel request: PQgetCancel reads only what the connection fixed at
// start-up, PQcancel is thread-safe). The owner sets the connection before using it and clears
// it before destroying it.
class CancelSlot {
 public:
  explicit CancelSlot(Shared& shared) : shared_(shared) {
    id_ = shared_.add_canceller([this] { cancel(); });
  }
  ~CancelSlot() { shared_.remove_canceller(id_); }
  CancelSlot(const CancelSlot&) = delete;
  CancelSlot& operator=(const CancelSlot&) = delete;
  void set(pqxx::connection* conn) {
    std::lock_guard<std::mutex> lock(mu_);
    conn_ = conn;
  }

 private:
  void cancel() {
    std::lock_guard<std::mutex> lock(mu_);
    if (conn_ == nullptr) return;
    try {
      conn_->cancel_query();
    } catch (const std::exception& e) {
      log::warning("cannot cancel a statement: ", first_line(e.what()));
    }
  }
  Shared& shared_;
  std::uint64_t id_ = 0;
  std::mutex mu_;
  pqxx::connection* conn_ = nullptr;
};

// Outcome of one call: a result or an error.
struct Outcome {
  std::optional<json> result;
  std::optional<RpcError> error;
};

// PqxxDatabase is a worker's libpqxx connection with the statements it has prepared.
class PqxxDatabase final : public Database {
 public:
  explicit PqxxDatabase(Shared& shared) : shared_(shared), cancel_(shared) {}
  ~PqxxDatabase() override { drop(); }

  bool ensure(std::string& why) override {
    if (conn_) return true;
    try {
      const auto cfg = shared_.config();
      auto conn = std::make_unique<pqxx::connection>(cfg->database.conninfo);
      // A statement that blocks (a lock held elsewhere, a hung table) must neither hold a worker
      // for ever nor keep a shutdown past its drain deadline.
      set_statement_timeout(*conn, cfg->database.statement_timeout);
      conn_ = std::move(conn);
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
  bool closed_by_server() override {
    if (!conn_) return false;
    // A connection used a moment ago is taken to be alive (no syscall on the hot path); one the
    // server dropped meanwhile fails as a lost connection, as it would had it dropped during the
    // statement.
    const auto now = Clock::now();
    const bool recent = now - last_used_ < kIdleCheck;
    last_used_ = now;
    if (recent) return false;
    const int fd = conn_->sock();
    if (fd < 0) return true;
    struct pollfd p = {fd, POLLIN, 0};
    return ::poll(&p, 1, 0) > 0;
  }
  std::unique_ptr<Transaction> begin(bool autocommit) override {
    std::unique_ptr<pqxx::transaction_base> tx;
    if (autocommit) {
      tx = std::make_unique<pqxx::nontransaction>(*conn_);
    } else {
      tx = std::make_unique<pqxx::work>(*conn_);
    }
    return std::make_unique<PqxxTransaction>(*this, std::move(tx));
  }

 private:
  class PqxxTransaction final : public Transaction {
   public:
    PqxxTransaction(PqxxDatabase& db, std::unique_ptr<pqxx::transaction_base> tx)
        : db_(db), tx_(std::move(tx)) {}
    std::optional<std::string> run(const std::string& name, const std::string& sql,
                                   const std::vector<std::string>& values) override {
      pqxx::result r;
      if (name.empty()) {
        r = tx_->exec(sql);
      } else {
        db_.prepare(name, sql);
        r = tx_->exec_prepared(name, pqxx::prepare::make_dynamic_params(values));
      }
      if (r.empty() || r[0][0].is_null()) return std::nullopt;
      return std::string(r[0][0].c_str());
    }
    void commit() override { tx_->commit(); }

   private:
    PqxxDatabase& db_;
    std::unique_ptr<pqxx::transaction_base> tx_;
  };

  void prepare(const std::string& name, const std::string& sql) {
    if (prepared_.count(name) != 0) return;
    conn_->prepare(name, sql);
    prepared_.insert(name);
  }

  // Idle for longer than this, a connection is polled before a statement is sent on it.
  static constexpr std::chrono::milliseconds kIdleCheck{50};
  Shared& shared_;
  CancelSlot cancel_;
  std::unique_ptr<pqxx::connection> conn_;
  std::unordered_set<std::string> prepared_;
  Clock::time_point last_used_{};
};

bool is_reserve(const Call& c) {
  return std::strcmp(c.method->name, "reserve") == 0 ||
         std::strcmp(c.method->name, "reserve_seats") == 0;
}

bool is_pending(const json& result) {
  if (!result.is_object()) return false;
  const auto it = result.find("status");
  return it != result.end() && it->is_string() && it->get_ref<const std::string&>() == "pending";
}

}  // namespace

// Dispatcher::Impl runs requests on one Database.
class Dispatcher::Impl {
 public:
  Impl(Shared& shared, std::unique_ptr<Database> db)
      : shared_(shared), db_(std::move(db)), rng_(std::random_device{}()) {}

  bool connected() const { return db_->open(); }

  std::string execute(Job& job) {
    Request& req = job.request;
    if (req.error) {
      record("(invalid)", req.error->reason, job);
      return to_line(make_error(nullptr, *req.error));
    }
    bool any_invalid = false;
    std::vector<Call*> calls;
    for (auto& e : req.entries) {
      if (e.error) {
        any_invalid = true;
      } else {
        calls.push_back(&*e.call);
      }
    }
    std::vector<Outcome> outcomes(calls.size());
    if (any_invalid) {
      // All or nothing: a batch with an invalid element runs none of them.
      for (auto& o : outcomes) {
        o.error = RpcError{kServerError,
                           "not run: another request of the batch is invalid",
                           "invalid_params",
                           "",
                           "",
                           ""};
      }
    } else if (!calls.empty()) {
      outcomes = run(calls, job.uid);
    }

    // Assemble the answer in request order; notifications get none.
    json answers = json::array();
    std::size_t k = 0;
    for (auto& e : req.entries) {
      const char* method = e.call ? e.call->method->name : "(invalid)";
      json answer;
      if (e.error) {
        record(method, e.error->reason, job);
        answer = make_error(e.id, *e.error);
      } else {
        Outcome& o = outcomes[k++];
        if (o.error) {
          record(method, o.error->reason, job);
          answer = make_error(e.id, *o.error);
        } else {
          record(method, "ok", job);
          answer = make_result(e.id, std::move(*o.result));
        }
      }
      if (!e.notification) answers.push_back(std::move(answer));
    }
    if (answers.empty()) return "";
    if (!req.batch) return to_line(answers[0]);
    return to_line(answers);
  }

 private:
  void record(const char* method, std::string_view outcome, const Job& job) {
    const double ms =
        std::chrono::duration<double, std::milli>(Clock::now() - job.received).count();
    shared_.metrics.request(method, outcome, ms);
  }

  json health(bool in_transaction) {
    json out = {{"status", "ok"}};
    if (in_transaction) {
      out["database"] = "ok";
      return out;
    }
    std::string why;
    bool ok = false;
    if (!shared_.known_down() && db_->ensure(why)) {
      try {
        db_->begin(true)->run("", "SELECT 1", {});
        shared_.mark_up();
        ok = true;
      } catch (const std::exception& e) {
        why = first_line(e.what());
        db_->drop();
      }
    } else if (why.empty()) {
      why = "the database is not reachable";
    }
    if (!ok && !shared_.known_down()) shared_.mark_down(why);
    out["database"] = ok ? "ok" : "unavailable";
    if (!ok) out["database_error"] = why;
    return out;
  }

  json stats_rows(Database::Transaction& tx) {
    const std::optional<std::string> rows =
        tx.run("",
               "SELECT COALESCE(pg_catalog.jsonb_agg(pg_catalog.to_jsonb(s)), "
               "'[]'::pg_catalog.jsonb) FROM slotguard.stats AS s",
               {});
    return rows ? parse_result(*rows) : json::array();
  }

  json stats(Database::Transaction* tx) {
    json out = {{"daemon", shared_.metrics.snapshot()}};
    out["daemon"]["database"] = shared_.db_up() ? "ok" : "unavailable";
    if (tx != nullptr) {
      out["slotguard"] = stats_rows(*tx);
      return out;
    }
    out["slotguard"] = nullptr;
    std::string why;
    if (!shared_.known_down() && db_->ensure(why)) {
      try {
        out["slotguard"] = stats_rows(*db_->begin(true));
      } catch (const pqxx::sql_error& e) {
        out["slotguard_error"] = first_line(e.what());
      } catch (const std::exception& e) {
        out["slotguard_error"] = first_line(e.what());
        db_->drop();
      }
    }
    return out;
  }

  // run executes calls in one transaction, all or nothing, with retries.
  std::vector<Outcome> run(const std::vector<Call*>& calls, uid_t uid) {
    std::vector<Outcome> out(calls.size());
    auto all = [&](const RpcError& e) {
      for (auto& o : out) o.error = e;
      return out;
    };
    if (calls.size() == 1 && calls[0]->method->result == ResultKind::Health) {
      out[0].result = health(false);
      return out;
    }
    if (calls.size() == 1 && calls[0]->method->result == ResultKind::Stats) {
      out[0].result = stats(nullptr);
      return out;
    }
    if (shared_.known_down()) return all(unavailable("the database is not reachable; retrying"));

    const Config& cfg = shared_.current(config_);
    if (uid != actor_uid_ || actor_text_.empty()) {
      actor_uid_ = uid;
      actor_text_ = "uid:" + std::to_string(uid);
    }
    const std::string& default_actor = actor_text_;
    const bool single = calls.size() == 1;  // stats and health alone were answered above
    std::string last_connection_error;
    for (int attempt = 1;; ++attempt) {
      const bool last = attempt >= cfg.retry.max_attempts;
      std::string why;
      if (!db_->ensure(why)) {
        shared_.mark_down(why);
        return all(unavailable(why));
      }
      std::size_t at = 0;  // the call running, for errors
      bool sent = false;   // the single statement went to the server (its outcome may be unknown)
      try {
        std::vector<json> results;
        if (single) {
          // One round trip: the actor settings and the call in one statement, in autocommit.
          // A connection the server has closed while it idled (a restart) is replaced first, so
          // that a lost connection while the statement runs really means an unknown outcome.
          if (db_->closed_by_server()) {
            db_->drop();
            if (!db_->ensure(why)) {
              shared_.mark_down(why);
              return all(unavailable(why));
            }
          }
          const Call& c = *calls[0];
          const CachedStatement& st = single_statement(c, default_actor);
          const auto tx = db_->begin(true);
          sent = true;
          const std::optional<std::string> v = tx->run(st.name, st.sql, values_);
          if (!v) {
            out[0].result = c.method->result == ResultKind::Rows ? json::array() : json();
          } else {
            out[0].result = parse_result(*v);
          }
          shared_.mark_up();
          if (shared_.sweeper != nullptr && is_reserve(c) && is_pending(*out[0].result))
            shared_.sweeper->poke();
          return out;
        }
        const auto tx = db_->begin(false);
        for (at = 0; at < calls.size(); ++at) {
          const Call& c = *calls[at];
          if (c.method->result == ResultKind::Health) {
            results.push_back(health(true));
            continue;
          }
          if (c.method->result == ResultKind::Stats) {
            results.push_back(stats(tx.get()));
            continue;
          }
          const std::string actor = c.actor.value_or(default_actor);
          if (c.actor_role) {
            tx->run("sg_ctx2",
                    "SELECT pg_catalog.set_config('slotguard.actor', $1, true), "
                    "pg_catalog.set_config('slotguard.actor_role', $2, true)",
                    {actor, *c.actor_role});
          } else {
            tx->run("sg_ctx1",
                    "SELECT pg_catalog.set_config('slotguard.actor', $1, true), "
                    "pg_catalog.set_config('slotguard.actor_role', NULL, true)",
                    {actor});
          }
          const Statement st = build_statement(c);
          const std::optional<std::string> v = tx->run(st.name, st.sql, st.values);
          if (!v) {
            results.push_back(c.method->result == ResultKind::Rows ? json::array() : json());
          } else {
            results.push_back(parse_result(*v));
          }
        }
        at = calls.size();
        tx->commit();
        shared_.mark_up();
        bool hold = false;
        for (std::size_t i = 0; i < calls.size(); ++i) {
          if (is_reserve(*calls[i]) && is_pending(results[i])) hold = true;
          out[i].result = std::move(results[i]);
        }
        if (hold && shared_.sweeper != nullptr) shared_.sweeper->poke();
        return out;
      } catch (const pqxx::in_doubt_error& e) {
        db_->drop();
        return all(RpcError{kServerError,
                            "the connection was lost during COMMIT; the outcome is unknown",
                            "unavailable", "", "", ""});
      } catch (const pqxx::broken_connection& e) {
        last_connection_error = first_line(e.what());
        db_->drop();
        if (single && sent && !retry_safe(*calls[0])) return all(outcome_unknown());
      } catch (const pqxx::sql_error& e) {
        const std::string state = sqlstate_of(e);
        if (sg::errors::is_connection_lost(state)) {
          last_connection_error = first_line(e.what());
          db_->drop();
          // 57P0x: the server ended our statement (its transaction is rolled back); anything
          // else (08xxx) lost the connection without saying what became of it.
          if (single && sent && state.rfind("57P0", 0) != 0 && !retry_safe(*calls[0]))
            return all(outcome_unknown());
        } else if (sg::errors::is_retryable(state) && !last) {
          log::debug("retrying after ", state, " (attempt ", attempt, ")");
        } else {
          // A business error (or one not worth retrying): the failing call gets it, the others
          // of a batch are rolled back with it.
          RpcError err = error_from_database(state, e.what());
          for (std::size_t i = 0; i < calls.size(); ++i) {
            if (i == at || calls.size() == 1) {
              out[i].error = err;
            } else {
              RpcError rolled = err;
              rolled.message = "rolled back: request " + std::to_string(at + 1) +
                               " of the batch failed: " + err.message;
              out[i].error = rolled;
            }
          }
          return out;
        }
      } catch (const pqxx::transaction_rollback& e) {
        // libpqxx 6 reports deadlocks and serialization failures outside sql_error: retry them
        // like their SQLSTATEs (40P01, 40001).
        if (dynamic_cast<const pqxx::statement_completion_unknown*>(&e) != nullptr) {
          db_->drop();
          return all(outcome_unknown());
        }
        const std::string state =
            dynamic_cast<const pqxx::deadlock_detected*>(&e) != nullptr ? "40P01" : "40001";
        if (last) return all(error_from_database(state, e.what()));
        log::debug("retrying after ", state, " (attempt ", attempt, ")");
      } catch (const std::length_error& e) {
        // parse_result: a result nested too deep to be written (a batch is rolled back by then).
        log::warning(calls[0]->method->name, ": ", e.what());
        return all(RpcError{kInternalError, e.what(), "internal", "", "", ""});
      } catch (const std::exception& e) {
        log::error("internal error running ", calls[0]->method->name, ": ", e.what());
        db_->drop();
        return all(RpcError{kInternalError, std::string("internal error: ") + first_line(e.what()),
                            "internal", "", "", ""});
      }
      // Retry: a retryable error or a lost connection.
      if (last) {
        if (!last_connection_error.empty()) {
          shared_.mark_down(last_connection_error);
          return all(unavailable(last_connection_error));
        }
        break;
      }
      shared_.metrics.retry();
      if (!last_connection_error.empty()) shared_.metrics.reconnect();
      if (!shared_.sleep_for(backoff_delay(cfg.retry, attempt, rng_)))
        return all(unavailable("shutting down"));
    }
    return all(RpcError{kInternalError, "retries exhausted", "internal", "", "", ""});
  }

  // single_statement prepares (once per connection) the call's one-statement form, its SQL
  // built once per method and set of parameters, and leaves its values in values_: actor,
  // [role,] arguments (see build_single_statement).
  struct CachedStatement {
    std::string name;
    std::string sql;
  };
  const CachedStatement& single_statement(const Call& c, const std::string& default_actor) {
    unsigned long mask = 0;
    bool uuid = false;
    for (const Arg& a : c.args) {
      mask |= 1UL << a.index;
      if (a.cast == "uuid") uuid = true;
    }
    const StatementKey key{c.method, mask, uuid, c.actor_role.has_value()};
    auto it = statements_.find(key);
    if (it == statements_.end()) {
      Statement st = build_single_statement(c, c.actor.value_or(default_actor), c.actor_role);
      it = statements_.emplace(key, CachedStatement{std::move(st.name), std::move(st.sql)}).first;
    }
    values_.clear();
    values_.push_back(c.actor ? *c.actor : default_actor);
    if (c.actor_role) values_.push_back(*c.actor_role);
    for (const Arg& a : c.args) values_.push_back(a.value);
    return it->second;
  }

  using StatementKey = std::tuple<const MethodSpec*, unsigned long, bool, bool>;

  Shared& shared_;
  std::unique_ptr<Database> db_;
  std::mt19937_64 rng_;
  Shared::ConfigView config_;
  uid_t actor_uid_ = 0;
  std::string actor_text_;
  std::map<StatementKey, CachedStatement> statements_;
  std::vector<std::string> values_;
};

std::unique_ptr<Database> pqxx_database(Shared& shared) {
  return std::make_unique<PqxxDatabase>(shared);
}

Dispatcher::Dispatcher(Shared& shared, std::unique_ptr<Database> db)
    : impl_(std::make_unique<Impl>(shared, std::move(db))) {}

Dispatcher::~Dispatcher() = default;

bool Dispatcher::connected() const {
  return impl_->connected();
}

std::string Dispatcher::execute(Job& job) {
  try {
    return impl_->execute(job);
  } catch (const std::exception& e) {
    log::error("internal error: ", e.what());
    return to_line(
        make_error(nullptr, RpcError{kInternalError, "internal error", "internal", "", "", ""}));
  }
}

// ---------------------------------------------------------------------------------------------
// Shared

Shared::Shared(std::shared_ptr<const Config> config) : config_(std::move(config)) {
  wake_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
}

std::shared_ptr<const Config> Shared::config() const {
  std::lock_guard<std::mutex> lock(mu_);
  return config_;
}

void Shared::set_config(std::shared_ptr<const Config> config) {
  std::lock_guard<std::mutex> lock(mu_);
  config_ = std::move(config);
  generation_.fetch_add(1, std::memory_order_release);
}

const Config& Shared::current(ConfigView& view) const {
  if (view.generation != generation_.load(std::memory_order_acquire) || !view.config) {
    std::lock_guard<std::mutex> lock(mu_);
    view.config = config_;
    view.generation = generation_.load(std::memory_order_relaxed);
  }
  return *view.config;
}

void Shared::mark_down(const std::string& why) {
  down_ = true;
  if (db_up_.exchange(false)) {
    log::warning("database unreachable (", why,
                 "); requests answer 'unavailable' until it is back; reconnecting");
  }
  cv_.notify_all();
  const uint64_t one = 1;
  (void)!::write(wake_fd_, &one, sizeof one);
}

void Shared::mark_up() {
  down_ = false;
  if (db_up_.exchange(true)) return;
  log::notice("database reachable");
  const uint64_t one = 1;  // the loop may now say READY=1
  (void)!::write(wake_fd_, &one, sizeof one);
}

bool Shared::wait_down() {
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait(lock, [&] { return stop_.load() || !db_up_.load(); });
  return !stop_.load();
}

bool Shared::sleep_for(std::chrono::milliseconds d) {
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait_for(lock, d, [&] { return stop_.load(); });
  return !stop_.load();
}

std::uint64_t Shared::add_canceller(std::function<void()> cancel) {
  std::lock_guard<std::mutex> lock(cancel_mu_);
  const std::uint64_t id = next_canceller_++;
  cancellers_.emplace(id, std::move(cancel));
  return id;
}

void Shared::remove_canceller(std::uint64_t id) {
  std::lock_guard<std::mutex> lock(cancel_mu_);
  cancellers_.erase(id);
}

int Shared::cancel_all() {
  std::lock_guard<std::mutex> lock(cancel_mu_);
  for (auto& [id, cancel] : cancellers_) cancel();
  return static_cast<int>(cancellers_.size());
}

void Shared::stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
}

// ---------------------------------------------------------------------------------------------
// Pool

Pool::Pool(Shared& shared, int size, Driver driver) : shared_(shared), driver_(std::move(driver)) {
  for (int i = 0; i < size; ++i) threads_.emplace_back([this, i] { run(i); });
}

Pool::~Pool() {
  stop();
}

void Pool::stop() {
  for (auto& t : threads_) {
    if (t.joinable()) t.join();
  }
}

void Pool::run(int /*index*/) {
  Dispatcher dispatcher(shared_, pqxx_database(shared_));
  bool was_connected = false;
  const Execute execute = [&](Job& job) {
    ++busy_;
    std::string answer = dispatcher.execute(job);
    if (dispatcher.connected() != was_connected) {
      was_connected = dispatcher.connected();
      connected_ += was_connected ? 1 : -1;
    }
    --busy_;
    return answer;
  };
  driver_(execute);
  if (was_connected) --connected_;
}

// ---------------------------------------------------------------------------------------------
// Sweeper

Sweeper::Sweeper(Shared& shared) : shared_(shared) {
  thread_ = std::thread([this] { run(); });
}

Sweeper::~Sweeper() {
  stop();
}

void Sweeper::poke() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    poked_ = true;
  }
  cv_.notify_one();
}

void Sweeper::reconfigure() {
  poke();
}

void Sweeper::stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void Sweeper::run() {
  using std::chrono::milliseconds;
  std::unique_ptr<pqxx::connection> conn;
  CancelSlot cancel(shared_);
  // conn is reset in several places below: the slot forgets it first.
  auto reset = [&] {
    cancel.set(nullptr);
    conn.reset();
  };
  std::mt19937_64 rng(std::random_device{}());
  int failures = 0;
  const milliseconds kMinSleep(50);      // never spin
  const milliseconds kPokeSpacing(100);  // a burst of new holds costs one next_expiry() a tick
  // Holds made with plain SQL (not through our socket) poke nobody: while asleep, look at
  // next_expiry() this often, so that such a hold is also marked about when it expires.
  const milliseconds kLook(1000);
  enum class Woken { kStop, kPoke, kTimeout };
  auto wait = [&](milliseconds d) {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait_for(lock, d, [&] { return stop_ || poked_; });
    const Woken why = stop_ ? Woken::kStop : poked_ ? Woken::kPoke : Woken::kTimeout;
    poked_ = false;
    return why;
  };
  // next_expiry_in: milliseconds until slotguard.next_expiry() (+5 ms), or nullopt when no hold
  // is pending. Throws what libpqxx throws.
  auto next_expiry_in = [&](pqxx::connection& c) -> std::optional<long long> {
    pqxx::nontransaction tx(c);
    pqxx::result r = tx.exec(
        "SELECT (pg_catalog.date_part('epoch', slotguard.next_expiry() - "
        "pg_catalog.clock_timestamp()) * 1000)::bigint");
    if (r[0][0].is_null()) return std::nullopt;
    return r[0][0].as<long long>() + 5;
  };
  Clock::time_point last_look{};
  for (;;) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stop_) break;
    }
    const auto cfg = shared_.config();
    if (!cfg->sweep.enabled) {
      reset();
      if (wait(cfg->sweep.interval) == Woken::kStop) break;
      continue;
    }
    // Rate limit: a poke right after a look waits for the spacing (stop still wakes us).
    const auto since = Clock::now() - last_look;
    if (since < kPokeSpacing) {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait_for(lock, kPokeSpacing - since, [&] { return stop_; });
      if (stop_) break;
    }
    milliseconds sleep = cfg->sweep.interval;
    const bool reused = conn != nullptr;  // a connection from before may have died meanwhile
    try {
      if (!conn) {
        auto fresh = std::make_unique<pqxx::connection>(cfg->database.conninfo);
        // A sweep or a look that blocks (a table locked by VACUUM FULL, a hung network) must not
        // hold up a shutdown or the next sweep for long: database.statement_timeout, or 30s
        // when that is 0.
        set_statement_timeout(*fresh, cfg->database.statement_timeout.count() > 0
                                          ? cfg->database.statement_timeout
                                          : std::chrono::milliseconds(30000));
        conn = std::move(fresh);
        cancel.set(conn.get());
      }
      long long total = 0;
      for (;;) {
        pqxx::nontransaction tx(*conn);
        pqxx::result r = tx.exec_params("SELECT slotguard.expire_holds($1)", cfg->sweep.batch);
        const long long n = r[0][0].as<long long>(0);
        total += n;
        if (n < cfg->sweep.batch) break;
        std::lock_guard<std::mutex> lock(mu_);
        if (stop_) break;
      }
      const std::optional<long long> next = next_expiry_in(*conn);
      last_look = Clock::now();
      shared_.metrics.sweep(total);
      if (total > 0) log::debug("sweep: marked ", total, " holds expired");
      if (next) {
        // Wake just after the next hold expires: a 1 s hold is marked within about a second.
        sleep = std::min(sleep, milliseconds(std::max<long long>(*next, kMinSleep.count())));
      }
      if (failures > 0) log::notice("sweep: database reachable again");
      failures = 0;
      shared_.mark_up();
    } catch (const std::exception& e) {
      reset();
      const bool connection_lost =
          dynamic_cast<const pqxx::broken_connection*>(&e) != nullptr ||
          (dynamic_cast<const pqxx::sql_error*>(&e) != nullptr &&
           sg::errors::is_connection_lost(dynamic_cast<const pqxx::sql_error*>(&e)->sqlstate()));
      if (reused && connection_lost && failures == 0) {
        // The old connection died (a database restart while we slept): try a fresh one at
        // once before telling anybody the database is away.
        ++failures;
        continue;
      }
      ++failures;
      shared_.metrics.sweep_error();
      if (failures == 1) log::warning("sweep failed: ", first_line(e.what()));
      sleep = std::max(kMinSleep, backoff_delay(cfg->retry, failures, rng));
      sleep = std::min(sleep, std::max(cfg->sweep.interval, milliseconds(2000)));
      const std::string why = first_line(e.what());
      const bool connection =
          dynamic_cast<const pqxx::broken_connection*>(&e) != nullptr ||
          (dynamic_cast<const pqxx::sql_error*>(&e) != nullptr &&
           sg::errors::is_connection_lost(dynamic_cast<const pqxx::sql_error*>(&e)->sqlstate()));
      if (connection) shared_.mark_down(why);
    }
    // Sleep until the wake-up time, looking at next_expiry() every kLook meanwhile: a hold made
    // with plain SQL that expires sooner moves the wake-up time forward.
    const auto wake = Clock::now() + std::max(sleep, kMinSleep);
    Woken why = Woken::kTimeout;
    const bool look = conn != nullptr && failures == 0;  // not while the database is away
    for (;;) {
      const auto left = std::chrono::duration_cast<milliseconds>(wake - Clock::now());
      if (left <= milliseconds(0)) break;
      why = wait(look ? std::min(left, kLook) : left);
      if (why != Woken::kTimeout) break;
      if (!look || Clock::now() >= wake) continue;
      try {
        const std::optional<long long> next = next_expiry_in(*conn);
        if (next && *next <= kLook.count()) {
          // Due within the next look: sleep just until then, then sweep.
          if (*next > 0 && wait(milliseconds(*next)) == Woken::kStop) why = Woken::kStop;
          break;
        }
      } catch (const std::exception&) {
        break;  // the sweep below notices and handles a lost connection
      }
    }
    if (why == Woken::kStop) break;
  }
}

// ---------------------------------------------------------------------------------------------
// Monitor

Monitor::Monitor(Shared& shared) : shared_(shared) {
  thread_ = std::thread([this] { run(); });
}

Monitor::~Monitor() {
  stop();
}

void Monitor::stop() {
  shared_.stop();
  if (thread_.joinable()) thread_.join();
}

void Monitor::run() {
  std::mt19937_64 rng(std::random_device{}());
  while (shared_.wait_down()) {
    int attempt = 0;
    std::string last_error;
    while (!shared_.stopping() && !shared_.db_up()) {
      ++attempt;
      const auto cfg = shared_.config();
      try {
        pqxx::connection conn(cfg->database.conninfo);
        pqxx::nontransaction tx(conn);
        tx.exec("SELECT 1");
        shared_.mark_up();
        break;
      } catch (const std::exception& e) {
        const std::string why = first_line(e.what());
        if (why != last_error) log::warning("database: ", why);
        last_error = why;
      }
      // Back off up to a couple of seconds, so that a returning database is found soon.
      Config::Retry r = cfg->retry;
      r.base_delay_ms = std::max(r.base_delay_ms, 100);
      r.max_delay_ms = std::max(r.max_delay_ms, 2000);
      if (!shared_.sleep_for(backoff_delay(r, attempt, rng))) return;
    }
  }
}

}  // namespace sg::daemon
