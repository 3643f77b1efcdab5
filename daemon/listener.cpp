// listener: see listener.hpp.
#include "listener.hpp"

#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <vector>

#include "log.hpp"

namespace sg::daemon {

namespace {

std::string errno_text() {
  return std::strerror(errno);
}

void set_nonblocking(int fd) {
  const int flags = fcntl(fd, F_GETFL, 0);
  if (flags >= 0) fcntl(fd, F_SETFL, flags | O_NONBLOCK);
}

// remove_stale clears socket.path for a new socket: false when something else is there or
// another process still listens on it.
bool remove_stale(const std::string& path, const struct sockaddr_un& addr) {
  struct stat st {};
  if (lstat(path.c_str(), &st) != 0) return true;
  if (!S_ISSOCK(st.st_mode)) {
    log::error(path, " exists and is not a socket; refusing to replace it");
    return false;
  }
  const int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (probe >= 0 &&
      connect(probe, reinterpret_cast<const struct sockaddr*>(&addr), sizeof addr) == 0) {
    ::close(probe);
    log::error("another process is listening on ", path, "; not starting a second daemon there");
    return false;
  }
  if (probe >= 0) ::close(probe);
  log::info("removing stale socket ", path);
  unlink(path.c_str());
  return true;
}

// give_to_group applies socket.group to the socket's path (a warning when it cannot).
void give_to_group(const Config::Socket& s) {
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

// make_socket creates, binds and listens on socket.path, with its mode and group; -1 on failure.
int make_socket(const Config::Socket& s) {
  struct sockaddr_un addr {};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, s.path.c_str(), sizeof addr.sun_path - 1);
  if (!remove_stale(s.path, addr)) return -1;
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
    ::close(fd);
    return -1;
  }
  if (chmod(s.path.c_str(), static_cast<mode_t>(s.mode)) != 0)
    log::warning("cannot chmod ", s.path, ": ", errno_text());
  if (!s.group.empty()) give_to_group(s);
  if (listen(fd, SOMAXCONN) != 0) {
    log::error("listen on ", s.path, ": ", errno_text());
    ::close(fd);
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
    ::close(fd);
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

}  // namespace

Listener::~Listener() {
  close();
}

bool Listener::open(const Config::Socket& socket) {
  fd_ = activated_socket();
  if (fd_ >= 0) return true;
  fd_ = make_socket(socket);
  if (fd_ < 0) return false;
  own_ = true;
  path_ = socket.path;
  log::info("listening on ", path_);
  return true;
}

int Listener::accept(PeerCredentials& peer) {
  for (;;) {
    const int fd = accept4(fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
        log::warning("accept: ", errno_text());
      return -1;
    }
    struct ucred cred {};
    socklen_t len = sizeof cred;
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) {
      log::warning("SO_PEERCRED: ", errno_text());
      ::close(fd);
      continue;
    }
    peer = PeerCredentials{cred.uid, cred.gid, cred.pid};
    return fd;
  }
}

void Listener::close() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
  remove_path();
}

void Listener::remove_path() {
  if (own_) unlink(path_.c_str());
  own_ = false;
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

}  // namespace sg::daemon
