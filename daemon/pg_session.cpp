// pg_session: see pg_session.hpp.
#include "pg_session.hpp"

#include <libpq-fe.h>
#include <poll.h>

#include <cerrno>
#include <pqxx/except>
#include <unordered_set>

#include "daemon_state.hpp"

namespace sg::daemon {

namespace {

using Clock = std::chrono::steady_clock;
using Kind = PipelinedOutcome::Kind;

struct ResultFree {
  void operator()(PGresult* r) const { PQclear(r); }
};
using Result = std::unique_ptr<PGresult, ResultFree>;

std::string message_of(const PGresult* r, const PGconn* conn) {
  const char* m = r != nullptr ? PQresultErrorMessage(r) : nullptr;
  if (m == nullptr || *m == '\0') m = PQerrorMessage(conn);
  return m;
}

std::string sqlstate_of(const PGresult* r) {
  const char* s = r != nullptr ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : nullptr;
  return s != nullptr ? s : "";
}

bool succeeded(const PGresult* r) {
  const ExecStatusType st = PQresultStatus(r);
  return r != nullptr && (st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK);
}

// first_value: the first column of the first row; nullopt when there is no row or it is NULL.
std::optional<std::string> first_value(const PGresult* r) {
  if (PQntuples(r) < 1 || PQnfields(r) < 1 || PQgetisnull(r, 0, 0)) return std::nullopt;
  return std::string(PQgetvalue(r, 0, 0), static_cast<std::size_t>(PQgetlength(r, 0, 0)));
}

std::vector<const char*> pointers(const std::vector<std::string>& values) {
  std::vector<const char*> out;
  out.reserve(values.size());
  for (const auto& v : values) out.push_back(v.c_str());
  return out;
}

class LibpqDatabase final : public Database {
 public:
  explicit LibpqDatabase(DaemonState& state) : state_(state), cancel_(state.cancellers) {}
  ~LibpqDatabase() override { drop(); }

  bool ensure(std::string& why) override {
    if (conn_ != nullptr) return true;
    try {
      connect();
      return true;
    } catch (const std::exception& e) {
      drop();
      why = first_line(e.what());
      return false;
    }
  }
  void drop() override {
    cancel_.set_libpq(nullptr);
    if (conn_ != nullptr) PQfinish(conn_);
    conn_ = nullptr;
    prepared_.clear();
  }
  bool open() const override { return conn_ != nullptr; }
  bool closed_by_server() override {
    return conn_ != nullptr && idle_and_closed(PQsocket(conn_), last_used_);
  }
  std::unique_ptr<Transaction> begin(bool autocommit) override {
    return std::make_unique<PgTransaction>(*this, autocommit);
  }
  bool pipelines() const override { return true; }
  void run_pipeline(const std::vector<PipelinedStatement>& sts, const OutcomeSink& sink) override;

 private:
  // PgTransaction: statements one at a time; BEGIN ... COMMIT unless autocommit, ROLLBACK when
  // destroyed without a commit.
  class PgTransaction final : public Transaction {
   public:
    PgTransaction(LibpqDatabase& db, bool autocommit) : db_(db), autocommit_(autocommit) {
      if (!autocommit_) db_.exec("", "BEGIN", {});
    }
    ~PgTransaction() override {
      if (!autocommit_ && !done_ && db_.conn_ != nullptr && PQstatus(db_.conn_) == CONNECTION_OK)
        PQclear(PQexec(db_.conn_, "ROLLBACK"));
    }
    std::optional<std::string> run(const std::string& name, const std::string& sql,
                                   const std::vector<std::string>& values) override {
      return first_value(db_.exec(name, sql, values).get());
    }
    void commit() override {
      done_ = true;
      if (autocommit_) return;
      Result r(PQexec(db_.conn_, "COMMIT"));
      if (succeeded(r.get())) return;
      if (sqlstate_of(r.get()).empty() && PQstatus(db_.conn_) != CONNECTION_OK)
        throw pqxx::in_doubt_error(message_of(r.get(), db_.conn_));
      db_.fail(r.get(), "COMMIT");
    }

   private:
    LibpqDatabase& db_;
    const bool autocommit_;
    bool done_ = false;
  };

  void connect();
  Result exec(const std::string& name, const std::string& sql,
              const std::vector<std::string>& values);
  void prepare(const std::string& name, const std::string& sql);
  [[noreturn]] void fail(const PGresult* r, const std::string& query);
  bool prepare_all(const std::vector<PipelinedStatement>& sts, std::vector<PipelinedOutcome>& out);
  bool send_all(const std::vector<PipelinedStatement>& sts, std::vector<PipelinedOutcome>& out);
  bool read_outcome(PipelinedOutcome& o);
  bool next_result(Result& r);
  bool flush();
  short wait(short events);

  DaemonState& state_;
  CancelSlot cancel_;
  PGconn* conn_ = nullptr;
  std::unordered_set<std::string> prepared_;
  Clock::time_point last_used_{};
};

// connect opens the session as connect() in database.hpp does with libpqxx: the extension's
// version is checked and statement_timeout set (0: the database's own).
void LibpqDatabase::connect() {
  const auto cfg = state_.config.get();
  conn_ = PQconnectdb(cfg->database.conninfo.c_str());
  if (conn_ == nullptr) throw std::bad_alloc();
  if (PQstatus(conn_) != CONNECTION_OK) throw pqxx::broken_connection(PQerrorMessage(conn_));
  const Result found = exec("", kExtensionQuery, {});
  if (PQntuples(found.get()) < 1) {
    check_extension_found(std::nullopt, "");
  } else {
    check_extension_found(std::string(PQgetvalue(found.get(), 0, 0)),
                          PQgetvalue(found.get(), 0, 1));
  }
  const auto timeout = cfg->database.statement_timeout;
  if (timeout.count() > 0)
    exec("", "SET statement_timeout = " + std::to_string(timeout.count()), {});
  cancel_.set_libpq(PQgetCancel(conn_));
  prepared_.clear();
  last_used_ = Clock::now();
}

// exec runs one statement (prepared under name once per connection; an empty name: sql as it
// is, without parameters) and waits for its result; a failure is thrown as libpqxx throws it.
Result LibpqDatabase::exec(const std::string& name, const std::string& sql,
                           const std::vector<std::string>& values) {
  Result r;
  if (name.empty()) {
    r.reset(PQexec(conn_, sql.c_str()));
  } else {
    prepare(name, sql);
    const auto ptrs = pointers(values);
    r.reset(PQexecPrepared(conn_, name.c_str(), static_cast<int>(ptrs.size()), ptrs.data(), nullptr,
                           nullptr, 0));
  }
  if (!succeeded(r.get())) fail(r.get(), sql);
  return r;
}

void LibpqDatabase::prepare(const std::string& name, const std::string& sql) {
  if (prepared_.count(name) != 0) return;
  const Result r(PQprepare(conn_, name.c_str(), sql.c_str(), 0, nullptr));
  if (!succeeded(r.get())) fail(r.get(), sql);
  prepared_.insert(name);
}

// fail throws a failed result as libpqxx would: an error with its SQLSTATE, a lost connection,
// or an error without SQLSTATE.
void LibpqDatabase::fail(const PGresult* r, const std::string& query) {
  const std::string state = sqlstate_of(r);
  const std::string message = message_of(r, conn_);
  if (!state.empty()) throw pqxx::sql_error(message, query, state.c_str());
  if (PQstatus(conn_) != CONNECTION_OK) throw pqxx::broken_connection(message);
  throw pqxx::sql_error(message, query);
}

void LibpqDatabase::run_pipeline(const std::vector<PipelinedStatement>& sts,
                                 const OutcomeSink& sink) {
  std::vector<PipelinedOutcome> out(sts.size());
  bool alive = prepare_all(sts, out) && PQenterPipelineMode(conn_) == 1 &&
               PQsetnonblocking(conn_, 1) == 0 && send_all(sts, out) && flush();
  std::string why;  // once the connection is lost: its last word
  for (std::size_t i = 0; i < out.size(); ++i) {
    if (alive && out[i].kind == Kind::kLost) alive = read_outcome(out[i]);
    if (!alive && why.empty()) {
      why = conn_ != nullptr ? first_line(PQerrorMessage(conn_)) : "";
      if (why.empty()) why = "the connection to the database was lost";
    }
    // Sent and not answered: it may have run.
    if (!alive && out[i].kind == Kind::kLost) out[i].text = why;
    sink(i, out[i]);
  }
  if (conn_ == nullptr) return;
  if (!alive || PQstatus(conn_) != CONNECTION_OK || PQexitPipelineMode(conn_) != 1 ||
      PQsetnonblocking(conn_, 0) != 0)
    return drop();
  last_used_ = Clock::now();
}

// prepare_all prepares, one at a time and before the pipeline, what this connection has not
// (a statement's first use on it); a statement whose prepare fails gets that error. false: the
// connection broke, and nothing of the pipeline was sent.
bool LibpqDatabase::prepare_all(const std::vector<PipelinedStatement>& sts,
                                std::vector<PipelinedOutcome>& out) {
  for (std::size_t i = 0; i < sts.size(); ++i) {
    if (prepared_.count(*sts[i].name) != 0) continue;
    try {
      prepare(*sts[i].name, *sts[i].sql);
    } catch (const pqxx::sql_error& e) {
      out[i] = PipelinedOutcome{Kind::kError, e.what(), e.sqlstate()};
    } catch (const std::exception&) {
      drop();
      return false;
    }
  }
  return true;
}

// send_all queues each statement not refused yet with its synchronisation point; one queued is
// kLost until its outcome is read (it may have reached the server). false: libpq refused.
bool LibpqDatabase::send_all(const std::vector<PipelinedStatement>& sts,
                             std::vector<PipelinedOutcome>& out) {
  for (std::size_t i = 0; i < sts.size(); ++i) {
    if (out[i].kind != Kind::kNotSent) continue;
    const auto ptrs = pointers(*sts[i].values);
    if (PQsendQueryPrepared(conn_, sts[i].name->c_str(), static_cast<int>(ptrs.size()), ptrs.data(),
                            nullptr, nullptr, 0) != 1)
      return false;
    out[i].kind = Kind::kLost;
    if (PQpipelineSync(conn_) != 1) return false;
  }
  return true;
}

// read_outcome reads one statement's result, the end of its results and its synchronisation
// point; false when the connection was lost first.
bool LibpqDatabase::read_outcome(PipelinedOutcome& o) {
  Result r;
  if (!next_result(r) || r == nullptr) return false;
  const ExecStatusType st = PQresultStatus(r.get());
  if (succeeded(r.get())) {
    std::optional<std::string> v = first_value(r.get());
    o.kind = v ? Kind::kValue : Kind::kNull;
    if (v) o.text = std::move(*v);
  } else {
    o.sqlstate = sqlstate_of(r.get());
    if (o.sqlstate.empty() && PQstatus(conn_) != CONNECTION_OK) return false;
    o.kind = Kind::kError;
    o.text = st == PGRES_PIPELINE_ABORTED ? "statement not run: the pipeline was aborted"
                                          : message_of(r.get(), conn_);
  }
  do {
    if (!next_result(r)) return false;
  } while (r != nullptr);
  return next_result(r) && PQresultStatus(r.get()) == PGRES_PIPELINE_SYNC;
}

// next_result waits for the next result (nullptr: the end of a statement's results); false
// when the connection was lost.
bool LibpqDatabase::next_result(Result& r) {
  while (PQisBusy(conn_) == 1) {
    if ((wait(POLLIN) & (POLLIN | POLLHUP | POLLERR)) == 0 || PQconsumeInput(conn_) != 1)
      return false;
  }
  r.reset(PQgetResult(conn_));
  return true;
}

// flush sends what libpq holds, reading the server's answers meanwhile (a long pipeline must not
// wait on a server that waits for us to read).
bool LibpqDatabase::flush() {
  for (;;) {
    const int r = PQflush(conn_);
    if (r == 0) return true;
    if (r < 0) return false;
    const short ev = wait(POLLIN | POLLOUT);
    if (ev == 0) return false;
    if ((ev & POLLIN) != 0 && PQconsumeInput(conn_) != 1) return false;
  }
}

// wait: the events of the connection's socket that came (0: poll failed). No time limit: a
// statement is bounded by statement_timeout, and a shutdown cancels it. The drain deadline
// cancels the statement running on each connection once; a pipeline's statements run one after
// the other, so while the daemon stops every statement still running here is cancelled in turn.
short LibpqDatabase::wait(short events) {
  struct pollfd p = {PQsocket(conn_), events, 0};
  for (;;) {
    if (p.fd < 0) return 0;
    const bool stopping = state_.circuit.stopping();
    const int n = ::poll(&p, 1, stopping ? 100 : 1000);
    if (n > 0) return p.revents;
    if (n < 0 && errno != EINTR) return 0;
    if (n == 0 && stopping) cancel_.cancel();
  }
}

}  // namespace

std::unique_ptr<Database> libpq_database(DaemonState& state) {
  return std::make_unique<LibpqDatabase>(state);
}

}  // namespace sg::daemon
