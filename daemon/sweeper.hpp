// sweeper: the thread that marks expired holds. On its own connection it calls
// slotguard.expire_holds(sweep.batch) until fewer than a batch are left, then sleeps until the
// earlier of sweep.interval and slotguard.next_expiry() (docs/daemon.md, configuration sweep.*).
// A request that made a hold pokes it, so that a short hold is marked about when it expires.
#pragma once

#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <thread>

#include "daemon_state.hpp"
#include "database.hpp"

namespace sg::daemon {

class Sweeper {
 public:
  explicit Sweeper(DaemonState& state);
  ~Sweeper();
  // poke: a hold was just made; look at next_expiry() again (rate-limited).
  void poke();
  // reconfigure: the configuration changed; wake and re-read it.
  void reconfigure();
  void stop();

 private:
  using Clock = std::chrono::steady_clock;
  using milliseconds = std::chrono::milliseconds;
  enum class Woken { kStop, kPoke, kTimeout };

  void run();
  bool stopped();
  Woken wait(milliseconds d);
  // space_out: a poke right after a look waits for kPokeSpacing; false on stop.
  bool space_out();
  // sweep expires what is due and returns how long to sleep; throws what libpqxx throws.
  milliseconds sweep(const Config& cfg);
  // on_failure handles a failed sweep: true to try again at once (a connection kept from before
  // died meanwhile, or its server turned read-only), else sleep is set to the backoff. Only a
  // lost connection or one that could not be made marks the database circuit down.
  bool on_failure(const std::exception& e, bool reused, const Config& cfg, milliseconds& sleep);
  // sleep_until sleeps until wake, looking at next_expiry() meanwhile.
  Woken sleep_until(Clock::time_point wake);
  // next_expiry_in: milliseconds until slotguard.next_expiry() (+5 ms), or nullopt when no hold
  // is pending. Throws what libpqxx throws.
  std::optional<long long> next_expiry_in();
  void forget_connection();

  DaemonState& state_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool poked_ = false;
  bool stop_ = false;
  std::unique_ptr<pqxx::connection> conn_;
  CancelSlot cancel_;
  std::mt19937_64 rng_;
  int failures_ = 0;
  bool reported_ = false;  // "sweep failed" was logged since the last sweep that worked
  Clock::time_point last_look_{};
  std::thread thread_;
};

}  // namespace sg::daemon
