// dispatcher: see dispatcher.hpp.
#include "dispatcher.hpp"

#include <pqxx/pqxx>
#include <stdexcept>

#include "backoff.hpp"
#include "database_errors.hpp"
#include "error_contract.hpp"
#include "log.hpp"
#include "sweeper.hpp"

namespace sg::daemon {

namespace {

using Clock = std::chrono::steady_clock;

bool is_pending(const json& result) {
  if (!result.is_object()) return false;
  const auto it = result.find("status");
  return it != result.end() && it->is_string() && it->get_ref<const std::string&>() == "pending";
}

}  // namespace

RpcError unavailable(const std::string& why) {
  return rpc_error(kServerError, "database unavailable: " + why, "unavailable");
}

RpcError outcome_unknown() {
  return rpc_error(kServerError,
                   "the connection was lost while the request ran; its outcome is unknown",
                   "unavailable");
}

RpcError internal_error(std::string message) {
  return rpc_error(kInternalError, std::move(message), "internal");
}

json empty_result(const Call& c) {
  return c.method->result == ResultKind::Rows ? json::array() : json();
}

Dispatcher::Dispatcher(DaemonState& state, std::unique_ptr<Database> db)
    : state_(state), db_(std::move(db)), rng_(std::random_device{}()) {}

Dispatcher::~Dispatcher() = default;

bool Dispatcher::connected() const {
  return db_->open();
}

std::string Dispatcher::execute(Job& job) {
  try {
    return answer(job);
  } catch (const std::exception& e) {
    log::error("internal error: ", e.what());
    return to_line(make_error(nullptr, internal_error("internal error")));
  }
}

std::string Dispatcher::answer(Job& job) {
  Request& req = job.request;
  if (req.error) {
    record("(invalid)", req.error->reason, job);
    return to_line(make_error(nullptr, *req.error));
  }
  bool any_invalid = false;
  Calls calls;
  for (auto& e : req.entries) {
    if (e.error) {
      any_invalid = true;
    } else {
      calls.push_back(&*e.call);
    }
  }
  Outcomes outcomes(calls.size());
  if (any_invalid) {
    // All or nothing: a batch with an invalid element runs none of them.
    for (auto& o : outcomes) {
      o.error = rpc_error(kServerError, "not run: another request of the batch is invalid",
                          "invalid_params");
    }
  } else if (!calls.empty()) {
    outcomes = run(calls, job);
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
      record(method, o.error ? std::string_view(o.error->reason) : "ok", job);
      answer = o.error ? make_error(e.id, *o.error) : make_result(e.id, std::move(*o.result));
    }
    if (!e.notification) answers.push_back(std::move(answer));
  }
  if (answers.empty()) return "";
  if (!req.batch) return to_line(answers[0]);
  return to_line(answers);
}

void Dispatcher::record(const char* method, std::string_view outcome, const Job& job) {
  const double ms = std::chrono::duration<double, std::milli>(Clock::now() - job.received).count();
  state_.metrics.request(method, outcome, ms);
}

json Dispatcher::health(bool in_transaction) {
  json out = {{"status", "ok"}};
  if (in_transaction) {
    out["database"] = "ok";
    return out;
  }
  DatabaseCircuit& circuit = state_.circuit;
  std::string why;
  bool ok = false;
  // A connection the server ended while it idled says nothing about the database: drop it, and
  // answer from a new one (a health check must not mark a reachable database down).
  if (db_->open() && db_->closed_by_server()) db_->drop();
  // Two tries: the connection kept from before may have died meanwhile without a sign; only a
  // failure on a fresh connection marks the database down.
  for (int attempt = 0; attempt < 2 && !ok && !circuit.known_down(); ++attempt) {
    const bool fresh = !db_->open();
    if (!db_->ensure(why)) break;
    try {
      const auto standby = db_->begin(true)->run("", "SELECT pg_catalog.pg_is_in_recovery()", {});
      circuit.mark_up();
      ok = true;
      // Which server the daemon is on: after a failover a standby answers reads only.
      out["role"] = standby.value_or("f") == "t" ? "standby" : "primary";
    } catch (const std::exception& e) {
      why = first_line(e.what());
      db_->drop();
      if (fresh) break;
    }
  }
  if (!ok && why.empty()) {
    why = circuit.reason();
    if (why.empty()) why = "the database is not reachable";
  }
  if (!ok && !circuit.known_down()) circuit.mark_down(why);
  out["database"] = ok ? "ok" : "unavailable";
  if (!ok) out["database_error"] = why;
  return out;
}

json Dispatcher::stats_rows(Database::Transaction& tx) {
  const std::optional<std::string> rows =
      tx.run("",
             "SELECT COALESCE(pg_catalog.jsonb_agg(pg_catalog.to_jsonb(s)), "
             "'[]'::pg_catalog.jsonb) FROM slotguard.stats AS s",
             {});
  return rows ? parse_result(*rows) : json::array();
}

json Dispatcher::stats(Database::Transaction* tx) {
  json out = {{"daemon", state_.metrics.snapshot()}};
  out["daemon"]["database"] = state_.circuit.up() ? "ok" : "unavailable";
  if (tx != nullptr) {
    out["slotguard"] = stats_rows(*tx);
    return out;
  }
  out["slotguard"] = nullptr;
  std::string why;
  if (!state_.circuit.known_down() && db_->ensure(why)) {
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

const std::string& Dispatcher::default_actor(uid_t uid) {
  if (uid != actor_uid_ || actor_text_.empty()) {
    actor_uid_ = uid;
    actor_text_ = "uid:" + std::to_string(uid);
  }
  return actor_text_;
}

// run executes calls in one transaction, all or nothing, with retries (after those a pipeline
// made of the job, if any).
Dispatcher::Outcomes Dispatcher::run(const Calls& calls, const Job& job) {
  auto every = [&](const RpcError& e) {
    Outcomes out(calls.size());
    for (auto& o : out) o.error = e;
    return out;
  };
  Outcomes alone(1);  // stats and health alone are answered without a transaction
  if (calls.size() == 1 && calls[0]->method->result == ResultKind::Health) {
    alone[0].result = health(false);
    return alone;
  }
  if (calls.size() == 1 && calls[0]->method->result == ResultKind::Stats) {
    alone[0].result = stats(nullptr);
    return alone;
  }
  if (state_.circuit.known_down()) {
    std::string why = state_.circuit.reason();
    return every(unavailable((why.empty() ? "the database is not reachable" : why) + "; retrying"));
  }

  const Config& cfg = state_.config.current(config_);
  const std::string& actor = default_actor(job.uid);
  Attempt attempt;
  attempt.connection = job.lost_connection;
  if (job.attempts > 0) {
    // A pipeline's attempt failed in a way worth retrying: back off as between attempts here.
    state_.metrics.retry();
    if (!attempt.connection.empty()) state_.metrics.reconnect();
    if (!state_.circuit.sleep_for(backoff_delay(cfg.retry, job.attempts, rng_)))
      return every(unavailable("shutting down"));
  }
  for (attempt.number = job.attempts + 1;; ++attempt.number) {
    attempt.last = attempt.number >= cfg.retry.max_attempts;
    attempt.at = 0;
    attempt.sent = false;
    std::string why;
    if (!db_->ensure(why)) {
      state_.circuit.mark_down(why);
      return every(unavailable(why));
    }
    try {
      return calls.size() == 1 ? run_single(*calls[0], actor, attempt)
                               : run_batch(calls, actor, attempt);
    } catch (...) {
      if (auto done = on_failure(std::current_exception(), calls, attempt)) return std::move(*done);
    }
    // Retry: a retryable error or a lost connection.
    if (attempt.last) {
      if (!attempt.connection.empty()) {
        state_.circuit.mark_down(attempt.connection);
        return every(unavailable(attempt.connection));
      }
      break;
    }
    state_.metrics.retry();
    if (!attempt.connection.empty()) state_.metrics.reconnect();
    if (!state_.circuit.sleep_for(backoff_delay(cfg.retry, attempt.number, rng_)))
      return every(unavailable("shutting down"));
  }
  return every(internal_error("retries exhausted"));
}

// run_single: one round trip, the actor settings and the call in one statement, in autocommit.
// A connection the server has closed while it idled (a restart) is replaced first, so that a lost
// connection while the statement runs really means an unknown outcome.
Dispatcher::Outcomes Dispatcher::run_single(const Call& c, const std::string& actor,
                                            Attempt& attempt) {
  Outcomes out(1);
  if (db_->closed_by_server()) {
    db_->drop();
    std::string why;
    if (!db_->ensure(why)) {
      state_.circuit.mark_down(why);
      out[0].error = unavailable(why);
      return out;
    }
  }
  const CachedStatement& st = single_statement(c, actor, values_);
  const auto tx = db_->begin(true);
  attempt.sent = true;
  const std::optional<std::string> v = tx->run(st.name, st.sql, values_);
  out[0].result = v ? parse_result(*v) : empty_result(c);
  state_.circuit.mark_up();
  if (makes_hold(c) && is_pending(*out[0].result)) poke_sweeper();
  return out;
}

Dispatcher::Outcomes Dispatcher::run_batch(const Calls& calls, const std::string& actor,
                                           Attempt& attempt) {
  const auto tx = db_->begin(false);
  std::vector<json> results;
  for (attempt.at = 0; attempt.at < calls.size(); ++attempt.at)
    results.push_back(run_in_transaction(*tx, *calls[attempt.at], actor));
  attempt.at = calls.size();
  tx->commit();
  state_.circuit.mark_up();
  Outcomes out(calls.size());
  bool hold = false;
  for (std::size_t i = 0; i < calls.size(); ++i) {
    if (makes_hold(*calls[i]) && is_pending(results[i])) hold = true;
    out[i].result = std::move(results[i]);
  }
  if (hold) poke_sweeper();
  return out;
}

json Dispatcher::run_in_transaction(Database::Transaction& tx, const Call& c,
                                    const std::string& default_actor) {
  if (c.method->result == ResultKind::Health) return health(true);
  if (c.method->result == ResultKind::Stats) return stats(&tx);
  const std::string actor = c.actor.value_or(default_actor);
  if (c.actor_role) {
    tx.run("sg_ctx2",
           "SELECT pg_catalog.set_config('slotguard.actor', $1, true), "
           "pg_catalog.set_config('slotguard.actor_role', $2, true)",
           {actor, *c.actor_role});
  } else {
    tx.run("sg_ctx1",
           "SELECT pg_catalog.set_config('slotguard.actor', $1, true), "
           "pg_catalog.set_config('slotguard.actor_role', NULL, true)",
           {actor});
  }
  const Statement st = build_statement(c);
  const std::optional<std::string> v = tx.run(st.name, st.sql, st.values);
  return v ? parse_result(*v) : empty_result(c);
}

std::optional<Dispatcher::Outcomes> Dispatcher::on_failure(std::exception_ptr failure,
                                                           const Calls& calls, Attempt& attempt) {
  Outcomes out(calls.size());
  auto every = [&](const RpcError& e) {
    for (auto& o : out) o.error = e;
    return out;
  };
  const bool single = calls.size() == 1;
  try {
    std::rethrow_exception(failure);
  } catch (const pqxx::in_doubt_error& e) {
    db_->drop();
    return every(rpc_error(kServerError,
                           "the connection was lost during COMMIT; the outcome is unknown",
                           "unavailable"));
  } catch (const pqxx::broken_connection& e) {
    attempt.connection = first_line(e.what());
    db_->drop();
    if (single && attempt.sent && !retry_safe(*calls[0])) return every(outcome_unknown());
  } catch (const pqxx::sql_error& e) {
    return on_sql_error(sqlstate_of(e), e.what(), calls, attempt);
  } catch (const pqxx::transaction_rollback& e) {
    // libpqxx 6 reports deadlocks and serialization failures outside sql_error: retry them like
    // their SQLSTATEs (40P01, 40001).
    if (dynamic_cast<const pqxx::statement_completion_unknown*>(&e) != nullptr) {
      db_->drop();
      return every(outcome_unknown());
    }
    const std::string state(dynamic_cast<const pqxx::deadlock_detected*>(&e) != nullptr
                                ? sg::errors::sqlstate::kDeadlockDetected
                                : sg::errors::sqlstate::kSerializationFailure);
    if (attempt.last) return every(error_from_database(state, e.what()));
    log::debug("retrying after ", state, " (attempt ", attempt.number, ")");
  } catch (const std::length_error& e) {
    // parse_result: a result nested too deep to be written (a batch is rolled back by then).
    log::warning(calls[0]->method->name, ": ", e.what());
    return every(internal_error(e.what()));
  } catch (const std::exception& e) {
    log::error("internal error running ", calls[0]->method->name, ": ", e.what());
    db_->drop();
    return every(internal_error(std::string("internal error: ") + first_line(e.what())));
  }
  return std::nullopt;
}

std::optional<Dispatcher::Outcomes> Dispatcher::on_sql_error(const std::string& state,
                                                             const std::string& message,
                                                             const Calls& calls, Attempt& attempt) {
  Outcomes out(calls.size());
  if (sg::errors::is_connection_lost(state)) {
    attempt.connection = first_line(message);
    db_->drop();
    // 57P0x: the server ended our statement (its transaction is rolled back); anything else
    // (08xxx) lost the connection without saying what became of it.
    if (calls.size() == 1 && attempt.sent && state.rfind("57P0", 0) != 0 &&
        !retry_safe(*calls[0])) {
      out[0].error = outcome_unknown();
      return out;
    }
    return std::nullopt;
  }
  if (sg::errors::is_read_only_server(state)) {
    // A standby, or a primary demoted by a failover: nothing was written. A new connection
    // (target_session_attrs=read-write) finds the writable server; without one the request ends
    // as `unavailable`.
    db_->drop();
    if (!attempt.last) {
      attempt.connection = first_line(message);
      return std::nullopt;
    }
  }
  if (sg::errors::is_retryable(state) && !attempt.last) {
    log::debug("retrying after ", state, " (attempt ", attempt.number, ")");
    return std::nullopt;
  }
  // A business error (or one not worth retrying): the failing call gets it, the others of a
  // batch are rolled back with it.
  const RpcError err = error_from_database(state, message);
  for (std::size_t i = 0; i < calls.size(); ++i) {
    out[i].error = err;
    if (i != attempt.at && calls.size() != 1)
      out[i].error->message = "rolled back: request " + std::to_string(attempt.at + 1) +
                              " of the batch failed: " + err.message;
  }
  return out;
}

void Dispatcher::poke_sweeper() {
  if (state_.sweeper != nullptr) state_.sweeper->poke();
}

const Dispatcher::CachedStatement& Dispatcher::single_statement(const Call& c,
                                                                const std::string& actor,
                                                                std::vector<std::string>& values) {
  const StatementKey key{c.method, arg_shape(c.args), c.actor_role.has_value()};
  auto it = statements_.find(key);
  if (it == statements_.end()) {
    Statement st = build_single_statement(c, c.actor.value_or(actor), c.actor_role);
    it = statements_.emplace(key, CachedStatement{std::move(st.name), std::move(st.sql)}).first;
  }
  values.clear();
  values.push_back(c.actor ? *c.actor : actor);
  if (c.actor_role) values.push_back(*c.actor_role);
  for (const Arg& a : c.args) values.push_back(a.value);
  return it->second;
}

}  // namespace sg::daemon
