// Unit tests of daemon/backoff: exponential growth, the cap, and the jitter's bounds.
#include <gtest/gtest.h>

#include "backoff.hpp"

namespace {

using sg::daemon::backoff_cap;
using sg::daemon::backoff_delay;
using sg::daemon::Config;
using std::chrono::milliseconds;

TEST(DaemonBackoff, CapGrowsExponentiallyUpToMax) {
  Config::Retry r;  // 100 ms, x2, max 1000 ms
  EXPECT_EQ(backoff_cap(r, 1), milliseconds(100));
  EXPECT_EQ(backoff_cap(r, 2), milliseconds(200));
  EXPECT_EQ(backoff_cap(r, 3), milliseconds(400));
  EXPECT_EQ(backoff_cap(r, 4), milliseconds(800));
  EXPECT_EQ(backoff_cap(r, 5), milliseconds(1000));
  EXPECT_EQ(backoff_cap(r, 60), milliseconds(1000));
  EXPECT_EQ(backoff_cap(r, 0), milliseconds(100));
}

TEST(DaemonBackoff, DelayStaysWithinHalfCapAndCap) {
  Config::Retry r;
  r.base_delay_ms = 10;
  r.multiplier = 3;
  r.max_delay_ms = 500;
  std::mt19937_64 rng(42);
  for (int attempt = 1; attempt <= 8; ++attempt) {
    const auto cap = backoff_cap(r, attempt);
    milliseconds lo = cap, hi{0};
    for (int i = 0; i < 2000; ++i) {
      const auto d = backoff_delay(r, attempt, rng);
      EXPECT_GE(d, cap / 2);
      EXPECT_LE(d, cap);
      lo = std::min(lo, d);
      hi = std::max(hi, d);
    }
    if (cap.count() >= 10) {
      EXPECT_LT(lo, hi) << "no jitter at attempt " << attempt;
    }
  }
}

TEST(DaemonBackoff, ZeroBaseMeansNoDelay) {
  Config::Retry r;
  r.base_delay_ms = 0;
  std::mt19937_64 rng(1);
  EXPECT_EQ(backoff_delay(r, 3, rng), milliseconds(0));
}

}  // namespace
