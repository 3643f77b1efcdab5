// sg_crash_load: the load of the crash tests (tests/integration/crash_*.sh). Clients reserve,
// confirm and cancel on a set of slots, some with libpq, some through slotguardd's socket, while
// the test kills the postmaster, a backend or the daemon; they reconnect and retry until they get
// a definite answer, and write down every answer the server acknowledged. The test then checks
// the database against these files (tests/integration/crash/check.sql).
//
//   sg_crash_load --out PREFIX --slots ID,... [--seated ID,...] --seconds S [--grace S]
//                 [--sql-clients N --conninfo CONNINFO] [--socket-clients M --socket PATH]
//                 [--tag TAG]
//
// Every client, in a loop until S seconds have passed, takes a fresh idempotency key
// TAG-<client>-<n> and does one of: reserve with confirm => true; reserve a hold, then confirm
// it; reserve a hold, then cancel it; cancel one of its own confirmed bookings. A request whose
// outcome is unknown (the connection was lost, the server is restarting or in recovery, the
// daemon answered `unavailable` or did not answer) is sent again, unchanged, with the same
// idempotency key, until a definite answer comes or S + grace seconds have passed. Files written
// (tab-separated, one line per acknowledgement, written only after the answer arrived):
//   PREFIX.reserved   key, booking id, slot, seats, status, labels (comma-separated, or empty)
//   PREFIX.soldout    key, slot          (SG003: no booking was made with that key)
//   PREFIX.confirmed  booking id, slot, seats, labels  (the server said: confirmed)
//   PREFIX.cancel_sent booking id        (a cancel was sent; its outcome may be unknown)
//   PREFIX.cancelled  booking id         (the server said: cancelled)
//   PREFIX.unresolved key, slot          (no definite answer before the deadline)
// The last line on stdout: "clients=C requests=N acked_confirmations=A retries=R
// resent_keys=K unresolved=U unexpected=E" (K: reservations sent again with their key). Exit status
// 1 when an unexpected error came (anything but SG003, or a transport failure), 2 for bad usage.
#include <libpq-fe.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <memory>
#include <mutex>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

namespace {

using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

struct Options {
  std::string out, conninfo, socket, tag = "k";
  std::vector<long long> slots, seated;
  int sql_clients = 0, socket_clients = 0;
  double seconds = 10, grace = 30;
};

struct Booking {
  long long id = 0, slot = 0;
  int seats = 0;
  std::string status, labels;
};

enum class Outcome { kOk, kBusiness, kTransport, kUnexpected };

struct Answer {
  Outcome outcome = Outcome::kTransport;
  Booking b;
  std::string sqlstate, message;
};

// ---- the acknowledgement files ---------------------------------------------------------------

class Log {
 public:
  explicit Log(const std::string& prefix) {
    for (const char* name :
         {"reserved", "soldout", "confirmed", "cancel_sent", "cancelled", "unresolved"}) {
      FILE* f = std::fopen((prefix + "." + name).c_str(), "w");
      if (f == nullptr) {
        std::perror((prefix + "." + name).c_str());
        std::exit(2);
      }
      files_.push_back(f);
    }
  }
  ~Log() {
    for (FILE* f : files_) std::fclose(f);
  }
  enum File { kReserved, kSoldOut, kConfirmed, kCancelSent, kCancelled, kUnresolved };
  void line(File f, const std::string& text) {
    std::lock_guard<std::mutex> lock(mu_);
    std::fputs((text + "\n").c_str(), files_[f]);
    std::fflush(files_[f]);
  }

 private:
  std::mutex mu_;
  std::vector<FILE*> files_;
};

// ---- transports --------------------------------------------------------------------------------

class Transport {
 public:
  virtual ~Transport() = default;
  // label: reserve_seats with this one label when not empty, else reserve.
  virtual Answer reserve(long long slot, const std::string& holder, int seats,
                         const std::string& key, bool confirm, const std::string& label) = 0;
  virtual Answer confirm(long long id) = 0;
  virtual Answer cancel(long long id) = 0;
};

// Business errors a client expects; anything else a server answers is unexpected.
bool business(const std::string& sqlstate) {
  return sqlstate == "SG003";
}

class SqlTransport : public Transport {
 public:
  explicit SqlTransport(std::string conninfo) : conninfo_(std::move(conninfo)) {}
  ~SqlTransport() override {
    if (conn_) PQfinish(conn_);
  }
  Answer reserve(long long slot, const std::string& holder, int seats, const std::string& key,
                 bool confirm, const std::string& label) override {
    if (!label.empty())
      return call(std::string(kColumns) +
                      " FROM slotguard.reserve_seats($1::bigint, $2, ARRAY[$3]::text[], NULL, $4,"
                      " $5::boolean)",
                  {std::to_string(slot), holder, label, key, confirm ? "true" : "false"});
    return call(
        std::string(kColumns) +
            " FROM slotguard.reserve($1::bigint, $2, $3::int, NULL, $4, $5::boolean)",
        {std::to_string(slot), holder, std::to_string(seats), key, confirm ? "true" : "false"});
  }
  Answer confirm(long long id) override {
    return call(std::string(kColumns) + " FROM slotguard.confirm($1::bigint)",
                {std::to_string(id)});
  }
  Answer cancel(long long id) override {
    return call(std::string(kColumns) + " FROM slotguard.cancel($1::bigint)", {std::to_string(id)});
  }

 private:
  static constexpr const char* kColumns =
      "SELECT id, slot_id, seats, status::text, coalesce(array_to_string(seat_labels, ','), '')";

  Answer call(const std::string& sql, const std::vector<std::string>& params) {
    Answer a;
    if (conn_ == nullptr || PQstatus(conn_) != CONNECTION_OK) {
      if (conn_) PQfinish(conn_);
      conn_ = PQconnectdb(conninfo_.c_str());
      if (PQstatus(conn_) != CONNECTION_OK) {
        a.message = PQerrorMessage(conn_);
        PQfinish(conn_);
        conn_ = nullptr;
        return a;  // transport
      }
    }
    std::vector<const char*> values;
    for (const auto& p : params) values.push_back(p.c_str());
    PGresult* res = PQexecParams(conn_, sql.c_str(), static_cast<int>(values.size()), nullptr,
                                 values.data(), nullptr, nullptr, 0);
    if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1) {
      a.outcome = Outcome::kOk;
      a.b.id = std::atoll(PQgetvalue(res, 0, 0));
      a.b.slot = std::atoll(PQgetvalue(res, 0, 1));
      a.b.seats = std::atoi(PQgetvalue(res, 0, 2));
      a.b.status = PQgetvalue(res, 0, 3);
      a.b.labels = PQgetvalue(res, 0, 4);
    } else {
      const char* st = PQresultErrorField(res, PG_DIAG_SQLSTATE);
      a.sqlstate = st ? st : "";
      a.message = PQresultErrorMessage(res);
      // Lost connections, a server shutting down or restarting after a crash (08xxx, 57P0x),
      // and the retryable 40001 / 40P01: the outcome is unknown or nothing was done; retry.
      if (PQstatus(conn_) != CONNECTION_OK || a.sqlstate.empty() ||
          a.sqlstate.compare(0, 2, "08") == 0 || a.sqlstate.compare(0, 3, "57P") == 0 ||
          a.sqlstate == "40001" || a.sqlstate == "40P01")
        a.outcome = Outcome::kTransport;
      else
        a.outcome = business(a.sqlstate) ? Outcome::kBusiness : Outcome::kUnexpected;
    }
    PQclear(res);
    return a;
  }

  std::string conninfo_;
  PGconn* conn_ = nullptr;
};

class SocketTransport : public Transport {
 public:
  explicit SocketTransport(std::string path) : path_(std::move(path)) {}
  ~SocketTransport() override { disconnect(); }
  Answer reserve(long long slot, const std::string& holder, int seats, const std::string& key,
                 bool confirm, const std::string& label) override {
    json p = {
        {"slot_id", slot}, {"holder", holder}, {"idempotency_key", key}, {"confirm", confirm}};
    if (!label.empty()) {
      p["labels"] = json::array({label});
      return call("reserve_seats", p);
    }
    p["seats"] = seats;
    return call("reserve", p);
  }
  Answer confirm(long long id) override { return call("confirm", {{"booking_id", id}}); }
  Answer cancel(long long id) override { return call("cancel", {{"booking_id", id}}); }

 private:
  void disconnect() {
    if (fd_ >= 0) close(fd_);
    fd_ = -1;
    buf_.clear();
  }

  Answer call(const std::string& method, const json& params) {
    Answer a;
    if (fd_ < 0) {
      fd_ = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
      struct sockaddr_un addr {};
      addr.sun_family = AF_UNIX;
      std::strncpy(addr.sun_path, path_.c_str(), sizeof addr.sun_path - 1);
      if (fd_ < 0 || connect(fd_, reinterpret_cast<struct sockaddr*>(&addr), sizeof addr) != 0) {
        a.message = std::string("connect: ") + std::strerror(errno);
        disconnect();
        return a;
      }
    }
    const std::string line =
        json{{"jsonrpc", "2.0"}, {"id", ++id_}, {"method", method}, {"params", params}}.dump() +
        "\n";
    std::size_t sent = 0;
    while (sent < line.size()) {
      const ssize_t n = ::send(fd_, line.data() + sent, line.size() - sent, MSG_NOSIGNAL);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        a.message = "send failed";
        disconnect();
        return a;
      }
      sent += static_cast<std::size_t>(n);
    }
    std::string answer;
    const auto deadline = Clock::now() + std::chrono::seconds(20);
    for (;;) {
      const auto nl = buf_.find('\n');
      if (nl != std::string::npos) {
        answer = buf_.substr(0, nl);
        buf_.erase(0, nl + 1);
        break;
      }
      const auto left =
          std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
      struct pollfd p = {fd_, POLLIN, 0};
      if (left <= 0 || poll(&p, 1, static_cast<int>(left)) == 0) {
        a.message = "no answer within 20 s";
        disconnect();
        return a;
      }
      char tmp[65536];
      const ssize_t n = read(fd_, tmp, sizeof tmp);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        a.message = "connection closed";
        disconnect();
        return a;
      }
      buf_.append(tmp, static_cast<std::size_t>(n));
    }
    const json j = json::parse(answer, nullptr, false);
    if (j.is_discarded() || !j.is_object()) {
      a.outcome = Outcome::kUnexpected;
      a.message = "not JSON: " + answer;
      return a;
    }
    if (j.contains("result") && j["result"].is_object()) {
      const json& r = j["result"];
      a.outcome = Outcome::kOk;
      a.b.id = r.value("id", 0LL);
      a.b.slot = r.value("slot_id", 0LL);
      a.b.seats = r.value("seats", 0);
      a.b.status = r.value("status", std::string());
      if (r.contains("seat_labels") && r["seat_labels"].is_array()) {
        std::string s;
        for (const auto& l : r["seat_labels"]) s += (s.empty() ? "" : ",") + l.get<std::string>();
        a.b.labels = s;
      }
      return a;
    }
    const json data = j.contains("error") ? j["error"].value("data", json::object()) : json();
    const std::string reason = data.is_object() ? data.value("reason", std::string()) : "";
    a.sqlstate = data.is_object() ? data.value("sqlstate", std::string()) : "";
    a.message = answer;
    if (reason == "unavailable")
      a.outcome = Outcome::kTransport;  // unreachable database, or an outcome it cannot know
    else if (reason == "sold_out")
      a.outcome = Outcome::kBusiness;
    else
      a.outcome = Outcome::kUnexpected;
    return a;
  }

  std::string path_;
  int fd_ = -1;
  long long id_ = 0;
  std::string buf_;
};

// ---- the clients -----------------------------------------------------------------------------

struct Totals {
  std::atomic<long> requests{0}, confirmations{0}, retries{0}, resent_keys{0}, unresolved{0},
      unexpected{0};
};

std::string tsv(std::initializer_list<std::string> fields) {
  std::string s;
  for (const auto& f : fields) s += (s.empty() ? "" : "\t") + f;
  return s;
}

void client(int cid, std::unique_ptr<Transport> t, const Options& o, Log& log, Totals& totals) {
  std::mt19937_64 rng(static_cast<unsigned long>(cid) * 7919 +
                      static_cast<unsigned long>(Clock::now().time_since_epoch().count()));
  const auto end = Clock::now() + std::chrono::milliseconds(static_cast<long>(o.seconds * 1000));
  const auto hard_end = end + std::chrono::milliseconds(static_cast<long>(o.grace * 1000));
  std::vector<long long> mine;  // own confirmed bookings, to cancel some
  const std::string holder = o.tag + "-c" + std::to_string(cid);
  bool stop = false;
  long retried = 0;  // this client's retries

  // retry sends a request until a definite answer or the hard deadline.
  auto retry = [&](auto&& request) {
    for (;;) {
      totals.requests++;
      Answer a = request();
      if (a.outcome != Outcome::kTransport) {
        if (a.outcome == Outcome::kUnexpected) {
          totals.unexpected++;
          std::cerr << "client " << cid << ": unexpected: " << a.sqlstate << " " << a.message
                    << "\n";
        }
        return a;
      }
      if (Clock::now() > hard_end) {
        stop = true;
        return a;
      }
      totals.retries++;
      retried++;
      std::this_thread::sleep_for(std::chrono::milliseconds(50 + rng() % 100));
    }
  };
  auto acked_confirmed = [&](const Booking& b) {
    log.line(Log::kConfirmed, tsv({std::to_string(b.id), std::to_string(b.slot),
                                   std::to_string(b.seats), b.labels}));
    totals.confirmations++;
    mine.push_back(b.id);
  };
  auto cancel = [&](long long id) {
    log.line(Log::kCancelSent, std::to_string(id));
    const Answer a = retry([&] { return t->cancel(id); });
    if (a.outcome == Outcome::kOk && a.b.status == "cancelled")
      log.line(Log::kCancelled, std::to_string(id));
  };

  for (long n = 1; !stop && Clock::now() < end; n++) {
    const int op = static_cast<int>(rng() % 10);
    if (op == 9 && !mine.empty()) {  // cancel one of our confirmed bookings
      const std::size_t i = rng() % mine.size();
      const long long id = mine[i];
      mine.erase(mine.begin() + static_cast<long>(i));
      cancel(id);
      continue;
    }
    const bool use_seated = !o.seated.empty() && (o.slots.empty() || rng() % 3 == 0);
    const auto& pool = use_seated ? o.seated : o.slots;
    const long long slot = pool[rng() % pool.size()];
    std::string label;
    if (use_seated && rng() % 2 == 0)
      label = std::string(1, 'A' + rng() % 4) + std::to_string(1 + rng() % 8);
    const int seats = 1 + static_cast<int>(rng() % 2);
    const bool confirm_now = op < 5;
    const std::string key = o.tag + "-" + std::to_string(cid) + "-" + std::to_string(n);
    const long retried_before = retried;
    const Answer a =
        retry([&] { return t->reserve(slot, holder, seats, key, confirm_now, label); });
    if (retried != retried_before) totals.resent_keys++;  // its outcome was unknown at first
    if (a.outcome == Outcome::kTransport) {
      log.line(Log::kUnresolved, tsv({key, std::to_string(slot)}));
      totals.unresolved++;
      break;
    }
    if (a.outcome != Outcome::kOk) {
      if (a.outcome == Outcome::kBusiness)
        log.line(Log::kSoldOut, tsv({key, std::to_string(slot)}));
      continue;
    }
    log.line(Log::kReserved, tsv({key, std::to_string(a.b.id), std::to_string(a.b.slot),
                                  std::to_string(a.b.seats), a.b.status, a.b.labels}));
    if (a.b.status == "confirmed") {
      acked_confirmed(a.b);
      continue;
    }
    if (op < 8) {  // hold, then confirm
      const Answer c = retry([&] { return t->confirm(a.b.id); });
      if (c.outcome == Outcome::kOk && c.b.status == "confirmed") acked_confirmed(c.b);
    } else {  // hold, then cancel
      cancel(a.b.id);
    }
  }
}

std::vector<long long> parse_ids(const std::string& s) {
  std::vector<long long> ids;
  std::stringstream in(s);
  std::string item;
  while (std::getline(in, item, ','))
    if (!item.empty()) ids.push_back(std::atoll(item.c_str()));
  return ids;
}

int usage() {
  std::cerr << "usage: sg_crash_load --out PREFIX --slots ID,... [--seated ID,...] --seconds S"
               " [--grace S] [--sql-clients N --conninfo CONNINFO]"
               " [--socket-clients M --socket PATH] [--tag TAG]\n";
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; i++) {
    const std::string arg = argv[i];
    if (i + 1 >= argc) return usage();
    const std::string v = argv[++i];
    if (arg == "--out")
      o.out = v;
    else if (arg == "--conninfo")
      o.conninfo = v;
    else if (arg == "--socket")
      o.socket = v;
    else if (arg == "--tag")
      o.tag = v;
    else if (arg == "--slots")
      o.slots = parse_ids(v);
    else if (arg == "--seated")
      o.seated = parse_ids(v);
    else if (arg == "--sql-clients")
      o.sql_clients = std::atoi(v.c_str());
    else if (arg == "--socket-clients")
      o.socket_clients = std::atoi(v.c_str());
    else if (arg == "--seconds")
      o.seconds = std::atof(v.c_str());
    else if (arg == "--grace")
      o.grace = std::atof(v.c_str());
    else
      return usage();
  }
  if (o.out.empty() || (o.slots.empty() && o.seated.empty()) ||
      o.sql_clients + o.socket_clients <= 0 || (o.socket_clients > 0 && o.socket.empty()))
    return usage();
  Log log(o.out);
  Totals totals;
  std::vector<std::thread> threads;
  for (int i = 0; i < o.sql_clients + o.socket_clients; i++) {
    std::unique_ptr<Transport> t;
    if (i < o.sql_clients)
      t = std::make_unique<SqlTransport>(o.conninfo);
    else
      t = std::make_unique<SocketTransport>(o.socket);
    threads.emplace_back(client, i, std::move(t), std::cref(o), std::ref(log), std::ref(totals));
  }
  for (auto& th : threads) th.join();
  std::cout << "clients=" << threads.size() << " requests=" << totals.requests
            << " acked_confirmations=" << totals.confirmations << " retries=" << totals.retries
            << " resent_keys=" << totals.resent_keys << " unresolved=" << totals.unresolved
            << " unexpected=" << totals.unexpected << std::endl;
  return totals.unexpected > 0 ? 1 : 0;
}
