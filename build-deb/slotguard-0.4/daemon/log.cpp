// log: see log.hpp.
#include "log.hpp"

#include <unistd.h>

#include <atomic>

namespace sg::daemon::log {

namespace {
std::atomic<int> current{static_cast<int>(LogLevel::info)};
}

void set_level(LogLevel level) {
  current.store(static_cast<int>(level));
}

bool enabled(LogLevel level) {
  return static_cast<int>(level) <= current.load();
}

void write(LogLevel level, const std::string& message) {
  // One write(2) per line keeps lines of different threads whole.
  std::string line = "<" + std::to_string(static_cast<int>(level)) + ">";
  for (char c : message) line += (c == '\n') ? ' ' : c;
  line += '\n';
  const char* p = line.data();
  std::size_t left = line.size();
  while (left > 0) {
    const ssize_t n = ::write(STDERR_FILENO, p, left);
    if (n <= 0) break;
    p += n;
    left -= static_cast<std::size_t>(n);
  }
}

}  // namespace sg::daemon::log
