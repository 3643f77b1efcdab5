// dispatcher_pipeline: the dispatcher's way for the requests one worker took in one turn
// (Dispatcher::execute_all, dispatcher.hpp). The single calls to a database method — what nearly
// every client sends — go to the database together, in one pipeline (Database::run_pipeline):
// each is still its own statement in autocommit, as run_single would run it, so an error is that
// request's alone. A result is the JSON text the database wrote, and it goes into the answer as it
// is (protocol.hpp, result_line): no parse, no document, no encoding again. What is left — a
// batch, health, stats, a request the validation refused, a call whose error wants a retry (a
// serialization failure, a deadlock, a lost connection when running it again is safe, a
// read-only server) — runs one by one through execute, with the same rules and retries as ever:
// the pipeline counts as the first attempt.
#include <stdexcept>

#include "database_errors.hpp"
#include "dispatcher.hpp"
#include "error_contract.hpp"
#include "log.hpp"
#include "sweeper.hpp"

namespace sg::daemon {

void Dispatcher::execute_all(std::vector<Job>& jobs, const Answered& answered) {
  std::vector<Job*> piped;
  if (db_->pipelines()) {
    for (auto& job : jobs) {
      if (pipelinable(job)) piped.push_back(&job);
    }
  }
  if (!piped.empty()) {
    try {
      run_pipelined(piped, answered);
    } catch (const std::exception& e) {
      // Only before anything was sent (run_pipeline does not throw after): each runs alone.
      log::error("internal error preparing a pipeline: ", e.what());
    }
  }
  for (auto& job : jobs) {
    if (job.answered) continue;
    job.answer = execute(job);
    job.answered = true;
    answered(job);
  }
}

bool Dispatcher::pipelinable(const Job& job) const {
  const Request& r = job.request;
  if (r.error || r.batch || r.entries.size() != 1 || !r.entries[0].call) return false;
  const ResultKind kind = r.entries[0].call->method->result;
  return kind != ResultKind::Health && kind != ResultKind::Stats && job.attempts == 0 &&
         !state_.circuit.known_down();
}

// run_pipelined sends the jobs' statements in one pipeline and answers those it can, each as its
// outcome comes; the others are left for execute (not answered).
void Dispatcher::run_pipelined(const std::vector<Job*>& jobs, const Answered& answered) {
  // No connection, or one the server closed while it idled and none to replace it: unavailable,
  // as run and run_single answer (one connection attempt, not one more for each request).
  std::string why;
  bool open = db_->ensure(why);
  if (open && db_->closed_by_server()) {
    db_->drop();
    open = db_->ensure(why);
  }
  if (!open) {
    state_.circuit.mark_down(why);
    for (Job* job : jobs) {
      const Entry& e = job->request.entries[0];
      record(e.call->method->name, "unavailable", *job);
      job->answer = e.notification ? "" : to_line(make_error(e.id, unavailable(why)));
      job->answered = true;
      answered(*job);
    }
    return;
  }
  pipeline_values_.resize(std::max(pipeline_values_.size(), jobs.size()));
  std::vector<PipelinedStatement> statements;
  statements.reserve(jobs.size());
  for (std::size_t i = 0; i < jobs.size(); ++i) {
    const Call& c = *jobs[i]->request.entries[0].call;
    const CachedStatement& st =
        single_statement(c, default_actor(jobs[i]->uid), pipeline_values_[i]);
    statements.push_back(PipelinedStatement{&st.name, &st.sql, &pipeline_values_[i]});
  }
  bool drop = false;
  db_->run_pipeline(statements, [&](std::size_t i, const PipelinedOutcome& o) {
    Job& job = *jobs[i];
    try {
      job.answered = pipelined_answer(job, o, drop);
    } catch (const std::exception& e) {
      log::error("internal error: ", e.what());
      job.answer = to_line(make_error(nullptr, internal_error("internal error")));
      job.answered = true;
    }
    if (job.answered) answered(job);
  });
  if (drop) db_->drop();
}

// pipelined_answer: as run and on_sql_error decide for a single call's first attempt.
bool Dispatcher::pipelined_answer(Job& job, const PipelinedOutcome& o, bool& drop) {
  using Kind = PipelinedOutcome::Kind;
  const Entry& e = job.request.entries[0];
  const Call& c = *e.call;
  const bool can_retry = state_.config.current(config_).retry.max_attempts > 1;
  auto again = [&](std::string lost) {
    job.attempts = 1;
    job.lost_connection = std::move(lost);
    return false;
  };
  RpcError error;
  if (o.kind == Kind::kValue || o.kind == Kind::kNull) {
    state_.circuit.mark_up();
    job.answer = o.kind == Kind::kValue ? value_answer(job, o.text)
                                        : to_line(make_result(e.id, empty_result(c)));
    if (o.kind == Kind::kNull) record(c.method->name, "ok", job);
    if (e.notification) job.answer.clear();
    return true;
  }
  if (o.kind == Kind::kNotSent) return false;
  const std::string first = first_line(o.text);
  const bool lost = o.kind == Kind::kLost || sg::errors::is_connection_lost(o.sqlstate);
  if (lost) {
    drop = true;
    // 57P0x: the server ended the statement (rolled back); anything else may have run.
    const bool ended = o.kind == Kind::kError && o.sqlstate.rfind("57P0", 0) == 0;
    if (!ended && !retry_safe(c)) {
      error = outcome_unknown();
    } else if (can_retry) {
      return again(first);
    } else {
      state_.circuit.mark_down(first);
      error = unavailable(first);
    }
  } else if (sg::errors::is_read_only_server(o.sqlstate)) {
    drop = true;
    if (can_retry) return again(first);
    error = error_from_database(o.sqlstate, o.text);
  } else if (sg::errors::is_retryable(o.sqlstate) && can_retry) {
    return again("");
  } else {
    error = error_from_database(o.sqlstate, o.text);
  }
  record(c.method->name, error.reason, job);
  job.answer = e.notification ? "" : to_line(make_error(e.id, error));
  return true;
}

// value_answer: the answer carrying the database's JSON text (as run_single's would, without
// parsing it); a pending hold wakes the sweeper.
std::string Dispatcher::value_answer(const Job& job, const std::string& text) {
  const Entry& e = job.request.entries[0];
  const Call& c = *e.call;
  // jsonb writes "key": value; inside a string a quote is escaped, so this is the member itself.
  if (makes_hold(c) && text.find("\"status\": \"pending\"") != std::string::npos) poke_sweeper();
  std::optional<std::string> line = result_line(e.id, text);
  if (line) {
    record(c.method->name, "ok", job);
    return std::move(*line);
  }
  RpcError error;
  try {
    line = to_line(make_result(e.id, parse_result(text)));
    record(c.method->name, "ok", job);
    return std::move(*line);
  } catch (const std::length_error& err) {
    log::warning(c.method->name, ": ", err.what());
    error = internal_error(err.what());
  } catch (const std::exception& err) {
    log::error("internal error running ", c.method->name, ": ", err.what());
    error = internal_error(std::string("internal error: ") + first_line(err.what()));
  }
  record(c.method->name, error.reason, job);
  return to_line(make_error(e.id, error));
}

}  // namespace sg::daemon
