// sgload.hpp: what the parts of sgload (bench/sgload.cpp, the soak in bench/sgload_soak.cpp) share:
// a Unix socket client's connect, send and line reading.
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace sgload {

using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

// connect_unix connects to the socket at path; -1 when it cannot.
int connect_unix(const std::string& path);
// send_all sends the whole of s; false when the peer is gone.
bool send_all(int fd, const std::string& s);

// LineReader reads newline-terminated lines from a socket.
struct LineReader {
  int fd;
  std::string buf;
  // next returns false at EOF / error (a last unterminated line is returned first).
  bool next(std::string& line);
};

// soak runs `sgload soak ...` (bench/sgload_soak.cpp); a: the command line after the program name.
int soak(const std::vector<std::string>& a);

}  // namespace sgload
