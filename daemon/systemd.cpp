// systemd: see systemd.hpp.
#include "systemd.hpp"

#include <systemd/sd-daemon.h>
#include <time.h>

#include <algorithm>

namespace sg::daemon {

namespace {

void notify(const std::string& state) {
  sd_notify(0, state.c_str());
}

}  // namespace

SystemdNotifier::SystemdNotifier() {
  if (sd_watchdog_enabled(0, &watchdog_usec_) <= 0) watchdog_usec_ = 0;
}

void SystemdNotifier::ready(const std::string& status) {
  notify("READY=1\nSTATUS=" + status);
}

void SystemdNotifier::reloading() {
  struct timespec ts {};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  const long long usec = static_cast<long long>(ts.tv_sec) * 1000000LL + ts.tv_nsec / 1000;
  notify("RELOADING=1\nMONOTONIC_USEC=" + std::to_string(usec) + "\nSTATUS=reloading");
}

void SystemdNotifier::stopping() {
  notify("STOPPING=1\nSTATUS=draining");
}

void SystemdNotifier::status(const std::string& status) {
  notify("STATUS=" + status);
}

void SystemdNotifier::tick(Clock::time_point now, const std::function<std::string()>& status) {
  if (watchdog_usec_ > 0 && now - last_watchdog_ > std::chrono::microseconds(watchdog_usec_ / 2)) {
    notify("WATCHDOG=1");
    last_watchdog_ = now;
  }
  if (now - last_status_ > std::chrono::seconds(2)) {
    std::string text = status();
    if (text != last_status_text_) {
      notify("STATUS=" + text);
      last_status_text_ = std::move(text);
    }
    last_status_ = now;
  }
}

int SystemdNotifier::poll_timeout_ms(int wanted) const {
  if (watchdog_usec_ == 0) return wanted;
  return std::min<int>(wanted, static_cast<int>(watchdog_usec_ / 2000));
}

}  // namespace sg::daemon
