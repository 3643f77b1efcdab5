// systemd: slotguardd's notifications to its service manager (sd_notify; nothing happens when it
// was not started by systemd): READY=1 once listening with the database answering, RELOADING=1
// and STOPPING=1 around a reload and a drain, a STATUS= line when it changes, and the watchdog's
// keep-alive (docs/daemon.md, systemd).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>

namespace sg::daemon {

class SystemdNotifier {
 public:
  using Clock = std::chrono::steady_clock;
  SystemdNotifier();

  void ready(const std::string& status);
  void reloading();
  void stopping();
  void status(const std::string& status);
  // tick sends the watchdog's keep-alive when due, and the status when it changed (at most every
  // 2 s).
  void tick(Clock::time_point now, const std::function<std::string()>& status);
  // poll_timeout_ms: the longest the event loop may sleep and still keep the watchdog fed.
  int poll_timeout_ms(int wanted) const;

 private:
  std::uint64_t watchdog_usec_ = 0;
  Clock::time_point last_watchdog_;
  Clock::time_point last_status_;
  std::string last_status_text_;
};

}  // namespace sg::daemon
