// workers: see workers.hpp.
#include "workers.hpp"

#include "pg_session.hpp"

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
  const bool session =
      state_.config.get()->database.pool_mode == Config::Database::PoolMode::kSession;
  Dispatcher dispatcher(state_, session ? libpq_database(state_) : pqxx_database(state_));
  bool was_connected = false;
  const Execute execute = [&](std::vector<Job>& jobs, const Dispatcher::Answered& answered) {
    ++busy_;
    dispatcher.execute_all(jobs, answered);
    if (dispatcher.connected() != was_connected) {
      was_connected = dispatcher.connected();
      connected_ += was_connected ? 1 : -1;
    }
    --busy_;
  };
  driver_(execute);
  if (was_connected) --connected_;
}

}  // namespace sg::daemon
