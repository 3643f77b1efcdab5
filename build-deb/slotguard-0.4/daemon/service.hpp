// service: the database side of slotguardd: the shared state (configuration, the "database is
// up" circuit flag, counters), the worker pool (one pqxx connection per worker, prepared
// statements, one transaction per request or batch, retries with backoff), the sweep thread and
// the monitor that reconnects while the database is away.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "config.hpp"
#include "metrics.hpp"
#include "protocol.hpp"

namespace sg::daemon {

// Job is one request line to run for a client.
struct Job {
  std::uint64_t client = 0;
  uid_t uid = 0;
  Request request;
  std::chrono::steady_clock::time_point received;
};

class Sweeper;

class Shared {
 public:
  explicit Shared(std::shared_ptr<const Config> config);

  std::shared_ptr<const Config> config() const;
  void set_config(std::shared_ptr<const Config> config);

  // ConfigView is one thread's snapshot of the configuration: current() re-reads it (under the
  // mutex) only when set_config has run since, so that the hot path takes no lock.
  struct ConfigView {
    std::uint64_t generation = ~std::uint64_t{0};
    std::shared_ptr<const Config> config;
  };
  const Config& current(ConfigView& view) const;

  // The circuit: while the database is down, requests answer `unavailable` at once and the
  // monitor reconnects with backoff.
  bool db_up() const { return db_up_.load(); }
  // known_down: a connection attempt failed and none has succeeded since (at start, before the
  // first attempt, the database is neither up nor known down: requests try it).
  bool known_down() const { return down_.load(); }
  void mark_down(const std::string& why);
  void mark_up();
  // wait_down blocks the monitor until the database is down or stop; returns false on stop.
  bool wait_down();
  // sleep_for sleeps unless stop comes first; returns false on stop.
  bool sleep_for(std::chrono::milliseconds d);
  void stop();
  bool stopping() const { return stop_.load(); }

  // wake_fd wakes the event loop when the database goes up or down.
  int wake_fd() const { return wake_fd_; }

  // Cancellers: every database connection of the daemon registers how to cancel the statement
  // running on it; cancel_all (at the drain deadline of a shutdown) calls each and returns how
  // many it called. A canceller must be cheap and must not throw.
  std::uint64_t add_canceller(std::function<void()> cancel);
  void remove_canceller(std::uint64_t id);
  int cancel_all();

  Metrics metrics;
  Sweeper* sweeper = nullptr;

 private:
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::shared_ptr<const Config> config_;
  std::atomic<std::uint64_t> generation_{0};
  std::atomic<bool> db_up_{false};
  std::atomic<bool> down_{false};
  std::atomic<bool> stop_{false};
  int wake_fd_ = -1;
  std::mutex cancel_mu_;
  std::uint64_t next_canceller_ = 1;
  std::map<std::uint64_t, std::function<void()>> cancellers_;
};

// Database is one worker's session with PostgreSQL as the dispatcher uses it: libpqxx in the
// daemon (pqxx_database), a fake with canned answers in the fuzz tests (tests/fuzz/). Failures are
// thrown as libpqxx's exceptions (pqxx::sql_error with its SQLSTATE, pqxx::broken_connection,
// pqxx::in_doubt_error, ...), whoever throws them.
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
std::unique_ptr<Database> pqxx_database(Shared& shared);

// Dispatcher answers requests on one Database: the calls of a request (one, or a batch) run in
// one transaction, all or nothing (a single call as one statement in autocommit), with retries
// and backoff; database errors become JSON-RPC errors. execute returns the answer line, "" when
// nothing is to be sent (notifications only); it does not throw.
class Dispatcher {
 public:
  Dispatcher(Shared& shared, std::unique_ptr<Database> db);
  ~Dispatcher();
  std::string execute(Job& job);
  bool connected() const;

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

// Pool runs pool_size worker threads, each with its own connection; each runs driver(execute)
// (the server's socket loop: read, execute and answer on one thread) and stop() waits for the
// drivers to return. execute returns the answer ("" when nothing is to be sent: notifications
// only).
class Pool {
 public:
  using Execute = std::function<std::string(Job&)>;
  using Driver = std::function<void(const Execute&)>;
  Pool(Shared& shared, int size, Driver driver);
  ~Pool();
  // stop waits for the drivers to return (the caller makes them return first).
  void stop();
  int busy() const { return busy_.load(); }
  int connected() const { return connected_.load(); }
  int size() const { return static_cast<int>(threads_.size()); }

 private:
  void run(int index);
  Shared& shared_;
  Driver driver_;
  std::atomic<int> busy_{0};
  std::atomic<int> connected_{0};
  std::vector<std::thread> threads_;
};

// Sweeper marks expired holds with expire_holds(batch) on its own connection, until fewer than a
// batch are left, then sleeps until the earlier of sweep.interval and next_expiry().
class Sweeper {
 public:
  explicit Sweeper(Shared& shared);
  ~Sweeper();
  // poke: a hold was just made; look at next_expiry() again (rate-limited).
  void poke();
  // reconfigure: the configuration changed; wake and re-read it.
  void reconfigure();
  void stop();

 private:
  void run();
  Shared& shared_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool poked_ = false;
  bool stop_ = false;
  std::thread thread_;
};

// Monitor: while the database is down, try to connect with backoff; mark it up when it answers.
class Monitor {
 public:
  explicit Monitor(Shared& shared);
  ~Monitor();
  void stop();

 private:
  void run();
  Shared& shared_;
  std::thread thread_;
};

}  // namespace sg::daemon
