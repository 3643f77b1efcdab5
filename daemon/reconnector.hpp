// reconnector: a thread that, while the database is down (DatabaseCircuit), tries to connect with
// backoff and marks the circuit up when the database answers.
#pragma once

#include <thread>

#include "daemon_state.hpp"

namespace sg::daemon {

class Reconnector {
 public:
  explicit Reconnector(DaemonState& state);
  ~Reconnector();
  // stop stops the daemon's circuit (every wait on it ends) and joins the thread.
  void stop();

 private:
  void run();
  DaemonState& state_;
  std::thread thread_;
};

}  // namespace sg::daemon
