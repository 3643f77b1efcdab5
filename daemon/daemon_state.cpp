// daemon_state: see daemon_state.hpp.
#include "daemon_state.hpp"

#include <sys/eventfd.h>
#include <unistd.h>

#include "log.hpp"

namespace sg::daemon {

RunningConfig::RunningConfig(std::shared_ptr<const Config> config) : config_(std::move(config)) {}

std::shared_ptr<const Config> RunningConfig::get() const {
  std::lock_guard<std::mutex> lock(mu_);
  return config_;
}

void RunningConfig::set(std::shared_ptr<const Config> config) {
  std::lock_guard<std::mutex> lock(mu_);
  config_ = std::move(config);
  generation_.fetch_add(1, std::memory_order_release);
}

const Config& RunningConfig::current(View& view) const {
  if (view.generation != generation_.load(std::memory_order_acquire) || !view.config) {
    std::lock_guard<std::mutex> lock(mu_);
    view.config = config_;
    view.generation = generation_.load(std::memory_order_relaxed);
  }
  return *view.config;
}

DatabaseCircuit::DatabaseCircuit() {
  wake_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
}

DatabaseCircuit::~DatabaseCircuit() {
  if (wake_fd_ >= 0) close(wake_fd_);
}

void DatabaseCircuit::wake_loop() {
  const uint64_t one = 1;
  (void)!::write(wake_fd_, &one, sizeof one);
}

std::string DatabaseCircuit::reason() {
  std::lock_guard<std::mutex> lock(mu_);
  return reason_;
}

void DatabaseCircuit::note_down(const std::string& why) {
  std::lock_guard<std::mutex> lock(mu_);
  reason_ = why;
}

void DatabaseCircuit::mark_down(const std::string& why) {
  note_down(why);
  down_ = true;
  if (up_.exchange(false)) {
    log::warning("database unreachable (", why,
                 "); requests answer 'unavailable' until it is back; reconnecting");
  }
  cv_.notify_all();
  wake_loop();
}

void DatabaseCircuit::mark_up() {
  down_ = false;
  if (up_.exchange(true)) return;
  log::notice("database reachable");
  wake_loop();  // the loop may now say READY=1
}

bool DatabaseCircuit::wait_down() {
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait(lock, [&] { return stop_.load() || !up_.load(); });
  return !stop_.load();
}

bool DatabaseCircuit::sleep_for(std::chrono::milliseconds d) {
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait_for(lock, d, [&] { return stop_.load(); });
  return !stop_.load();
}

void DatabaseCircuit::stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
}

std::uint64_t StatementCancellers::add(std::function<void()> cancel) {
  std::lock_guard<std::mutex> lock(mu_);
  const std::uint64_t id = next_id_++;
  cancellers_.emplace(id, std::move(cancel));
  return id;
}

void StatementCancellers::remove(std::uint64_t id) {
  std::lock_guard<std::mutex> lock(mu_);
  cancellers_.erase(id);
}

int StatementCancellers::cancel_all() {
  std::lock_guard<std::mutex> lock(mu_);
  for (auto& [id, cancel] : cancellers_) cancel();
  return static_cast<int>(cancellers_.size());
}

}  // namespace sg::daemon
