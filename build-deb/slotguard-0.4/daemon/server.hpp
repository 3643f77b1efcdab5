// server: slotguardd's event loop: the listening Unix socket (own or socket-activated), clients
// (line-framed requests, limits, peer credentials, idle timeout), signals through a signalfd
// (SIGTERM drains and exits, SIGHUP reloads), and systemd notifications.
#pragma once

#include <string>

namespace sg::daemon {

// run_server runs the daemon until it is told to stop; returns the process exit status.
int run_server(const std::string& config_path);

}  // namespace sg::daemon
