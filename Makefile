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
#   make soak                the real binary under churn for SOAK_MINUTES (default 30)
#
# Each compiled file prints one short line ("  CC lib/kube/cache.c"); V=1 prints the full
# command lines instead.

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
              libyaml-dev libssl-dev ca-certificates
TEST_DEBS  := prometheus openssl nghttp2-server curl shellcheck zsh
DEV_DEBS   := valgrind clang clang-format clang-tidy
# bench_webhook's second, independent load generator.
BENCH_DEBS := wrk
# e2e: the scenarios read JSON and the rendered chart (50-in-cluster) with python3.
E2E_DEBS   := python3 python3-yaml
# make soak's plot.
SOAK_DEBS  := gnuplot-nox
SOAK_MINUTES ?= 30

PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)

CFLAGS     ?= -O2 -g
# Warnings fail the build in CI (.ci/run exports CI=true) and only warn on a
# developer's machine, where a newer compiler may add a warning first.
WERROR     ?= $(if $(CI),-Werror)
WARN       := -Wall -Wextra $(WERROR) -Wshadow -Wstrict-prototypes -Wno-unused-parameter \
              -Wformat=2 -Wno-format-nonliteral -Wno-format-truncation
# -ffile-prefix-map: the binaries do not depend on where the tree is checked out (the image
# built by the Containerfile holds the same bytes as the one `make image` builds).
ALL_CFLAGS := -std=c11 -D_GNU_SOURCE -DOPTIPOD_VERSION=\"$(VERSION)\" $(WARN) $(CFLAGS) \
              -ffile-prefix-map=$(CURDIR)=. -Ilib -Itest $(PKG_CFLAGS) -MMD -MP
ifneq ($(SANITIZE),)
ALL_CFLAGS += -fsanitize=$(SANITIZE) -fno-omit-frame-pointer -fno-sanitize-recover=all
LDSAN      := -fsanitize=$(SANITIZE)
endif
LDLIBS     := $(PKG_LIBS) -lm

V          ?= 0
ifeq ($(V),1)
Q          :=
say         = @:
else
Q          := @
say         = @printf '  %s %s\n' '$(1)' '$(2)'
endif

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
        install clean check-deps image image-root image-check manifests dist \
        bins tools tests benches fuzzers soak
.DEFAULT_GOAL := all
# Objects are never intermediate: make keeps them (no "rm ....o" after a link) and relinks
# only what changed.
.SECONDARY:

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
	$(call say,CC,$<)
	$(Q)$(CC) $(ALL_CFLAGS) -c $< -o $@

$(LIB_A): $(LIB_OBJ)
	@rm -f $@
	$(call say,AR,$@)
	$(Q)ar rcs $@ $^

$(SUP_A): $(SUP_OBJ)
	@rm -f $@
	$(call say,AR,$@)
	$(Q)ar rcs $@ $^

$(O)/optipod: $(OPTIPOD_OBJ) $(LIB_A)
	$(call say,LD,$@)
	$(Q)$(CC) $(LDSAN) -o $@ $^ $(LDLIBS)

$(O)/kubectl-optipod: $(KCTL_OBJ) $(LIB_A)
	$(call say,LD,$@)
	$(Q)$(CC) $(LDSAN) -o $@ $^ $(LDLIBS)

$(O)/tests/%: $(O)/test/unit/%.o $(SUP_A) $(LIB_A)
	@mkdir -p $(@D)
	$(call say,LD,$@)
	$(Q)$(CC) $(LDSAN) -o $@ $^ $(LDLIBS)

$(O)/bench/%: $(O)/test/bench/%.o $(SUP_A) $(LIB_A)
	@mkdir -p $(@D)
	$(call say,LD,$@)
	$(Q)$(CC) $(LDSAN) -o $@ $^ $(LDLIBS)

$(O)/replay/%: $(O)/test/fuzz/%.o $(O)/test/fuzz/replay.o $(LIB_A)
	@mkdir -p $(@D)
	$(call say,LD,$@)
	$(Q)$(CC) $(LDSAN) -o $@ $^ $(LDLIBS)

$(O)/tools/%: $(O)/test/tools/%.o $(SUP_A) $(LIB_A)
	@mkdir -p $(@D)
	$(call say,LD,$@)
	$(Q)$(CC) $(LDSAN) -o $@ $^ $(LDLIBS)

# Groups for the sub-makes below: a recipe of their own (empty) keeps make from saying
# "'x' is up to date" once per binary.
bins: $(BINS) ; @:
tools: $(TOOL_BIN) ; @:
tests: $(TEST_BIN) $(REPLAY_BIN) ; @:
benches: $(BENCH_BIN) ; @:

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
	@$(MAKE) --no-print-directory -j$(NPROC) tests tools bins
	@echo "valgrind: not run under valgrind (timing tests, covered by ASan/UBSan): $(VALGRIND_SKIP)"
	@OPTIPOD_BUILD=$(O) TEST_WRAPPER="valgrind -q --error-exitcode=99 --leak-check=full \
	  --errors-for-leak-kinds=definite,indirect --show-leak-kinds=definite,indirect \
	  --track-fds=no" OPTIPOD_SLOW=10 TEST_JOBS=1 test/run.sh $(VALGRIND_BIN) $(REPLAY_BIN)

bench: deps
	$(call install_debs,$(BENCH_DEBS))
	@$(MAKE) --no-print-directory -j$(NPROC) benches tools bins
	@set -e; for b in $(BENCH_BIN); do echo "== $$b"; $$b; done

# --- fuzz (clang libFuzzer, each parser) ----------------------------------------------------
FUZZ_O     := build/fuzz
FUZZ_FLAGS := -std=c11 -D_GNU_SOURCE -DOPTIPOD_VERSION=\"$(VERSION)\" -g -O1 -Ilib -Itest \
              $(PKG_CFLAGS) -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=all \
              -MMD -MP
FUZZ_LIBOBJ := $(LIB_SRC:%.c=$(FUZZ_O)/%.o)
FUZZ_OBJ   := $(FUZZ_SRC:%.c=$(FUZZ_O)/%.o)
FUZZ_BIN   := $(FUZZ_SRC:test/fuzz/%.c=$(FUZZ_O)/%)
fuzzers: $(FUZZ_BIN) ; @:

$(FUZZ_O)/%.o: %.c
	@mkdir -p $(@D)
	$(call say,CC,$<)
	$(Q)clang $(FUZZ_FLAGS) -c $< -o $@

$(FUZZ_O)/fuzz_%: $(FUZZ_O)/test/fuzz/fuzz_%.o $(FUZZ_LIBOBJ)
	$(call say,LD,$@)
	$(Q)clang -fsanitize=fuzzer,address,undefined -o $@ $^ $(LDLIBS)

fuzz: deps
	$(call install_debs,clang)
	@$(MAKE) --no-print-directory -j$(NPROC) fuzzers
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
	@$(MAKE) --no-print-directory -j$(NPROC) bins tools
	@test/demo.sh $(O)

# make soak: first leader failover under a write burst (two replicas, the leader SIGKILLed;
# about 40 s with client-go's lease timing, too slow for make test), then the real binary
# for SOAK_MINUTES under churn against the fake API server and a real Prometheus
# (test/tools/soak.c); not part of make test. Reports, data and plot in build/soak/ (the
# plot drawn by gnuplot even when the soak fails, then its status).
soak: deps
	$(call install_debs,$(SOAK_DEBS))
	@$(MAKE) --no-print-directory -j$(NPROC) $(BINS) $(O)/tools/soak
	@rm -rf build/soak; mkdir -p build/soak/failover
	@rc=0; $(O)/tools/soak --failover --optipod $(O)/optipod --out build/soak/failover || rc=$$?; \
	  $(O)/tools/soak --optipod $(O)/optipod --out build/soak --minutes $(SOAK_MINUTES) || rc=$$?; \
	  gnuplot build/soak/soak.gp && echo "soak: plot in build/soak/soak.png"; exit $$rc

e2e: deps
	$(call install_debs,$(E2E_DEBS))
	@$(MAKE) --no-print-directory -j$(NPROC) bins tools
	@OPTIPOD_BUILD=$(O) e2e/run.sh

# --- container image ------------------------------------------------------------------------
# Built from Debian's packages only, with no registry and no container engine: the binaries
# built here (Debian bookworm binaries), a runtime root holding them, exactly the shared
# libraries and dynamic loader `ldd` says they load, ca-certificates' bundle, and /etc/passwd
# and /etc/group naming the non-root user 65532; no shell, nothing else. umoci makes it one
# layer of an OCI image, saved as an OCI archive (load with `podman load -i`, push with
# `skopeo copy oci-archive:FILE docker://REGISTRY/optipod:$(VERSION)`). The Containerfile's
# build stage runs the same `make image-root`, so both describe one root; image-check proves
# the archive agrees with the Containerfile and runs the binaries inside it.
IMAGE_DEBS  := umoci ca-certificates binutils
IMAGE_DIR   := build/image
IMAGE_ROOT  := $(IMAGE_DIR)/rootfs
IMAGE_OCI   := $(IMAGE_DIR)/optipod-$(VERSION).oci.tar
# The chart's image (values.yaml image.repository, image.tag = VERSION): the archive's name.
IMAGE_REF   := ghcr.io/optipod/optipod:$(VERSION)
IMAGE_USER  := 65532
# Timestamps of the files, layer and config: the last commit's, so a rebuild of the same
# commit gives the same layer digest.
SOURCE_DATE_EPOCH ?= $(shell git log -1 --format=%ct 2>/dev/null || echo 0)
IMAGE_DATE  := $(shell date -u -d @$(SOURCE_DATE_EPOCH) +%Y-%m-%dT%H:%M:%SZ 2>/dev/null)
IMAGE_LABELS := org.opencontainers.image.title=optipod \
                org.opencontainers.image.version=$(VERSION) \
                org.opencontainers.image.source=https://github.com/optipod/optipod \
                org.opencontainers.image.licenses=Apache-2.0

# The runtime root, from the release build (stripped copies of the binaries).
image-root: $(BINS)
	@test -z "$(SANITIZE)" || { echo "image-root: build the image without SANITIZE" >&2; exit 1; }
	@rm -rf $(IMAGE_ROOT) && mkdir -p $(IMAGE_ROOT)/etc/ssl/certs
	@for b in $(BINS); do strip --strip-unneeded -o $(IMAGE_ROOT)/$$(basename $$b) $$b; done
	@ldd $(BINS) >$(IMAGE_DIR)/ldd.txt
	@! grep 'not found' $(IMAGE_DIR)/ldd.txt || { echo "image-root: a library is missing" >&2; exit 1; }
	@awk '$$2 == "=>" && $$3 ~ /^\// { print $$3 } $$1 ~ /^\// && $$2 ~ /^\(/ { print $$1 }' \
	  $(IMAGE_DIR)/ldd.txt | sort -u >$(IMAGE_DIR)/libs.txt
	@while read -r l; do \
	  install -D -m "$$(stat -L -c %a "$$l")" "$$l" "$(IMAGE_ROOT)$$l" || exit 1; \
	done <$(IMAGE_DIR)/libs.txt
	@install -m 0644 /etc/ssl/certs/ca-certificates.crt $(IMAGE_ROOT)/etc/ssl/certs/
	@printf 'root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:$(IMAGE_USER):$(IMAGE_USER):nonroot:/:/sbin/nologin\n' \
	  >$(IMAGE_ROOT)/etc/passwd
	@printf 'root:x:0:\nnonroot:x:$(IMAGE_USER):\n' >$(IMAGE_ROOT)/etc/group
	@chmod 0644 $(IMAGE_ROOT)/etc/passwd $(IMAGE_ROOT)/etc/group
	@find $(IMAGE_ROOT) -exec touch -h -d @$(SOURCE_DATE_EPOCH) {} +
	@echo "image-root: $$(find $(IMAGE_ROOT) -type f | wc -l) files ($$(wc -l <$(IMAGE_DIR)/libs.txt) libraries), $$(du -sh $(IMAGE_ROOT) | cut -f1) in $(IMAGE_ROOT)"

image:
	$(call install_debs,$(BUILD_DEBS) $(IMAGE_DEBS))
	@$(MAKE) --no-print-directory -j$(NPROC) image-root
	@rm -rf $(IMAGE_DIR)/layout $(IMAGE_DIR)/bundle $(IMAGE_OCI)
	@umoci init --layout $(IMAGE_DIR)/layout
	@umoci new --image $(IMAGE_DIR)/layout:$(IMAGE_REF)
	@umoci unpack --image $(IMAGE_DIR)/layout:$(IMAGE_REF) $(IMAGE_DIR)/bundle >/dev/null
	@cp -a $(IMAGE_ROOT)/. $(IMAGE_DIR)/bundle/rootfs/
	@umoci repack --image $(IMAGE_DIR)/layout:$(IMAGE_REF) --history.created=$(IMAGE_DATE) \
	  --history.created_by="make image-root" $(IMAGE_DIR)/bundle
	@umoci config --image $(IMAGE_DIR)/layout:$(IMAGE_REF) --created=$(IMAGE_DATE) \
	  --history.created=$(IMAGE_DATE) --history.created_by="make image (Containerfile)" \
	  --config.entrypoint=/optipod --config.user=$(IMAGE_USER):$(IMAGE_USER) \
	  $(addprefix --config.label=,$(IMAGE_LABELS))
	@umoci gc --layout $(IMAGE_DIR)/layout
	@rm -rf $(IMAGE_DIR)/bundle
	@tar --sort=name --mtime=@$(SOURCE_DATE_EPOCH) --owner=0 --group=0 --numeric-owner \
	  --mode=a+rX,u+w -cf $(IMAGE_OCI) -C $(IMAGE_DIR)/layout .
	@echo "image: $(IMAGE_REF) in $(IMAGE_OCI): $$(du -h $(IMAGE_OCI) | cut -f1) (root $$(du -sh $(IMAGE_ROOT) | cut -f1) uncompressed)"

# Runs in CI after `make image`: the archive agrees with the Containerfile, holds exactly the
# root image-root computed, and the binaries run inside it as its user (test/image_check.sh).
image-check:
	$(call install_debs,$(IMAGE_DEBS))
	@$(MAKE) -s --no-print-directory $(O)/tools/image_config
	@OPTIPOD_BUILD=$(O) test/image_check.sh $(IMAGE_OCI) $(IMAGE_REF) $(IMAGE_ROOT)

# --- one-file install, kubectl plugin release ---------------------------------------------
# dist/optipod.yaml: what `helm install optipod charts/optipod -n optipod-system
# --create-namespace` creates, for `kubectl apply --server-side -f`, rendered from the chart
# with its default values by test/tools/render_chart (no Helm needed). Committed;
# test_dist fails when it differs from the chart's rendering.
MANIFEST_ARGS := --release optipod --namespace optipod-system --include-crds --create-namespace

manifests: $(O)/tools/render_chart
	@mkdir -p dist
	@$(O)/tools/render_chart $(MANIFEST_ARGS) --out dist/optipod.yaml
	@echo "manifests: dist/optipod.yaml, $$(grep -c '^kind: ' dist/optipod.yaml) objects"

# build/dist/kubectl-optipod_<version>_linux_amd64.tar.gz: the kubectl plugin's release archive
# (both binaries, stripped, and LICENSE; file times and owners fixed, gzip without a name or
# time) and its .sha256 (test/dist.sh). plugins/optipod.yaml, the krew manifest, points at it:
# make dist rewrites its sha256 with the archive's and test/tools/krew_check proves the rest
# agrees (version, uri, files, bin).
DIST_DIR    ?= build/dist
PLUGIN      ?= plugins/optipod.yaml

dist: $(BINS) $(O)/tools/krew_check
	@test -z "$(SANITIZE)" || { echo "dist: build the release without SANITIZE" >&2; exit 1; }
	@SOURCE_DATE_EPOCH=$(SOURCE_DATE_EPOCH) test/dist.sh $(O) $(VERSION) $(DIST_DIR) $(PLUGIN)

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
