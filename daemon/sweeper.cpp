// sweeper: see sweeper.hpp.
#include "sweeper.hpp"

#include <pqxx/pqxx>

#include "backoff.hpp"
#include "error_contract.hpp"
#include "log.hpp"

namespace sg::daemon {

namespace {

using std::chrono::milliseconds;

constexpr milliseconds kMinSleep(50);      // never spin
constexpr milliseconds kPokeSpacing(100);  // a burst of new holds costs one next_expiry() a tick
// Holds made with plain SQL (not through our socket) poke nobody: while asleep, look at
// next_expiry() this often, so that such a hold is also marked about when it expires.
constexpr milliseconds kLook(1000);
// A sweep or a look that blocks (a table locked by VACUUM FULL, a hung network) must not hold up
// a shutdown or the next sweep for long: database.statement_timeout, or this when that is 0.
constexpr milliseconds kDefaultStatementTimeout(30000);

// read_only_server: the server refused a write because it is read-only (25006: a standby, or a
// primary demoted by a failover). The database answered: it is reachable, only this connection is
// on the wrong server.
bool read_only_server(const std::exception& e) {
  const auto* sql = dynamic_cast<const pqxx::sql_error*>(&e);
  return sql != nullptr && sg::errors::is_read_only_server(sqlstate_of(*sql));
}

// failure_text: what to log about e. libpqxx 6 reports a connection the server closed during a
// statement as "Could not obtain client encoding: not connected." (it asks the dead connection for
// its encoding before it looks at the result, so the server's own message is lost): say what
// happened instead.
std::string failure_text(const std::exception& e) {
  std::string text = first_line(e.what());
  if (dynamic_cast<const pqxx::broken_connection*>(&e) != nullptr &&
      text.rfind("Could not obtain client encoding", 0) == 0)
    text = "the server closed the connection";
  return text;
}

}  // namespace

Sweeper::Sweeper(DaemonState& state)
    : state_(state), cancel_(state.cancellers), rng_(std::random_device{}()) {
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

bool Sweeper::stopped() {
  std::lock_guard<std::mutex> lock(mu_);
  return stop_;
}

Sweeper::Woken Sweeper::wait(milliseconds d) {
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait_for(lock, d, [&] { return stop_ || poked_; });
  const Woken why = stop_ ? Woken::kStop : poked_ ? Woken::kPoke : Woken::kTimeout;
  poked_ = false;
  return why;
}

bool Sweeper::space_out() {
  const auto since = Clock::now() - last_look_;
  if (since >= kPokeSpacing) return true;
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait_for(lock, kPokeSpacing - since, [&] { return stop_; });
  return !stop_;
}

// conn_ is reset in several places: the cancel slot forgets it first.
void Sweeper::forget_connection() {
  cancel_.set(nullptr);
  conn_.reset();
}

std::optional<long long> Sweeper::next_expiry_in() {
  pqxx::nontransaction tx(*conn_);
  pqxx::result r = tx.exec(
      "SELECT (pg_catalog.date_part('epoch', slotguard.next_expiry() - "
      "pg_catalog.clock_timestamp()) * 1000)::bigint");
  if (r[0][0].is_null()) return std::nullopt;
  return r[0][0].as<long long>() + 5;
}

milliseconds Sweeper::sweep(const Config& cfg) {
  if (!conn_) {
    conn_ = connect(cfg.database, cfg.database.statement_timeout.count() > 0
                                      ? cfg.database.statement_timeout
                                      : kDefaultStatementTimeout);
    cancel_.set(conn_.get());
  }
  long long total = 0;
  const bool pooled = cfg.database.pool_mode == Config::Database::PoolMode::kTransaction;
  for (;;) {
    // Each batch commits on its own. Behind a transaction-pooling PgBouncer the timeout is the
    // transaction's own (connect() set none on the session).
    std::unique_ptr<pqxx::transaction_base> tx;
    if (pooled) {
      tx = std::make_unique<pqxx::work>(*conn_);
      const auto timeout = cfg.database.statement_timeout.count() > 0
                               ? cfg.database.statement_timeout
                               : kDefaultStatementTimeout;
      tx->exec("SET LOCAL statement_timeout = " + std::to_string(timeout.count()));
    } else {
      tx = std::make_unique<pqxx::nontransaction>(*conn_);
    }
    pqxx::result r = tx->exec_params("SELECT slotguard.expire_holds($1)", cfg.sweep.batch);
    tx->commit();
    const long long n = r[0][0].as<long long>(0);
    total += n;
    if (n < cfg.sweep.batch || stopped()) break;
  }
  const std::optional<long long> next = next_expiry_in();
  last_look_ = Clock::now();
  state_.metrics.sweep(total);
  if (total > 0) log::debug("sweep: marked ", total, " holds expired");
  milliseconds sleep = cfg.sweep.interval;
  if (next) {
    // Wake just after the next hold expires: a 1 s hold is marked within about a second.
    sleep = std::min(sleep, milliseconds(std::max<long long>(*next, kMinSleep.count())));
  }
  if (reported_) log::notice("sweep: working again");
  failures_ = 0;
  reported_ = false;
  state_.circuit.mark_up();
  return sleep;
}

bool Sweeper::on_failure(const std::exception& e, bool reused, const Config& cfg,
                         milliseconds& sleep) {
  const std::string why = failure_text(e);
  forget_connection();
  const bool lost = connection_lost(e);
  const bool read_only = read_only_server(e);
  if (reused && (lost || read_only) && failures_ == 0) {
    // The old connection died (a database restart while we slept), or its server turned
    // read-only (a failover demoted it): try a fresh one at once, which a multi-host conninfo
    // with target_session_attrs=read-write opens on the writable server, before telling anybody.
    ++failures_;
    return true;
  }
  ++failures_;
  state_.metrics.sweep_error();
  if (!reported_) log::warning("sweep failed: ", why);
  reported_ = true;
  sleep = std::max(kMinSleep, backoff_delay(cfg.retry, failures_, rng_));
  sleep = std::min(sleep, std::max(cfg.sweep.interval, milliseconds(2000)));
  // Only a connection that could not be made, or was lost, says the database is away. A
  // read-only server answered: the database is reachable (reads work); the sweep waits for a
  // writable one without marking the circuit down, which would refuse every request meanwhile.
  if (lost) state_.circuit.mark_down(why);
  return false;
}

// A hold made with plain SQL that expires sooner than wake moves the wake-up time forward: the
// loop looks at next_expiry() every kLook (not while the database is away).
Sweeper::Woken Sweeper::sleep_until(Clock::time_point wake) {
  Woken why = Woken::kTimeout;
  const bool look = conn_ != nullptr && failures_ == 0;
  for (;;) {
    const auto left = std::chrono::duration_cast<milliseconds>(wake - Clock::now());
    if (left <= milliseconds(0)) break;
    why = wait(look ? std::min(left, kLook) : left);
    if (why != Woken::kTimeout) break;
    if (!look || Clock::now() >= wake) continue;
    try {
      const std::optional<long long> next = next_expiry_in();
      if (next && *next <= kLook.count()) {
        // Due within the next look: sleep just until then, then sweep.
        if (*next > 0 && wait(milliseconds(*next)) == Woken::kStop) why = Woken::kStop;
        break;
      }
    } catch (const std::exception&) {
      // The sweep that follows connects afresh. The broken connection is not used again:
      // libpqxx 6 would silently reconnect it, without check_extension or statement_timeout.
      forget_connection();
      break;
    }
  }
  return why;
}

void Sweeper::run() {
  while (!stopped()) {
    const auto cfg = state_.config.get();
    if (!cfg->sweep.enabled) {
      forget_connection();
      if (wait(cfg->sweep.interval) == Woken::kStop) break;
      continue;
    }
    if (!space_out()) break;
    milliseconds sleep = cfg->sweep.interval;
    const bool reused = conn_ != nullptr;  // a connection from before may have died meanwhile
    try {
      sleep = sweep(*cfg);
    } catch (const std::exception& e) {
      if (on_failure(e, reused, *cfg, sleep)) continue;
    }
    if (sleep_until(Clock::now() + std::max(sleep, kMinSleep)) == Woken::kStop) break;
  }
  forget_connection();
}

}  // namespace sg::daemon
