// workers: see workers.hpp.
#include "workers.hpp"

namespace sg::daemon {

WorkerPool::WorkerPool(DaemonState& state, int size, Driver driver)
    : state_(state), driver_(std::move(driver)) {
  for (int i = 0; i < size; ++i) threads_.emplace_back([this] { run(); });
}

WorkerPool::~WorkerPool() {
  stop();
}

void WorkerPool::stop() {
  for (auto& t : threads_) {
    if (t.joinable()) t.join();
  }
}

void WorkerPool::run() {
  Dispatcher dispatcher(state_, pqxx_database(state_));
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

}  // namespace sg::daemon
