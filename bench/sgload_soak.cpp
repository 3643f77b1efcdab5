// sgload_soak: `sgload soak`, the soak's mixed load (scripts/soak.sh; usage in bench/sgload.cpp):
// socket and direct clients each run a random mix of holds, confirmed reservations, seat
// reservations, confirmations and cancellations of their own bookings, availability and
// expire_holds, and remember every booking acknowledged as confirmed.
#include <libpq-fe.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "error_contract.hpp"
#include "sgload.hpp"

namespace sgload {

namespace {

struct Reply {
  bool ok = false;
  json result;         // when ok
  std::string reason;  // when not: data.reason, or "no_answer"
};

// SoakStats: one client's outcomes, latencies and confirmed bookings.
struct SoakStats {
  std::map<std::string, long> outcomes;  // "method ok" / "method reason"
  std::vector<double> ms;
  std::set<long long> confirmed;
  bool dead = false;
};

// A SoakClient calls methods by name with JSON params, over the socket or with libpq.
class SoakClient {
 public:
  virtual ~SoakClient() = default;
  virtual Reply call(const std::string& method, const json& params) = 0;
};

class SocketSoak : public SoakClient {
 public:
  explicit SocketSoak(const std::string& path) : fd_(connect_unix(path)), reader_{fd_, {}} {}
  ~SocketSoak() override {
    if (fd_ >= 0) close(fd_);
  }
  Reply call(const std::string& method, const json& params) override {
    Reply r;
    r.reason = "no_answer";
    if (fd_ < 0) return r;
    const std::string line =
        json{{"jsonrpc", "2.0"}, {"id", ++id_}, {"method", method}, {"params", params}}.dump() +
        "\n";
    std::string answer;
    if (!send_all(fd_, line) || !reader_.next(answer)) return r;
    const json j = json::parse(answer, nullptr, false);
    if (j.is_object() && j.contains("result")) {
      r.ok = true;
      r.result = j["result"];
    } else if (j.is_object() && j.contains("error")) {
      r.reason = j["error"].value("data", json::object()).value("reason", std::string("error"));
    }
    return r;
  }

 private:
  int fd_;
  LineReader reader_;
  long long id_ = 0;
};

class DirectSoak : public SoakClient {
 public:
  explicit DirectSoak(const std::string& conninfo) : conn_(PQconnectdb(conninfo.c_str())) {}
  ~DirectSoak() override { PQfinish(conn_); }
  Reply call(const std::string& method, const json& params) override {
    Reply r;
    r.reason = "no_answer";
    if (PQstatus(conn_) != CONNECTION_OK) return r;
    // Named arguments, each bound as text and cast to its parameter's type.
    static const std::map<std::string, std::string> casts = {
        {"slot_id", "bigint"},    {"holder", "text"},      {"seats", "integer"},
        {"hold_ttl", "interval"}, {"confirm", "boolean"},  {"labels", "text[]"},
        {"booking_id", "bigint"}, {"max_rows", "integer"}, {"idempotency_key", "text"}};
    std::string args;
    std::vector<std::string> values;
    for (auto it = params.begin(); it != params.end(); ++it) {
      std::string v;
      if (it->is_string()) {
        v = it->get<std::string>();
      } else if (it->is_array()) {
        v = "{";
        for (std::size_t i = 0; i < it->size(); ++i)
          v += (i ? "," : "") + std::string("\"") + (*it)[i].get<std::string>() + "\"";
        v += "}";
      } else {
        v = it->dump();
      }
      values.push_back(v);
      if (!args.empty()) args += ", ";
      args += it.key() + " => $" + std::to_string(values.size()) + "::" + casts.at(it.key());
    }
    const bool scalar = method == "expire_holds";
    const std::string sql =
        scalar ? "SELECT pg_catalog.to_jsonb(slotguard." + method + "(" + args + "))::text"
               : "SELECT pg_catalog.to_jsonb(r)::text FROM slotguard." + method + "(" + args +
                     ") AS r";
    std::vector<const char*> ptrs;
    for (auto& v : values) ptrs.push_back(v.c_str());
    PGresult* res = PQexecParams(conn_, sql.c_str(), static_cast<int>(ptrs.size()), nullptr,
                                 ptrs.data(), nullptr, nullptr, 0);
    if (PQresultStatus(res) == PGRES_TUPLES_OK) {
      r.ok = true;
      r.result = PQntuples(res) > 0 && !PQgetisnull(res, 0, 0)
                     ? json::parse(PQgetvalue(res, 0, 0), nullptr, false)
                     : json();
    } else {
      const char* state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
      r.reason = state ? std::string(sg::errors::reason_for_sqlstate(state)) : "no_answer";
      if (r.reason == "internal" && state) r.reason += std::string(":") + state;
    }
    PQclear(res);
    return r;
  }

 private:
  PGconn* conn_;
};

std::vector<long long> id_list(const std::string& text) {
  std::vector<long long> out;
  std::stringstream in(text);
  for (std::string item; std::getline(in, item, ',');) {
    if (!item.empty()) out.push_back(std::atoll(item.c_str()));
  }
  return out;
}

void soak_client(SoakClient& client, int index, Clock::time_point end,
                 const std::vector<long long>& slots, const std::vector<long long>& seat_slots,
                 bool direct, SoakStats& st) {
  std::mt19937_64 rng(static_cast<std::uint64_t>(index) * 7919 + 17);
  auto pick = [&](std::size_t n) { return static_cast<std::size_t>(rng() % n); };
  const std::string holder = std::string(direct ? "d" : "s") + std::to_string(index);
  std::vector<long long> pending;
  long long serial = 0;
  while (Clock::now() < end) {
    const unsigned roll = static_cast<unsigned>(rng() % 100);
    std::string method;
    json params = json::object();
    enum { kNew, kConfirm, kCancel, kOther } kind = kOther;
    long long target = 0;
    if (roll < 30 || (roll < 50 && pending.empty())) {
      method = "reserve";
      params = {{"slot_id", slots[pick(slots.size())]},
                {"holder", holder},
                {"seats", static_cast<int>(1 + pick(2))},
                {"hold_ttl", "2 seconds"}};
      if (roll < 15) params["confirm"] = true;
      if (roll % 10 == 0) params["idempotency_key"] = holder + "-" + std::to_string(++serial);
      kind = kNew;
    } else if (roll < 40 && !seat_slots.empty()) {
      method = "reserve_seats";
      json labels = json::array();
      const std::size_t a = 1 + pick(50);
      labels.push_back("A" + std::to_string(a));
      if (roll % 2 == 0) labels.push_back("A" + std::to_string(a % 50 + 1));
      params = {{"slot_id", seat_slots[pick(seat_slots.size())]},
                {"holder", holder},
                {"labels", labels},
                {"hold_ttl", "2 seconds"}};
      if (roll < 35) params["confirm"] = true;
      kind = kNew;
    } else if (roll < 70 && !pending.empty()) {
      const std::size_t k = pick(pending.size());
      target = pending[k];
      pending.erase(pending.begin() + static_cast<long>(k));
      method = "confirm";
      params = {{"booking_id", target}};
      kind = kConfirm;
    } else if (roll < 85 && !st.confirmed.empty()) {
      auto it = st.confirmed.begin();
      std::advance(it, static_cast<long>(pick(std::min<std::size_t>(st.confirmed.size(), 64))));
      target = *it;
      method = "cancel";
      params = {{"booking_id", target}};
      kind = kCancel;
    } else if (roll < 97) {
      method = "availability";
      params = {{"slot_id", slots[pick(slots.size())]}};
    } else {
      method = "expire_holds";
      params = {{"max_rows", 100}};
    }
    const auto t0 = Clock::now();
    const Reply r = client.call(method, params);
    st.ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
    ++st.outcomes[method + " " + (r.ok ? "ok" : r.reason)];
    if (!r.ok && r.reason == "no_answer") {
      st.dead = true;
      return;
    }
    if (!r.ok) continue;
    const std::string status =
        r.result.is_object() ? r.result.value("status", std::string()) : std::string();
    const long long id = r.result.is_object() ? r.result.value("id", 0LL) : 0;
    if (kind == kNew && status == "confirmed") st.confirmed.insert(id);
    if (kind == kNew && status == "pending") pending.push_back(id);
    if (kind == kConfirm && status == "confirmed") st.confirmed.insert(id);
    if (kind == kCancel) st.confirmed.erase(target);
    // Some holds are left to expire: the sweep and expire_holds get work.
    if (pending.size() > 4) pending.erase(pending.begin());
  }
}

}  // namespace

int soak(const std::vector<std::string>& a) {
  const std::string path = a[1];
  const std::string conninfo = a[2];
  const int socket_clients = std::atoi(a[3].c_str());
  const int direct_clients = std::atoi(a[4].c_str());
  const double seconds = std::atof(a[5].c_str());
  const std::vector<long long> slots = id_list(a[6]);
  const std::vector<long long> seat_slots = id_list(a[7]);
  if (slots.empty()) {
    std::cerr << "sgload soak: no slots\n";
    return 2;
  }
  const int n = socket_clients + direct_clients;
  std::vector<SoakStats> stats(static_cast<std::size_t>(n));
  std::vector<std::thread> threads;
  const auto start = Clock::now();
  const auto end = start + std::chrono::milliseconds(static_cast<long long>(seconds * 1000));
  for (int i = 0; i < n; ++i) {
    threads.emplace_back([&, i] {
      const bool direct = i >= socket_clients;
      std::unique_ptr<SoakClient> c;
      if (direct) {
        c = std::make_unique<DirectSoak>(conninfo);
      } else {
        c = std::make_unique<SocketSoak>(path);
      }
      soak_client(*c, i, end, slots, seat_slots, direct, stats[static_cast<std::size_t>(i)]);
    });
  }
  for (auto& t : threads) t.join();
  const double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
  std::map<std::string, long> outcomes;
  std::vector<double> socket_ms, direct_ms;
  std::ofstream ids(a[8]);
  long dead = 0;
  for (int i = 0; i < n; ++i) {
    auto& st = stats[static_cast<std::size_t>(i)];
    for (auto& [k, v] : st.outcomes) outcomes[k] += v;
    auto& ms = i < socket_clients ? socket_ms : direct_ms;
    ms.insert(ms.end(), st.ms.begin(), st.ms.end());
    for (long long id : st.confirmed) ids << id << "\n";
    dead += st.dead ? 1 : 0;
  }
  auto report = [&](const char* name, std::vector<double>& ms) {
    std::sort(ms.begin(), ms.end());
    auto pct = [&](double q) {
      return ms.empty() ? 0.0
                        : ms[std::min(ms.size() - 1, static_cast<std::size_t>(q * ms.size()))];
    };
    std::printf("%s: requests=%zu rps=%.1f p50_ms=%.2f p99_ms=%.2f max_ms=%.2f\n", name, ms.size(),
                ms.size() / elapsed, pct(0.5), pct(0.99), ms.empty() ? 0.0 : ms.back());
  };
  std::vector<double> all = socket_ms;
  all.insert(all.end(), direct_ms.begin(), direct_ms.end());
  report("all", all);
  report("socket", socket_ms);
  report("direct", direct_ms);
  for (auto& [k, v] : outcomes) std::printf("outcome %s %ld\n", k.c_str(), v);
  std::printf("clients_lost=%ld seconds=%.1f\n", dead, elapsed);
  return dead == 0 ? 0 : 1;
}

}  // namespace sgload
