// listener: slotguardd's listening Unix socket. The socket systemd passed (socket activation) if
// there is one, else the daemon's own at socket.path: a stale socket there is replaced, a live
// one (another daemon answers on it) is an error; socket.mode and socket.group are applied, and
// the path is removed when the daemon stops listening (docs/daemon.md, socket activation and
// configuration socket.*). Each accepted peer comes with its credentials (SO_PEERCRED), which
// peer_allowed checks against access.allowed_uids / allowed_groups.
#pragma once

#include <sys/types.h>

#include <string>

#include "config.hpp"

namespace sg::daemon {

struct PeerCredentials {
  uid_t uid = 0;
  gid_t gid = 0;
  pid_t pid = 0;
};

class Listener {
 public:
  Listener() = default;
  ~Listener();
  Listener(const Listener&) = delete;
  Listener& operator=(const Listener&) = delete;

  // open takes the activated socket or makes our own; false (logged) when neither works.
  bool open(const Config::Socket& socket);
  // fd: the listening socket, -1 once closed.
  int fd() const { return fd_; }
  // accept returns the next waiting connection (non-blocking, close-on-exec) with its peer's
  // credentials, or -1 when none waits.
  int accept(PeerCredentials& peer);
  // close stops listening and removes our own socket's path.
  void close();
  // remove_path removes our own socket's path and nothing else (an immediate exit).
  void remove_path();

 private:
  int fd_ = -1;
  bool own_ = false;
  std::string path_;
};

// peer_allowed: a peer of uid and gid (and the user's supplementary groups) may use the daemon.
bool peer_allowed(const Config::Access& access, uid_t uid, gid_t gid);

}  // namespace sg::daemon
