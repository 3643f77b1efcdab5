// daemon_state: what slotguardd's threads share. The event loop owns one DaemonState; the workers,
// the sweeper and the reconnector hold a reference to it:
//   RunningConfig        the configuration, replaced as a whole at SIGHUP
//   DatabaseCircuit      whether the database is up (while it is down requests answer
//                        `unavailable` at once), and the daemon's stop flag that ends every wait
//   StatementCancellers  how to cancel the statement running on each database connection (the
//                        drain deadline of a shutdown, docs/daemon.md)
//   Metrics              the counters of the `stats` method
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "config.hpp"
#include "metrics.hpp"

namespace sg::daemon {

class Sweeper;

// RunningConfig holds the configuration in force; set() replaces it (a reload).
class RunningConfig {
 public:
  explicit RunningConfig(std::shared_ptr<const Config> config);

  std::shared_ptr<const Config> get() const;
  void set(std::shared_ptr<const Config> config);

  // View is one thread's snapshot of the configuration: current() re-reads it (under the mutex)
  // only when set() has run since, so that the hot path takes no lock.
  struct View {
    std::uint64_t generation = ~std::uint64_t{0};
    std::shared_ptr<const Config> config;
  };
  const Config& current(View& view) const;

 private:
  mutable std::mutex mu_;
  std::shared_ptr<const Config> config_;
  std::atomic<std::uint64_t> generation_{0};
};

// DatabaseCircuit: while the database is down, requests answer `unavailable` at once and the
// reconnector tries to connect with backoff. It also carries the daemon's stop flag, which ends
// every wait below (a retry's backoff, the reconnector's).
class DatabaseCircuit {
 public:
  DatabaseCircuit();
  ~DatabaseCircuit();
  DatabaseCircuit(const DatabaseCircuit&) = delete;
  DatabaseCircuit& operator=(const DatabaseCircuit&) = delete;

  bool up() const { return up_.load(); }
  // known_down: a connection attempt failed and none has succeeded since (at start, before the
  // first attempt, the database is neither up nor known down: requests try it).
  bool known_down() const { return down_.load(); }
  void mark_down(const std::string& why);
  void mark_up();
  // reason: why the database was last found down ("" when it was not); the reconnector keeps it
  // current with note_down, so answers say what is wrong now (no extension, refused, ...).
  std::string reason();
  void note_down(const std::string& why);
  // wait_down blocks the reconnector until the database is down or stop; false on stop.
  bool wait_down();
  // sleep_for sleeps unless stop comes first; returns false on stop.
  bool sleep_for(std::chrono::milliseconds d);
  void stop();
  bool stopping() const { return stop_.load(); }

  // wake_fd (an eventfd) wakes the event loop when the database goes up or down.
  int wake_fd() const { return wake_fd_; }

 private:
  void wake_loop();
  std::mutex mu_;
  std::condition_variable cv_;
  std::atomic<bool> up_{false};
  std::atomic<bool> down_{false};
  std::atomic<bool> stop_{false};
  std::string reason_;  // guarded by mu_
  int wake_fd_ = -1;
};

// StatementCancellers: every database connection of the daemon registers how to cancel the
// statement running on it; cancel_all (at the drain deadline of a shutdown) calls each and
// returns how many it called. A canceller must be cheap and must not throw.
class StatementCancellers {
 public:
  std::uint64_t add(std::function<void()> cancel);
  void remove(std::uint64_t id);
  int cancel_all();

 private:
  std::mutex mu_;
  std::uint64_t next_id_ = 1;
  std::map<std::uint64_t, std::function<void()>> cancellers_;
};

struct DaemonState {
  explicit DaemonState(std::shared_ptr<const Config> config) : config(std::move(config)) {}

  RunningConfig config;
  DatabaseCircuit circuit;
  StatementCancellers cancellers;
  Metrics metrics;
  // The sweeper to poke when a request made a hold (null until it runs, and in the fuzz tests).
  Sweeper* sweeper = nullptr;
};

}  // namespace sg::daemon
