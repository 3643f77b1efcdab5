// slotguardctl: send one request to slotguardd and print the result as JSON.
//   slotguardctl [--socket PATH] [--timeout SECONDS] METHOD [name=value ...]
//   slotguardctl [--socket PATH] --raw 'JSON'      (a request or batch line, printed as answered)
// A value is taken as JSON when it parses as JSON (5, true, ["A1","A2"], {"id":7}), otherwise as
// a string. Exit status 0 on success, 1 on an error (its reason on stderr), 2 on bad usage.
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <string>

#include <nlohmann/json.hpp>

#include "version.hpp"

namespace {

using json = nlohmann::json;

void usage(std::ostream& out) {
  out << "usage: slotguardctl [--socket PATH] [--timeout SECONDS] METHOD [name=value ...]\n"
         "       slotguardctl [--socket PATH] --raw JSON\n"
         "  methods: reserve reserve_seats confirm cancel booking availability create_slot\n"
         "           update_versioned find_conflicts expire_holds stats health\n"
         "  values are JSON where they parse (5, true, [\"A1\"], {\"id\": 7}), else strings\n"
         "  socket: --socket, else $SLOTGUARD_SOCKET, else /run/slotguard/slotguardd.sock\n";
}

int fail(const std::string& reason, const std::string& message) {
  std::cerr << "slotguardctl: " << reason << ": " << message << "\n";
  return 1;
}

// Options is what the command line asks for.
struct Options {
  std::string socket_path = "/run/slotguard/slotguardd.sock";
  double timeout_s = 30;
  std::string raw;
  bool have_raw = false;
  std::string method;
  json params = json::object();
};

// parse_args fills o from the command line; returns the exit status when the program is done
// (help, version, bad usage), -1 to go on.
int parse_args(int argc, char** argv, Options& o) {
  if (const char* env = std::getenv("SLOTGUARD_SOCKET"); env != nullptr && *env != '\0')
    o.socket_path = env;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    const bool option = o.method.empty() && !o.have_raw;
    if (option && (a == "--socket" || a == "-s" || a == "--timeout" || a == "--raw")) {
      if (++i >= argc) return usage(std::cerr), 2;
      if (a == "--timeout") {
        o.timeout_s = std::atof(argv[i]);
      } else if (a == "--raw") {
        o.raw = argv[i];
        o.have_raw = true;
      } else {
        o.socket_path = argv[i];
      }
    } else if (option && (a == "--help" || a == "-h")) {
      usage(std::cout);
      return 0;
    } else if (option && a == "--version") {
      std::cout << "slotguardctl " << sg::daemon::kVersion << "\n";
      return 0;
    } else if (option) {
      if (!a.empty() && a[0] == '-') {
        std::cerr << "slotguardctl: unknown option '" << a << "'\n";
        return usage(std::cerr), 2;
      }
      o.method = a;
    } else if (!o.have_raw) {
      const auto eq = a.find('=');
      if (eq == std::string::npos || eq == 0) {
        std::cerr << "slotguardctl: expected name=value, got '" << a << "'\n";
        return usage(std::cerr), 2;
      }
      const std::string value = a.substr(eq + 1);
      json v = json::parse(value, nullptr, false);
      o.params[a.substr(0, eq)] = v.is_discarded() ? json(value) : v;
    } else {
      return usage(std::cerr), 2;
    }
  }
  if (o.method.empty() && !o.have_raw) return usage(std::cerr), 2;
  return -1;
}

// send_all sends line (the daemon may answer and close early, e.g. when the request is too
// large), then shuts our side: the daemon answers, then closes (so a notification ends with no
// answer).
void send_all(int fd, const std::string& line) {
  std::size_t sent = 0;
  while (sent < line.size()) {
    const ssize_t n = ::send(fd, line.data() + sent, line.size() - sent, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      break;
    }
    sent += static_cast<std::size_t>(n);
  }
  shutdown(fd, SHUT_WR);
}

// read_answer reads up to the first newline; false when the timeout passed first.
bool read_answer(int fd, double timeout_s, std::string& answer) {
  const auto deadline = std::chrono::steady_clock::now() +
                        std::chrono::milliseconds(static_cast<long long>(timeout_s * 1000));
  char buf[65536];
  for (;;) {
    if (answer.find('\n') != std::string::npos) break;
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                          deadline - std::chrono::steady_clock::now())
                          .count();
    if (left <= 0) return false;
    struct pollfd p = {fd, POLLIN, 0};
    const int r = poll(&p, 1, static_cast<int>(left));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) continue;
    const ssize_t n = read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    answer.append(buf, static_cast<std::size_t>(n));
  }
  const auto nl = answer.find('\n');
  if (nl != std::string::npos) answer.resize(nl);
  return true;
}

// print_error writes an error answer's reason, message, sqlstate, detail and hint on stderr.
int print_error(const json& e) {
  std::string reason = "internal";
  if (e.contains("data") && e["data"].is_object())
    reason = e["data"].value("reason", std::string("internal"));
  std::cerr << "slotguardctl: " << reason << ": " << e.value("message", std::string()) << "\n";
  if (e.contains("data") && e["data"].is_object()) {
    const json& d = e["data"];
    if (d.contains("sqlstate"))
      std::cerr << "  sqlstate: " << d["sqlstate"].get<std::string>() << "\n";
    if (d.contains("detail")) std::cerr << "  detail: " << d["detail"].get<std::string>() << "\n";
    if (d.contains("hint")) std::cerr << "  hint: " << d["hint"].get<std::string>() << "\n";
  }
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  if (const int status = parse_args(argc, argv, o); status >= 0) return status;
  std::string line =
      o.have_raw
          ? o.raw
          : json{{"jsonrpc", "2.0"}, {"id", 1}, {"method", o.method}, {"params", o.params}}.dump();
  line += '\n';

  const int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  struct sockaddr_un addr {};
  addr.sun_family = AF_UNIX;
  if (o.socket_path.size() >= sizeof addr.sun_path)
    return fail("invalid_params", "socket path too long");
  std::strncpy(addr.sun_path, o.socket_path.c_str(), sizeof addr.sun_path - 1);
  if (fd < 0 || connect(fd, reinterpret_cast<struct sockaddr*>(&addr), sizeof addr) != 0)
    return fail("unavailable", "cannot connect to " + o.socket_path + ": " + std::strerror(errno));
  send_all(fd, line);
  std::string answer;
  if (!read_answer(fd, o.timeout_s, answer))
    return fail("unavailable", "no answer within the timeout");
  close(fd);
  if (answer.empty()) {
    if (o.have_raw) return 0;  // notifications get no answer
    return fail("unavailable", "the daemon closed the connection without an answer");
  }
  json reply = json::parse(answer, nullptr, false);
  if (reply.is_discarded()) return fail("internal", "unreadable answer: " + answer);
  if (o.have_raw) {
    std::cout << reply.dump(2) << "\n";
    return (reply.is_object() && reply.contains("error")) ? 1 : 0;
  }
  if (reply.contains("error")) return print_error(reply["error"]);
  std::cout << reply["result"].dump(2) << "\n";
  return 0;
}
