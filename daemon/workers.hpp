// workers: the pool of threads that serve clients. Each worker has its own database connection
// (a Dispatcher on libpq_database in session pool mode, on pqxx_database behind a
// transaction-pooling PgBouncer) and runs the driver it is given, the clients' loop
// (clients.hpp): wait for clients with something to do, take a request of each, run them with
// `execute` (together, in one pipeline) and answer, all on the one thread. The pool counts the
// workers busy and connected for the status line.
#pragma once

#include <atomic>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "daemon_state.hpp"
#include "dispatcher.hpp"

namespace sg::daemon {

class WorkerPool {
 public:
  // Execute answers jobs (Job::answer; "" when nothing is to be sent: notifications only),
  // handing each to the callback as soon as it is answered.
  using Execute = std::function<void(std::vector<Job>&, const Dispatcher::Answered&)>;
  using Driver = std::function<void(const Execute&)>;
  WorkerPool(DaemonState& state, int size, Driver driver);
  ~WorkerPool();
  // stop waits for the drivers to return (the caller makes them return first).
  void stop();
  int busy() const { return busy_.load(); }
  int connected() const { return connected_.load(); }
  int size() const { return static_cast<int>(threads_.size()); }

 private:
  void run();
  DaemonState& state_;
  Driver driver_;
  std::atomic<int> busy_{0};
  std::atomic<int> connected_{0};
  std::vector<std::thread> threads_;
};

}  // namespace sg::daemon
