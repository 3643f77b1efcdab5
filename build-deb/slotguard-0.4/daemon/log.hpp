// log: one line per message on stderr with a "<N>" journald priority prefix (sd-daemon(3)), so
// that journald files it under the right priority. Thread-safe; the level can change at reload.
#pragma once

#include <sstream>
#include <string>

#include "config.hpp"

namespace sg::daemon::log {

void set_level(LogLevel level);
bool enabled(LogLevel level);
void write(LogLevel level, const std::string& message);

template <typename... Parts>
void at(LogLevel level, const Parts&... parts) {
  if (!enabled(level)) return;
  std::ostringstream out;
  (out << ... << parts);
  write(level, out.str());
}

template <typename... P>
void error(const P&... p) {
  at(LogLevel::error, p...);
}
template <typename... P>
void warning(const P&... p) {
  at(LogLevel::warning, p...);
}
template <typename... P>
void notice(const P&... p) {
  at(LogLevel::notice, p...);
}
template <typename... P>
void info(const P&... p) {
  at(LogLevel::info, p...);
}
template <typename... P>
void debug(const P&... p) {
  at(LogLevel::debug, p...);
}

}  // namespace sg::daemon::log
