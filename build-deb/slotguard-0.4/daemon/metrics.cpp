// metrics: see metrics.hpp.
#include "metrics.hpp"

#include <algorithm>

namespace sg::daemon {

Metrics::Metrics() : started_(std::chrono::steady_clock::now()) {
  latencies_.reserve(kWindow);
}

void Metrics::request(std::string_view method, std::string_view outcome, double latency_ms) {
  std::lock_guard<std::mutex> lock(mu_);
  auto m = requests_.find(method);
  if (m == requests_.end()) m = requests_.emplace(std::string(method), decltype(m->second){}).first;
  auto o = m->second.find(outcome);
  if (o == m->second.end()) o = m->second.emplace(std::string(outcome), 0).first;
  ++o->second;
  if (latencies_.size() < kWindow) {
    latencies_.push_back(latency_ms);
  } else {
    latencies_[next_latency_] = latency_ms;
    next_latency_ = (next_latency_ + 1) % kWindow;
  }
}

void Metrics::retry() {
  std::lock_guard<std::mutex> lock(mu_);
  ++retries_;
}

void Metrics::reconnect() {
  std::lock_guard<std::mutex> lock(mu_);
  ++reconnects_;
}

void Metrics::sweep(long long expired) {
  std::lock_guard<std::mutex> lock(mu_);
  ++sweeps_;
  swept_ += static_cast<std::uint64_t>(std::max(0LL, expired));
}

void Metrics::sweep_error() {
  std::lock_guard<std::mutex> lock(mu_);
  ++sweep_errors_;
}

void Metrics::client_accepted() {
  std::lock_guard<std::mutex> lock(mu_);
  ++accepted_;
  ++clients_;
  clients_peak_ = std::max(clients_peak_, clients_);
}

void Metrics::client_closed() {
  std::lock_guard<std::mutex> lock(mu_);
  --clients_;
}

void Metrics::client_rejected(const std::string& why) {
  std::lock_guard<std::mutex> lock(mu_);
  ++rejected_[why];
}

long long Metrics::clients() const {
  std::lock_guard<std::mutex> lock(mu_);
  return clients_;
}

long long Metrics::sweeps() const {
  std::lock_guard<std::mutex> lock(mu_);
  return static_cast<long long>(sweeps_);
}

nlohmann::json Metrics::snapshot() const {
  std::lock_guard<std::mutex> lock(mu_);
  nlohmann::json out;
  out["uptime_s"] =
      std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now() - started_)
          .count();
  nlohmann::json req = nlohmann::json::object();
  std::uint64_t total = 0;
  for (const auto& [method, outcomes] : requests_) {
    for (const auto& [outcome, n] : outcomes) {
      req[method][outcome] = n;
      total += n;
    }
  }
  out["requests"] = req;
  out["requests_total"] = total;
  std::vector<double> l = latencies_;
  nlohmann::json lat = {{"samples", l.size()}};
  if (!l.empty()) {
    std::sort(l.begin(), l.end());
    auto pct = [&](double p) {
      std::size_t i = static_cast<std::size_t>(p * static_cast<double>(l.size() - 1) + 0.5);
      return l[std::min(i, l.size() - 1)];
    };
    lat["p50"] = pct(0.50);
    lat["p90"] = pct(0.90);
    lat["p99"] = pct(0.99);
    lat["max"] = l.back();
  }
  out["latency_ms"] = lat;
  out["retries"] = retries_;
  out["reconnects"] = reconnects_;
  out["sweeps"] = {{"runs", sweeps_}, {"expired", swept_}, {"errors", sweep_errors_}};
  out["clients"] = {{"current", clients_},
                    {"peak", clients_peak_},
                    {"accepted", accepted_},
                    {"rejected", rejected_}};
  return out;
}

}  // namespace sg::daemon
