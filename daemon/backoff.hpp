// backoff: the delay before a retry (docs/daemon.md, keys retry.*): exponential in the attempt
// number, capped at max_delay_ms, with jitter so that clients that failed together do not retry
// together. Pure, so that its bounds are unit-tested.
#pragma once

#include <chrono>
#include <random>

#include "config.hpp"

namespace sg::daemon {

// backoff_cap is the upper bound of the delay after failed attempt number `attempt` (1-based):
// min(max_delay_ms, base_delay_ms * multiplier^(attempt-1)).
std::chrono::milliseconds backoff_cap(const Config::Retry& retry, int attempt);

// backoff_delay draws the delay after failed attempt `attempt`: uniform in [cap/2, cap] ("equal
// jitter": never much shorter than the exponential step, never longer than the cap).
std::chrono::milliseconds backoff_delay(const Config::Retry& retry, int attempt,
                                        std::mt19937_64& rng);

}  // namespace sg::daemon
