# optipod: build, test, bench, fuzz and demo.
#
# `make demo` and `make test` are the two set-up commands: both first install
# any missing Debian package they need (as root; `make test` through `deps`,
# `make demo` only the build packages) or print the exact apt-get line to run
# (otherwise).
#
#   make                     build lib, binaries (build/rel/)
#   make test                unit + integration tests (test/run.sh)
#   make test SANITIZE=address,undefined   the same under ASan/UBSan (build/san/)
#   make valgrind            the tests under valgrind memcheck
#   make bench               benchmarks; figures are ratios to a baseline of the same run
#   make fuzz                libFuzzer targets for every parser, FUZZ_SECONDS each
#   make e2e                 against a real cluster given KUBECONFIG (skips clearly otherwise)

VERSION    := 0.1.0
SANITIZE   ?=
O          := build/$(if $(SANITIZE),san,rel)
CC         ?= cc
PREFIX     ?= /usr/local
FUZZ_SECONDS ?= 20
NPROC      := $(shell nproc 2>/dev/null || echo 2)
# Test binaries run at once by `make test` (test/run.sh); valgrind runs one at a time.
TEST_JOBS  ?= $(NPROC)

PKGS       := libuv libcurl libcjson yaml-0.1 openssl
# Debian packages: to build, to run the tests, and developer tools.
BUILD_DEBS := gcc make pkg-config libc6-dev libuv1-dev libcurl4-openssl-dev libcjson-dev \
              libyaml-dev libssl-dev
TEST_DEBS  := prometheus openssl nghttp2-server curl shellcheck
DEV_DEBS   := valgrind clang clang-format clang-tidy
# bench_webhook's second, independent load generator.
BENCH_DEBS := wrk

PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)

CFLAGS     ?= -O2 -g
# Warnings fail the build in CI (.ci/run exports CI=true) and only warn on a
# developer's machine, where a newer compiler may add a warning first.
WERROR     ?= $(if $(CI),-Werror)
WARN       := -Wall -Wextra $(WERROR) -Wshadow -Wstrict-prototypes -Wno-unused-parameter \
              -Wformat=2 -Wno-format-nonliteral -Wno-format-truncation
ALL_CFLAGS := -std=c11 -D_GNU_SOURCE -DOPTIPOD_VERSION=\"$(VERSION)\" $(WARN) $(CFLAGS) \
              -Ilib -Itest $(PKG_CFLAGS) -MMD -MP
ifneq ($(SANITIZE),)
ALL_CFLAGS += -fsanitize=$(SANITIZE) -fno-omit-frame-pointer -fno-sanitize-recover=all
LDSAN      := -fsanitize=$(SANITIZE)
endif
LDLIBS     := $(PKG_LIBS) -lm

LIB_SRC    := $(shell find lib -name '*.c' | sort)
LIB_OBJ    := $(LIB_SRC:%.c=$(O)/%.o)
LIB_A      := $(O)/liboptipod.a

SUP_SRC    := test/test.c $(shell find test/support -name '*.c' 2>/dev/null | sort)
SUP_OBJ    := $(SUP_SRC:%.c=$(O)/%.o)
SUP_A      := $(O)/libtestsupport.a

TEST_SRC   := $(sort $(wildcard test/unit/test_*.c))
TEST_BIN   := $(TEST_SRC:test/unit/%.c=$(O)/tests/%)
BENCH_SRC  := $(sort $(wildcard test/bench/bench_*.c))
BENCH_BIN  := $(BENCH_SRC:test/bench/%.c=$(O)/bench/%)
TOOL_SRC   := $(sort $(wildcard test/tools/*.c))
TOOL_BIN   := $(TOOL_SRC:test/tools/%.c=$(O)/tools/%)
FUZZ_SRC   := $(sort $(wildcard test/fuzz/fuzz_*.c))
# Each fuzz target's committed corpus, replayed in make test (test/fuzz/replay.c).
REPLAY_BIN := $(FUZZ_SRC:test/fuzz/%.c=$(O)/replay/%)

OPTIPOD_OBJ := $(patsubst %.c,$(O)/%.o,$(wildcard cmd/optipod/*.c))
KCTL_OBJ   := $(patsubst %.c,$(O)/%.o,$(wildcard cmd/kubectl-optipod/*.c))
# Objects linked into one binary each: pattern-rule intermediates that make
# would otherwise delete after every run, and rebuild the next time.
LEAF_OBJ   := $(patsubst %.c,$(O)/%.o,$(TEST_SRC) $(BENCH_SRC) $(TOOL_SRC) $(FUZZ_SRC) \
              test/fuzz/replay.c)
ALL_OBJ    := $(LIB_OBJ) $(SUP_OBJ) $(OPTIPOD_OBJ) $(KCTL_OBJ) $(LEAF_OBJ)

BINS       := $(O)/optipod $(if $(wildcard cmd/kubectl-optipod/*.c),$(O)/kubectl-optipod)

.PHONY: all deps dev-deps test unit valgrind bench fuzz demo e2e format format-check tidy \
        install clean check-deps
.DEFAULT_GOAL := all

all: $(BINS)

# --- dependencies -------------------------------------------------------------------------
# Installs only what is missing; never runs apt-get when everything is there.
define install_debs
	@missing=""; for p in $(1); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'install ok installed' || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "deps: installing$$missing"; \
	    export DEBIAN_FRONTEND=noninteractive; \
	    (apt-get update -qq && apt-get install -y -qq --no-install-recommends $$missing) >build-deps.log 2>&1 \
	      || { cat build-deps.log; rm -f build-deps.log; echo "deps: apt-get failed for:$$missing" >&2; exit 1; }; \
	    rm -f build-deps.log; \
	  else \
	    echo "deps: missing Debian packages; run as root:" >&2; \
	    echo "  apt-get install -y$$missing" >&2; exit 1; \
	  fi; \
	fi
endef

deps:
	$(call install_debs,$(BUILD_DEBS) $(TEST_DEBS))

dev-deps:
	$(call install_debs,$(DEV_DEBS))

# --- build ----------------------------------------------------------------------------------
$(O)/%.o: %.c
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -c $< -o $@

$(LIB_A): $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(SUP_A): $(SUP_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(O)/optipod: $(OPTIPOD_OBJ) $(LIB_A)
	$(CC) $(LDSAN) -o $@ $^ $(LDLIBS)

$(O)/kubectl-optipod: $(KCTL_OBJ) $(LIB_A)
	$(CC) $(LDSAN) -o $@ $^ $(LDLIBS)

$(O)/tests/%: $(O)/test/unit/%.o $(SUP_A) $(LIB_A)
	@mkdir -p $(@D)
	$(CC) $(LDSAN) -o $@ $^ $(LDLIBS)

$(O)/bench/%: $(O)/test/bench/%.o $(SUP_A) $(LIB_A)
	@mkdir -p $(@D)
	$(CC) $(LDSAN) -o $@ $^ $(LDLIBS)

$(O)/replay/%: $(O)/test/fuzz/%.o $(O)/test/fuzz/replay.o $(LIB_A)
	@mkdir -p $(@D)
	$(CC) $(LDSAN) -o $@ $^ $(LDLIBS)

$(O)/tools/%: $(O)/test/tools/%.o $(SUP_A) $(LIB_A)
	@mkdir -p $(@D)
	$(CC) $(LDSAN) -o $@ $^ $(LDLIBS)

# --- test -----------------------------------------------------------------------------------
# `unit` builds and runs without touching apt (for quick loops); `test` is the full set-up.
unit: $(TEST_BIN) $(REPLAY_BIN) $(TOOL_BIN) $(BINS)
	@OPTIPOD_BUILD=$(O) TEST_JOBS=$(TEST_JOBS) test/run.sh $(TEST_BIN) $(REPLAY_BIN)

test: deps
	@$(MAKE) --no-print-directory -j$(NPROC) unit

# test_lease checks leader-election timing (a 1 s lease, 100 ms renewals): at
# valgrind's speed the timing itself is what fails, so it runs under ASan and
# UBSan (make test SANITIZE=...) instead.
VALGRIND_SKIP := test_lease
VALGRIND_BIN  := $(filter-out $(addprefix $(O)/tests/,$(VALGRIND_SKIP)),$(TEST_BIN))

valgrind: deps
	$(call install_debs,valgrind)
	@$(MAKE) --no-print-directory -j$(NPROC) $(TEST_BIN) $(REPLAY_BIN) $(TOOL_BIN) $(BINS)
	@echo "valgrind: not run under valgrind (timing tests, covered by ASan/UBSan): $(VALGRIND_SKIP)"
	@OPTIPOD_BUILD=$(O) TEST_WRAPPER="valgrind -q --error-exitcode=99 --leak-check=full \
	  --errors-for-leak-kinds=definite,indirect --show-leak-kinds=definite,indirect \
	  --track-fds=no" OPTIPOD_SLOW=10 TEST_JOBS=1 test/run.sh $(VALGRIND_BIN) $(REPLAY_BIN)

bench: deps
	$(call install_debs,$(BENCH_DEBS))
	@$(MAKE) --no-print-directory -j$(NPROC) $(BENCH_BIN) $(TOOL_BIN) $(BINS)
	@set -e; for b in $(BENCH_BIN); do echo "== $$b"; $$b; done

# --- fuzz (clang libFuzzer, each parser) ----------------------------------------------------
FUZZ_O     := build/fuzz
FUZZ_FLAGS := -std=c11 -D_GNU_SOURCE -DOPTIPOD_VERSION=\"$(VERSION)\" -g -O1 -Ilib -Itest \
              $(PKG_CFLAGS) -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=all \
              -MMD -MP
FUZZ_LIBOBJ := $(LIB_SRC:%.c=$(FUZZ_O)/%.o)
FUZZ_OBJ   := $(FUZZ_SRC:%.c=$(FUZZ_O)/%.o)
FUZZ_BIN   := $(FUZZ_SRC:test/fuzz/%.c=$(FUZZ_O)/%)

$(FUZZ_O)/%.o: %.c
	@mkdir -p $(@D)
	clang $(FUZZ_FLAGS) -c $< -o $@

$(FUZZ_O)/fuzz_%: $(FUZZ_O)/test/fuzz/fuzz_%.o $(FUZZ_LIBOBJ)
	clang -fsanitize=fuzzer,address,undefined -o $@ $^ $(LDLIBS)

fuzz: deps
	$(call install_debs,clang)
	@$(MAKE) --no-print-directory -j$(NPROC) $(FUZZ_BIN)
	@set -e; for f in $(FUZZ_BIN); do \
	  n=$$(basename $$f); mkdir -p build/fuzz/corpus/$$n; \
	  seeds=test/fuzz/corpus/$$n; [ -d $$seeds ] || seeds=; \
	  echo "== $$n ($(FUZZ_SECONDS)s)"; \
	  rc=0; $$f -max_total_time=$(FUZZ_SECONDS) -max_len=65536 -print_final_stats=1 \
	      -artifact_prefix=build/fuzz/$$n- build/fuzz/corpus/$$n $$seeds >build/fuzz/$$n.log 2>&1 || rc=$$?; \
	  grep -E 'stat::number_of_executed_units|ERROR|SUMMARY' build/fuzz/$$n.log; \
	  [ $$rc -eq 0 ] || { echo "$$n failed (exit $$rc): see build/fuzz/$$n.log" >&2; exit 1; }; \
	done

# --- demo, e2e ------------------------------------------------------------------------------
# The demo needs only the build packages (no Prometheus, nghttp2 or shellcheck).
demo:
	$(call install_debs,$(BUILD_DEBS))
	@$(MAKE) --no-print-directory -j$(NPROC) $(BINS) $(TOOL_BIN)
	@test/demo.sh $(O)

e2e: deps
	@$(MAKE) --no-print-directory $(BINS)
	@OPTIPOD_BUILD=$(O) e2e/run.sh

# --- style ----------------------------------------------------------------------------------
FMT_SRC = $(shell git ls-files '*.c' '*.h' 2>/dev/null || find lib cmd test -name '*.[ch]')

format:
	$(call install_debs,clang-format)
	clang-format -i $(FMT_SRC)

format-check:
	$(call install_debs,clang-format)
	@clang-format --dry-run --Werror $(FMT_SRC) && echo "format-check: clean"

tidy:
	$(call install_debs,clang-tidy)
	clang-tidy --quiet $(LIB_SRC) -- $(filter-out -Wno-format-truncation -MMD -MP,$(ALL_CFLAGS))

install: all
	install -d $(DESTDIR)$(PREFIX)/bin
	install -m 0755 $(BINS) $(DESTDIR)$(PREFIX)/bin/

clean:
	rm -rf build

# Keep the single-binary objects between runs (see LEAF_OBJ).
.SECONDARY: $(LEAF_OBJ) $(FUZZ_OBJ) $(FUZZ_LIBOBJ)

# The dependency files of exactly the objects this build knows (-MMD -MP).
-include $(ALL_OBJ:.o=.d) $(FUZZ_LIBOBJ:.o=.d) $(FUZZ_OBJ:.o=.d)
