// reconnector: see reconnector.hpp.
#include "reconnector.hpp"

#include <pqxx/pqxx>
#include <random>

#include "backoff.hpp"
#include "database.hpp"
#include "log.hpp"

namespace sg::daemon {

Reconnector::Reconnector(DaemonState& state) : state_(state) {
  thread_ = std::thread([this] { run(); });
}

Reconnector::~Reconnector() {
  stop();
}

void Reconnector::stop() {
  state_.circuit.stop();
  if (thread_.joinable()) thread_.join();
}

void Reconnector::run() {
  DatabaseCircuit& circuit = state_.circuit;
  std::mt19937_64 rng(std::random_device{}());
  while (circuit.wait_down()) {
    int attempt = 0;
    std::string last_error;
    while (!circuit.stopping() && !circuit.up()) {
      ++attempt;
      const auto cfg = state_.config.get();
      try {
        pqxx::connection conn(cfg->database.conninfo);
        check_extension(conn);
        circuit.mark_up();
        break;
      } catch (const std::exception& e) {
        const std::string why = first_line(e.what());
        circuit.note_down(why);
        if (why != last_error) log::warning("database: ", why);
        last_error = why;
      }
      // Try again every 50-250 ms (with jitter): a promoted standby or a restarted server is
      // found within a quarter of a second. A refused connection costs the server nothing; an
      // attempt that hangs is bounded by database.connect_timeout.
      Config::Retry r = cfg->retry;
      r.base_delay_ms = 50;
      r.max_delay_ms = 250;
      if (!circuit.sleep_for(backoff_delay(r, attempt, rng))) return;
    }
  }
}

}  // namespace sg::daemon
