# libtasker — `make help` lists the targets.
#
# Needs Go and gcc. `make deps` installs the rest (python3, ruby, ruby-ffi,
# ruby-minitest, postgresql, ...) from Debian's packages when missing and run as root; otherwise
# it stops and prints the exact command to run. `make test`, `make demo` and
# `make bench` call it first; the test-* targets only run tests.
#
# `make build GOTAGS=tasker_nopg` builds the library without the PostgreSQL source (3 MB instead
# of 11 MB: pgx brings crypto/tls, net and x/text).

SHELL      := /bin/bash
GO         ?= go
CC         ?= gcc
PYTHON     ?= python3
RUBY       ?= ruby
MYPY       ?= mypy
PREFIX     ?= /usr/local
LIBDIR     ?= $(PREFIX)/lib
INCLUDEDIR ?= $(PREFIX)/include
LDCONFIG   ?= ldconfig
# Files that list the dynamic linker's directories (install runs ldconfig only for those).
LD_SO_CONF ?= /etc/ld.so.conf $(wildcard /etc/ld.so.conf.d/*.conf)
FUZZTIME   ?= 30s
BUILD      := build
DIST       := dist
# The release version (include/tasker.h's TASKER_VERSION_STRING) and the ABI major, which is
# the SONAME's number: libtasker.so.$(ABI) changes only when TASKER_ABI_VERSION does.
VERSION    := $(shell sed -n 's/^\#define TASKER_VERSION_STRING "libtasker \([0-9][0-9.]*\) .*/\1/p' include/tasker.h)
ABI        := $(shell sed -n 's/^\#define TASKER_ABI_VERSION \([0-9][0-9]*\).*/\1/p' include/tasker.h)
SONAME     := libtasker.so.$(ABI)
SOLIB      := $(BUILD)/$(SONAME)
LIB        := $(BUILD)/libtasker.so
GOFILES    := $(shell find channel runtime ffi $(wildcard internal source cmd) -name '*.go' -not -name '*_test.go') go.mod go.sum
GOTAGS     ?=
CFILES     := ffi/shim.c ffi/shim.h ffi/libtasker.map include/tasker.h
LINKFLAGS  := -extldflags=-Wl,--version-script=$(CURDIR)/ffi/libtasker.map,-soname,$(SONAME)
# The same library with its symbols (not stripped), for profiles: make bench splits its instructions
# by function (tests/bench/cgsplit.py). Same code as $(SOLIB); only the symbol tables differ.
SYMLIB     := $(BUILD)/sym/$(SONAME)
export TASKER_LIBRARY := $(CURDIR)/$(LIB)
# Tests that need PostgreSQL start their own throwaway server; under make a missing server fails them.
export TASKER_PG_REQUIRED := 1

.PHONY: all build deps test test-go test-c test-symbols test-python test-ruby test-install lint typecheck \
        demo demo-python demo-ruby bench bench-quick bench-go fuzz install uninstall wheel gem gem-source packages \
        check-versions clean help tasker-queue \
        test-cluster demo-cluster soak-cluster

all: build ## Build build/libtasker.so.1 and its dev symlink build/libtasker.so (the default)

build: $(LIB) ## Build build/libtasker.so.1 (SONAME libtasker.so.1) and the symlink build/libtasker.so

$(SOLIB) $(SYMLIB): $(GOFILES) $(CFILES)
	@mkdir -p $(@D)
	@if [ -z "$(ABI)" ] || [ -z "$(VERSION)" ]; then echo "cannot read TASKER_ABI_VERSION / TASKER_VERSION_STRING from include/tasker.h"; exit 1; fi
	$(GO) build -buildmode=c-shared -tags '$(GOTAGS)' -ldflags='$(if $(filter $(SYMLIB),$@),,-s -w) $(LINKFLAGS)' -o $@ ./ffi
	@rm -f $(@D)/libtasker.so.h $(@D)/libtasker.h   # cgo's generated header; include/tasker.h is the public one

# The name every in-repository user links or loads (tests, benches, TASKER_LIBRARY) is the dev
# symlink; the file itself carries the SONAME, so what links against it records libtasker.so.1.
$(LIB): $(SOLIB)
	ln -sfn $(SONAME) $@

$(BUILD)/sym/libtasker.so: $(SYMLIB)
	ln -sfn $(SONAME) $@

help: ## List the targets
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

# ---- tests ----

test: deps lint typecheck test-go test-c test-symbols test-python test-ruby test-install test-cluster ## Run every test: Go (-race), C harness, symbols, mypy, Python, Ruby, install, cluster
	@echo "make test: all suites passed"

lint: ## gofmt and go vet
	@out=$$(gofmt -l channel runtime ffi internal source cmd tests/bench); if [ -n "$$out" ]; then echo "gofmt needed: $$out"; exit 1; fi
	$(GO) vet ./...

test-go: ## Go unit, stress, model and leak tests under the race detector (PostgreSQL tests included); needs `make deps`
	TASKER_PG_REQUIRED=1 $(GO) test -race -count=1 ./...

test-c: $(LIB) ## The C harness (each scenario in its own process)
	@bash tests/c/run.sh

test-symbols: $(LIB) ## The exported tasker_* symbols are exactly the header's functions
	@so=$$(nm -D --defined-only $(LIB) | awk '$$2=="T"{print $$3}' | grep '^tasker_' | sort -u); \
	hdr=$$(grep -oE '\btasker_[a-z0-9_]+[[:space:]]*\(' include/tasker.h | tr -d ' (' | sort -u); \
	if [ "$$so" != "$$hdr" ]; then echo "symbol mismatch:"; diff <(echo "$$hdr") <(echo "$$so"); exit 1; fi; \
	other=$$(nm -D --defined-only $(LIB) | awk '$$2=="T"{print $$3}' | grep -v '^tasker_' || true); \
	if [ -n "$$other" ]; then echo "unexpected exports: $$other"; exit 1; fi; \
	echo "symbols: $$(echo "$$so" | wc -l) tasker_* functions, same as include/tasker.h"

typecheck: deps ## mypy --strict on bindings/python/tasker and the Python examples of README.md and bindings/python/README.md (the asyncio one too)
	@tmp=$$(mktemp -d) && trap 'rm -rf "$$tmp"' EXIT && \
	$(PYTHON) -c 'import re, sys; \
	[open(f"{sys.argv[1]}/readme_example_{i}.py", "w").write(re.search(r"```python\n(.*?)```", open(p).read(), re.S).group(1)) \
	 for i, p in enumerate(sys.argv[2:])]' "$$tmp" README.md bindings/python/README.md && \
	MYPYPATH=bindings/python $(MYPY) --strict --cache-dir="$$tmp/cache" bindings/python/tasker "$$tmp"/readme_example_0.py && \
	MYPYPATH=bindings/python $(MYPY) --strict --cache-dir="$$tmp/cache" "$$tmp"/readme_example_1.py && \
	$(PYTHON) -c 'import re, sys; t = open(sys.argv[2]).read().split("\n## asyncio\n", 1)[1]; \
	open(sys.argv[1], "w").write(re.search(r"```python\n(.*?)```", t, re.S).group(1))' "$$tmp/readme_asyncio.py" bindings/python/README.md && \
	MYPYPATH=bindings/python $(MYPY) --strict --cache-dir="$$tmp/cache" "$$tmp"/readme_asyncio.py

test-python: $(LIB) ## Python binding tests (standard library unittest; a throwaway PostgreSQL for the source test)
	cd bindings/python && TASKER_PG_REQUIRED=1 $(PYTHON) -m unittest discover -s tests -t . -v

test-ruby: $(LIB) ## Ruby binding tests (minitest; a throwaway PostgreSQL for the source test)
	cd bindings/ruby && TASKER_PG_REQUIRED=1 $(RUBY) -Ilib -Itest test/run_all.rb

# Worker processes (2 Python, 1 Ruby) on the PostgreSQL source against a throwaway server: one
# run kill -9s a worker while it holds leases (20 ms steps keep some in flight; the run fails if the
# kill hit none), one restarts PostgreSQL, one uses queues made the way pgmq makes them with
# invalid messages among the steps. Each counts one result per msg_id from the database.
CLUSTER := $(PYTHON) tests/cluster/cluster.py
test-cluster: $(LIB) ## (needs `make deps`) Multi-process runs on the PostgreSQL source: kill -9, restart, pgmq layout
	$(CLUSTER) --title "cluster: kill -9 of a worker" --messages 3000 --python 2 --ruby 1 --kill 1 --sleep-ms 20 --require-kill-hit
	$(CLUSTER) --title "cluster: PostgreSQL restart" --messages 3000 --python 2 --ruby 1 --restart
	$(CLUSTER) --title "cluster: pgmq-shaped queues, invalid messages" --messages 1000 --python 1 --ruby 1 --layout pgmq --invalid 8


test-install: $(LIB) wheel gem gem-source deps ## Install tests: make install + pkg-config C program, wheel in a fresh venv, gems in a fresh GEM_HOME (offline)
	@MAKE="$(MAKE)" PYTHON="$(PYTHON)" RUBY="$(RUBY)" GO="$(GO)" CC="$(CC)" bash tests/install/run.sh

fuzz: ## Run each fuzz target for FUZZTIME (default 30s); a failing input is saved under testdata/fuzz
	$(GO) test -run='^$$' -fuzz=FuzzStrictVsEncodingJSON -fuzztime=$(FUZZTIME) ./internal/strictjson
	$(GO) test -run='^$$' -fuzz=FuzzParseDispatch -fuzztime=$(FUZZTIME) ./internal/wire
	$(GO) test -run='^$$' -fuzz=FuzzParseResult -fuzztime=$(FUZZTIME) ./internal/wire

# ---- dependencies ----

# Debian packages the bindings' tests, the demos and the benchmarks need,
# each with the check that says it is present.
DEB_PYTHON        := python3
DEB_RUBY          := ruby
DEB_RUBY_FFI      := ruby-ffi
DEB_RUBY_MINITEST := ruby-minitest
DEB_RUBY_ASYNC    := ruby-async

deps: ## Install from Debian what tests, demos and benches need when missing (python3, ruby, ruby-ffi, ruby-minitest, ruby-async, mypy, pkg-config, binutils, python3-venv, valgrind, postgresql)
	@missing=""; \
	command -v $(PYTHON) >/dev/null 2>&1 || missing="$$missing $(DEB_PYTHON)"; \
	if ! command -v $(RUBY) >/dev/null 2>&1; then \
	  missing="$$missing $(DEB_RUBY) $(DEB_RUBY_FFI) $(DEB_RUBY_MINITEST) $(DEB_RUBY_ASYNC)"; \
	else \
	  $(RUBY) -e 'require "ffi"' >/dev/null 2>&1 || missing="$$missing $(DEB_RUBY_FFI)"; \
	  $(RUBY) -e 'require "minitest"' >/dev/null 2>&1 || missing="$$missing $(DEB_RUBY_MINITEST)"; \
	  $(RUBY) -e 'require "async"' >/dev/null 2>&1 || missing="$$missing $(DEB_RUBY_ASYNC)"; \
	fi; \
	command -v $(MYPY) >/dev/null 2>&1 || missing="$$missing mypy"; \
	command -v pkg-config >/dev/null 2>&1 || missing="$$missing pkg-config"; \
	command -v objdump >/dev/null 2>&1 || missing="$$missing binutils"; \
	command -v valgrind >/dev/null 2>&1 || missing="$$missing valgrind"; \
	{ bash tests/pg/pg.sh check >/dev/null 2>&1 && command -v psql >/dev/null 2>&1; } || missing="$$missing postgresql"; \
	$(PYTHON) -c 'import ensurepip, venv' >/dev/null 2>&1 || missing="$$missing python3-venv"; \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	  echo "installing from Debian:$$missing"; \
	  (apt-get update -qq || true) && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	else \
	  echo "missing:$$missing. Run:  sudo apt-get install -y$$missing"; exit 1; \
	fi

# ---- the main job ----

demo: $(LIB) deps ## The main job: a Python worker runs 20,000 steps, then its Ruby twin
	$(PYTHON) bindings/python/examples/demo.py
	$(MAKE) --no-print-directory demo-ruby

demo-python: $(LIB) deps ## Only the Python demo
	$(PYTHON) bindings/python/examples/demo.py

demo-ruby: $(LIB) deps ## Only the Ruby demo
	$(RUBY) -Ibindings/ruby/lib bindings/ruby/examples/demo.rb

tasker-queue: ## Build build/tasker-queue, the producer's CLI for the PostgreSQL source (docs/QUEUE.md)
	$(GO) build -o $(BUILD)/tasker-queue ./cmd/tasker-queue

demo-cluster: $(LIB) deps ## 20,000 steps on PostgreSQL, 2 Python + 2 Ruby worker processes, a kill -9, a restart
	@$(CLUSTER) --title "demo-cluster: 20,000 steps, 2 Python + 2 Ruby worker processes (4 threads each), one kill -9, one PostgreSQL restart" \
	  --messages 20000 --python 2 --ruby 2 --threads 4 --kill 1 --kill-at 0.25 --restart --restart-at 0.55 --rate 2500 --sleep-ms 20 --table

soak-cluster: $(LIB) deps ## Proof run: 100,000 steps, 4 worker processes, a kill -9, a restart (minutes)
	@$(CLUSTER) --title "soak-cluster: 100,000 steps, 2 Python + 2 Ruby worker processes, one kill -9, one PostgreSQL restart" \
	  --messages 100000 --python 2 --ruby 2 --threads 4 --kill 1 --kill-at 0.3 --restart --restart-at 0.6 --sleep-ms 5 --timeout 1800 --progress 15 --table

# ---- benchmarks (report only; nothing asserts a time) ----

bench-go: ## Go core benchmarks
	$(GO) test -run='^$$' -bench=. -benchmem ./channel ./runtime ./internal/wire ./ffi

bench: $(LIB) $(BUILD)/sym/libtasker.so deps ## Full benchmark run (see BENCHMARKS.md)
	@bash tests/bench/run.sh

bench-quick: $(LIB) deps ## Benchmarks in under a minute
	@bash tests/bench/run.sh --quick

# ---- install and packages ----

install: $(LIB) ## Install libtasker.so.1 + the libtasker.so symlink, tasker.h and tasker.pc under PREFIX (default /usr/local)
	install -d $(DESTDIR)$(LIBDIR) $(DESTDIR)$(INCLUDEDIR) $(DESTDIR)$(LIBDIR)/pkgconfig
	install -m 0755 $(SOLIB) $(DESTDIR)$(LIBDIR)/$(SONAME)
	ln -sfn $(SONAME) $(DESTDIR)$(LIBDIR)/libtasker.so
	install -m 0644 include/tasker.h $(DESTDIR)$(INCLUDEDIR)/tasker.h
	sed -e 's|@PREFIX@|$(PREFIX)|g' -e 's|@LIBDIR@|$(LIBDIR)|g' -e 's|@INCLUDEDIR@|$(INCLUDEDIR)|g' \
	    -e 's|@VERSION@|$(VERSION)|g' tasker.pc.in > $(DESTDIR)$(LIBDIR)/pkgconfig/tasker.pc
	@# The dynamic linker finds libtasker.so.1 by SONAME in its own directories (ld.so.conf) once
	@# ldconfig has refreshed its cache; anywhere else it needs LD_LIBRARY_PATH or an rpath.
	@libdir=$$(readlink -m "$(LIBDIR)"); system=no; \
	case "$$libdir" in /lib|/usr/lib|/lib64|/usr/lib64) system=yes ;; esac; \
	if [ $$system = no ] && cat $(LD_SO_CONF) 2>/dev/null | sed 's/#.*//' | grep -qxF "$$libdir"; then system=yes; fi; \
	if [ -n "$(DESTDIR)" ]; then \
	  echo "installed under DESTDIR=$(DESTDIR); once in place, run: ldconfig"; \
	elif [ $$system = yes ] && [ "$$(id -u)" = 0 ]; then \
	  echo "$(LDCONFIG)"; $(LDCONFIG); \
	elif [ $$system = yes ]; then \
	  echo "to let the dynamic linker find $(SONAME), run: sudo ldconfig"; \
	else \
	  echo "$(LIBDIR) is not one of the dynamic linker's directories; to run programs against it: export LD_LIBRARY_PATH=$(LIBDIR)\$${LD_LIBRARY_PATH:+:\$$LD_LIBRARY_PATH}  (or link with -Wl,-rpath,$(LIBDIR))"; \
	fi

uninstall: ## Remove what install put under PREFIX
	rm -f $(DESTDIR)$(LIBDIR)/$(SONAME) $(DESTDIR)$(LIBDIR)/libtasker.so $(DESTDIR)$(INCLUDEDIR)/tasker.h $(DESTDIR)$(LIBDIR)/pkgconfig/tasker.pc

WHEEL := $(DIST)/tasker-$(VERSION)-py3-none-linux_$(shell uname -m).whl
GEM   := $(DIST)/tasker-$(VERSION)-$(shell uname -m)-linux.gem
SRCGEM := $(DIST)/tasker-$(VERSION).gem

wheel: $(WHEEL) ## dist/tasker-<ver>-py3-none-linux_x86_64.whl: the Python package with libtasker inside (offline, standard library only)

$(WHEEL): $(SOLIB) bindings/python/pyproject.toml bindings/python/README.md $(wildcard bindings/python/tasker/*.py) | deps check-versions
	rm -f $(DIST)/tasker-*-py3-none-*.whl
	$(PYTHON) packaging/build_wheel.py --library $(SOLIB) --abi $(ABI) --out $(DIST)

gem: $(GEM) ## dist/tasker-<ver>-x86_64-linux.gem: the platform gem with libtasker inside lib/tasker/

$(GEM): $(SOLIB) bindings/ruby/tasker.gemspec bindings/ruby/README.md $(shell find bindings/ruby/lib -name '*.rb') | deps check-versions
	rm -f $(DIST)/tasker-*-linux.gem
	$(RUBY) packaging/build_gem.rb platform $(SOLIB) $(DIST) 2>&1 | grep -v '^WARNING\|^ *\(if \|add_\)' || true
	@test -f $@

gem-source: $(SRCGEM) ## dist/tasker-<ver>.gem: the source gem; its ext/ builds libtasker with Go at gem install time

$(SRCGEM): $(GOFILES) $(CFILES) bindings/ruby/tasker.gemspec bindings/ruby/ext/tasker/extconf.rb $(shell find bindings/ruby/lib -name '*.rb') | deps check-versions
	rm -f $@
	GO=$(GO) bash packaging/stage_go_sources.sh $(BUILD)/gem/gosrc >/dev/null
	$(RUBY) packaging/build_gem.rb source $(BUILD)/gem/gosrc $(DIST) 2>&1 | grep -v '^WARNING\|^ *\(if \|add_\)' || true
	@test -f $@

packages: wheel gem gem-source ## All three packages into dist/

check-versions: ## The version in include/tasker.h, pyproject.toml, tasker/__init__.py and the gem agree
	@py=$$(sed -n 's/^version = "\(.*\)"/\1/p' bindings/python/pyproject.toml); \
	pyi=$$(sed -n 's/^__version__ = "\(.*\)"/\1/p' bindings/python/tasker/__init__.py); \
	rb=$$(sed -n 's/.*VERSION = "\(.*\)"/\1/p' bindings/ruby/lib/tasker/version.rb); \
	if [ "$$py" != "$(VERSION)" ] || [ "$$pyi" != "$(VERSION)" ] || [ "$$rb" != "$(VERSION)" ]; then \
	  echo "version mismatch: include/tasker.h $(VERSION), pyproject.toml $$py, tasker/__init__.py $$pyi, version.rb $$rb"; exit 1; fi

clean: ## Remove build/ and dist/
	rm -rf $(BUILD) $(DIST) tests/c/bin
