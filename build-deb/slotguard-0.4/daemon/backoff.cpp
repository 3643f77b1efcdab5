// backoff: see backoff.hpp.
#include "backoff.hpp"

#include <algorithm>
#include <cmath>

namespace sg::daemon {

std::chrono::milliseconds backoff_cap(const Config::Retry& retry, int attempt) {
  if (attempt < 1) attempt = 1;
  const double grown =
      static_cast<double>(retry.base_delay_ms) * std::pow(retry.multiplier, attempt - 1);
  const double capped = std::min(grown, static_cast<double>(retry.max_delay_ms));
  return std::chrono::milliseconds(static_cast<long long>(std::max(0.0, capped)));
}

std::chrono::milliseconds backoff_delay(const Config::Retry& retry, int attempt,
                                        std::mt19937_64& rng) {
  const long long cap = backoff_cap(retry, attempt).count();
  if (cap <= 0) return std::chrono::milliseconds(0);
  std::uniform_int_distribution<long long> dist(cap / 2, cap);
  return std::chrono::milliseconds(dist(rng));
}

}  // namespace sg::daemon
