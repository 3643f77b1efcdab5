// event_loop: see event_loop.hpp.
#include "event_loop.hpp"

#include <poll.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <thread>

#include "clients.hpp"
#include "daemon_state.hpp"
#include "listener.hpp"
#include "log.hpp"
#include "reconnector.hpp"
#include "sweeper.hpp"
#include "systemd.hpp"
#include "workers.hpp"

namespace sg::daemon {

namespace {

using Clock = std::chrono::steady_clock;

class EventLoop {
 public:
  EventLoop(std::string config_path, std::shared_ptr<const Config> config)
      : config_path_(std::move(config_path)), state_(std::move(config)), clients_(state_) {}

  int run();

 private:
  bool open();
  void start_threads();
  bool wait_and_handle();
  void stop_threads();
  void check_ready();
  void on_signals();
  void reload();
  void begin_drain();
  void housekeeping();
  void end_drain(Clock::time_point now, std::size_t left);
  std::string status_line() const;

  std::string config_path_;
  DaemonState state_;
  Clients clients_;
  Listener listener_;
  SystemdNotifier systemd_;
  std::unique_ptr<WorkerPool> pool_;
  std::unique_ptr<Sweeper> sweeper_;
  std::unique_ptr<Reconnector> reconnector_;
  int signal_fd_ = -1;
  bool ready_ = false;
  bool done_ = false;
  bool cancelled_ = false;  // the drain deadline passed: statements in flight were cancelled
  Clock::time_point drain_deadline_;
  Clock::time_point last_timeout_check_;
};

int EventLoop::run() {
  if (!open()) return 1;
  start_threads();
  while (!done_) {
    if (!wait_and_handle()) break;
    housekeeping();
  }
  stop_threads();
  return 0;
}

// open makes the signalfd, checks the clients' epoll set and opens the listener. Signals are
// handled in the loop (signalfd); they are blocked before any thread starts so that every thread
// inherits the mask.
bool EventLoop::open() {
  sigset_t mask;
  sigemptyset(&mask);
  sigaddset(&mask, SIGTERM);
  sigaddset(&mask, SIGINT);
  sigaddset(&mask, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &mask, nullptr);
  signal(SIGPIPE, SIG_IGN);
  signal_fd_ = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
  if (signal_fd_ < 0 || state_.circuit.wake_fd() < 0) {
    log::error("signalfd/eventfd: ", std::strerror(errno));
    return false;
  }
  if (!clients_.ready()) {
    log::error("epoll/eventfd: ", std::strerror(errno));
    return false;
  }
  return listener_.open(state_.config.get()->socket);
}

void EventLoop::start_threads() {
  systemd_.status("waiting for the database");
  reconnector_ = std::make_unique<Reconnector>(state_);
  pool_ = std::make_unique<WorkerPool>(
      state_, state_.config.get()->database.pool_size,
      [this](const WorkerPool::Execute& execute) { clients_.serve(execute); });
  sweeper_ = std::make_unique<Sweeper>(state_);
  state_.sweeper = sweeper_.get();
}

// wait_and_handle waits for a signal, the circuit or a connection (or the next housekeeping) and
// handles what came; false when poll fails.
bool EventLoop::wait_and_handle() {
  const bool accepting = listener_.fd() >= 0 && !clients_.draining();
  struct pollfd fds[3] = {{signal_fd_, POLLIN, 0},
                          {state_.circuit.wake_fd(), POLLIN, 0},
                          {accepting ? listener_.fd() : -1, POLLIN, 0}};
  const int n = poll(fds, 3, systemd_.poll_timeout_ms(clients_.draining() ? 20 : 1000));
  if (n < 0 && errno != EINTR) {
    log::error("poll: ", std::strerror(errno));
    return false;
  }
  if (n <= 0) return true;
  if (fds[0].revents & POLLIN) on_signals();
  if (fds[1].revents & POLLIN) {
    std::uint64_t v;
    while (read(state_.circuit.wake_fd(), &v, sizeof v) > 0) {
    }
    check_ready();
  }
  if (accepting && (fds[2].revents & POLLIN)) {
    const auto cfg = state_.config.get();
    PeerCredentials peer;
    for (int fd; (fd = listener_.accept(peer)) >= 0;) clients_.admit(fd, peer, *cfg);
  }
  return true;
}

void EventLoop::stop_threads() {
  log::info("stopping: ", clients_.in_flight(), " requests in flight");
  if (cancelled_) {
    // Cancelled statements end at once unless the database cannot even be reached; then
    // nothing the workers wait for would end them: do not wait for ever.
    std::thread([] {
      std::this_thread::sleep_for(std::chrono::seconds(10));
      log::error("workers did not stop within 10 s of the drain deadline; exiting");
      _exit(1);
    }).detach();
  }
  clients_.stop_workers();
  pool_->stop();
  clients_.close_all();
  listener_.close();
  sweeper_->stop();
  reconnector_->stop();
  log::info("stopped");
}

void EventLoop::check_ready() {
  if (!ready_ && state_.circuit.up()) {
    ready_ = true;
    log::notice("ready: listening, database answered");
    systemd_.ready(status_line());
  }
}

void EventLoop::on_signals() {
  struct signalfd_siginfo si {};
  while (read(signal_fd_, &si, sizeof si) == static_cast<ssize_t>(sizeof si)) {
    const char* name = si.ssi_signo == SIGINT ? "SIGINT" : "SIGTERM";
    if (si.ssi_signo == SIGHUP) {
      reload();
    } else if (clients_.draining()) {
      log::warning("second ", name, ": exiting now, ", clients_.in_flight(), " requests abandoned");
      listener_.remove_path();
      _exit(0);
    } else {
      log::notice(name, ": no new requests; draining ", clients_.in_flight(), " in flight");
      begin_drain();
    }
  }
}

void EventLoop::begin_drain() {
  clients_.drain();
  drain_deadline_ = Clock::now() + state_.config.get()->limits.drain_timeout;
  systemd_.stopping();
  listener_.close();
}

// reload reads the configuration again; database.* and socket.* keep their values until the next
// restart.
void EventLoop::reload() {
  systemd_.reloading();
  const auto old = state_.config.get();
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
    state_.config.set(fresh);
    sweeper_->reconfigure();
    log::notice("reloaded ", config_path_, " (log level ", log_level_name(fresh->log.level),
                ", sweep ", fresh->sweep.enabled ? "on" : "off", ")");
  } catch (const std::exception& e) {
    log::error("reload failed, keeping the old configuration: ", e.what());
  }
  systemd_.ready(status_line());
}

std::string EventLoop::status_line() const {
  std::string s = std::to_string(clients_.count()) + " clients, database " +
                  (state_.circuit.up() ? "up" : "DOWN") + ", " + std::to_string(pool_->busy()) +
                  "/" + std::to_string(pool_->size()) + " workers busy, " +
                  std::to_string(state_.metrics.sweeps()) + " sweeps";
  if (clients_.draining()) s = "draining: " + s;
  return s;
}

void EventLoop::housekeeping() {
  const auto now = Clock::now();
  const auto cfg = state_.config.get();
  check_ready();
  const auto& lim = cfg->limits;
  const bool any_timeout = lim.idle_timeout.count() > 0 || lim.request_timeout.count() > 0 ||
                           lim.write_timeout.count() > 0;
  // Once every 100 ms is enough for timeouts of seconds (a drain polls every 20 ms).
  const bool timeouts = any_timeout && now - last_timeout_check_ >= std::chrono::milliseconds(100);
  if (timeouts || clients_.draining()) {
    if (timeouts) last_timeout_check_ = now;
    const std::size_t left = clients_.check(now, lim);
    if (clients_.draining()) end_drain(now, left);
  }
  systemd_.tick(now, [this] { return status_line(); });
}

// end_drain ends the loop once the drain is done, or at its deadline: statements still running
// (a lock wait, a slow query) are cancelled; their requests answer with the database's error, and
// the workers return.
void EventLoop::end_drain(Clock::time_point now, std::size_t left) {
  if (clients_.in_flight() == 0 && left == 0) done_ = true;
  if (now <= drain_deadline_) return;
  const int n = clients_.in_flight();
  if (n > 0) log::warning("drain deadline passed: cancelling ", n, " requests in flight");
  state_.cancellers.cancel_all();
  state_.circuit.stop();  // requests waiting to retry give up
  cancelled_ = true;
  done_ = true;
}

}  // namespace

int run_daemon(const std::string& config_path) {
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
  EventLoop loop(config_path, config);
  return loop.run();
}

}  // namespace sg::daemon
