// metrics: the daemon's own counters for the `stats` method: requests by method and outcome,
// latency percentiles over the most recent requests, retries, reconnects, sweeps, clients.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace sg::daemon {

class Metrics {
 public:
  Metrics();

  void request(std::string_view method, std::string_view outcome, double latency_ms);
  void retry();
  void reconnect();
  void sweep(long long expired);
  void sweep_error();
  void client_accepted();
  void client_closed();
  void client_rejected(const std::string& why);  // max_clients, unauthorized, oversized, idle

  // snapshot renders everything as JSON (latencies in milliseconds: p50, p90, p99, max).
  nlohmann::json snapshot() const;

  long long clients() const;
  long long sweeps() const;

 private:
  static constexpr std::size_t kWindow = 8192;  // latencies kept for the percentiles
  mutable std::mutex mu_;
  std::chrono::steady_clock::time_point started_;
  // std::less<>: looked up by string_view, no allocation once a method and outcome were seen.
  std::map<std::string, std::map<std::string, std::uint64_t, std::less<>>, std::less<>> requests_;
  std::vector<double> latencies_;
  std::size_t next_latency_ = 0;
  std::uint64_t retries_ = 0;
  std::uint64_t reconnects_ = 0;
  std::uint64_t sweeps_ = 0;
  std::uint64_t swept_ = 0;
  std::uint64_t sweep_errors_ = 0;
  std::uint64_t accepted_ = 0;
  long long clients_ = 0;
  long long clients_peak_ = 0;  // most clients connected at once since the start
  std::map<std::string, std::uint64_t> rejected_;
};

}  // namespace sg::daemon
