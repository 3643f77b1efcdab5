// config: see config.hpp.
#include "config.hpp"

#include <grp.h>
#include <pwd.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <fstream>
#include <functional>
#include <limits>
#include <map>
#include <sstream>

namespace sg::daemon {

namespace {

// Where names the place of a key in the file for messages: "file:LINE: key 'a.b'".
std::string where(const std::string& source, const YAML::Mark& mark, const std::string& key) {
  std::ostringstream out;
  out << source;
  if (mark.line >= 0) out << ":" << (mark.line + 1);
  out << ": key '" << key << "'";
  return out.str();
}

[[noreturn]] void fail(const std::string& source, const YAML::Mark& mark, const std::string& key,
                       const std::string& what) {
  throw ConfigError(where(source, mark, key) + ": " + what);
}

std::string scalar(const YAML::Node& value, const std::string& source, const YAML::Mark& mark,
                   const std::string& key) {
  if (!value.IsScalar()) fail(source, mark, key, "expected a single value");
  return value.Scalar();
}

long long integer(const YAML::Node& value, const std::string& source, const YAML::Mark& mark,
                  const std::string& key, long long min, long long max) {
  const std::string text = scalar(value, source, mark, key);
  std::size_t used = 0;
  long long n = 0;
  try {
    n = std::stoll(text, &used, 10);
  } catch (const std::exception&) {
    fail(source, mark, key, "expected an integer, got '" + text + "'");
  }
  if (used != text.size()) fail(source, mark, key, "expected an integer, got '" + text + "'");
  if (n < min || n > max) {
    fail(
        source, mark, key,
        "must be between " + std::to_string(min) + " and " + std::to_string(max) + ", got " + text);
  }
  return n;
}

bool boolean(const YAML::Node& value, const std::string& source, const YAML::Mark& mark,
             const std::string& key) {
  const std::string text = scalar(value, source, mark, key);
  if (text == "true" || text == "yes" || text == "on") return true;
  if (text == "false" || text == "no" || text == "off") return false;
  fail(source, mark, key, "expected true or false, got '" + text + "'");
}

std::chrono::milliseconds duration(const YAML::Node& value, const std::string& source,
                                   const YAML::Mark& mark, const std::string& key, bool zero_ok) {
  const std::string text = scalar(value, source, mark, key);
  std::chrono::milliseconds d{};
  try {
    d = parse_duration(text);
  } catch (const std::invalid_argument&) {
    fail(source, mark, key, "expected a duration such as 500ms, 30s, 2m or 1h, got '" + text + "'");
  }
  if (!zero_ok && d.count() <= 0) fail(source, mark, key, "must be greater than zero");
  return d;
}

std::vector<std::string> sequence(const YAML::Node& value, const std::string& source,
                                  const YAML::Mark& mark, const std::string& key) {
  std::vector<std::string> out;
  if (value.IsNull()) return out;
  if (!value.IsSequence()) fail(source, mark, key, "expected a list, e.g. [1000, alice]");
  for (const auto& item : value) {
    if (!item.IsScalar()) fail(source, item.Mark(), key, "expected a list of single values");
    out.push_back(item.Scalar());
  }
  return out;
}

bool all_digits(const std::string& s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (!std::isdigit(static_cast<unsigned char>(c))) return false;
  }
  return true;
}

// id_number reads a uid or gid written in digits: at most max (the largest id, -1 excluded).
unsigned long long id_number(const std::string& digits, unsigned long long max,
                             const std::string& source, const YAML::Mark& mark,
                             const std::string& key, const char* what) {
  const std::size_t first = std::min(digits.find_first_not_of('0'), digits.size());
  const unsigned long long n = digits.size() - first > 19 ? max + 1 : std::stoull(digits);
  if (n > max) fail(source, mark, key, std::string(what) + " out of range");
  return n;
}

uid_t resolve_user(const std::string& name, const std::string& source, const YAML::Mark& mark,
                   const std::string& key) {
  if (all_digits(name)) {
    return static_cast<uid_t>(
        id_number(name, std::numeric_limits<uid_t>::max() - 1ULL, source, mark, key, "uid"));
  }
  struct passwd pw {};
  struct passwd* found = nullptr;
  std::vector<char> buf(16384);
  if (getpwnam_r(name.c_str(), &pw, buf.data(), buf.size(), &found) != 0 || found == nullptr)
    fail(source, mark, key, "no such user '" + name + "'");
  return pw.pw_uid;
}

gid_t resolve_group(const std::string& name, const std::string& source, const YAML::Mark& mark,
                    const std::string& key) {
  if (all_digits(name)) {
    return static_cast<gid_t>(
        id_number(name, std::numeric_limits<gid_t>::max() - 1ULL, source, mark, key, "gid"));
  }
  struct group gr {};
  struct group* found = nullptr;
  std::vector<char> buf(65536);
  if (getgrnam_r(name.c_str(), &gr, buf.data(), buf.size(), &found) != 0 || found == nullptr)
    fail(source, mark, key, "no such group '" + name + "'");
  return gr.gr_gid;
}

std::string socket_path(const YAML::Node& v, const std::string& src, const YAML::Mark& m,
                        const std::string& k) {
  const std::string p = scalar(v, src, m, k);
  if (p.empty() || p[0] != '/') fail(src, m, k, "must be an absolute path");
  if (p.size() >= 108) fail(src, m, k, "is longer than a Unix socket path may be (107)");
  return p;
}

unsigned octal_mode(const YAML::Node& v, const std::string& src, const YAML::Mark& m,
                    const std::string& k) {
  const std::string t = scalar(v, src, m, k);
  bool ok = !t.empty() && t.size() <= 4;
  unsigned mode = 0;
  for (char ch : t) {
    if (ch < '0' || ch > '7') ok = false;
    mode = mode * 8 + static_cast<unsigned>(ch - '0');
  }
  if (!ok) fail(src, m, k, "expected an octal mode such as \"0660\", got '" + t + "'");
  return mode;
}

double multiplier(const YAML::Node& v, const std::string& src, const YAML::Mark& m,
                  const std::string& k) {
  const std::string t = scalar(v, src, m, k);
  double d = 0;
  std::size_t used = 0;
  try {
    d = std::stod(t, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used != t.size() || !std::isfinite(d)) fail(src, m, k, "expected a number, got '" + t + "'");
  if (d < 1.0 || d > 100.0) fail(src, m, k, "must be between 1 and 100, got " + t);
  return d;
}

LogLevel log_level(const YAML::Node& v, const std::string& src, const YAML::Mark& m,
                   const std::string& k) {
  const std::string t = scalar(v, src, m, k);
  try {
    return parse_log_level(t);
  } catch (const std::invalid_argument&) {
    fail(src, m, k, "expected error, warning, notice, info or debug, got '" + t + "'");
  }
}

using Setter =
    std::function<void(const YAML::Node& value, const YAML::Mark& mark, const std::string& key)>;
using KeyTable = std::map<std::string, std::map<std::string, Setter>>;

KeyTable config_keys(Config& c, const std::string& src);

// load_yaml parses the text; a syntax error names the file and line.
YAML::Node load_yaml(const std::string& yaml_text, const std::string& source) {
  try {
    return YAML::Load(yaml_text);
  } catch (const YAML::Exception& e) {
    std::ostringstream out;
    out << source;
    if (e.mark.line >= 0) out << ":" << (e.mark.line + 1);
    out << ": not valid YAML: " << e.msg;
    throw ConfigError(out.str());
  }
}

// set_section applies the keys of one section through its setters.
void set_section(const YAML::Node& body, const std::map<std::string, Setter>& setters,
                 const std::string& section, const std::string& src) {
  for (auto kv = body.begin(); kv != body.end(); ++kv) {
    const std::string name = kv->first.Scalar();
    const std::string key = section + "." + name;
    const YAML::Mark key_mark = kv->first.Mark();
    auto setter = setters.find(name);
    if (setter == setters.end()) throw ConfigError(where(src, key_mark, key) + ": unknown key");
    setter->second(kv->second, key_mark, key);
  }
}

}  // namespace

std::chrono::milliseconds parse_duration(const std::string& text) {
  std::size_t i = 0;
  while (i < text.size() && std::isdigit(static_cast<unsigned char>(text[i]))) ++i;
  if (i == 0 || i > 12) throw std::invalid_argument("bad duration");
  const long long n = std::stoll(text.substr(0, i));
  const std::string unit = text.substr(i);
  if (unit == "ms") return std::chrono::milliseconds(n);
  if (unit.empty() || unit == "s") return std::chrono::milliseconds(n * 1000);
  if (unit == "m" || unit == "min") return std::chrono::milliseconds(n * 60 * 1000);
  if (unit == "h") return std::chrono::milliseconds(n * 3600 * 1000);
  throw std::invalid_argument("bad duration unit");
}

LogLevel parse_log_level(const std::string& text) {
  if (text == "error") return LogLevel::error;
  if (text == "warning" || text == "warn") return LogLevel::warning;
  if (text == "notice") return LogLevel::notice;
  if (text == "info") return LogLevel::info;
  if (text == "debug") return LogLevel::debug;
  throw std::invalid_argument("bad log level");
}

const char* log_level_name(LogLevel level) {
  switch (level) {
    case LogLevel::error:
      return "error";
    case LogLevel::warning:
      return "warning";
    case LogLevel::notice:
      return "notice";
    case LogLevel::info:
      return "info";
    case LogLevel::debug:
      return "debug";
  }
  return "info";
}

namespace {

// config_keys is the table of sections and keys: the single place that knows every key, each
// with the setter that checks its value and stores it in c.
KeyTable config_keys(Config& c, const std::string& src) {
  return {
      {"database",
       {{"conninfo", [&](const YAML::Node& v, const YAML::Mark& m,
                         const std::string& k) { c.database.conninfo = scalar(v, src, m, k); }},
        {"pool_size",
         [&](const YAML::Node& v, const YAML::Mark& m, const std::string& k) {
           c.database.pool_size = static_cast<int>(integer(v, src, m, k, 1, 1000));
         }},
        {"connect_timeout",
         [&](const YAML::Node& v, const YAML::Mark& m, const std::string& k) {
           c.database.connect_timeout = duration(v, src, m, k, false);
           if (c.database.connect_timeout.count() < 1000)
             fail(src, m, k, "must be at least 1s (libpq counts whole seconds)");
         }},
        {"statement_timeout",
         [&](const YAML::Node& v, const YAML::Mark& m, const std::string& k) {
           c.database.statement_timeout = duration(v, src, m, k, true);
           if (c.database.statement_timeout.count() > std::numeric_limits<int>::max())
             fail(src, m, k, "is longer than PostgreSQL's statement_timeout can be");
         }},
        {"pool_mode",
         [&](const YAML::Node& v, const YAML::Mark& m, const std::string& k) {
           const std::string mode = scalar(v, src, m, k);
           if (mode == "session")
             c.database.pool_mode = Config::Database::PoolMode::kSession;
           else if (mode == "transaction")
             c.database.pool_mode = Config::Database::PoolMode::kTransaction;
           else
             fail(src, m, k, "must be session or transaction");
         }}}},
      {"socket",
       {{"path", [&](const YAML::Node& v, const YAML::Mark& m,
                     const std::string& k) { c.socket.path = socket_path(v, src, m, k); }},
        {"mode", [&](const YAML::Node& v, const YAML::Mark& m,
                     const std::string& k) { c.socket.mode = octal_mode(v, src, m, k); }},
        {"group",
         [&](const YAML::Node& v, const YAML::Mark& m, const std::string& k) {
           c.socket.group = v.IsNull() ? std::string() : scalar(v, src, m, k);
         }}}},
      {"access",
       {{"allowed_uids",
         [&](const YAML::Node& v, const YAML::Mark& m, const std::string& k) {
           c.access.allowed_uids.clear();
           for (const auto& u : sequence(v, src, m, k))
             c.access.allowed_uids.push_back(resolve_user(u, src, m, k));
         }},
        {"allowed_groups",
         [&](const YAML::Node& v, const YAML::Mark& m, const std::string& k) {
           c.access.allowed_groups.clear();
           for (const auto& g : sequence(v, src, m, k))
             c.access.allowed_groups.push_back(resolve_group(g, src, m, k));
         }}}},
      {"sweep",
       {{"enabled", [&](const YAML::Node& v, const YAML::Mark& m,
                        const std::string& k) { c.sweep.enabled = boolean(v, src, m, k); }},
        {"interval",
         [&](const YAML::Node& v, const YAML::Mark& m, const std::string& k) {
           c.sweep.interval = duration(v, src, m, k, false);
         }},
        {"batch",
         [&](const YAML::Node& v, const YAML::Mark& m, const std::string& k) {
           c.sweep.batch = static_cast<int>(integer(v, src, m, k, 1, 1000000));
         }}}},
      {"retry",
       {{"max_attempts",
         [&](const YAML::Node& v, const YAML::Mark& m, const std::string& k) {
           c.retry.max_attempts = static_cast<int>(integer(v, src, m, k, 1, 100));
         }},
        {"base_delay_ms",
         [&](const YAML::Node& v, const YAML::Mark& m, const std::string& k) {
           c.retry.base_delay_ms = static_cast<int>(integer(v, src, m, k, 0, 60000));
         }},
        {"multiplier",
         [&](const YAML::Node& v, const YAML::Mark& m, const std::string& k) {
           c.retry.multiplier = multiplier(v, src, m, k);
         }},
        {"max_delay_ms",
         [&](const YAML::Node& v, const YAML::Mark& m, const std::string& k) {
           c.retry.max_delay_ms = static_cast<int>(integer(v, src, m, k, 0, 600000));
         }}}},
      {"limits",
       {{"max_request_bytes",
         [&](const YAML::Node& v, const YAML::Mark& m, const std::string& k) {
           c.limits.max_request_bytes =
               static_cast<std::size_t>(integer(v, src, m, k, 256, 1LL << 30));
         }},
        {"max_clients",
         [&](const YAML::Node& v, const YAML::Mark& m, const std::string& k) {
           c.limits.max_clients = static_cast<int>(integer(v, src, m, k, 1, 100000));
         }},
        {"idle_timeout",
         [&](const YAML::Node& v, const YAML::Mark& m, const std::string& k) {
           c.limits.idle_timeout = duration(v, src, m, k, true);
         }},
        {"max_json_depth",
         [&](const YAML::Node& v, const YAML::Mark& m, const std::string& k) {
           // The upper bound keeps the recursion of copying and writing a document shallow.
           c.limits.max_json_depth = static_cast<std::size_t>(integer(v, src, m, k, 2, 1000));
         }},
        {"max_batch",
         [&](const YAML::Node& v, const YAML::Mark& m, const std::string& k) {
           c.limits.max_batch = static_cast<std::size_t>(integer(v, src, m, k, 1, 100000));
         }},
        {"max_output_bytes",
         [&](const YAML::Node& v, const YAML::Mark& m, const std::string& k) {
           c.limits.max_output_bytes =
               static_cast<std::size_t>(integer(v, src, m, k, 4096, 1LL << 30));
         }},
        {"write_timeout",
         [&](const YAML::Node& v, const YAML::Mark& m, const std::string& k) {
           c.limits.write_timeout = duration(v, src, m, k, true);
         }},
        {"request_timeout",
         [&](const YAML::Node& v, const YAML::Mark& m, const std::string& k) {
           c.limits.request_timeout = duration(v, src, m, k, true);
         }},
        {"drain_timeout",
         [&](const YAML::Node& v, const YAML::Mark& m, const std::string& k) {
           c.limits.drain_timeout = duration(v, src, m, k, false);
         }}}},
      {"log",
       {{"level", [&](const YAML::Node& v, const YAML::Mark& m,
                      const std::string& k) { c.log.level = log_level(v, src, m, k); }}}},
  };
}

}  // namespace

Config parse_config(const std::string& yaml_text, const std::string& source) {
  const YAML::Node root = load_yaml(yaml_text, source);
  Config c;
  if (root.IsNull()) return c;
  if (!root.IsMap())
    throw ConfigError(source + ": the configuration must be a mapping of sections");
  const std::string& src = source;
  const KeyTable sections = config_keys(c, src);
  for (auto it = root.begin(); it != root.end(); ++it) {
    const std::string section = it->first.Scalar();
    const YAML::Mark mark = it->first.Mark();
    auto s = sections.find(section);
    if (s == sections.end()) throw ConfigError(where(src, mark, section) + ": unknown key");
    // A copy (a Node is a handle): it->second lives in a proxy that ends with this statement.
    const YAML::Node body = it->second;
    if (body.IsNull()) continue;
    if (!body.IsMap()) fail(src, mark, section, "expected a mapping of keys");
    set_section(body, s->second, section, src);
  }
  if (c.retry.max_delay_ms < c.retry.base_delay_ms) {
    throw ConfigError(src + ": key 'retry.max_delay_ms' (" + std::to_string(c.retry.max_delay_ms) +
                      ") must not be less than retry.base_delay_ms (" +
                      std::to_string(c.retry.base_delay_ms) + ")");
  }
  return c;
}

Config load_config(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw ConfigError(path + ": cannot read the configuration file");
  std::ostringstream text;
  text << in.rdbuf();
  return parse_config(text.str(), path);
}

}  // namespace sg::daemon
