// Unit tests of daemon/config: defaults, every key, unknown keys and bad values named with their
// line, durations.
#include <gtest/gtest.h>

#include <string>

#include "config.hpp"

namespace {

using sg::daemon::Config;
using sg::daemon::ConfigError;
using sg::daemon::LogLevel;
using sg::daemon::parse_config;
using sg::daemon::parse_duration;
using namespace std::chrono_literals;

// error_of returns the ConfigError message parsing `yaml` raises ("" if none).
std::string error_of(const std::string& yaml) {
  try {
    parse_config(yaml, "test.yaml");
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "";
}

TEST(DaemonConfig, EmptyFileGivesTheSpecDefaults) {
  const Config c = parse_config("", "test.yaml");
  EXPECT_EQ(c.database.conninfo, "dbname=app");
  EXPECT_EQ(c.database.pool_size, 4);
  EXPECT_EQ(c.socket.path, "/run/slotguard/slotguardd.sock");
  EXPECT_EQ(c.socket.mode, 0660u);
  EXPECT_EQ(c.socket.group, "slotguard");
  EXPECT_TRUE(c.access.allowed_uids.empty());
  EXPECT_TRUE(c.access.allowed_groups.empty());
  EXPECT_TRUE(c.sweep.enabled);
  EXPECT_EQ(c.sweep.interval, 30s);
  EXPECT_EQ(c.sweep.batch, 1000);
  EXPECT_EQ(c.retry.max_attempts, 3);
  EXPECT_EQ(c.retry.base_delay_ms, 100);
  EXPECT_DOUBLE_EQ(c.retry.multiplier, 2.0);
  EXPECT_EQ(c.retry.max_delay_ms, 1000);
  EXPECT_EQ(c.limits.max_request_bytes, 1048576u);
  EXPECT_EQ(c.limits.max_clients, 256);
  EXPECT_EQ(c.log.level, LogLevel::info);
}

TEST(DaemonConfig, EmptySectionsKeepDefaults) {
  const Config c = parse_config("database:\naccess:\nsweep:\n", "test.yaml");
  EXPECT_EQ(c.database.pool_size, 4);
  EXPECT_TRUE(c.sweep.enabled);
}

TEST(DaemonConfig, EveryKeyIsRead) {
  const Config c = parse_config(R"(
database:
  conninfo: "host=/tmp port=5999 dbname=x"
  pool_size: 9
  connect_timeout: 3s
socket:
  path: /tmp/x.sock
  mode: "0600"
  group: ""
access:
  allowed_uids: [0, 1000]
  allowed_groups: [0, 27]
sweep:
  enabled: false
  interval: 500ms
  batch: 50
retry:
  max_attempts: 5
  base_delay_ms: 10
  multiplier: 1.5
  max_delay_ms: 200
limits:
  max_request_bytes: 4096
  max_clients: 8
  idle_timeout: 2m
log:
  level: debug
)",
                                "test.yaml");
  EXPECT_EQ(c.database.conninfo, "host=/tmp port=5999 dbname=x");
  EXPECT_EQ(c.database.pool_size, 9);
  EXPECT_EQ(c.database.connect_timeout, 3s);
  EXPECT_EQ(c.socket.path, "/tmp/x.sock");
  EXPECT_EQ(c.socket.mode, 0600u);
  EXPECT_EQ(c.socket.group, "");
  EXPECT_EQ(c.access.allowed_uids, (std::vector<uid_t>{0, 1000}));
  EXPECT_EQ(c.access.allowed_groups, (std::vector<gid_t>{0, 27}));
  EXPECT_FALSE(c.sweep.enabled);
  EXPECT_EQ(c.sweep.interval, 500ms);
  EXPECT_EQ(c.sweep.batch, 50);
  EXPECT_EQ(c.retry.max_attempts, 5);
  EXPECT_EQ(c.retry.base_delay_ms, 10);
  EXPECT_DOUBLE_EQ(c.retry.multiplier, 1.5);
  EXPECT_EQ(c.retry.max_delay_ms, 200);
  EXPECT_EQ(c.limits.max_request_bytes, 4096u);
  EXPECT_EQ(c.limits.max_clients, 8);
  EXPECT_EQ(c.limits.idle_timeout, 120s);
  EXPECT_EQ(c.log.level, LogLevel::debug);
}

TEST(DaemonConfig, UserAndGroupNamesResolve) {
  const Config c =
      parse_config("access:\n  allowed_uids: [root]\n  allowed_groups: [root]\n", "test.yaml");
  EXPECT_EQ(c.access.allowed_uids, (std::vector<uid_t>{0}));
  EXPECT_EQ(c.access.allowed_groups, (std::vector<gid_t>{0}));
}

TEST(DaemonConfig, UnknownKeyNamesKeyAndLine) {
  const std::string e = error_of("database:\n  pool_size: 2\n  poolsize: 3\n");
  EXPECT_NE(e.find("test.yaml:3"), std::string::npos) << e;
  EXPECT_NE(e.find("database.poolsize"), std::string::npos) << e;
  EXPECT_NE(e.find("unknown key"), std::string::npos) << e;
}

TEST(DaemonConfig, UnknownSectionNamesKeyAndLine) {
  const std::string e = error_of("log:\n  level: info\nlogging:\n  level: info\n");
  EXPECT_NE(e.find("test.yaml:3"), std::string::npos) << e;
  EXPECT_NE(e.find("'logging'"), std::string::npos) << e;
}

TEST(DaemonConfig, BadValuesNameKeyAndLine) {
  struct Case {
    const char* yaml;
    const char* key;
    const char* line;
  };
  const Case cases[] = {
      {"database:\n  pool_size: many\n", "database.pool_size", ":2"},
      {"database:\n  pool_size: 0\n", "database.pool_size", ":2"},
      {"socket:\n  mode: \"0999\"\n", "socket.mode", ":2"},
      {"socket:\n  path: relative.sock\n", "socket.path", ":2"},
      {"access:\n  allowed_uids: 5\n", "access.allowed_uids", ":2"},
      {"access:\n  allowed_uids: [no-such-user-sg]\n", "access.allowed_uids", ":2"},
      {"access:\n  allowed_groups: [no-such-group-sg]\n", "access.allowed_groups", ":2"},
      {"sweep:\n  enabled: maybe\n", "sweep.enabled", ":2"},
      {"sweep:\n\n  interval: 30 parsecs\n", "sweep.interval", ":3"},
      {"sweep:\n  interval: 0s\n", "sweep.interval", ":2"},
      {"sweep:\n  batch: -1\n", "sweep.batch", ":2"},
      {"retry:\n  max_attempts: 0\n", "retry.max_attempts", ":2"},
      {"retry:\n  multiplier: 0.5\n", "retry.multiplier", ":2"},
      {"retry:\n  multiplier: fast\n", "retry.multiplier", ":2"},
      {"limits:\n  max_request_bytes: 10\n", "limits.max_request_bytes", ":2"},
      {"limits:\n  max_clients: [1]\n", "limits.max_clients", ":2"},
      {"log:\n  level: loud\n", "log.level", ":2"},
      {"database: 5\n", "database", ":1"},
  };
  for (const auto& c : cases) {
    const std::string e = error_of(c.yaml);
    EXPECT_NE(e.find(c.key), std::string::npos) << c.yaml << " -> " << e;
    EXPECT_NE(e.find(std::string("test.yaml") + c.line), std::string::npos)
        << c.yaml << " -> " << e;
  }
}

TEST(DaemonConfig, MaxDelayBelowBaseIsAnError) {
  const std::string e = error_of("retry:\n  base_delay_ms: 500\n  max_delay_ms: 100\n");
  EXPECT_NE(e.find("retry.max_delay_ms"), std::string::npos) << e;
}

TEST(DaemonConfig, NotYamlOrNotAMap) {
  EXPECT_NE(error_of("database: [unclosed\n").find("test.yaml"), std::string::npos);
  EXPECT_NE(error_of("- a\n- b\n"), "");
}

// A section's body outlives the iterator proxy it came from (found by tests/fuzz: a stack
// use-after-scope under AddressSanitizer on every file with a section).
TEST(DaemonConfig, SectionBodies) {
  EXPECT_NE(error_of("database: 5\n").find("test.yaml:1: key 'database': expected a mapping"),
            std::string::npos)
      << error_of("database: 5\n");
  EXPECT_NE(error_of("sweep: [1]\n").find("key 'sweep': expected a mapping"), std::string::npos);
  const Config c = parse_config("database:\nsweep:\n  batch: 7\nlog: ~\n", "test.yaml");
  EXPECT_EQ(c.sweep.batch, 7);
}

// The bounds a client cannot lift (batch length, JSON depth, unsent answers, slow requests) and
// the statement timeout of the daemon's connections are configuration keys.
TEST(DaemonConfig, ResourceLimitKeys) {
  const Config d = parse_config("", "test.yaml");
  EXPECT_EQ(d.limits.max_json_depth, 64u);
  EXPECT_EQ(d.limits.max_batch, 1000u);
  EXPECT_EQ(d.limits.max_output_bytes, 1048576u);
  EXPECT_EQ(d.limits.write_timeout, 30s);
  EXPECT_EQ(d.limits.request_timeout, 10s);
  EXPECT_EQ(d.limits.drain_timeout, 30s);
  EXPECT_EQ(d.database.statement_timeout, 30s);
  const Config c = parse_config(
      "database:\n  statement_timeout: 0\nlimits:\n  max_json_depth: 10\n  max_batch: 5\n"
      "  max_output_bytes: 65536\n  write_timeout: 2s\n  request_timeout: 0\n"
      "  drain_timeout: 500ms\n",
      "test.yaml");
  EXPECT_EQ(c.database.statement_timeout, 0ms);
  EXPECT_EQ(c.limits.max_json_depth, 10u);
  EXPECT_EQ(c.limits.max_batch, 5u);
  EXPECT_EQ(c.limits.max_output_bytes, 65536u);
  EXPECT_EQ(c.limits.write_timeout, 2s);
  EXPECT_EQ(c.limits.request_timeout, 0ms);
  EXPECT_EQ(c.limits.drain_timeout, 500ms);
  EXPECT_NE(error_of("limits:\n  max_json_depth: 100000\n").find("limits.max_json_depth"),
            std::string::npos);
  EXPECT_NE(error_of("limits:\n  max_batch: 0\n").find("limits.max_batch"), std::string::npos);
  EXPECT_NE(error_of("limits:\n  max_output_bytes: 10\n").find("limits.max_output_bytes"),
            std::string::npos);
  EXPECT_NE(error_of("limits:\n  drain_timeout: 0\n").find("limits.drain_timeout"),
            std::string::npos);
  EXPECT_NE(error_of("database:\n  statement_timeout: soon\n").find("database.statement_timeout"),
            std::string::npos);
}

// database.pool_mode: session by default; transaction for a transaction-pooling PgBouncer.
TEST(DaemonConfig, PoolMode) {
  using Mode = Config::Database::PoolMode;
  EXPECT_EQ(parse_config("", "test.yaml").database.pool_mode, Mode::kSession);
  EXPECT_EQ(parse_config("database:\n  pool_mode: transaction\n", "test.yaml").database.pool_mode,
            Mode::kTransaction);
  EXPECT_EQ(parse_config("database:\n  pool_mode: session\n", "test.yaml").database.pool_mode,
            Mode::kSession);
  const std::string e = error_of("database:\n  pool_mode: statement\n");
  EXPECT_NE(e.find("database.pool_mode"), std::string::npos) << e;
  EXPECT_NE(e.find("session or transaction"), std::string::npos) << e;
}

// A uid or gid too long for any integer is named as out of range, like one just past the largest
// (found by tests/fuzz: std::stoull's out_of_range escaped without key or line).
TEST(DaemonConfig, HugeIdsAreOutOfRange) {
  const std::string huge(40, '9');
  EXPECT_NE(error_of("access:\n  allowed_uids: [" + huge + "]\n")
                .find("test.yaml:2: key 'access.allowed_uids': uid out of range"),
            std::string::npos)
      << error_of("access:\n  allowed_uids: [" + huge + "]\n");
  EXPECT_NE(error_of("access:\n  allowed_groups: [" + huge + "]\n").find("gid out of range"),
            std::string::npos);
  EXPECT_NE(error_of("access:\n  allowed_uids: [4294967295]\n").find("uid out of range"),
            std::string::npos);
  const Config c =
      parse_config("access:\n  allowed_uids: [000000000000000000000001000]\n", "test.yaml");
  ASSERT_EQ(c.access.allowed_uids.size(), 1u);
  EXPECT_EQ(c.access.allowed_uids[0], 1000u);
}

TEST(DaemonDuration, Units) {
  EXPECT_EQ(parse_duration("500ms"), 500ms);
  EXPECT_EQ(parse_duration("30s"), 30s);
  EXPECT_EQ(parse_duration("2m"), 120s);
  EXPECT_EQ(parse_duration("1h"), 3600s);
  EXPECT_EQ(parse_duration("7"), 7s);
  EXPECT_THROW(parse_duration(""), std::invalid_argument);
  EXPECT_THROW(parse_duration("s"), std::invalid_argument);
  EXPECT_THROW(parse_duration("-1s"), std::invalid_argument);
  EXPECT_THROW(parse_duration("1.5s"), std::invalid_argument);
  EXPECT_THROW(parse_duration("3 days"), std::invalid_argument);
}

}  // namespace
