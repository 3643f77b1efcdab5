// clients: slotguardd's client connections and the workers' loop that serves them. Requests are
// lines of JSON (docs/daemon.md, protocol), framed here under the limits.* of the configuration:
// at most max_request_bytes a line, one request of a client per turn, none while the peer leaves
// more than max_output_bytes of answers unread (backpressure), and idle_timeout /
// request_timeout / write_timeout for peers that stay silent, trickle or do not read. Every
// client is armed in one epoll set with EPOLLONESHOT, so that one worker at a time has it. A
// worker's turn: it takes up to its share of the clients (clients / workers, at most
// kClientsPerTurn) that epoll says are ready, reads each one's input and takes its next request
// (begin_turn), runs the requests of all of them together (execute: one pipeline on its
// connection), and as each answer is there writes it and re-arms that client (end_turn) — behind
// the clients already waiting, so no client starves. Answers of one client come in the order of
// its requests. The event loop adds the clients the listener accepts and runs the timeouts and
// the drain.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "daemon_state.hpp"
#include "listener.hpp"
#include "workers.hpp"

namespace sg::daemon {

// Client: one connection. The loop creates it; afterwards a worker has it while it is armed out
// (EPOLLONESHOT) and the loop looks at it only for the timeouts and the drain, under mu.
struct Client {
  using Clock = std::chrono::steady_clock;
  explicit Client(int f) : fd(f) {}
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;
  const int fd;
  std::uint64_t id = 0;
  PeerCredentials peer;
  bool authorized = true;
  std::mutex mu;  // guards what follows
  std::string in;
  std::size_t scanned = 0;  // in[0, scanned) holds no newline (no search twice over a byte)
  std::string out;
  bool busy = false;       // a request of this client is running (mu is released meanwhile)
  bool closing = false;    // close once `out` is flushed
  bool eof = false;        // the peer has shut down its side
  bool closed = false;     // gone: no longer in the map, nothing more to do
  Clock::time_point last;  // last input
  Clock::time_point partial_since;  // an unfinished request line began (epoch: none)
  // The client's requests or answers last moved: a request ran, or the peer took some answers.
  Clock::time_point last_progress;
};

class Clients {
 public:
  using Clock = std::chrono::steady_clock;
  explicit Clients(DaemonState& state);
  ~Clients();
  Clients(const Clients&) = delete;
  Clients& operator=(const Clients&) = delete;

  // ready: the epoll set and the workers' stop event could be made.
  bool ready() const { return epoll_fd_ >= 0 && stop_fd_ >= 0; }
  // admit takes an accepted connection: refused (answered, closed) beyond limits.max_clients, a
  // peer access.* does not allow is kept only to be told so.
  void admit(int fd, const PeerCredentials& peer, const Config& cfg);
  std::size_t count() const;
  int in_flight() const { return inflight_.load(); }

  // serve is a worker's loop (the WorkerPool driver): it returns after stop_workers.
  void serve(const WorkerPool::Execute& execute);
  void stop_workers();

  // drain: no more requests are started; clients with nothing left to send are closed.
  void drain() { draining_ = true; }
  bool draining() const { return draining_.load(); }
  // check closes the clients a timeout or the drain ends; returns how many are left.
  std::size_t check(Clock::time_point now, const Config::Limits& limits);
  void close_all();

 private:
  using ClientPtr = std::shared_ptr<Client>;
  using Lock = std::unique_lock<std::mutex>;
  enum class Framing { kLine, kNone, kOversized };

  void refuse(int fd, const PeerCredentials& peer, const Config& cfg);
  ClientPtr find(std::uint64_t id);
  std::vector<ClientPtr> snapshot();
  // limits: from the worker's snapshot of the configuration.
  bool begin_turn(Client& c, std::uint32_t events, const Config::Limits& limits,
                  std::vector<Job>& jobs);
  void end_turn(Client& c, Job* job, const Config::Limits& limits);
  bool read_input(Client& c, const Config::Limits& limits);
  void take_request(Client& c, const Config::Limits& limits, std::vector<Job>& jobs);
  Framing next_line(Client& c, std::size_t& head, std::size_t max_bytes, std::string& line);
  void refuse_oversized(Client& c, std::size_t max_bytes);
  void refuse_unauthorized(Client& c, const std::string& line, const Config::Limits& limits);
  // has_request: c.in holds a request to run (or to refuse) now.
  static bool has_request(Client& c, const Config::Limits& limits);
  void reply(Client& c, std::string line);
  bool flush(Client& c);
  void rearm(Client& c, const Config::Limits& limits);
  // timed_out: a timeout of limits ends c now (logged and counted).
  bool timed_out(Client& c, Clock::time_point now, const Config::Limits& limits);
  void close_locked(Client& c);
  void close_client(Client& c);

  DaemonState& state_;
  int epoll_fd_ = -1;
  int stop_fd_ = -1;               // level-triggered in epoll_fd_ (data 0): the workers return
  mutable std::mutex clients_mu_;  // never taken while holding it: a Client's mu
  std::unordered_map<std::uint64_t, ClientPtr> clients_;
  std::atomic<std::size_t> connected_{0};  // clients_.size(), read without the lock
  std::uint64_t next_id_ = 1;
  std::atomic<int> inflight_{0};
  std::atomic<bool> draining_{false};
  Clock::time_point last_refusal_log_;
  std::uint64_t refusals_unlogged_ = 0;
};

}  // namespace sg::daemon
