# libtasker — `make help` lists the targets.
#
# Needs Go and gcc. Whatever else a target needs (python3, ruby, ruby-ffi) it installs
# from Debian's packages when missing and run as root; otherwise it stops and
# prints the exact command to run.

SHELL      := /bin/bash
GO         ?= go
CC         ?= gcc
PYTHON     ?= python3
RUBY       ?= ruby
PREFIX     ?= /usr/local
BUILD      := build
LIB        := $(BUILD)/libtasker.so
GOFILES    := $(shell find channel runtime ffi internal source -name '*.go' -not -name '*_test.go') go.mod go.sum
CFILES     := ffi/shim.c ffi/shim.h ffi/libtasker.map include/tasker.h
LDFLAGS    := -s -w -extldflags=-Wl,--version-script=$(CURDIR)/ffi/libtasker.map
export TASKER_LIBRARY := $(CURDIR)/$(LIB)
# Tests that need PostgreSQL start their own throwaway server; under make a missing server fails them.
export TASKER_PG_REQUIRED := 1

.PHONY: all build test test-go test-c test-symbols test-python test-ruby lint demo demo-python demo-ruby \
        bench bench-quick bench-go install uninstall clean help deps-ruby deps-python deps-postgres \
        test-cluster demo-cluster soak-cluster

all: build ## Build build/libtasker.so (the default)

build: $(LIB) ## Build build/libtasker.so

$(LIB): $(GOFILES) $(CFILES)
	@mkdir -p $(BUILD)
	$(GO) build -buildmode=c-shared -ldflags='$(LDFLAGS)' -o $@ ./ffi
	@rm -f $(BUILD)/libtasker.h   # cgo's generated header; include/tasker.h is the public one

help: ## List the targets
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

# ---- tests ----

test: lint test-go test-c test-symbols test-python test-ruby test-cluster ## Run every test: Go (-race), C harness, symbols, Python, Ruby, cluster
	@echo "make test: all suites passed"

lint: ## gofmt and go vet
	@out=$$(gofmt -l channel runtime ffi internal source cmd tests/bench); if [ -n "$$out" ]; then echo "gofmt needed: $$out"; exit 1; fi
	$(GO) vet ./...

test-go: ## Go unit, stress, model and leak tests under the race detector
	$(GO) test -race -count=1 ./...

test-c: $(LIB) ## The C harness (each scenario in its own process)
	@bash tests/c/run.sh

test-symbols: $(LIB) ## The exported tasker_* symbols are exactly the header's functions
	@so=$$(nm -D --defined-only $(LIB) | awk '$$2=="T"{print $$3}' | grep '^tasker_' | sort -u); \
	hdr=$$(grep -oE '\btasker_[a-z0-9_]+[[:space:]]*\(' include/tasker.h | tr -d ' (' | sort -u); \
	if [ "$$so" != "$$hdr" ]; then echo "symbol mismatch:"; diff <(echo "$$hdr") <(echo "$$so"); exit 1; fi; \
	other=$$(nm -D --defined-only $(LIB) | awk '$$2=="T"{print $$3}' | grep -v '^tasker_' || true); \
	if [ -n "$$other" ]; then echo "unexpected exports: $$other"; exit 1; fi; \
	echo "symbols: $$(echo "$$so" | wc -l) tasker_* functions, same as include/tasker.h"

test-python: $(LIB) deps-python ## Python binding tests (standard library unittest)
	cd bindings/python && $(PYTHON) -m unittest discover -s tests -t . -v

test-ruby: $(LIB) deps-ruby ## Ruby binding tests (minitest)
	cd bindings/ruby && $(RUBY) -Ilib -Itest test/run_all.rb

# Worker processes (2 Python, 1 Ruby) on the PostgreSQL source against a throwaway server: one
# run kill -9s a worker while it holds leases (20 ms steps keep some in flight; the run fails if the
# kill hit none), one restarts PostgreSQL, one uses queues made the way pgmq makes them with
# invalid messages among the steps. Each counts one result per msg_id from the database.
CLUSTER := $(PYTHON) tests/cluster/cluster.py
test-cluster: $(LIB) deps-python deps-ruby deps-postgres ## Multi-process runs on the PostgreSQL source: kill -9, restart, pgmq layout
	$(CLUSTER) --title "cluster: kill -9 of a worker" --messages 3000 --python 2 --ruby 1 --kill 1 --sleep-ms 20 --require-kill-hit
	$(CLUSTER) --title "cluster: PostgreSQL restart" --messages 3000 --python 2 --ruby 1 --restart
	$(CLUSTER) --title "cluster: pgmq-shaped queues, invalid messages" --messages 1000 --python 1 --ruby 1 --layout pgmq --invalid 8

deps-postgres: ## Install the PostgreSQL server from Debian when missing (tests start their own throwaway one)
	@if ! bash tests/pg/pg.sh check || ! command -v psql >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing postgresql from Debian"; \
	    (apt-get update -qq || true) && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null; \
	  else \
	    echo "PostgreSQL is needed. Run:  sudo apt-get install -y postgresql"; exit 1; \
	  fi; \
	fi

deps-python: ## Install python3 from Debian when missing (the binding needs only its standard library)
	@if ! command -v $(PYTHON) >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing python3 from Debian"; \
	    (apt-get update -qq || true) && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3 >/dev/null; \
	  else \
	    echo "Python 3 is needed. Run:  sudo apt-get install -y python3"; exit 1; \
	  fi; \
	fi

deps-ruby: ## Install ruby and ruby-ffi from Debian when missing
	@if ! command -v $(RUBY) >/dev/null 2>&1 || ! $(RUBY) -e 'require "ffi"; require "minitest"' >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing ruby, ruby-ffi and ruby-minitest from Debian"; \
	    (apt-get update -qq || true) && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq ruby ruby-ffi ruby-minitest >/dev/null; \
	  else \
	    echo "Ruby with the ffi gem is needed. Run:  sudo apt-get install -y ruby ruby-ffi ruby-minitest"; exit 1; \
	  fi; \
	fi

# ---- the main job ----

demo: $(LIB) deps-python ## The main job: a Python worker runs 20,000 steps, then its Ruby twin
	$(PYTHON) bindings/python/examples/demo.py
	$(MAKE) --no-print-directory demo-ruby

demo-python: $(LIB) deps-python ## Only the Python demo
	$(PYTHON) bindings/python/examples/demo.py

demo-ruby: $(LIB) deps-ruby ## Only the Ruby demo
	$(RUBY) -Ibindings/ruby/lib bindings/ruby/examples/demo.rb

demo-cluster: $(LIB) deps-python deps-ruby deps-postgres ## 20,000 steps on PostgreSQL, 2 Python + 2 Ruby worker processes, a kill -9, a restart
	@$(CLUSTER) --title "demo-cluster: 20,000 steps, 2 Python + 2 Ruby worker processes (4 threads each), one kill -9, one PostgreSQL restart" \
	  --messages 20000 --python 2 --ruby 2 --threads 4 --kill 1 --kill-at 0.25 --restart --restart-at 0.55 --rate 2500 --sleep-ms 5 --table

soak-cluster: $(LIB) deps-python deps-ruby deps-postgres ## Proof run: 100,000 steps, 4 worker processes, a kill -9, a restart (minutes)
	@$(CLUSTER) --title "soak-cluster: 100,000 steps, 2 Python + 2 Ruby worker processes, one kill -9, one PostgreSQL restart" \
	  --messages 100000 --python 2 --ruby 2 --threads 4 --kill 1 --kill-at 0.3 --restart --restart-at 0.6 --sleep-ms 5 --timeout 1800 --progress 15 --table

# ---- benchmarks (report only; nothing asserts a time) ----

bench-go: ## Go core benchmarks
	$(GO) test -run='^$$' -bench=. -benchmem ./channel ./runtime

bench: $(LIB) deps-python ## Full benchmark run (see BENCHMARKS.md)
	@bash tests/bench/run.sh

bench-quick: $(LIB) deps-python ## Benchmarks in under a minute
	@bash tests/bench/run.sh --quick

# ---- install ----

install: $(LIB) ## Install the library, header and pkg-config file under PREFIX (default /usr/local)
	install -d $(DESTDIR)$(PREFIX)/lib $(DESTDIR)$(PREFIX)/include $(DESTDIR)$(PREFIX)/lib/pkgconfig
	install -m 0755 $(LIB) $(DESTDIR)$(PREFIX)/lib/libtasker.so
	install -m 0644 include/tasker.h $(DESTDIR)$(PREFIX)/include/tasker.h
	sed -e 's|@PREFIX@|$(PREFIX)|g' tasker.pc.in > $(DESTDIR)$(PREFIX)/lib/pkgconfig/tasker.pc

uninstall: ## Remove what install put under PREFIX
	rm -f $(DESTDIR)$(PREFIX)/lib/libtasker.so $(DESTDIR)$(PREFIX)/include/tasker.h $(DESTDIR)$(PREFIX)/lib/pkgconfig/tasker.pc

clean: ## Remove build/
	rm -rf $(BUILD) tests/c/bin
