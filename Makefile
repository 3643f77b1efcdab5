# slotguard: top-level orchestration. The extension itself is built by PGXS in extension/Makefile;
# common/, the daemon and the unit tests by CMake into build/. The slotguard_router extension
# (router/, SQL only; docs/router.md) is installed by PGXS from router/Makefile.
#
#   make deps      install the Debian packages we need (apt-get as root; otherwise says what)
#   make all       build the extension and the CMake targets
#   make install   install the extensions (slotguard, slotguard_router) into the PostgreSQL 15
#                  installation (needs root)
#   make check     the whole test suite on a throwaway cluster; last line "N passed, M failed"
#   make installcheck  the regression tests and isolation specs against a running server with
#                  slotguard installed (PGHOST, PGPORT, PGUSER; what the server needs: the head
#                  of extension/Makefile)
#   make asan      the daemon, unit tests and fuzz targets with ASan + UBSan (clang) in build-asan/
#   make fuzz      the libFuzzer targets of tests/fuzz/ for FUZZ_SECONDS in all (default 600)
#   make run       private cluster under .run/ plus slotguardd in the foreground
#   make demo      the same, then a scripted race; exits
#   make bench     benchmarks (bench/run.sh)
#   make soak      minutes of mixed load on slotguardd and SQL, then the invariant check
#                  (scripts/soak.sh; SOAK_SECONDS, default 180; not part of make check)
#   make package   Debian packages postgresql-15-slotguard and slotguardd into dist/
#                  (scripts/package.sh: dpkg-buildpackage -b -us -uc on packaging/debian)
#   make clean     remove build products, throwaway clusters and test results

PG_CONFIG ?= $(firstword $(wildcard /usr/lib/postgresql/15/bin/pg_config) pg_config)
BUILD_DIR ?= build
BUILD_TYPE ?= RelWithDebInfo
ASAN_BUILD_DIR ?= build-asan
FUZZ_SECONDS ?= 600
# clang for the sanitizer tree: libFuzzer comes with it (scripts/deps.sh installs clang-14).
ASAN_CXX ?= $(firstword $(shell command -v clang++-14 clang++ 2>/dev/null) clang++)
NPROC := $(shell nproc 2>/dev/null || echo 2)

export PG_CONFIG

.PHONY: all deps extension cmake asan fuzz install check installcheck run demo bench soak clean format package

all: extension cmake

deps:
	@scripts/deps.sh

extension:
	$(MAKE) -C extension PG_CONFIG=$(PG_CONFIG)
	$(MAKE) -C router PG_CONFIG=$(PG_CONFIG)

cmake:
	cmake -S . -B $(BUILD_DIR) -DCMAKE_BUILD_TYPE=$(BUILD_TYPE)
	cmake --build $(BUILD_DIR) --parallel $(NPROC)

# asan builds only what runs sanitized: the unit tests, the daemon and the fuzz targets.
asan:
	cmake -S . -B $(ASAN_BUILD_DIR) -DCMAKE_CXX_COMPILER=$(ASAN_CXX) -DCMAKE_BUILD_TYPE=Debug \
	  -DSG_SANITIZE=ON -DSG_FUZZ=ON
	cmake --build $(ASAN_BUILD_DIR) --parallel $(NPROC) \
	  --target sg_unit_tests slotguardd fuzz_request fuzz_config

fuzz: deps asan
	SG_ASAN_BUILD=$(CURDIR)/$(ASAN_BUILD_DIR) tests/fuzz/run.sh $(FUZZ_SECONDS)

install:
	$(MAKE) -C extension PG_CONFIG=$(PG_CONFIG) install
	$(MAKE) -C router PG_CONFIG=$(PG_CONFIG) install

check: deps
	tests/run-all.sh

installcheck:
	$(MAKE) -C extension PG_CONFIG=$(PG_CONFIG) installcheck

run: deps all install
	scripts/run.sh

demo: deps all install
	scripts/demo.sh

bench: deps all install
	bash bench/run.sh

soak: deps all install
	scripts/soak.sh

package:
	scripts/package.sh

# format rewrites our C++ sources with .clang-format.
format:
	find common daemon extension tests/unit tests/fuzz tests/random -name '*.[ch]pp' -print0 2>/dev/null | \
	  xargs -0 -r clang-format -i

clean:
	$(MAKE) -C extension PG_CONFIG=$(PG_CONFIG) clean
	$(MAKE) -C router PG_CONFIG=$(PG_CONFIG) clean
	for d in .check .run .bench .soak; do \
	  if [ -e $$d ] || [ -L $$d ]; then scripts/pgcluster.sh destroy $$d || true; fi; \
	done
	rm -rf $(BUILD_DIR) $(ASAN_BUILD_DIR) .check .run .bench .soak
