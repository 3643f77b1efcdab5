#!/usr/bin/env bash
# deps.sh: make sure the Debian 12 packages slotguard needs to build and test are installed.
#
# Run by `make deps` (and so before `make check`, `make run` and `make demo`). When everything is
# present it only asks dpkg and returns at once. When something is missing it installs it with
# apt-get if running as root, and otherwise says what to install and exits 1.
set -euo pipefail

# One line per package and why we need it. Add new needs here, nowhere else.
PACKAGES=(
  build-essential          # gcc, g++, make, libc headers
  g++                      # the extension, common/ and the daemon are C++17
  make
  cmake                    # CMakeLists.txt: common/, daemon, unit tests (ctest)
  pkg-config
  postgresql-15            # server binaries (initdb, pg_ctl, postgres) and pgbench
  postgresql-client-15     # psql, pg_isready
  postgresql-server-dev-15 # pg_config, PGXS, pg_regress, pg_isolation_regress
  postgresql-contrib       # contrib modules (on Debian 12 shipped by postgresql-15 itself)
  libpq-dev
  libpqxx-dev              # the daemon's database client
  libyaml-cpp-dev          # the daemon's configuration file
  nlohmann-json3-dev       # JSON in common/ and the daemon
  libsystemd-dev           # sd_notify, socket activation
  systemd                  # systemd-analyze verify of the packaged units
  libgtest-dev             # C++ unit tests
  clang-format             # style check of C++ sources
  clang-14                 # make asan / make fuzz: the sanitizer build and libFuzzer targets (build-asan/)
  libclang-rt-14-dev       # ... their runtimes: libFuzzer, AddressSanitizer, UBSan
  llvm-14                  # ... llvm-symbolizer, for source lines in sanitizer reports
  linux-perf               # bench/socket.sh: the perf profile of slotguardd under load (skipped without it)
  php-cli                  # tests/apps/clinic-php: the PHP application
  php-pgsql                # ... and its driver, PDO pgsql
  dpkg-dev                 # make package: dpkg-buildpackage
  debhelper                # ... dh, dh_installsystemd, dh_installsysusers, dh_installtmpfiles
  postgresql-server-dev-all # ... pg_buildext: the extension built per server version
  lintian                  # tests/packaging: the packages are lintian clean
  man-db                   # tests/packaging: the packaged man pages are found by man -w
  adduser                  # the slotguardd package's postinst creates its system user
  pgbouncer                # tests/integration/pgbouncer.sh: transaction pooling in front of PostgreSQL
  patroni                  # tests/failover/patroni.sh: the failover manager of the two-node test cluster
  etcd-server              # ... its consensus store (one etcd, v3 API)
  python3-psycopg2         # ... Patroni's PostgreSQL driver
  python3-etcd             # ... Patroni's etcd client module
  postgresql-15-plproxy    # slotguard_router: the sharding router's PL/Proxy functions
)

# Node.js and npm run the Node applications under tests/apps/. Debian's nodejs and npm packages
# are installed only when there is no node / npm at all: a machine may already have Node.js from
# another source (NodeSource's nodejs ships npm and conflicts with Debian's npm package).
if ! command -v node >/dev/null 2>&1; then PACKAGES+=(nodejs); fi
if ! command -v npm >/dev/null 2>&1; then PACKAGES+=(npm); fi

# missing_packages prints the packages of PACKAGES that dpkg does not report as installed.
missing_packages() {
  local installed
  installed=$(dpkg-query -W -f='${Package} ${db:Status-Abbrev}\n' "${PACKAGES[@]}" 2>/dev/null |
    awk '$2 == "ii" { print $1 }') || true
  local p
  for p in "${PACKAGES[@]}"; do
    if ! grep -qxF -- "$p" <<<"$installed"; then echo "$p"; fi
  done
}

mapfile -t missing < <(missing_packages)

if ((${#missing[@]} > 0)); then
  if [[ $(id -u) -ne 0 ]]; then
    echo "deps: these Debian packages are missing: ${missing[*]}" >&2
    echo "deps: install them as root with:" >&2
    echo "  sudo apt-get update && sudo apt-get install -y --no-install-recommends ${missing[*]}" >&2
    exit 1
  fi
  echo "deps: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q --no-install-recommends "${missing[@]}"
  mapfile -t still < <(missing_packages)
  if ((${#still[@]} > 0)); then
    echo "deps: still missing after apt-get install: ${still[*]}" >&2
    exit 1
  fi
fi

# Throwaway clusters run as the postgres OS user when we are root (PostgreSQL refuses root). The
# postgresql-common package creates it; make sure it is there all the same.
if ! id -u postgres >/dev/null 2>&1; then
  if [[ $(id -u) -ne 0 ]]; then
    echo "deps: the postgres OS user does not exist (it comes with the postgresql-common package)" >&2
    exit 1
  fi
  echo "deps: creating the postgres OS user"
  useradd --system --user-group --home-dir /var/lib/postgresql --shell /bin/bash postgres
fi

if ! command -v pg_config >/dev/null 2>&1; then
  echo "deps: pg_config not found on PATH (it comes with postgresql-server-dev-15)" >&2
  exit 1
fi

# The Node applications' npm packages, pinned by each app's package-lock.json, installed with
# `npm ci` (again only when the lockfile changed: scripts/npm-ci.sh).
ROOT=$(cd "$(dirname "$0")/.." && pwd -P)
for lock in "$ROOT"/tests/apps/*/package-lock.json; do
  [[ -f $lock ]] || continue
  if ! "$ROOT/scripts/npm-ci.sh" "$(dirname "$lock")"; then
    echo "deps: npm ci failed in $(dirname "$lock")" >&2
    exit 1
  fi
done
