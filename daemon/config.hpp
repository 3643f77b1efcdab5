// config: slotguardd's YAML configuration (docs/daemon.md). Every key has a default; an unknown
// key or a bad value is an error that names the key and its line. Pure C++ (yaml-cpp), so that it
// is unit-tested without a database or a socket.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstddef>
#include <stdexcept>
#include <string>
#include <vector>

namespace sg::daemon {

// LogLevel follows syslog / journald priorities: a message is written when its priority is at
// most the configured level.
enum class LogLevel { error = 3, warning = 4, notice = 5, info = 6, debug = 7 };

struct Config {
  struct Database {
    std::string conninfo = "dbname=app";              // libpq connection string
    int pool_size = 4;                                // worker threads, one connection each
    std::chrono::milliseconds connect_timeout{2000};  // per connection attempt
    // statement_timeout of every connection of the daemon (0: the database's own setting)
    std::chrono::milliseconds statement_timeout{30000};
    // How the daemon's sessions may use the server connection (docs/operations.md "Behind
    // PgBouncer"): kSession prepares named statements once per connection and sets
    // statement_timeout once; kTransaction (a transaction-pooling PgBouncer in between) prepares
    // nothing by name and sets statement_timeout with SET LOCAL in every transaction.
    enum class PoolMode { kSession, kTransaction } pool_mode = PoolMode::kSession;
  } database;
  struct Socket {
    std::string path = "/run/slotguard/slotguardd.sock";
    unsigned mode = 0660;
    std::string group = "slotguard";  // empty: leave the socket's group alone
  } socket;
  struct Access {
    std::vector<uid_t> allowed_uids;    // empty (and no groups): anyone who can open the socket
    std::vector<gid_t> allowed_groups;  // primary or supplementary group of the peer
  } access;
  struct Sweep {
    bool enabled = true;
    std::chrono::milliseconds interval{30000};  // upper bound of the sleep between sweeps
    int batch = 1000;                           // expire_holds(max_rows)
  } sweep;
  struct Retry {
    int max_attempts = 3;  // attempts in all, the first included
    int base_delay_ms = 100;
    double multiplier = 2.0;
    int max_delay_ms = 1000;
  } retry;
  struct Limits {
    std::size_t max_request_bytes = 1048576;  // one request line, newline excluded
    int max_clients = 256;
    std::chrono::milliseconds idle_timeout{300000};  // 0: never
    std::size_t max_json_depth = 64;                 // arrays and objects open at once
    std::size_t max_batch = 1000;                    // requests in one batch
    // Unsent answers of one client beyond which its input is not read (backpressure).
    std::size_t max_output_bytes = 1048576;
    // A client whose unsent answers make no progress for this long is disconnected (0: never).
    std::chrono::milliseconds write_timeout{30000};
    // A request line must be complete this long after it began (0: never); an unauthorized peer
    // has this long from connecting to send its request.
    std::chrono::milliseconds request_timeout{10000};
    // SIGTERM: requests in flight get this long to finish, then their statements are cancelled.
    std::chrono::milliseconds drain_timeout{30000};
  } limits;
  struct Log {
    LogLevel level = LogLevel::info;
  } log;
};

// ConfigError is a configuration that cannot be used; what() names the source, line and key.
class ConfigError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// parse_config reads a configuration from YAML text; source names it in error messages.
Config parse_config(const std::string& yaml_text, const std::string& source = "<config>");

// load_config reads and parses a file.
Config load_config(const std::string& path);

// parse_duration reads "500ms", "30s", "2m", "1h" or a bare number of seconds. Throws
// std::invalid_argument on anything else.
std::chrono::milliseconds parse_duration(const std::string& text);

// parse_log_level reads error|warning|notice|info|debug; throws std::invalid_argument.
LogLevel parse_log_level(const std::string& text);
const char* log_level_name(LogLevel level);

}  // namespace sg::daemon
