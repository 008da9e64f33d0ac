# subs: build, run and test the subscription lifecycle engine.
#   make run    build and start the engine on the defaults (prints its URL)
#   make test   every test, against a real PostgreSQL
# See `make help` for the rest.

SHELL := bash
GO    ?= go
BIN   := bin/subs

VERSION   ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS   := -X main.version=$(VERSION)
# staticcheck 2026.2.2, the release that supports Go 1.26.
STATICCHECK_VERSION := v0.8.2
# Where the test helper (eventstore/pgtest) starts its private cluster when
# the machine offers no PostgreSQL server: <PGTEST_DATA_DIR>/postgres.
PGTEST_DATA_DIR := .cache/pgtest
TEST_FLAGS ?= -count=1 -timeout 14m
# How much `make test` fuzzes each decoder of outside input (FUZZ_TARGETS):
# an execution count, since a time limit can end a run mid-minimization and
# fail it ("context deadline exceeded").
FUZZTIME   ?= 3000x
# package:target pairs fuzzed by `make fuzz` (and briefly by `make test`).
FUZZ_TARGETS := ./api:FuzzAccountEndpoints ./api:FuzzDecodeJSON ./workers/gateway:FuzzHandler \
	./workers/mail:FuzzRender ./domain/money:FuzzParseAmount ./domain/payment:FuzzNewCard \
	./domain/payment:FuzzNewBankAccount ./domain/payment:FuzzPaymentMethodJSON ./domain/subscription:FuzzParseIdempotencyKey
BENCHTIME  ?= 2s
BENCH      ?= .
BENCH_PKGS ?= ./...
BENCH_TIMEOUT ?= 30m

.PHONY: help build run test fuzz test-private-pg bench bench-100k simulate vet fmt-check staticcheck lint clean stop-test-postgres

help:
	@echo "make build            build $(BIN)"
	@echo "make run              build, then $(BIN) serve on the defaults (http://127.0.0.1:8080, data in ./data)"
	@echo "make test             run every test against a real PostgreSQL, then stop the test helper's private cluster"
	@echo "make test-private-pg  the same, forcing the test helper's private cluster (SUBS_TEST_FORCE_PRIVATE=1)"
	@echo "make fuzz             fuzz every decoder of outside input for FUZZTIME each (make test does it too)"
	@echo "make bench            run the benchmarks and print their BENCH lines"
	@echo "make bench-100k       the simulation's 100,000-customer year alone, on the private cluster (some 4 minutes here)"
	@echo "make simulate         build, then $(BIN) simulate: 10,000 customers through 365 simulated days (SIM_FLAGS adds flags)"
	@echo "make lint             vet, fmt-check and staticcheck"
	@echo "make clean            stop the test cluster, remove bin/ and .cache/ (never ./data)"

build:
	$(GO) build -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/subs

run: build
	./$(BIN) serve

# The tests' exit status is kept; the test helper's private cluster, if one
# was started, is stopped whatever it was.
test:
	@status=0; $(GO) test $(TEST_FLAGS) ./... || status=$$?; \
	[ $$status -ne 0 ] || $(MAKE) --no-print-directory fuzz || status=$$?; \
	$(MAKE) --no-print-directory stop-test-postgres || { [ $$status -ne 0 ] || status=1; }; \
	exit $$status

test-private-pg:
	@status=0; SUBS_TEST_FORCE_PRIVATE=1 $(GO) test $(TEST_FLAGS) ./... || status=$$?; \
	$(MAKE) --no-print-directory stop-test-postgres || { [ $$status -ne 0 ] || status=1; }; \
	exit $$status

# The simulation's benchmarks run after the others, alone, on the test
# helper's private cluster whatever server the machine runs: the cluster
# sizes itself for the machine (eventstore/pgcluster), as the one
# `subs serve` starts, where a distribution's server keeps its defaults
# (128 MB of buffers, fsync on: the 100,000-customer year took 301.8 s
# there on day 21, beside the other benchmarks, against 213 to 265 s on
# the private cluster). The others compare the store with raw inserts on
# the server the tests use.
BENCH_RUN = $(GO) test -run '^$$' -bench '$(BENCH)' -benchtime=$(BENCHTIME) -timeout $(BENCH_TIMEOUT)
bench:
	@mkdir -p .cache; status=0; : > .cache/bench.out; \
	pkgs=$$($(GO) list $(BENCH_PKGS)) || exit $$?; \
	others=$$(echo "$$pkgs" | grep -v '/workers/simulation$$' || true); \
	simulation=$$(echo "$$pkgs" | grep '/workers/simulation$$' || true); \
	set -o pipefail; \
	if [ -n "$$others" ]; then $(BENCH_RUN) $$others | tee -a .cache/bench.out || status=$$?; fi; \
	if [ -n "$$simulation" ]; then SUBS_TEST_FORCE_PRIVATE=1 $(BENCH_RUN) $$simulation | tee -a .cache/bench.out || status=$$?; fi; \
	$(MAKE) --no-print-directory stop-test-postgres || true; \
	echo; echo "Benchmark figures:"; grep '^BENCH' .cache/bench.out || echo "(no BENCH lines)"; \
	exit $$status

# The throughput goal's year, 100,000 customers once, alone.
bench-100k:
	@$(MAKE) --no-print-directory bench \
		BENCH='Simulation/100000$$' BENCHTIME=1x BENCH_TIMEOUT=0 BENCH_PKGS=./workers/simulation

# A year of 10,000 customers on a database of its own (dropped afterwards),
# on DATABASE_URL's server or the private cluster under ./data.
SIM_FLAGS ?=
simulate: build
	./$(BIN) simulate --customers 10000 --days 365 $(SIM_FLAGS)

# Each fuzz target runs for FUZZTIME; a failure leaves its input under the
# package's testdata/fuzz, which the plain tests then replay.
fuzz:
	@mkdir -p .cache; for pt in $(FUZZ_TARGETS); do \
		pkg=$${pt%%:*}; target=$${pt##*:}; \
		echo "fuzz $$target ($$pkg): $(FUZZTIME)"; \
		$(GO) test -run '^$$' -fuzz "^$$target$$" -fuzztime $(FUZZTIME) $$pkg > .cache/fuzz.out 2>&1 || { cat .cache/fuzz.out; exit 1; }; \
	done

stop-test-postgres:
	@if [ -d $(PGTEST_DATA_DIR)/postgres ]; then \
		$(GO) run ./cmd/subs postgres stop --data-dir $(PGTEST_DATA_DIR); \
	fi

vet:
	$(GO) vet ./...

fmt-check:
	@out=$$(gofmt -l $$($(GO) list -f '{{.Dir}}' ./...)); \
	if [ -n "$$out" ]; then echo "gofmt would change these files (run gofmt -w):"; echo "$$out"; exit 1; fi

staticcheck:
	$(GO) run honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION) ./...

lint: vet fmt-check staticcheck

clean: stop-test-postgres
	rm -rf bin .cache
