# The commands people type. The real build is CMake, out of tree in build/.
BUILD ?= build
CMAKE_FLAGS ?=
JOBS ?= $(shell nproc 2>/dev/null || echo 2)
MAKEFLAGS += --no-print-directory

.PHONY: all wagate deps test-deps test unit e2e interop run demo sanitize clean fuzz fuzz-run format bench bench-smoke

all: wagate

deps:
	@scripts/deps.sh build

test-deps:
	@scripts/deps.sh test

$(BUILD)/CMakeCache.txt:
	@cmake -S . -B $(BUILD) $(CMAKE_FLAGS) >/dev/null

# The dashboard, built by Vite into web/dist and served by wagate from $(BUILD)/web.
WEB_SRC := $(shell find web/src web/public web/index.html web/package.json web/package-lock.json web/vite.config.ts web/tsconfig.json web/tsconfig.lib.json -type f 2>/dev/null)

wagate: deps $(BUILD)/CMakeCache.txt
	@cmake --build $(BUILD) -j $(JOBS)
	@if [ -f web/package.json ]; then $(MAKE) --no-print-directory $(BUILD)/web/index.html; fi

$(BUILD)/web/index.html: $(WEB_SRC)
	@cd web && npm run --silent build >/dev/null
	@rm -rf $(BUILD)/web && cp -r web/dist $(BUILD)/web

# Every test suite: the C unit tests (CTest + cmocka), then the end-to-end tests of
# our own binaries and the interop tests against the real reference clients from npm.
NODE_TESTS = tests/e2e/*.test.mjs tests/interop/*.test.mjs $(wildcard tests/browser/*.test.mjs)

test: test-deps wagate sanitize
	@cd $(BUILD) && ctest --output-on-failure -j $(JOBS)
	@if [ -f web/package.json ]; then cd web && npm test --silent; fi
	@WAGATE_BIN=$(CURDIR)/$(BUILD)/wagate node --test --test-concurrency=1 $(NODE_TESTS)
	@$(MAKE) --no-print-directory bench-smoke

# The C unit tests again, built with AddressSanitizer, UBSan and LeakSanitizer.
sanitize: test-deps
	@cmake -S . -B build-asan -DWAGATE_SANITIZE=ON $(CMAKE_FLAGS) >/dev/null
	@cmake --build build-asan -j $(JOBS) >/dev/null
	@cd build-asan && WAGATE_LOG_LEVEL=error ctest --output-on-failure -j $(JOBS)

unit: wagate
	@cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

e2e: test-deps wagate
	@WAGATE_BIN=$(CURDIR)/$(BUILD)/wagate node --test --test-concurrency=1 tests/e2e/*.test.mjs

interop: test-deps wagate
	@WAGATE_BIN=$(CURDIR)/$(BUILD)/wagate node --test --test-concurrency=1 tests/interop/*.test.mjs

# The gateway with the embedded defaults: SQLite in var/wagate.db, the API on 127.0.0.1:8080.
run: wagate
	$(BUILD)/wagate serve

# The benchmark side by side with Baileys 6 and 7 (about 45 minutes): bench/results/ and docs/performance.md.
bench: test-deps wagate
	@node bench/run.mjs

# The same at small N in about a minute (part of make test): build/bench-smoke/.
bench-smoke: test-deps wagate
	@node bench/run.mjs --smoke

# wagate serve against wagate mock with a paired demo session (no phone needed).
demo: wagate
	@scripts/demo.sh

# libFuzzer targets (clang, ASan+UBSan); see docs/wire.md for how to run them.
fuzz:
	@CC=clang cmake -S . -B build-fuzz -DWAGATE_FUZZ=ON >/dev/null
	@cmake --build build-fuzz -j $(JOBS)

# Runs every target for FUZZ_SECONDS (600) each, one after another; new inputs go to build-fuzz/corpus/,
# the committed seeds stay as they are. Stops at the first finding (its input is in the working directory).
FUZZ_SECONDS ?= 600
fuzz-run: SHELL := /bin/bash
fuzz-run: fuzz
	@for t in build-fuzz/fuzz_*; do n=$${t#build-fuzz/fuzz_}; mkdir -p build-fuzz/corpus/$$n; \
		echo "fuzz: $$n for $(FUZZ_SECONDS) s"; \
		$$t -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 build-fuzz/corpus/$$n fuzz/corpus/$$n 2>&1 | \
			grep -E "^(stat::number_of_executed_units|stat::peak_rss_mb|==[0-9]+==ERROR|SUMMARY)" ; \
		test $${PIPESTATUS[0]} -eq 0 || exit 1; done

format:
	@clang-format -i $$(git ls-files 'src/*.c' 'src/*.h' 'tests/*.c' 'fuzz/*.c')

clean:
	rm -rf $(BUILD) build-asan build-fuzz
