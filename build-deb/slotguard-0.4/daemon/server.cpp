// server: see server.hpp.
#include "server.hpp"

#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <systemd/sd-daemon.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <memory>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <vector>

#include "log.hpp"
#include "service.hpp"

namespace sg::daemon {

namespace {

using Clock = std::chrono::steady_clock;

// Client: one connection. The loop creates it; afterwards a worker has it while it is armed out
// (EPOLLONESHOT) and the loop looks at it only for the idle timeout and the drain, under mu.
struct Client {
  explicit Client(int f) : fd(f) {}
  ~Client() { close(fd); }
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;
  const int fd;
  std::uint64_t id = 0;
  uid_t uid = 0;
  gid_t gid = 0;
  pid_t pid = 0;
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

// A client gets at most this many requests run per turn; then the others waiting get theirs.
constexpr int kRequestsPerTurn = 16;

RequestLimits request_limits(const Config::Limits& l) {
  return RequestLimits{l.max_json_depth, l.max_batch};
}
using ClientPtr = std::shared_ptr<Client>;

std::string errno_text() {
  return std::strerror(errno);
}

void notify(const std::string& state) {
  sd_notify(0, state.c_str());
}

bool peer_allowed(const Config::Access& a, uid_t uid, gid_t gid) {
  if (a.allowed_uids.empty() && a.allowed_groups.empty()) return true;
  if (std::find(a.allowed_uids.begin(), a.allowed_uids.end(), uid) != a.allowed_uids.end())
    return true;
  if (a.allowed_groups.empty()) return false;
  if (std::find(a.allowed_groups.begin(), a.allowed_groups.end(), gid) != a.allowed_groups.end())
    return true;
  // Supplementary groups of the peer's user.
  struct passwd pw {};
  struct passwd* found = nullptr;
  std::vector<char> buf(16384);
  if (getpwuid_r(uid, &pw, buf.data(), buf.size(), &found) != 0 || found == nullptr) return false;
  int n = 64;
  std::vector<gid_t> groups(static_cast<std::size_t>(n));
  if (getgrouplist(pw.pw_name, gid, groups.data(), &n) < 0) {
    groups.resize(static_cast<std::size_t>(n));
    if (getgrouplist(pw.pw_name, gid, groups.data(), &n) < 0) return false;
  }
  groups.resize(static_cast<std::size_t>(n));
  for (gid_t g : groups) {
    if (std::find(a.allowed_groups.begin(), a.allowed_groups.end(), g) != a.allowed_groups.end())
      return true;
  }
  return false;
}

void set_nonblocking(int fd) {
  const int flags = fcntl(fd, F_GETFL, 0);
  if (flags >= 0) fcntl(fd, F_SETFL, flags | O_NONBLOCK);
}

// make_socket creates, binds and listens on socket.path: a stale socket is removed, a live one
// (another daemon answers on it) is an error; mode and group are applied.
int make_socket(const Config::Socket& s) {
  struct sockaddr_un addr {};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, s.path.c_str(), sizeof addr.sun_path - 1);
  struct stat st {};
  if (lstat(s.path.c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode)) {
      log::error(s.path, " exists and is not a socket; refusing to replace it");
      return -1;
    }
    const int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (probe >= 0 && connect(probe, reinterpret_cast<struct sockaddr*>(&addr), sizeof addr) == 0) {
      close(probe);
      log::error("another process is listening on ", s.path,
                 "; not starting a second daemon there");
      return -1;
    }
    if (probe >= 0) close(probe);
    log::info("removing stale socket ", s.path);
    unlink(s.path.c_str());
  }
  const int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    log::error("socket: ", errno_text());
    return -1;
  }
  const mode_t old = umask(0177);  // nobody but us until the mode is applied
  const int rc = bind(fd, reinterpret_cast<struct sockaddr*>(&addr), sizeof addr);
  umask(old);
  if (rc != 0) {
    log::error("cannot bind ", s.path, ": ", errno_text());
    close(fd);
    return -1;
  }
  if (chmod(s.path.c_str(), static_cast<mode_t>(s.mode)) != 0)
    log::warning("cannot chmod ", s.path, ": ", errno_text());
  if (!s.group.empty()) {
    struct group gr {};
    struct group* found = nullptr;
    std::vector<char> buf(65536);
    if (getgrnam_r(s.group.c_str(), &gr, buf.data(), buf.size(), &found) != 0 || found == nullptr) {
      log::warning("socket.group '", s.group, "' does not exist; ", s.path,
                   " keeps the daemon's group");
    } else if (chown(s.path.c_str(), static_cast<uid_t>(-1), gr.gr_gid) != 0) {
      log::warning("cannot give ", s.path, " to group '", s.group, "': ", errno_text());
    }
  }
  if (listen(fd, SOMAXCONN) != 0) {
    log::error("listen on ", s.path, ": ", errno_text());
    close(fd);
    return -1;
  }
  return fd;
}

// activated_socket takes the socket systemd passed (socket activation), or -1 if none.
int activated_socket() {
  const int n = sd_listen_fds(1);
  if (n <= 0) return -1;
  int chosen = -1;
  for (int fd = SD_LISTEN_FDS_START; fd < SD_LISTEN_FDS_START + n; ++fd) {
    if (chosen < 0 && sd_is_socket_unix(fd, SOCK_STREAM, 1, nullptr, 0) > 0) {
      chosen = fd;
      continue;
    }
    log::warning("ignoring passed file descriptor ", fd, ": not a listening Unix stream socket");
    close(fd);
  }
  if (chosen >= 0) {
    set_nonblocking(chosen);
    fcntl(chosen, F_SETFD, FD_CLOEXEC);
    log::notice(
        "socket activation: using the socket systemd passed; socket.path, socket.mode "
        "and socket.group are ignored");
  }
  return chosen;
}

class Server {
 public:
  Server(std::string config_path, std::shared_ptr<const Config> config)
      : config_path_(std::move(config_path)), shared_(std::move(config)) {}

  int run();

 private:
  using Lock = std::unique_lock<std::mutex>;
  void accept_clients();
  // Worker side: each pool thread waits on epoll_fd_ for a client with something to do (every
  // client is armed EPOLLONESHOT, so one thread at a time has it), then reads, runs and answers
  // its requests itself, in order, and re-arms it.
  void serve(const Pool::Execute& execute);
  // limits: from the worker's snapshot of the configuration.
  void serve_client(Client& c, std::uint32_t events, const Pool::Execute& execute,
                    const Config::Limits& limits);
  bool read_input(Client& c, const Config::Limits& limits);
  bool process_input(Client& c, Lock& lock, const Pool::Execute& execute,
                     const Config::Limits& limits);
  // has_request: c.in holds a request to run (or to refuse) now.
  static bool has_request(Client& c, const Config::Limits& limits);
  void reply(Client& c, std::string line);
  bool flush(Client& c);
  void rearm(Client& c, const Config::Limits& limits);
  void close_locked(Client& c);
  void close_client(Client& c);
  ClientPtr find(std::uint64_t id);
  std::vector<ClientPtr> snapshot();
  void check_ready();
  void on_signals();
  void reload();
  void begin_drain();
  void housekeeping();
  std::string status_line() const;

  std::string config_path_;
  Shared shared_;
  std::unique_ptr<Pool> pool_;
  std::unique_ptr<Sweeper> sweeper_;
  std::unique_ptr<Monitor> monitor_;
  int listen_fd_ = -1;
  bool own_socket_ = false;
  std::string socket_path_;
  int signal_fd_ = -1;
  int epoll_fd_ = -1;
  int stop_fd_ = -1;               // level-triggered in epoll_fd_ (data 0): the workers return
  mutable std::mutex clients_mu_;  // never taken while holding it: a Client's mu
  std::unordered_map<std::uint64_t, ClientPtr> clients_;
  std::uint64_t next_id_ = 1;
  std::atomic<int> inflight_{0};
  bool ready_ = false;
  std::atomic<bool> draining_{false};
  bool done_ = false;
  bool cancelled_ = false;  // the drain deadline passed: statements in flight were cancelled
  Clock::time_point drain_deadline_;
  Clock::time_point last_refusal_log_;
  Clock::time_point last_timeout_check_;
  std::uint64_t refusals_unlogged_ = 0;
  std::uint64_t watchdog_usec_ = 0;
  Clock::time_point last_watchdog_;
  Clock::time_point last_status_;
  std::string last_status_text_;
};

int Server::run() {
  auto cfg = shared_.config();
  // Signals are handled in the loop (signalfd); block them before any thread starts so that
  // every thread inherits the mask.
  sigset_t mask;
  sigemptyset(&mask);
  sigaddset(&mask, SIGTERM);
  sigaddset(&mask, SIGINT);
  sigaddset(&mask, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &mask, nullptr);
  signal(SIGPIPE, SIG_IGN);
  signal_fd_ = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
  if (signal_fd_ < 0 || shared_.wake_fd() < 0) {
    log::error("signalfd/eventfd: ", errno_text());
    return 1;
  }
  epoll_fd_ = epoll_create1(EPOLL_CLOEXEC);
  stop_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (epoll_fd_ < 0 || stop_fd_ < 0) {
    log::error("epoll/eventfd: ", errno_text());
    return 1;
  }
  {
    struct epoll_event ev {};
    ev.events = EPOLLIN;
    ev.data.u64 = 0;
    epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, stop_fd_, &ev);
  }

  listen_fd_ = activated_socket();
  if (listen_fd_ < 0) {
    listen_fd_ = make_socket(cfg->socket);
    if (listen_fd_ < 0) return 1;
    own_socket_ = true;
    socket_path_ = cfg->socket.path;
    log::info("listening on ", socket_path_);
  }

  if (sd_watchdog_enabled(0, &watchdog_usec_) <= 0) watchdog_usec_ = 0;
  notify("STATUS=waiting for the database");
  monitor_ = std::make_unique<Monitor>(shared_);
  pool_ = std::make_unique<Pool>(shared_, cfg->database.pool_size,
                                 [this](const Pool::Execute& execute) { serve(execute); });
  sweeper_ = std::make_unique<Sweeper>(shared_);
  shared_.sweeper = sweeper_.get();

  while (!done_) {
    const bool accepting = listen_fd_ >= 0 && !draining_;
    struct pollfd fds[3] = {{signal_fd_, POLLIN, 0},
                            {shared_.wake_fd(), POLLIN, 0},
                            {accepting ? listen_fd_ : -1, POLLIN, 0}};
    int timeout = draining_ ? 20 : 1000;
    if (watchdog_usec_ > 0)
      timeout = std::min<int>(timeout, static_cast<int>(watchdog_usec_ / 2000));
    const int n = poll(fds, 3, timeout);
    if (n < 0 && errno != EINTR) {
      log::error("poll: ", errno_text());
      break;
    }
    if (n > 0) {
      if (fds[0].revents & POLLIN) on_signals();
      if (fds[1].revents & POLLIN) {
        std::uint64_t v;
        while (read(shared_.wake_fd(), &v, sizeof v) > 0) {
        }
        check_ready();
      }
      if (accepting && (fds[2].revents & POLLIN)) accept_clients();
    }
    housekeeping();
  }

  log::info("stopping: ", inflight_.load(), " requests in flight");
  if (cancelled_) {
    // Cancelled statements end at once unless the database cannot even be reached; then
    // nothing the workers wait for would end them: do not wait for ever.
    std::thread([] {
      std::this_thread::sleep_for(std::chrono::seconds(10));
      log::error("workers did not stop within 10 s of the drain deadline; exiting");
      _exit(1);
    }).detach();
  }
  const std::uint64_t one = 1;
  (void)!::write(stop_fd_, &one, sizeof one);
  pool_->stop();
  {
    std::lock_guard<std::mutex> guard(clients_mu_);
    clients_.clear();  // the last reference closes each socket
  }
  if (listen_fd_ >= 0) close(listen_fd_);
  if (own_socket_) unlink(socket_path_.c_str());
  sweeper_->stop();
  monitor_->stop();
  log::info("stopped");
  return 0;
}

void Server::accept_clients() {
  const auto cfg = shared_.config();
  for (;;) {
    const int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
        log::warning("accept: ", errno_text());
      return;
    }
    struct ucred cred {};
    socklen_t len = sizeof cred;
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) {
      log::warning("SO_PEERCRED: ", errno_text());
      close(fd);
      continue;
    }
    std::size_t count;
    {
      std::lock_guard<std::mutex> guard(clients_mu_);
      count = clients_.size();
    }
    if (static_cast<int>(count) >= cfg->limits.max_clients) {
      const std::string line =
          to_line(make_error(nullptr, RpcError{kServerError,
                                               "too many clients (limits.max_clients = " +
                                                   std::to_string(cfg->limits.max_clients) + ")",
                                               "unavailable", "", "", ""})) +
          "\n";
      (void)!::send(fd, line.data(), line.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
      close(fd);
      shared_.metrics.client_rejected("max_clients");
      // A flood of attempts makes one line a second, not one line each.
      const auto now = Clock::now();
      if (now - last_refusal_log_ >= std::chrono::seconds(1)) {
        log::warning("refused a client of uid ", cred.uid, ": limits.max_clients (",
                     cfg->limits.max_clients, ") reached",
                     refusals_unlogged_ > 0
                         ? " (and " + std::to_string(refusals_unlogged_) + " more refused before)"
                         : std::string());
        last_refusal_log_ = now;
        refusals_unlogged_ = 0;
      } else {
        ++refusals_unlogged_;
      }
      continue;
    }
    auto c = std::make_shared<Client>(fd);
    c->id = next_id_++;
    c->uid = cred.uid;
    c->gid = cred.gid;
    c->pid = cred.pid;
    c->authorized = peer_allowed(cfg->access, cred.uid, cred.gid);
    c->last = c->last_progress = Clock::now();
    // A peer that may not be served has request_timeout to say what it wanted (and hear no).
    if (!c->authorized) c->partial_since = c->last;
    if (!c->authorized) log::notice("peer uid ", cred.uid, " pid ", cred.pid, " is not allowed");
    log::debug("client ", c->id, " connected (uid ", c->uid, ", pid ", c->pid, ")");
    shared_.metrics.client_accepted();
    {
      std::lock_guard<std::mutex> guard(clients_mu_);
      clients_.emplace(c->id, c);
    }
    struct epoll_event ev {};
    ev.events = EPOLLIN | EPOLLONESHOT;
    ev.data.u64 = c->id;
    if (epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &ev) != 0) {
      log::warning("epoll_ctl: ", errno_text());
      close_client(*c);
    }
  }
}

ClientPtr Server::find(std::uint64_t id) {
  std::lock_guard<std::mutex> guard(clients_mu_);
  auto it = clients_.find(id);
  return it == clients_.end() ? nullptr : it->second;
}

std::vector<ClientPtr> Server::snapshot() {
  std::lock_guard<std::mutex> guard(clients_mu_);
  std::vector<ClientPtr> out;
  out.reserve(clients_.size());
  for (auto& [id, c] : clients_) out.push_back(c);
  return out;
}

void Server::serve(const Pool::Execute& execute) {
  struct epoll_event ev {};
  Shared::ConfigView view;
  for (;;) {
    const int n = epoll_wait(epoll_fd_, &ev, 1, -1);
    if (n < 0) {
      if (errno == EINTR) continue;
      log::error("epoll_wait: ", errno_text());
      return;
    }
    if (n == 0) continue;
    if (ev.data.u64 == 0) return;  // stop_fd_
    ClientPtr c = find(ev.data.u64);
    if (c) serve_client(*c, ev.events, execute, shared_.current(view).limits);
  }
}

void Server::serve_client(Client& c, std::uint32_t events, const Pool::Execute& execute,
                          const Config::Limits& limits) {
  Lock lock(c.mu);
  if (c.closed) return;
  if ((events & EPOLLOUT) && !flush(c)) return close_locked(c);
  if ((events & (EPOLLIN | EPOLLHUP | EPOLLERR)) && !c.eof && !read_input(c, limits))
    return close_locked(c);
  if (!process_input(c, lock, execute, limits)) return close_locked(c);
  if (c.closed) return;
  if (c.eof && (c.in.empty() || c.closing)) c.closing = true;
  if (!flush(c)) return close_locked(c);
  if (c.out.empty() && (c.closing || draining_)) return close_locked(c);
  rearm(c, limits);
}

// read_input reads what the peer sent, but no more than one request's worth beyond what is
// buffered: a peer that sends faster than its requests run waits in its socket buffer.
bool Server::read_input(Client& c, const Config::Limits& limits) {
  char buf[65536];
  for (;;) {
    if (c.in.size() > limits.max_request_bytes) break;
    const ssize_t n = read(c.fd, buf, sizeof buf);
    if (n > 0) {
      const auto now = Clock::now();
      if (c.in.empty()) c.partial_since = now;
      c.in.append(buf, static_cast<std::size_t>(n));
      c.last = now;
      // A short read drained the socket (more data or EOF re-arms the client).
      if (static_cast<std::size_t>(n) < sizeof buf) break;
      continue;
    }
    if (n == 0) {
      c.eof = true;
      break;
    }
    if (errno == EAGAIN || errno == EWOULDBLOCK) break;
    if (errno == EINTR) continue;
    return false;
  }
  return true;
}

bool Server::has_request(Client& c, const Config::Limits& limits) {
  if (c.in.empty()) return false;
  if (c.eof || c.in.size() > limits.max_request_bytes) return true;
  const std::size_t nl = c.in.find('\n', c.scanned);
  if (nl == std::string::npos) c.scanned = c.in.size();
  return nl != std::string::npos;
}

// process_input runs the complete lines of c.in in order, at most kRequestsPerTurn of them and
// none while the peer leaves more than limits.max_output_bytes of answers unread; the client's
// lock is released while a request runs (nothing else touches a busy client). false: the peer is
// gone.
bool Server::process_input(Client& c, Lock& lock, const Pool::Execute& execute,
                           const Config::Limits& limits) {
  const std::size_t max_bytes = limits.max_request_bytes;
  const RequestLimits request_limits_now = request_limits(limits);
  std::size_t head = 0;  // c.in[0, head) has been taken
  bool alive = true;
  for (int turn = 0; turn < kRequestsPerTurn && !c.closing && !draining_; ++turn) {
    if (c.out.size() > limits.max_output_bytes) break;  // backpressure: the peer reads first
    const std::size_t pos = c.in.find('\n', std::max(head, c.scanned));
    std::string line;
    if (pos == std::string::npos) {
      c.scanned = c.in.size();
      const std::size_t rest = c.in.size() - head;
      if (rest > max_bytes) {
        // Too long, and not even finished: answered below, then the connection is closed.
      } else if (c.eof && rest > 0) {
        line.assign(c.in, head, std::string::npos);  // a last request without its newline
        head = c.in.size();
      } else {
        break;
      }
    }
    if ((pos == std::string::npos && c.in.size() - head > max_bytes) ||
        (pos != std::string::npos && pos - head > max_bytes)) {
      shared_.metrics.client_rejected("oversized");
      log::notice("client ", c.id, " (uid ", c.uid, ") sent a request over ", max_bytes,
                  " bytes; closing");
      head = c.in.size();
      reply(c,
            to_line(make_error(nullptr, RpcError{kInvalidRequest,
                                                 "request too large (limits.max_request_bytes = " +
                                                     std::to_string(max_bytes) + ")",
                                                 "invalid_params", "", "", ""})));
      c.closing = true;
      break;
    }
    if (pos != std::string::npos) {
      if (head == 0 && pos + 1 == c.in.size()) {
        line = std::move(c.in);  // the usual case: one request, no copy
        line.pop_back();
        c.in.clear();
        head = 0;
        c.scanned = 0;
      } else {
        line.assign(c.in, head, pos - head);
        head = pos + 1;
        c.scanned = head;
      }
      c.partial_since = Clock::now();  // what follows began no earlier than now
    }
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    if (!c.authorized) {
      shared_.metrics.client_rejected("unauthorized");
      reply(c, to_line(make_error(request_id_of(line, limits.max_json_depth),
                                  RpcError{kServerError,
                                           "uid " + std::to_string(c.uid) +
                                               " may not use slotguardd (access.allowed_uids / "
                                               "allowed_groups)",
                                           "unauthorized", "", "", ""})));
      c.closing = true;
      break;
    }
    Job job;
    job.client = c.id;
    job.uid = c.uid;
    job.received = Clock::now();
    job.request = parse_request(line, request_limits_now);
    line = std::string();  // a request line is up to max_request_bytes: not kept while it runs
    c.busy = true;
    ++inflight_;
    lock.unlock();
    std::string answer = execute(job);
    job.request = Request();
    lock.lock();
    c.busy = false;
    --inflight_;
    c.last = c.last_progress = Clock::now();
    if (c.closed) return true;
    if (!answer.empty()) {
      reply(c, std::move(answer));
      if (!flush(c)) {
        alive = false;
        break;
      }
    }
  }
  if (head > 0) {
    c.in.erase(0, head);
    c.scanned = c.scanned > head ? c.scanned - head : 0;
  }
  if (c.in.empty()) c.partial_since = Clock::time_point{};
  return alive;
}

void Server::reply(Client& c, std::string line) {
  if (c.out.empty()) {
    c.out = std::move(line);
  } else {
    c.out += line;
  }
  c.out += '\n';
}

// flush writes what it can of c.out without blocking (the rest waits for EPOLLOUT); false: the
// peer is gone.
bool Server::flush(Client& c) {
  std::size_t done = 0;
  while (done < c.out.size()) {
    const ssize_t n =
        ::send(c.fd, c.out.data() + done, c.out.size() - done, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n > 0) {
      done += static_cast<std::size_t>(n);
      continue;
    }
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
    if (n < 0 && errno == EINTR) continue;
    return false;
  }
  if (done > 0) c.last_progress = Clock::now();
  if (done == c.out.size()) {
    c.out.clear();
    // A client that once had a large answer does not keep its buffer.
    if (c.out.capacity() > 65536) c.out.shrink_to_fit();
  } else if (done > 0) {
    c.out.erase(0, done);
  }
  return true;
}

// rearm waits for what the client needs next: input while there is room for it, the socket's
// room for unsent answers, or — for requests already buffered but left for another turn — a turn
// behind the clients already waiting (EPOLLOUT of a socket with room fires at once).
void Server::rearm(Client& c, const Config::Limits& limits) {
  std::uint32_t events = 0;
  const bool backlog = c.out.size() > limits.max_output_bytes;
  if (!c.closing && !c.eof && !draining_ && !backlog && c.in.size() <= limits.max_request_bytes)
    events |= EPOLLIN;
  if (!c.out.empty() || (!c.closing && !draining_ && has_request(c, limits))) events |= EPOLLOUT;
  if (c.in.empty() && c.in.capacity() > 65536) c.in.shrink_to_fit();
  // Nothing to wait for (a drain or an end in progress): housekeeping closes the client; arming
  // it for hang-ups alone would only spin.
  if (events == 0) return;
  struct epoll_event ev {};
  ev.events = events | EPOLLONESHOT;
  ev.data.u64 = c.id;
  if (epoll_ctl(epoll_fd_, EPOLL_CTL_MOD, c.fd, &ev) != 0) close_locked(c);
}

// close_locked ends a client whose lock is held; its socket is closed when the last reference
// goes.
void Server::close_locked(Client& c) {
  if (c.closed) return;
  c.closed = true;
  log::debug("client ", c.id, " closed");
  epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, c.fd, nullptr);
  shutdown(c.fd, SHUT_RDWR);
  {
    std::lock_guard<std::mutex> guard(clients_mu_);
    clients_.erase(c.id);
  }
  shared_.metrics.client_closed();
}

void Server::close_client(Client& c) {
  std::lock_guard<std::mutex> guard(c.mu);
  close_locked(c);
}

void Server::check_ready() {
  if (!ready_ && shared_.db_up()) {
    ready_ = true;
    log::notice("ready: listening, database answered");
    notify("READY=1\nSTATUS=" + status_line());
  }
}

void Server::on_signals() {
  struct signalfd_siginfo si {};
  while (read(signal_fd_, &si, sizeof si) == static_cast<ssize_t>(sizeof si)) {
    if (si.ssi_signo == SIGHUP) {
      reload();
    } else if (draining_) {
      log::warning("second ", (si.ssi_signo == SIGINT ? "SIGINT" : "SIGTERM"), ": exiting now, ",
                   inflight_.load(), " requests abandoned");
      if (own_socket_) unlink(socket_path_.c_str());
      _exit(0);
    } else {
      log::notice((si.ssi_signo == SIGINT ? "SIGINT" : "SIGTERM"), ": no new requests; draining ",
                  inflight_.load(), " in flight");
      begin_drain();
    }
  }
}

void Server::begin_drain() {
  draining_ = true;
  drain_deadline_ = Clock::now() + shared_.config()->limits.drain_timeout;
  notify("STOPPING=1\nSTATUS=draining");
  if (listen_fd_ >= 0) {
    close(listen_fd_);
    listen_fd_ = -1;
    if (own_socket_) {
      unlink(socket_path_.c_str());
      own_socket_ = false;
    }
  }
}

void Server::reload() {
  struct timespec ts {};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  const long long usec = static_cast<long long>(ts.tv_sec) * 1000000LL + ts.tv_nsec / 1000;
  notify("RELOADING=1\nMONOTONIC_USEC=" + std::to_string(usec) + "\nSTATUS=reloading");
  const auto old = shared_.config();
  try {
    auto fresh = std::make_shared<Config>(load_config(config_path_));
    if (fresh->database.conninfo != old->database.conninfo ||
        fresh->database.pool_size != old->database.pool_size ||
        fresh->database.connect_timeout != old->database.connect_timeout)
      log::warning("reload: database.* changes take effect at the next restart");
    if (fresh->socket.path != old->socket.path || fresh->socket.mode != old->socket.mode ||
        fresh->socket.group != old->socket.group)
      log::warning("reload: socket.* changes take effect at the next restart");
    fresh->database = old->database;
    fresh->socket = old->socket;
    log::set_level(fresh->log.level);
    shared_.set_config(fresh);
    sweeper_->reconfigure();
    log::notice("reloaded ", config_path_, " (log level ", log_level_name(fresh->log.level),
                ", sweep ", fresh->sweep.enabled ? "on" : "off", ")");
  } catch (const std::exception& e) {
    log::error("reload failed, keeping the old configuration: ", e.what());
  }
  notify("READY=1\nSTATUS=" + status_line());
}

std::string Server::status_line() const {
  std::size_t count;
  {
    std::lock_guard<std::mutex> guard(clients_mu_);
    count = clients_.size();
  }
  std::string s = std::to_string(count) + " clients, database " +
                  (shared_.db_up() ? "up" : "DOWN") + ", " + std::to_string(pool_->busy()) + "/" +
                  std::to_string(pool_->size()) + " workers busy, " +
                  std::to_string(shared_.metrics.sweeps()) + " sweeps";
  if (draining_) s = "draining: " + s;
  return s;
}

void Server::housekeeping() {
  const auto now = Clock::now();
  const auto cfg = shared_.config();
  check_ready();
  const auto& lim = cfg->limits;
  const bool idle_check = lim.idle_timeout.count() > 0;
  const bool request_check = lim.request_timeout.count() > 0;
  const bool write_check = lim.write_timeout.count() > 0;
  // Once every 100 ms is enough for timeouts of seconds (a drain polls every 20 ms).
  const bool timeouts = (idle_check || request_check || write_check) &&
                        now - last_timeout_check_ >= std::chrono::milliseconds(100);
  if (timeouts || draining_) {
    if (timeouts) last_timeout_check_ = now;
    std::size_t left = 0;
    for (auto& c : snapshot()) {
      std::lock_guard<std::mutex> guard(c->mu);
      if (c->closed) continue;
      if (idle_check && !c->busy && c->out.empty() && now - c->last > lim.idle_timeout) {
        log::debug("client ", c->id, " idle; closing");
        shared_.metrics.client_rejected("idle_timeout");
        close_locked(*c);
        continue;
      }
      // A request that trickles in (a byte now and then) must not hold a client slot for ever.
      // Answers wait for the peer: unsent ones in `out`, or requests left unrun because the
      // socket's buffer is full of answers the peer has not read.
      const bool waiting = !c->busy && (!c->out.empty() || has_request(*c, lim));
      if (request_check && !c->busy && !waiting && c->partial_since != Clock::time_point{} &&
          now - c->partial_since > lim.request_timeout) {
        log::notice("client ", c->id, " (uid ", c->uid, ") did not complete a request within ",
                    lim.request_timeout.count(), " ms; closing");
        shared_.metrics.client_rejected("request_timeout");
        close_locked(*c);
        continue;
      }
      // A peer that does not read its answers must not hold them (and a client slot) for ever.
      if (write_check && waiting && now - c->last_progress > lim.write_timeout) {
        log::notice("client ", c->id, " (uid ", c->uid, ") did not read its answers for ",
                    lim.write_timeout.count(), " ms; closing");
        shared_.metrics.client_rejected("write_timeout");
        close_locked(*c);
        continue;
      }
      // Draining: clients with nothing running and nothing to send are done.
      if (draining_ && !c->busy && c->out.empty()) {
        close_locked(*c);
        continue;
      }
      ++left;
    }
    if (draining_ && inflight_ == 0 && left == 0) done_ = true;
    if (draining_ && now > drain_deadline_) {
      // Statements still running (a lock wait, a slow query) are cancelled; their requests
      // answer with the database's error, and the workers return.
      const int n = inflight_.load();
      if (n > 0) log::warning("drain deadline passed: cancelling ", n, " requests in flight");
      shared_.cancel_all();
      shared_.stop();  // requests waiting to retry give up
      cancelled_ = true;
      done_ = true;
    }
  }
  if (watchdog_usec_ > 0 && now - last_watchdog_ > std::chrono::microseconds(watchdog_usec_ / 2)) {
    notify("WATCHDOG=1");
    last_watchdog_ = now;
  }
  if (now - last_status_ > std::chrono::seconds(2)) {
    const std::string s = status_line();
    if (s != last_status_text_) {
      notify("STATUS=" + s);
      last_status_text_ = s;
    }
    last_status_ = now;
  }
}

}  // namespace

int run_server(const std::string& config_path) {
  std::shared_ptr<const Config> config;
  try {
    config = std::make_shared<Config>(load_config(config_path));
  } catch (const std::exception& e) {
    log::error(e.what());
    return 1;
  }
  log::set_level(config->log.level);
  // libpq reads these when the connection string does not say otherwise: a bounded connect
  // (so that requests fail fast while the database is away) and a name in pg_stat_activity.
  const std::string timeout =
      std::to_string(std::max<long long>(1, config->database.connect_timeout.count() / 1000));
  setenv("PGCONNECT_TIMEOUT", timeout.c_str(), 0);
  setenv("PGAPPNAME", "slotguardd", 0);
  log::info("slotguardd starting (config ", config_path, ", pool ", config->database.pool_size,
            ")");
  Server server(config_path, config);
  return server.run();
}

}  // namespace sg::daemon
