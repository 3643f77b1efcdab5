// config_fuzzer: libFuzzer target for slotguardd's configuration loader (parse_config): the input
// is the YAML text of a configuration file. Besides the sanitizers' checks, an input fails when
// parse_config throws anything but ConfigError (a bad file must be reported as one, naming the
// key), or accepts values outside the ranges docs/daemon.md "Configuration" gives.
#include <sanitizer/common_interface_defs.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "config.hpp"

namespace {

// violated reports a broken check where the sanitizers report (libFuzzer's -close_fd_mask=2
// silences the daemon's own log on stderr, not that) and fails the input.
[[noreturn]] void violated(const std::string& what) {
  __sanitizer_report_error_summary(("config_fuzzer: " + what).c_str());
  std::abort();
}

void check(const sg::daemon::Config& c) {
  if (c.database.pool_size < 1 || c.database.pool_size > 1000) violated("database.pool_size");
  if (c.database.connect_timeout.count() < 1000) violated("database.connect_timeout");
  if (c.socket.path.empty() || c.socket.path[0] != '/' || c.socket.path.size() > 107)
    violated("socket.path");
  if (c.socket.mode > 07777) violated("socket.mode");
  if (c.sweep.interval.count() <= 0) violated("sweep.interval");
  if (c.sweep.batch < 1) violated("sweep.batch");
  if (c.retry.max_attempts < 1 || c.retry.base_delay_ms < 0 ||
      c.retry.max_delay_ms < c.retry.base_delay_ms || !(c.retry.multiplier >= 1.0))
    violated("retry");
  if (c.limits.max_request_bytes < 256 || c.limits.max_clients < 1 ||
      c.limits.idle_timeout.count() < 0)
    violated("limits");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  try {
    check(sg::daemon::parse_config(text, "fuzz.yaml"));
  } catch (const sg::daemon::ConfigError& e) {
    // The message names the source: "fuzz.yaml[:LINE]: ...".
    if (std::string(e.what()).rfind("fuzz.yaml", 0) != 0) violated(e.what());
  } catch (const std::exception& e) {
    violated(std::string("parse_config threw something else than ConfigError: ") + e.what());
  }
  return 0;
}
