// event_loop: slotguardd's main thread. It loads the configuration, opens the listener, starts
// the workers, the sweeper and the reconnector, and then waits in poll() for three things: a
// signal (through a signalfd: SIGTERM / SIGINT drain and exit, a second one exits at once, SIGHUP
// reloads the configuration), the database circuit going up or down (READY=1 once it answers),
// and new connections. Between them it runs the clients' timeouts, the drain and its deadline,
// and the systemd notifications (docs/daemon.md, signals and systemd).
#pragma once

#include <string>

namespace sg::daemon {

// run_daemon runs the daemon until it is told to stop; returns the process exit status.
int run_daemon(const std::string& config_path);

}  // namespace sg::daemon
