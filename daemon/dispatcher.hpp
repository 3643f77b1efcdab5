// dispatcher: runs request lines on a Database and writes their answers. The calls of a request
// (one, or a batch) run in one transaction, all or nothing; a single call runs as one statement in
// autocommit (one round trip). Serialization failures and deadlocks are retried with backoff, a
// lost connection is retried when that is safe; database errors become JSON-RPC errors
// (database_errors.hpp). Used by each worker thread (workers.hpp) on its own connection, and by
// the fuzz tests on a fake database. execute_all runs the requests a worker took in one turn:
// the single calls together in one pipeline when the database pipelines (dispatcher_pipeline.cpp:
// results go to the answer as the database wrote them), the rest (and any single call whose
// error wants a retry) one by one.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <exception>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#include "daemon_state.hpp"
#include "database.hpp"
#include "protocol.hpp"

namespace sg::daemon {

// The answers both parts of the dispatcher give (dispatcher.cpp).
RpcError unavailable(const std::string& why);
RpcError outcome_unknown();
RpcError internal_error(std::string message);
// empty_result: a call's result when its statement gave no row or NULL.
json empty_result(const Call& c);

// Job is one request line to run for a client, and its answer.
struct Job {
  std::uint64_t client = 0;
  uid_t uid = 0;
  Request request;
  std::chrono::steady_clock::time_point received;
  std::string answer;  // "" when nothing is to be sent (notifications only)
  // A pipeline already tried it (attempts made) and why the connection was lost, if it was.
  int attempts = 0;
  std::string lost_connection;
  bool answered = false;  // execute_all: answer is set
};

class Dispatcher {
 public:
  Dispatcher(DaemonState& state, std::unique_ptr<Database> db);
  ~Dispatcher();
  // execute returns the answer line, "" when nothing is to be sent (notifications only); it does
  // not throw.
  std::string execute(Job& job);
  // execute_all sets the answer of every job and hands each job to `answered` as soon as its
  // answer is set (a pipeline's first answers go out while later ones still run); it does not
  // throw (unless answered does).
  using Answered = std::function<void(Job&)>;
  void execute_all(std::vector<Job>& jobs, const Answered& answered);
  bool connected() const;

 private:
  // Outcome of one call: a result or an error.
  struct Outcome {
    std::optional<json> result;
    std::optional<RpcError> error;
  };
  using Outcomes = std::vector<Outcome>;
  using Calls = std::vector<const Call*>;
  // Attempt is one try at running the calls, as far as a failure needs to know it.
  struct Attempt {
    int number = 1;
    bool last = false;       // no retry after this one
    std::size_t at = 0;      // the call running, for errors
    bool sent = false;       // the single statement went to the server (its outcome may be unknown)
    std::string connection;  // the last lost connection's error (kept across attempts)
  };
  // The one-statement form of a call, prepared once per connection, its SQL built once per
  // method, set of parameters and role.
  struct CachedStatement {
    std::string name;
    std::string sql;
  };
  using StatementKey = std::tuple<const MethodSpec*, ArgShape, bool>;

  std::string answer(Job& job);
  void record(const char* method, std::string_view outcome, const Job& job);
  json health(bool in_transaction);
  json stats_rows(Database::Transaction& tx);
  json stats(Database::Transaction* tx);
  Outcomes run(const Calls& calls, const Job& job);
  // The pipeline (dispatcher_pipeline.cpp).
  bool pipelinable(const Job& job) const;
  void run_pipelined(const std::vector<Job*>& jobs, const Answered& answered);
  // pipelined_answer answers a job from its statement's outcome; false when the job is to run
  // again one by one (job.attempts says what was tried).
  bool pipelined_answer(Job& job, const PipelinedOutcome& o, bool& drop);
  std::string value_answer(const Job& job, const std::string& text);
  const std::string& default_actor(uid_t uid);
  Outcomes run_single(const Call& call, const std::string& actor, Attempt& attempt);
  Outcomes run_batch(const Calls& calls, const std::string& actor, Attempt& attempt);
  json run_in_transaction(Database::Transaction& tx, const Call& call, const std::string& actor);
  // on_failure handles what an attempt threw: the outcomes when the request is done, nullopt to
  // retry.
  std::optional<Outcomes> on_failure(std::exception_ptr failure, const Calls& calls,
                                     Attempt& attempt);
  std::optional<Outcomes> on_sql_error(const std::string& sqlstate, const std::string& message,
                                       const Calls& calls, Attempt& attempt);
  void poke_sweeper();
  // single_statement builds (once per method, set of parameters and role) the call's
  // one-statement form and leaves its values in `values`: actor, [role,] arguments (see
  // build_single_statement).
  const CachedStatement& single_statement(const Call& c, const std::string& actor,
                                          std::vector<std::string>& values);

  DaemonState& state_;
  std::unique_ptr<Database> db_;
  std::mt19937_64 rng_;
  RunningConfig::View config_;
  uid_t actor_uid_ = 0;
  std::string actor_text_;
  std::map<StatementKey, CachedStatement> statements_;
  std::vector<std::string> values_;
  std::vector<std::vector<std::string>> pipeline_values_;
};

}  // namespace sg::daemon
