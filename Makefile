# rowsync: the two commands of the README and their helpers.
#
#   make demo   a point-of-sale day, offline then synced, against an in-process
#               reference server (about a second once built)
#   make test   every check CI runs: fmt, clippy, tests, binding tests, quick
#               benchmark; keeps going after a failure and ends with
#               "N passed, N failed, N skipped"
#
# The demo uses the debug profile on purpose: it runs in well under a second
# there, and it shares its build with `make test` and the CLI, so a newcomer
# compiles the workspace once.

SHELL := bash
.SHELLFLAGS := -e -o pipefail -c
.ONESHELL:
CARGO ?= cargo

.PHONY: help demo test cli build

help:
	@echo "make demo    play the point-of-sale demo (start here)"
	@echo "make test    fmt, clippy, tests, binding tests, quick benchmark"
	@echo "make cli     build the rowsync command line (target/debug/rowsync)"
	@echo "make test-long  the long reliability runs (see RELIABILITY.md)"
	@echo "make test-swift-sanitizers  the Swift binding tests under ASan and TSan"
	@echo "make fuzz    fuzz the decoders of server input (nightly, cargo-fuzz)"

demo:
	@$(CARGO) run --quiet -p rowsync-demo

cli:
	@$(CARGO) build -p rowsync-cli
	echo "built: $${CARGO_TARGET_DIR:-target}/debug/rowsync  (try: rowsync --help)"

build:
	@$(CARGO) build --workspace --all-targets

# The benchmark harness with small sizes (seconds): fails only on an error,
# never on a missed target. Full run: cargo run --release -p rowsync-bench
.PHONY: bench-quick
bench-quick:
	@$(CARGO) run --quiet -p rowsync-bench -- --quick

# The long reliability runs (RELIABILITY.md); `make test` runs shorter ones.
#   make test-sim    SEEDS seeds of the deterministic simulation (release)
#   make test-model  RUNS sequences of the model-based test (release)
#   make test-proxy  FAULTS faults through the fault proxy, over real HTTP
#   make test-crash  KILLS SIGKILLs of real rowsync processes (kill loop)
SEEDS ?= 100000
RUNS ?= 10000
FAULTS ?= 10000
KILLS ?= 1000
.PHONY: test-sim test-model test-proxy test-crash test-long
test-sim:
	@ROWSYNC_SIM_SEEDS=$(SEEDS) $(CARGO) test --release -p rowsync-e2e --test sim -- --nocapture

test-model:
	@ROWSYNC_MODEL_RUNS=$(RUNS) $(CARGO) test --release -p rowsync-e2e --test model -- --nocapture

test-proxy:
	@ROWSYNC_PROXY_FAULTS=$(FAULTS) $(CARGO) test --release -p rowsync-e2e --test proxy -- --nocapture

test-crash:
	@ROWSYNC_KILLS=$(KILLS) $(CARGO) test -p rowsync-cli --test kill_loop -- --nocapture

test-long: test-sim test-model test-proxy test-crash

# The Swift binding tests under AddressSanitizer, then ThreadSanitizer
# (bindings/swift/README.md). Not in `make test`: each run builds the package
# instrumented, about 1.5 minutes apiece from cold on 2 busy cores (3 in
# all, against 1.7 for the plain Swift step), and what they guard, the
# Swift glue's memory and threads, changes only with ffi/ or bindings/swift.
.PHONY: test-swift-sanitizers
test-swift-sanitizers:
	@SANITIZE=address bash bindings/scripts/test-swift.sh
	SANITIZE=thread bash bindings/scripts/test-swift.sh

# Coverage-guided fuzzing (cargo fuzz, nightly: `cargo install cargo-fuzz`)
# of the login, pull and save decoders of both dialects and of the C API's
# JSON inputs, FUZZ_SECONDS each, growing the corpus in fuzz/corpus (which
# `make test` replays on stable). Prints each target's executions.
FUZZ_SECONDS ?= 600
.PHONY: fuzz
fuzz:
	@cd fuzz
	for t in login pull save c_api; do
	  cargo +nightly fuzz run -O $$t corpus/$$t -- -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 2>&1 \
	    | tee /tmp/rowsync-fuzz-$$t.log | grep -E '^(stat::number_of_executed_units|==[0-9]+== ERROR|SUMMARY)' | sed "s/^/$$t: /"
	  [ $${PIPESTATUS[0]} -eq 0 ] || { echo "fuzz target $$t failed: see /tmp/rowsync-fuzz-$$t.log and fuzz/artifacts/$$t"; exit 1; }
	done

# Each step runs even if an earlier one failed; the last line counts them.
test:
	@passed=0; failed=0; skipped=0; failures=()
	step() {
	  local name="$$1"; shift
	  local start=$$SECONDS
	  echo
	  echo "==> $$name: $$*"
	  local status=0
	  "$$@" || status=$$?
	  if [ $$status -eq 0 ]; then
	    passed=$$((passed + 1)); echo "<== $$name: ok ($$((SECONDS - start)) s)"
	  elif [ $$status -eq 77 ]; then
	    skipped=$$((skipped + 1)); echo "<== $$name: SKIPPED ($$((SECONDS - start)) s)"
	  else
	    failed=$$((failed + 1)); failures+=("$$name"); echo "<== $$name: FAILED ($$((SECONDS - start)) s)"
	  fi
	}
	# A check whose tool this machine lacks is reported skipped, by name.
	skip() {
	  echo; echo "==> $$1: SKIPPED: $$2"; skipped=$$((skipped + 1))
	}
	if $(CARGO) fmt --version >/dev/null 2>&1; then
	  step fmt $(CARGO) fmt --all -- --check
	else skip fmt "rustfmt is not installed: formatting not checked"; fi
	if $(CARGO) clippy --version >/dev/null 2>&1; then
	  step clippy $(CARGO) clippy --workspace --all-targets -- -D warnings
	else skip clippy "clippy is not installed: lints not checked"; fi
	step tests $(CARGO) test --workspace
	for script in check-header test-c test-kotlin test-swift; do
	  step "$$script" bash "bindings/scripts/$$script.sh"
	done
	step bench-quick $(MAKE) -f $(firstword $(MAKEFILE_LIST)) --no-print-directory bench-quick
	echo
	if [ $$failed -gt 0 ]; then echo "failed: $${failures[*]}"; fi
	echo "$$passed passed, $$failed failed, $$skipped skipped"
	[ $$failed -eq 0 ]
