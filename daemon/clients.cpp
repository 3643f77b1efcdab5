// clients: see clients.hpp.
#include "clients.hpp"

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "log.hpp"

namespace sg::daemon {

namespace {

// A worker takes at most this many clients with something to do in one turn, and one request of
// each: their single calls go to the database in one pipeline (dispatcher.hpp). Fewer when there
// are fewer clients: see per_turn.
constexpr int kClientsPerTurn = 16;

// per_turn: the clients one worker takes in a turn, the clients' share of each worker (at least
// one). Were a worker to take every client ready, the clients of one deep pipeline would come back
// together and be taken together again, while others cycle through short ones: unfair.
int per_turn(std::size_t clients, int workers) {
  const std::size_t w = static_cast<std::size_t>(std::max(workers, 1));
  return static_cast<int>(std::clamp<std::size_t>((clients + w - 1) / w, 1, kClientsPerTurn));
}

RequestLimits request_limits(const Config::Limits& l) {
  return RequestLimits{l.max_json_depth, l.max_batch};
}

bool blank(const std::string& line) {
  return line.find_first_not_of(" \t\r") == std::string::npos;
}

}  // namespace

Client::~Client() {
  close(fd);
}

Clients::Clients(DaemonState& state) : state_(state) {
  epoll_fd_ = epoll_create1(EPOLL_CLOEXEC);
  stop_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (!ready()) return;
  struct epoll_event ev {};
  ev.events = EPOLLIN;
  ev.data.u64 = 0;
  epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, stop_fd_, &ev);
}

Clients::~Clients() {
  close_all();
  if (epoll_fd_ >= 0) close(epoll_fd_);
  if (stop_fd_ >= 0) close(stop_fd_);
}

std::size_t Clients::count() const {
  std::lock_guard<std::mutex> guard(clients_mu_);
  return clients_.size();
}

void Clients::admit(int fd, const PeerCredentials& peer, const Config& cfg) {
  if (static_cast<int>(count()) >= cfg.limits.max_clients) return refuse(fd, peer, cfg);
  auto c = std::make_shared<Client>(fd);
  c->id = next_id_++;
  c->peer = peer;
  c->authorized = peer_allowed(cfg.access, peer.uid, peer.gid);
  c->last = c->last_progress = Clock::now();
  // A peer that may not be served has request_timeout to say what it wanted (and hear no).
  if (!c->authorized) c->partial_since = c->last;
  if (!c->authorized) log::notice("peer uid ", peer.uid, " pid ", peer.pid, " is not allowed");
  log::debug("client ", c->id, " connected (uid ", peer.uid, ", pid ", peer.pid, ")");
  state_.metrics.client_accepted();
  {
    std::lock_guard<std::mutex> guard(clients_mu_);
    clients_.emplace(c->id, c);
    connected_ = clients_.size();
  }
  struct epoll_event ev {};
  ev.events = EPOLLIN | EPOLLONESHOT;
  ev.data.u64 = c->id;
  if (epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &ev) != 0) {
    log::warning("epoll_ctl: ", std::strerror(errno));
    close_client(*c);
  }
}

// refuse answers a connection beyond limits.max_clients with an error and closes it.
void Clients::refuse(int fd, const PeerCredentials& peer, const Config& cfg) {
  const std::string line =
      to_line(make_error(nullptr, rpc_error(kServerError,
                                            "too many clients (limits.max_clients = " +
                                                std::to_string(cfg.limits.max_clients) + ")",
                                            "unavailable"))) +
      "\n";
  (void)!::send(fd, line.data(), line.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
  close(fd);
  state_.metrics.client_rejected("max_clients");
  // A flood of attempts makes one line a second, not one line each.
  const auto now = Clock::now();
  if (now - last_refusal_log_ >= std::chrono::seconds(1)) {
    log::warning("refused a client of uid ", peer.uid, ": limits.max_clients (",
                 cfg.limits.max_clients, ") reached",
                 refusals_unlogged_ > 0
                     ? " (and " + std::to_string(refusals_unlogged_) + " more refused before)"
                     : std::string());
    last_refusal_log_ = now;
    refusals_unlogged_ = 0;
  } else {
    ++refusals_unlogged_;
  }
}

Clients::ClientPtr Clients::find(std::uint64_t id) {
  std::lock_guard<std::mutex> guard(clients_mu_);
  auto it = clients_.find(id);
  return it == clients_.end() ? nullptr : it->second;
}

std::vector<Clients::ClientPtr> Clients::snapshot() {
  std::lock_guard<std::mutex> guard(clients_mu_);
  std::vector<ClientPtr> out;
  out.reserve(clients_.size());
  for (auto& [id, c] : clients_) out.push_back(c);
  return out;
}

void Clients::serve(const WorkerPool::Execute& execute) {
  struct epoll_event events[kClientsPerTurn];
  RunningConfig::View view;
  std::vector<ClientPtr> taken;
  std::vector<std::ptrdiff_t> job_of;  // taken[i]'s job in jobs, -1: none
  std::vector<std::size_t> owner;      // jobs[k] is taken[owner[k]]'s
  std::vector<Job> jobs;
  for (bool stop = false; !stop;) {
    const int workers = state_.config.current(view).database.pool_size;  // fixed until restart
    const int n = epoll_wait(epoll_fd_, events, per_turn(connected_.load(), workers), -1);
    if (n < 0) {
      if (errno == EINTR) continue;
      log::error("epoll_wait: ", std::strerror(errno));
      return;
    }
    // Read after the wait: a reload may have come meanwhile.
    const Config::Limits& limits = state_.config.current(view).limits;
    taken.clear();
    job_of.clear();
    owner.clear();
    jobs.clear();
    for (int i = 0; i < n; ++i) {
      if (events[i].data.u64 == 0) {
        stop = true;  // stop_fd_
        continue;
      }
      ClientPtr c = find(events[i].data.u64);
      const std::size_t before = jobs.size();
      if (!c || !begin_turn(*c, events[i].events, limits, jobs)) continue;
      job_of.push_back(jobs.size() > before ? static_cast<std::ptrdiff_t>(before) : -1);
      if (jobs.size() > before) owner.push_back(taken.size());
      taken.push_back(std::move(c));
    }
    // A client's turn ends as soon as its answer is there; the others' after the requests ran.
    if (!jobs.empty()) {
      execute(jobs, [&](Job& job) {
        const std::size_t t = owner[static_cast<std::size_t>(&job - jobs.data())];
        end_turn(*taken[t], &job, limits);
        job_of[t] = -2;  // ended
      });
    }
    for (std::size_t i = 0; i < taken.size(); ++i) {
      if (job_of[i] == -2) continue;
      end_turn(*taken[i], job_of[i] >= 0 ? &jobs[static_cast<std::size_t>(job_of[i])] : nullptr,
               limits);
    }
  }
}

void Clients::stop_workers() {
  const std::uint64_t one = 1;
  (void)!::write(stop_fd_, &one, sizeof one);
}

// begin_turn: what the client's events call for, and its next request taken into jobs (at most
// one); false when the client is gone (nothing more to do with it this turn).
bool Clients::begin_turn(Client& c, std::uint32_t events, const Config::Limits& limits,
                         std::vector<Job>& jobs) {
  Lock lock(c.mu);
  if (c.closed) return false;
  if (((events & EPOLLOUT) && !flush(c)) ||
      ((events & (EPOLLIN | EPOLLHUP | EPOLLERR)) && !c.eof && !read_input(c, limits))) {
    close_locked(c);
    return false;
  }
  take_request(c, limits, jobs);
  return true;
}

// end_turn: the answer to the client's request of this turn (job, if it had one) is written,
// and the client waits for what it needs next, or is closed.
void Clients::end_turn(Client& c, Job* job, const Config::Limits& limits) {
  Lock lock(c.mu);
  if (job != nullptr) {
    c.busy = false;
    --inflight_;
    c.last = c.last_progress = Clock::now();
  }
  if (c.closed) return;
  if (job != nullptr && !job->answer.empty()) reply(c, std::move(job->answer));
  if (c.eof && (c.in.empty() || c.closing)) c.closing = true;
  if (!flush(c)) return close_locked(c);
  if (c.out.empty() && (c.closing || draining_)) return close_locked(c);
  rearm(c, limits);
}

// read_input reads what the peer sent, but no more than one request's worth beyond what is
// buffered: a peer that sends faster than its requests run waits in its socket buffer.
bool Clients::read_input(Client& c, const Config::Limits& limits) {
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

bool Clients::has_request(Client& c, const Config::Limits& limits) {
  if (c.in.empty()) return false;
  if (c.eof || c.in.size() > limits.max_request_bytes) return true;
  const std::size_t nl = c.in.find('\n', c.scanned);
  if (nl == std::string::npos) c.scanned = c.in.size();
  return nl != std::string::npos;
}

// take_request takes the next request line of c.in into jobs (parsed; the client is busy until
// its end_turn), unless the peer leaves more than limits.max_output_bytes of answers unread
// (backpressure). Blank lines are skipped; an oversized line or a peer that may not be served is
// answered here.
void Clients::take_request(Client& c, const Config::Limits& limits, std::vector<Job>& jobs) {
  std::size_t head = 0;  // c.in[0, head) has been taken
  while (!c.closing && !draining_ && c.out.size() <= limits.max_output_bytes) {
    std::string line;
    const Framing framing = next_line(c, head, limits.max_request_bytes, line);
    if (framing == Framing::kNone) break;
    if (framing == Framing::kOversized) {
      head = c.in.size();
      refuse_oversized(c, limits.max_request_bytes);
      break;
    }
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (blank(line)) continue;
    if (!c.authorized) {
      refuse_unauthorized(c, line, limits);
      break;
    }
    Job& job = jobs.emplace_back();
    job.client = c.id;
    job.uid = c.peer.uid;
    job.received = Clock::now();
    job.request = parse_request(line, request_limits(limits));
    c.busy = true;
    ++inflight_;
    break;
  }
  if (head > 0) {
    c.in.erase(0, head);
    c.scanned = c.scanned > head ? c.scanned - head : 0;
  }
  if (c.in.empty()) c.partial_since = Clock::time_point{};
}

// next_line takes the next request line of c.in from head on into line: kNone when there is no
// complete one (yet), kOversized when it is, or would be, longer than max_bytes. At the peer's
// EOF a last request without its newline counts.
Clients::Framing Clients::next_line(Client& c, std::size_t& head, std::size_t max_bytes,
                                    std::string& line) {
  const std::size_t pos = c.in.find('\n', std::max(head, c.scanned));
  if (pos == std::string::npos) {
    c.scanned = c.in.size();
    const std::size_t rest = c.in.size() - head;
    if (rest > max_bytes) return Framing::kOversized;  // too long, and not even finished
    if (!c.eof || rest == 0) return Framing::kNone;
    line.assign(c.in, head, std::string::npos);
    head = c.in.size();
    return Framing::kLine;
  }
  if (pos - head > max_bytes) return Framing::kOversized;
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
  return Framing::kLine;
}

void Clients::refuse_oversized(Client& c, std::size_t max_bytes) {
  state_.metrics.client_rejected("oversized");
  log::notice("client ", c.id, " (uid ", c.peer.uid, ") sent a request over ", max_bytes,
              " bytes; closing");
  reply(c, to_line(make_error(nullptr, rpc_error(kInvalidRequest,
                                                 "request too large (limits.max_request_bytes = " +
                                                     std::to_string(max_bytes) + ")",
                                                 "invalid_params"))));
  c.closing = true;
}

void Clients::refuse_unauthorized(Client& c, const std::string& line,
                                  const Config::Limits& limits) {
  state_.metrics.client_rejected("unauthorized");
  reply(c, to_line(make_error(request_id_of(line, limits.max_json_depth),
                              rpc_error(kServerError,
                                        "uid " + std::to_string(c.peer.uid) +
                                            " may not use slotguardd (access.allowed_uids / "
                                            "allowed_groups)",
                                        "unauthorized"))));
  c.closing = true;
}

void Clients::reply(Client& c, std::string line) {
  if (c.out.empty()) {
    c.out = std::move(line);
  } else {
    c.out += line;
  }
  c.out += '\n';
}

// flush writes what it can of c.out without blocking (the rest waits for EPOLLOUT); false: the
// peer is gone.
bool Clients::flush(Client& c) {
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
void Clients::rearm(Client& c, const Config::Limits& limits) {
  std::uint32_t events = 0;
  const bool backlog = c.out.size() > limits.max_output_bytes;
  if (!c.closing && !c.eof && !draining_ && !backlog && c.in.size() <= limits.max_request_bytes)
    events |= EPOLLIN;
  if (!c.out.empty() || (!c.closing && !draining_ && has_request(c, limits))) events |= EPOLLOUT;
  if (c.in.empty() && c.in.capacity() > 65536) c.in.shrink_to_fit();
  // Nothing to wait for (a drain or an end in progress): the loop's check closes the client;
  // arming it for hang-ups alone would only spin.
  if (events == 0) return;
  struct epoll_event ev {};
  ev.events = events | EPOLLONESHOT;
  ev.data.u64 = c.id;
  if (epoll_ctl(epoll_fd_, EPOLL_CTL_MOD, c.fd, &ev) != 0) close_locked(c);
}

std::size_t Clients::check(Clock::time_point now, const Config::Limits& limits) {
  std::size_t left = 0;
  for (auto& c : snapshot()) {
    std::lock_guard<std::mutex> guard(c->mu);
    if (c->closed) continue;
    if (timed_out(*c, now, limits)) {
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
  return left;
}

bool Clients::timed_out(Client& c, Clock::time_point now, const Config::Limits& lim) {
  if (lim.idle_timeout.count() > 0 && !c.busy && c.out.empty() && now - c.last > lim.idle_timeout) {
    log::debug("client ", c.id, " idle; closing");
    state_.metrics.client_rejected("idle_timeout");
    return true;
  }
  // A request that trickles in (a byte now and then) must not hold a client slot for ever.
  // Answers wait for the peer: unsent ones in `out`, or requests left unrun because the socket's
  // buffer is full of answers the peer has not read.
  const bool waiting = !c.busy && (!c.out.empty() || has_request(c, lim));
  if (lim.request_timeout.count() > 0 && !c.busy && !waiting &&
      c.partial_since != Clock::time_point{} && now - c.partial_since > lim.request_timeout) {
    log::notice("client ", c.id, " (uid ", c.peer.uid, ") did not complete a request within ",
                lim.request_timeout.count(), " ms; closing");
    state_.metrics.client_rejected("request_timeout");
    return true;
  }
  // A peer that does not read its answers must not hold them (and a client slot) for ever.
  if (lim.write_timeout.count() > 0 && waiting && now - c.last_progress > lim.write_timeout) {
    log::notice("client ", c.id, " (uid ", c.peer.uid, ") did not read its answers for ",
                lim.write_timeout.count(), " ms; closing");
    state_.metrics.client_rejected("write_timeout");
    return true;
  }
  return false;
}

// close_locked ends a client whose lock is held; its socket is closed when the last reference
// goes.
void Clients::close_locked(Client& c) {
  if (c.closed) return;
  c.closed = true;
  log::debug("client ", c.id, " closed");
  epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, c.fd, nullptr);
  shutdown(c.fd, SHUT_RDWR);
  {
    std::lock_guard<std::mutex> guard(clients_mu_);
    clients_.erase(c.id);
    connected_ = clients_.size();
  }
  state_.metrics.client_closed();
}

void Clients::close_client(Client& c) {
  std::lock_guard<std::mutex> guard(c.mu);
  close_locked(c);
}

void Clients::close_all() {
  std::lock_guard<std::mutex> guard(clients_mu_);
  clients_.clear();  // the last reference closes each socket
  connected_ = 0;
}

}  // namespace sg::daemon
