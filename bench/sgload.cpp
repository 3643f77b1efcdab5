// sgload: a small client of slotguardd's socket (and of the database directly), for the daemon's
// tests and its benchmark. Nothing but libpq, POSIX sockets and threads.
//
//   sgload session SOCKET
//       one connection: every stdin line is sent as it comes, every answer line is printed
//       (compact JSON) as it comes; at stdin EOF our side is shut down and the rest is read.
//   sgload burst SOCKET N TEMPLATE
//       N clients connect, wait for each other, then each sends TEMPLATE (every "%i" replaced by
//       the client's number) at the same instant; prints one "OUTCOME COUNT" line per outcome,
//       where OUTCOME is "ok" or the error's data.reason ("no_answer" when none came).
//   sgload bench socket SOCKET CLIENTS SECONDS SLOT
//   sgload bench direct CONNINFO CLIENTS SECONDS SLOT
//       CLIENTS threads reserve one confirmed seat of SLOT in a loop for SECONDS, over the
//       daemon's socket or with libpq (the same function, one prepared statement); prints
//       "requests=N errors=E seconds=S rps=R p50_ms=A p99_ms=B max_ms=M client_min=L
//       client_max=H" (client_min / client_max: the fewest and most requests one client
//       completed, for fairness). All clients connect first, then start together. Over the
//       socket, more than 64 clients are driven by 4 threads, each waiting for its clients'
//       answers with epoll (one thread per client would make the load generator the bottleneck).
//
// Misbehaving clients and a well-behaved one, for the daemon's resource-bound tests:
//   sgload flood SOCKET SECONDS LINE
//       sends LINE again and again for SECONDS and never reads an answer; prints
//       "sent_bytes=N closed=0|1 seconds=S" (closed: the daemon hung up on us).
//   sgload trickle SOCKET SECONDS INTERVAL_MS
//       sends a request one byte every INTERVAL_MS, for at most SECONDS; prints
//       "sent_bytes=N closed=0|1 seconds=S".
//   sgload connect SOCKET N HOLD_SECONDS
//       opens N connections as fast as it can and holds them HOLD_SECONDS; prints
//       "attempts=N held=H refused=R failed=F" (refused: the daemon answered unavailable and hung
//       up; failed: connect() itself failed).
//   sgload probe SOCKET SECONDS INTERVAL_MS LINE|@FILE
//       one connection sends LINE (or the lines of FILE in turn) every INTERVAL_MS for SECONDS,
//       waiting for each answer; prints
//       "requests=N errors=E p50_ms=A p99_ms=B max_ms=C" (an error: no answer or not a result).
//
//   sgload soak SOCKET CONNINFO SOCKET_CLIENTS DIRECT_CLIENTS SECONDS SLOTS SEAT_SLOTS IDS_FILE
//       the soak's mixed load (scripts/soak.sh): SOCKET_CLIENTS over the daemon's socket and
//       DIRECT_CLIENTS with libpq, for SECONDS, each a random mix of holds (2 s), confirmed
//       reservations, seat reservations, confirmations and cancellations of their own bookings,
//       availability and expire_holds, on the slots listed in SLOTS and SEAT_SLOTS (comma
//       separated ids; seat slots have seats A1..A50). Prints the outcomes, throughput and
//       latency; writes to IDS_FILE the id of every booking acknowledged as confirmed and not
//       cancelled afterwards (the soak checks that each is still confirmed).
#include <libpq-fe.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "sgload.hpp"

namespace sgload {

int connect_unix(const std::string& path) {
  const int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  struct sockaddr_un addr {};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, path.c_str(), sizeof addr.sun_path - 1);
  if (connect(fd, reinterpret_cast<struct sockaddr*>(&addr), sizeof addr) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

bool send_all(int fd, const std::string& s) {
  std::size_t sent = 0;
  while (sent < s.size()) {
    const ssize_t n = ::send(fd, s.data() + sent, s.size() - sent, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    sent += static_cast<std::size_t>(n);
  }
  return true;
}

bool LineReader::next(std::string& line) {
  for (;;) {
    const auto nl = buf.find('\n');
    if (nl != std::string::npos) {
      line = buf.substr(0, nl);
      buf.erase(0, nl + 1);
      return true;
    }
    char tmp[65536];
    const ssize_t n = read(fd, tmp, sizeof tmp);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      if (buf.empty()) return false;
      line = std::move(buf);
      buf.clear();
      return true;
    }
    buf.append(tmp, static_cast<std::size_t>(n));
  }
}

}  // namespace sgload

namespace {

using namespace sgload;

std::string compact(const std::string& line) {
  json j = json::parse(line, nullptr, false);
  return j.is_discarded() ? line : j.dump();
}

int session(const std::string& path) {
  const int fd = connect_unix(path);
  if (fd < 0) {
    std::cerr << "sgload: cannot connect to " << path << ": " << std::strerror(errno) << "\n";
    return 1;
  }
  bool in_open = true;
  std::string in_buf;
  std::string out_buf;
  for (;;) {
    struct pollfd p[2] = {{in_open ? 0 : -1, POLLIN, 0}, {fd, POLLIN, 0}};
    if (poll(p, 2, -1) < 0) {
      if (errno == EINTR) continue;
      return 1;
    }
    if (p[0].revents & (POLLIN | POLLHUP)) {
      char tmp[65536];
      const ssize_t n = read(0, tmp, sizeof tmp);
      if (n <= 0) {
        in_open = false;
        shutdown(fd, SHUT_WR);
      } else if (!send_all(fd, std::string(tmp, static_cast<std::size_t>(n)))) {
        in_open = false;
      }
    }
    if (p[1].revents & (POLLIN | POLLHUP | POLLERR)) {
      char tmp[65536];
      const ssize_t n = read(fd, tmp, sizeof tmp);
      if (n <= 0) {
        if (!out_buf.empty()) std::cout << compact(out_buf) << std::endl;
        std::cout << "EOF" << std::endl;
        return 0;
      }
      out_buf.append(tmp, static_cast<std::size_t>(n));
      for (auto nl = out_buf.find('\n'); nl != std::string::npos; nl = out_buf.find('\n')) {
        std::cout << compact(out_buf.substr(0, nl)) << std::endl;
        out_buf.erase(0, nl + 1);
      }
    }
  }
}

std::string outcome_of(const std::string& line) {
  json j = json::parse(line, nullptr, false);
  if (j.is_discarded()) return "unreadable";
  if (j.is_object() && j.contains("result")) return "ok";
  if (j.is_object() && j.contains("error")) {
    const json& e = j["error"];
    if (e.contains("data") && e["data"].is_object())
      return e["data"].value("reason", std::string("error"));
    return "error";
  }
  return "unreadable";
}

int burst(const std::string& path, int n, const std::string& tmpl) {
  std::mutex mu;
  std::condition_variable cv;
  int ready = 0;
  bool go = false;
  std::map<std::string, int> outcomes;
  std::vector<std::thread> threads;
  for (int i = 0; i < n; ++i) {
    threads.emplace_back([&, i] {
      std::string req = tmpl;
      for (auto at = req.find("%i"); at != std::string::npos; at = req.find("%i", at))
        req.replace(at, 2, std::to_string(i));
      req += '\n';
      const int fd = connect_unix(path);
      {
        std::unique_lock<std::mutex> lock(mu);
        ++ready;
        cv.notify_all();
        cv.wait(lock, [&] { return go; });
      }
      std::string result = "no_connection";
      if (fd >= 0) {
        result = "no_answer";
        if (send_all(fd, req)) {
          LineReader r{fd, {}};
          std::string line;
          if (r.next(line)) result = outcome_of(line);
        }
        close(fd);
      }
      std::lock_guard<std::mutex> lock(mu);
      ++outcomes[result];
    });
  }
  {
    std::unique_lock<std::mutex> lock(mu);
    cv.wait(lock, [&] { return ready == n; });
    go = true;
    cv.notify_all();
  }
  for (auto& t : threads) t.join();
  for (auto& [k, v] : outcomes) std::cout << k << " " << v << "\n";
  return 0;
}

struct Samples {
  std::vector<double> ms;
  long errors = 0;
};

// StartGate: called once connected; waits for every client and returns when to stop.
using StartGate = std::function<Clock::time_point()>;

std::string reserve_line(long long slot, int index) {
  return json{
             {"jsonrpc", "2.0"},
             {"id", 1},
             {"method", "reserve"},
             {"params",
              {{"slot_id", slot}, {"holder", "bench-" + std::to_string(index)}, {"confirm", true}}}}
             .dump() +
         "\n";
}

void socket_client(const std::string& path, long long slot, int index, const StartGate& gate,
                   Samples& out) {
  const int fd = connect_unix(path);
  const Clock::time_point end = gate();
  if (fd < 0) {
    ++out.errors;
    return;
  }
  LineReader r{fd, {}};
  const std::string req = reserve_line(slot, index);
  std::string line;
  while (Clock::now() < end) {
    const auto t0 = Clock::now();
    if (!send_all(fd, req) || !r.next(line)) {
      ++out.errors;
      break;
    }
    out.ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
    if (line.find("\"result\"") == std::string::npos) ++out.errors;
  }
  close(fd);
}

void direct_client(const std::string& conninfo, long long slot, int index, const StartGate& gate,
                   Samples& out) {
  PGconn* conn = PQconnectdb(conninfo.c_str());
  const bool connected = PQstatus(conn) == CONNECTION_OK;
  if (connected) {
    PQclear(PQprepare(conn, "r",
                      "SELECT pg_catalog.to_jsonb(r) FROM slotguard.reserve(slot_id => "
                      "$1::bigint, holder => $2::text, confirm => true) AS r",
                      2, nullptr));
  }
  const Clock::time_point end = gate();
  if (!connected) {
    std::cerr << "sgload: " << PQerrorMessage(conn);
    PQfinish(conn);
    ++out.errors;
    return;
  }
  const std::string slot_text = std::to_string(slot);
  const std::string holder = "bench-" + std::to_string(index);
  const char* values[2] = {slot_text.c_str(), holder.c_str()};
  while (Clock::now() < end) {
    const auto t0 = Clock::now();
    PGresult* res = PQexecPrepared(conn, "r", 2, values, nullptr, nullptr, 0);
    out.ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
    if (PQresultStatus(res) != PGRES_TUPLES_OK) ++out.errors;
    PQclear(res);
    if (PQstatus(conn) != CONNECTION_OK) break;
  }
  PQfinish(conn);
}

// socket_group drives clients [first, first + count) over the socket from one thread, each
// connection waiting for its answer before it sends again (as socket_client does), the waiting
// multiplexed with epoll: many clients then cost the load generator a few threads, not one each.
void socket_group(const std::string& path, long long slot, int first, int count,
                  const StartGate& gate, std::vector<Samples>& samples) {
  struct Conn {
    int fd;
    std::string req, buf;
    Clock::time_point t0;
  };
  std::vector<Conn> conns(static_cast<std::size_t>(count));
  for (int i = 0; i < count; ++i) {
    conns[static_cast<std::size_t>(i)] = {
        connect_unix(path), reserve_line(slot, first + i), {}, {}};
  }
  const Clock::time_point end = gate();
  const int ep = epoll_create1(EPOLL_CLOEXEC);
  int live = 0;
  auto finish = [&](std::size_t i, bool error) {
    if (error) ++samples[static_cast<std::size_t>(first) + i].errors;
    close(conns[i].fd);
    conns[i].fd = -1;
    --live;
  };
  for (std::size_t i = 0; i < conns.size(); ++i) {
    Conn& c = conns[i];
    if (c.fd < 0) {
      ++samples[static_cast<std::size_t>(first) + i].errors;
      continue;
    }
    struct epoll_event ev {};
    ev.events = EPOLLIN;
    ev.data.u64 = i;
    epoll_ctl(ep, EPOLL_CTL_ADD, c.fd, &ev);
    ++live;
    c.t0 = Clock::now();
    if (!send_all(c.fd, c.req)) finish(i, true);
  }
  struct epoll_event evs[64];
  while (live > 0) {
    const int n = epoll_wait(ep, evs, 64, 1000);
    for (int k = 0; k < n; ++k) {
      const std::size_t i = evs[k].data.u64;
      Conn& c = conns[i];
      if (c.fd < 0) continue;
      char tmp[4096];
      const ssize_t got = read(c.fd, tmp, sizeof tmp);
      if (got <= 0) {
        if (got < 0 && errno == EINTR) continue;
        finish(i, true);
        continue;
      }
      c.buf.append(tmp, static_cast<std::size_t>(got));
      const auto nl = c.buf.find('\n');
      if (nl == std::string::npos) continue;
      const auto now = Clock::now();
      Samples& out = samples[static_cast<std::size_t>(first) + i];
      out.ms.push_back(std::chrono::duration<double, std::milli>(now - c.t0).count());
      if (c.buf.find("\"result\"") > nl) ++out.errors;
      c.buf.erase(0, nl + 1);
      if (now >= end) {
        finish(i, false);
        continue;
      }
      c.t0 = now;
      if (!send_all(c.fd, c.req)) finish(i, true);
    }
  }
  close(ep);
}

int bench(const std::string& mode, const std::string& target, int clients, double seconds,
          long long slot) {
  std::vector<Samples> samples(static_cast<std::size_t>(clients));
  std::vector<std::thread> threads;
  // Every client is connected (or failed to) before the clock starts: 1,000 connections take a
  // while to open.
  std::mutex mu;
  std::condition_variable cv;
  int ready = 0;
  Clock::time_point start, end;
  bool go = false;
  // More than kGroupAbove socket clients: kGroups threads, each driving its share of them.
  constexpr int kGroupAbove = 64, kGroups = 4;
  const bool grouped = mode == "socket" && clients > kGroupAbove;
  const int parties = grouped ? kGroups : clients;
  auto wait_start = [&] {
    std::unique_lock<std::mutex> lock(mu);
    if (++ready == parties) {
      start = Clock::now();
      end = start + std::chrono::milliseconds(static_cast<long long>(seconds * 1000));
      go = true;
      cv.notify_all();
    }
    cv.wait(lock, [&] { return go; });
    return end;
  };
  for (int i = 0; grouped && i < kGroups; ++i) {
    const int first = clients * i / kGroups, next = clients * (i + 1) / kGroups;
    threads.emplace_back(
        [&, first, next] { socket_group(target, slot, first, next - first, wait_start, samples); });
  }
  for (int i = 0; !grouped && i < clients; ++i) {
    threads.emplace_back([&, i] {
      Samples& out = samples[static_cast<std::size_t>(i)];
      if (mode == "socket")
        socket_client(target, slot, i, wait_start, out);
      else
        direct_client(target, slot, i, wait_start, out);
    });
  }
  for (auto& t : threads) t.join();
  const double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
  std::vector<double> all;
  long errors = 0;
  std::size_t least = ~std::size_t{0}, most = 0;
  for (auto& s : samples) {
    all.insert(all.end(), s.ms.begin(), s.ms.end());
    errors += s.errors;
    least = std::min(least, s.ms.size());
    most = std::max(most, s.ms.size());
  }
  std::sort(all.begin(), all.end());
  auto pct = [&](double q) {
    if (all.empty()) return 0.0;
    const std::size_t k = std::min(all.size() - 1, static_cast<std::size_t>(q * all.size()));
    return all[k];
  };
  std::printf(
      "requests=%zu errors=%ld seconds=%.2f rps=%.1f p50_ms=%.3f p99_ms=%.3f max_ms=%.3f "
      "client_min=%zu client_max=%zu\n",
      all.size(), errors, elapsed, all.size() / elapsed, pct(0.50), pct(0.99),
      all.empty() ? 0.0 : all.back(), least, most);
  return errors == 0 ? 0 : 1;
}

double since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

// peer_closed: the daemon hung up (or reset) the connection; reads and drops what it sent.
bool peer_closed(int fd) {
  char tmp[65536];
  for (;;) {
    const ssize_t n = recv(fd, tmp, sizeof tmp, MSG_DONTWAIT);
    if (n == 0) return true;
    if (n < 0) return errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR;
  }
}

int flood(const std::string& path, double seconds, const std::string& line) {
  const int fd = connect_unix(path);
  if (fd < 0) {
    std::printf("sent_bytes=0 closed=1 seconds=0\n");
    return 0;
  }
  const std::string req = line + "\n";
  std::string chunk;
  while (chunk.size() < 65536) chunk += req;
  const auto t0 = Clock::now();
  std::size_t sent = 0;
  bool closed = false;
  while (!closed && since(t0) < seconds) {
    struct pollfd p = {fd, POLLOUT, 0};
    if (poll(&p, 1, 100) < 0 && errno != EINTR) break;
    if (p.revents & (POLLERR | POLLHUP)) {
      closed = true;
      break;
    }
    if (!(p.revents & POLLOUT)) continue;
    const ssize_t n = ::send(fd, chunk.data(), chunk.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n > 0) {
      sent += static_cast<std::size_t>(n);
    } else if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
      closed = true;
    }
  }
  // Still connected? A hang-up shows as EOF once our side stops sending; we never read answers
  // before this point, so this does not relieve the daemon early.
  if (!closed) {
    struct pollfd p = {fd, POLLIN | POLLRDHUP, 0};
    closed = poll(&p, 1, 0) > 0 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR)) != 0;
  }
  std::printf("sent_bytes=%zu closed=%d seconds=%.1f\n", sent, closed ? 1 : 0, since(t0));
  close(fd);
  return 0;
}

int trickle(const std::string& path, double seconds, int interval_ms) {
  const int fd = connect_unix(path);
  if (fd < 0) {
    std::printf("sent_bytes=0 closed=1 seconds=0\n");
    return 0;
  }
  const std::string req = R"({"jsonrpc":"2.0","id":1,"method":"health"})";
  const auto t0 = Clock::now();
  std::size_t sent = 0;
  bool closed = false;
  while (!closed && since(t0) < seconds) {
    // Never the newline: the request is never complete.
    const char c = req[sent % req.size()];
    if (::send(fd, &c, 1, MSG_NOSIGNAL) != 1) {
      closed = true;
      break;
    }
    ++sent;
    std::this_thread::sleep_for(std::chrono::milliseconds(interval_ms));
    closed = peer_closed(fd);
  }
  std::printf("sent_bytes=%zu closed=%d seconds=%.1f\n", sent, closed ? 1 : 0, since(t0));
  close(fd);
  return 0;
}

int connect_many(const std::string& path, int n, double hold) {
  std::vector<int> fds;
  int failed = 0;
  for (int i = 0; i < n; ++i) {
    const int fd = connect_unix(path);
    if (fd < 0) {
      ++failed;
      continue;
    }
    fds.push_back(fd);
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(static_cast<long long>(hold * 1000)));
  int refused = 0;
  int held = 0;
  for (int fd : fds) {
    char tmp[4096];
    const ssize_t r = recv(fd, tmp, sizeof tmp, MSG_DONTWAIT);
    if (r > 0 &&
        std::string(tmp, static_cast<std::size_t>(r)).find("unavailable") != std::string::npos) {
      ++refused;
    } else if (r == 0) {
      ++refused;  // closed without a word (it should say why, but it did not serve us)
    } else {
      ++held;
    }
    close(fd);
  }
  std::printf("attempts=%d held=%d refused=%d failed=%d\n", n, held, refused, failed);
  return 0;
}

int probe(const std::string& path, double seconds, int interval_ms, const std::string& arg) {
  // "@FILE": the lines of FILE, one after the other, round and round.
  std::vector<std::string> lines;
  if (!arg.empty() && arg[0] == '@') {
    std::ifstream in(arg.substr(1));
    for (std::string l; std::getline(in, l);) {
      if (!l.empty()) lines.push_back(l);
    }
  } else {
    lines.push_back(arg);
  }
  if (lines.empty()) {
    std::cerr << "sgload probe: nothing to send\n";
    return 2;
  }
  const int fd = connect_unix(path);
  if (fd < 0) {
    std::printf("requests=0 errors=1 p50_ms=0 p99_ms=0 max_ms=0\n");
    return 1;
  }
  LineReader r{fd, {}};
  std::vector<double> ms;
  long errors = 0;
  const auto t0 = Clock::now();
  for (std::size_t k = 0; since(t0) < seconds; ++k) {
    const auto start = Clock::now();
    std::string answer;
    if (!send_all(fd, lines[k % lines.size()] + "\n") || !r.next(answer)) {
      ++errors;
      break;
    }
    ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - start).count());
    if (answer.find("\"result\"") == std::string::npos) {
      ++errors;
      std::cerr << "sgload probe: " << answer.substr(0, 300) << "\n";
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(interval_ms));
  }
  close(fd);
  std::sort(ms.begin(), ms.end());
  auto pct = [&](double q) {
    if (ms.empty()) return 0.0;
    return ms[std::min(ms.size() - 1, static_cast<std::size_t>(q * ms.size()))];
  };
  std::printf("requests=%zu errors=%ld p50_ms=%.2f p99_ms=%.2f max_ms=%.2f\n", ms.size(), errors,
              pct(0.5), pct(0.99), ms.empty() ? 0.0 : ms.back());
  return 0;
}

void usage() {
  std::cerr << "usage: sgload session SOCKET\n"
               "       sgload burst SOCKET N TEMPLATE\n"
               "       sgload bench socket|direct SOCKET|CONNINFO CLIENTS SECONDS SLOT\n"
               "       sgload flood SOCKET SECONDS LINE\n"
               "       sgload trickle SOCKET SECONDS INTERVAL_MS\n"
               "       sgload connect SOCKET N HOLD_SECONDS\n"
               "       sgload probe SOCKET SECONDS INTERVAL_MS LINE|@FILE\n"
               "       sgload soak SOCKET CONNINFO SOCKET_CLIENTS DIRECT_CLIENTS SECONDS SLOTS "
               "SEAT_SLOTS IDS_FILE\n";
}

}  // namespace

int main(int argc, char** argv) {
  const std::vector<std::string> a(argv + 1, argv + argc);
  if (a.size() == 2 && a[0] == "session") return session(a[1]);
  if (a.size() == 4 && a[0] == "burst") return burst(a[1], std::atoi(a[2].c_str()), a[3]);
  if (a.size() == 6 && a[0] == "bench" && (a[1] == "socket" || a[1] == "direct"))
    return bench(a[1], a[2], std::atoi(a[3].c_str()), std::atof(a[4].c_str()),
                 std::atoll(a[5].c_str()));
  if (a.size() == 4 && a[0] == "flood") return flood(a[1], std::atof(a[2].c_str()), a[3]);
  if (a.size() == 4 && a[0] == "trickle")
    return trickle(a[1], std::atof(a[2].c_str()), std::atoi(a[3].c_str()));
  if (a.size() == 4 && a[0] == "connect")
    return connect_many(a[1], std::atoi(a[2].c_str()), std::atof(a[3].c_str()));
  if (a.size() == 5 && a[0] == "probe")
    return probe(a[1], std::atof(a[2].c_str()), std::atoi(a[3].c_str()), a[4]);
  if (a.size() == 9 && a[0] == "soak") return soak(a);
  usage();
  return 2;
}
