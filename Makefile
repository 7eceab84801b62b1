# shmq — one hand-written Makefile (as LMDB, liburing and Redis do).
#
#   make            library, tools, examples
#   make demo       install missing packages (as root), build, run the demo
#   make test       unit suites (CUnit) and CLI integration tests
#   make test-long  crash/fault loops with a larger count (SOAK=N)
#   make asan       the test suite under ASan+UBSan (build-asan/)
#   make bench      shmq against the alternatives (bench/run.sh: RUNS=, QUICK=1)
#   make install    PREFIX=/usr/local DESTDIR=
#   V=1 shows full commands; WERROR=0 drops -Werror.

VERSION_MAJOR := 0
VERSION_MINOR := 1
VERSION_PATCH := 0
VERSION := $(VERSION_MAJOR).$(VERSION_MINOR).$(VERSION_PATCH)
# The ABI version moves independently of the release version: the soname
# changes only when the ABI breaks.
ABI_MAJOR := 1
ABI_VERSION := $(ABI_MAJOR).0.0

PREFIX ?= /usr/local
LIBDIR ?= $(PREFIX)/lib
INCLUDEDIR ?= $(PREFIX)/include
BINDIR ?= $(PREFIX)/bin
MANDIR ?= $(PREFIX)/share/man
PKGCONFIGDIR ?= $(LIBDIR)/pkgconfig
SYSTEMDUNITDIR ?= $(PREFIX)/lib/systemd/system

B ?= build
CC ?= cc
WERROR ?= 1
WARN := -Wall -Wextra -Wpedantic -Wshadow -Wstrict-prototypes \
	-Wmissing-prototypes
ifeq ($(WERROR),1)
WARN += -Werror
endif
OPT ?= -O2 -g
SAN ?=
BASE_CFLAGS := -std=c11 -D_GNU_SOURCE $(OPT) $(WARN) $(SAN) -MMD -MP \
	-Ilibshmq/include -pthread
ALL_CFLAGS := $(BASE_CFLAGS) $(CFLAGS) $(CPPFLAGS)
ALL_LDFLAGS := $(SAN) -pthread $(LDFLAGS)
LIB_LIBS := -lisal -luring -lpthread

ifeq ($(V),1)
Q :=
else
Q := @
endif

LIB_SRC := $(sort $(wildcard libshmq/*.c))
LIB_PIC := $(LIB_SRC:%.c=$(B)/pic/%.o)
LIB_OBJ := $(LIB_SRC:%.c=$(B)/obj/%.o)
COMMON_SRC := $(sort $(wildcard tools/common/*.c))
COMMON_OBJ := $(COMMON_SRC:%.c=$(B)/obj/%.o)
CTL_OBJ := $(patsubst %.c,$(B)/obj/%.o,$(sort $(wildcard tools/shmqctl/*.c)))
PERF_OBJ := $(patsubst %.c,$(B)/obj/%.o,$(sort $(wildcard tools/perf/*.c)))
REPL_OBJ := $(patsubst %.c,$(B)/obj/%.o,$(sort $(wildcard replicator/*.c)))
EX_SRC := $(sort $(wildcard examples/*.c))
EX_BIN := $(EX_SRC:examples/%.c=$(B)/bin/examples/%)
BENCH_SRC := $(sort $(wildcard bench/*.c))
BENCH_BIN := $(BENCH_SRC:bench/%.c=$(B)/bin/bench/%)
TEST_SRC := $(sort $(wildcard tests/unit/*.c))
TEST_OBJ := $(TEST_SRC:%.c=$(B)/obj/%.o)

SONAME := libshmq.so.$(ABI_MAJOR)
SO := $(B)/lib/libshmq.so.$(ABI_VERSION)
STATIC := $(B)/lib/libshmq.a
CTL := $(B)/bin/shmqctl
PERF := $(B)/bin/shmq-perf
REPL := $(B)/bin/shmq-replicator
TESTS := $(B)/bin/shmq-tests

.PHONY: all lib clean test test-unit test-cli test-long demo asan install \
	uninstall format format-check deps check analyze

all: lib $(CTL) $(PERF) $(REPL) $(EX_BIN) $(BENCH_BIN) $(B)/lib/shmq.pc

lib: $(SO) $(B)/lib/$(SONAME) $(B)/lib/libshmq.so $(STATIC)

$(B)/pic/%.o: %.c
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC(pic) $<")
	$(Q)$(CC) $(ALL_CFLAGS) -fPIC -fvisibility=hidden -DSHMQ_BUILDING -c $< -o $@

$(B)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $<")
	$(Q)$(CC) $(ALL_CFLAGS) -DSHMQ_BUILDING -c $< -o $@

$(SO): $(LIB_PIC) libshmq/libshmq.map
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) -shared -Wl,-soname,$(SONAME) \
		-Wl,--version-script=libshmq/libshmq.map -Wl,-z,defs \
		-o $@ $(LIB_PIC) $(ALL_LDFLAGS) $(LIB_LIBS)

$(B)/lib/$(SONAME): $(SO)
	$(Q)ln -sf $(notdir $(SO)) $@
$(B)/lib/libshmq.so: $(B)/lib/$(SONAME)
	$(Q)ln -sf $(SONAME) $@

$(STATIC): $(LIB_OBJ)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  AR      $@")
	$(Q)rm -f $@ && ar rcs $@ $^

# Tools link the static archive: one self-contained binary each.
$(CTL): $(CTL_OBJ) $(COMMON_OBJ) $(STATIC)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) -o $@ $^ $(ALL_LDFLAGS) $(LIB_LIBS) -lm

$(PERF): $(PERF_OBJ) $(COMMON_OBJ) $(STATIC)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) -o $@ $^ $(ALL_LDFLAGS) $(LIB_LIBS) -lm

# The replicator uses only shmq.h, like the tools.
$(REPL): $(REPL_OBJ) $(STATIC)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) -o $@ $^ $(ALL_LDFLAGS) $(LIB_LIBS)

# Examples use only shmq.h and link the shared library, as users would.
# The sqlite_* examples (idempotent consumers) also link SQLite.
$(B)/bin/examples/sqlite_%: EX_LIBS := -lsqlite3
$(B)/bin/examples/%: examples/%.c $(wildcard examples/*.h) $(SO) \
		$(B)/lib/libshmq.so
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(filter-out -MMD -MP,$(BASE_CFLAGS)) $(CFLAGS) -o $@ $< \
		-L$(B)/lib -lshmq $(EX_LIBS) \
		-Wl,-rpath,'$$ORIGIN/../../lib' $(ALL_LDFLAGS)

# Tests link the static archive and may include internal.h for the
# shmqi_ hooks (fault injection, crash points) the .so hides.
$(TEST_OBJ): ALL_CFLAGS += -Ilibshmq -Itests/unit

# Machine baselines for the benchmarks: standalone, no library.
$(B)/bin/bench/%: bench/%.c
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(filter-out -MMD -MP,$(BASE_CFLAGS)) $(CFLAGS) -o $@ $< \
		$(ALL_LDFLAGS)

# qbench (issue 4): one harness, every transport.  Not in `all`: ZeroMQ
# and hiredis are bench-only packages; `make bench` builds it.  Whatever
# transport files exist are linked (transport.c declares them weak).
QB_SRC := $(sort $(wildcard bench/qbench/*.c))
QB_OBJ := $(QB_SRC:%.c=$(B)/obj/%.o)
QB_LIBS := -lnng -lzmq -lhiredis $(LIB_LIBS) -lrt -lm
$(B)/bin/bench/qbench: $(QB_OBJ) $(STATIC)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) -o $@ $^ $(ALL_LDFLAGS) $(QB_LIBS)

$(TESTS): $(TEST_OBJ) $(STATIC)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) -o $@ $^ $(ALL_LDFLAGS) $(LIB_LIBS) -lcunit -lm

$(B)/lib/shmq.pc: libshmq/shmq.pc.in Makefile
	@mkdir -p $(dir $@)
	$(Q)sed -e 's|@PREFIX@|$(PREFIX)|g' -e 's|@LIBDIR@|$(LIBDIR)|g' \
		-e 's|@INCLUDEDIR@|$(INCLUDEDIR)|g' -e 's|@VERSION@|$(VERSION)|g' \
		$< > $@

deps:
	@tools/deps.sh

test: deps all $(TESTS)
	@tools/run-tests.sh $(B)

test-long: deps all $(TESTS)
	@SHMQ_SOAK=$${SOAK:-20} tools/run-tests.sh $(B)

asan:
	$(MAKE) B=build-asan OPT="-O1 -g" \
		SAN="-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer" test

demo: deps all
	@tools/demo.sh $(B)

install: all
	install -d $(DESTDIR)$(LIBDIR) $(DESTDIR)$(INCLUDEDIR) $(DESTDIR)$(BINDIR) \
		$(DESTDIR)$(PKGCONFIGDIR) $(DESTDIR)$(MANDIR)/man1 \
		$(DESTDIR)$(MANDIR)/man3 $(DESTDIR)$(MANDIR)/man7 \
		$(DESTDIR)$(MANDIR)/man8 $(DESTDIR)$(SYSTEMDUNITDIR)
	install -m 644 libshmq/include/shmq.h $(DESTDIR)$(INCLUDEDIR)/
	install -m 755 $(SO) $(DESTDIR)$(LIBDIR)/
	ln -sf $(notdir $(SO)) $(DESTDIR)$(LIBDIR)/$(SONAME)
	ln -sf $(SONAME) $(DESTDIR)$(LIBDIR)/libshmq.so
	install -m 644 $(STATIC) $(DESTDIR)$(LIBDIR)/
	sed -e 's|@PREFIX@|$(PREFIX)|g' -e 's|@LIBDIR@|$(LIBDIR)|g' \
		-e 's|@INCLUDEDIR@|$(INCLUDEDIR)|g' -e 's|@VERSION@|$(VERSION)|g' \
		libshmq/shmq.pc.in > $(DESTDIR)$(PKGCONFIGDIR)/shmq.pc
	install -m 755 $(CTL) $(PERF) $(REPL) $(DESTDIR)$(BINDIR)/
	for m in libshmq/man/*.[1378]; do \
		s=$${m##*.}; install -m 644 $$m $(DESTDIR)$(MANDIR)/man$$s/; done
	sed -e 's|/usr/local/bin/|$(BINDIR)/|' \
		replicator/shmq-replicator.service \
		> $(DESTDIR)$(SYSTEMDUNITDIR)/shmq-replicator.service

uninstall:
	rm -f $(DESTDIR)$(INCLUDEDIR)/shmq.h $(DESTDIR)$(LIBDIR)/libshmq.* \
		$(DESTDIR)$(PKGCONFIGDIR)/shmq.pc $(DESTDIR)$(BINDIR)/shmqctl \
		$(DESTDIR)$(BINDIR)/shmq-perf $(DESTDIR)$(BINDIR)/shmq-replicator \
		$(DESTDIR)$(SYSTEMDUNITDIR)/shmq-replicator.service
	for m in libshmq/man/*.[1378]; do \
		s=$${m##*.}; rm -f $(DESTDIR)$(MANDIR)/man$$s/$${m##*/}; done

FORMAT_SRC = $(wildcard libshmq/*.c libshmq/*.h libshmq/include/*.h \
	tools/*/*.c tools/*/*.h examples/*.c examples/*.h tests/unit/*.c tests/unit/*.h \
	bench/*.c bench/qbench/*.c bench/qbench/*.h replicator/*.c \
	replicator/*.h)
format:
	clang-format -i $(FORMAT_SRC)
format-check:
	clang-format --dry-run -Werror $(FORMAT_SRC)

# The durability targets of issue 3 in one run: RUNS=N (5), QUICK=1.
bench-durable: all
	@RUNS='$(RUNS)' QUICK='$(QUICK)' bench/durable.sh $(B)

# Issue 4: shmq side by side with pipes, mq, sockets, nng, ZeroMQ and
# Redis, one harness (qbench): RUNS=N (3), QUICK=1, OUT=FILE.  The bench
# packages come first: qbench needs the zmq and hiredis headers to build.
.PHONY: bench
bench:
	@tools/deps.sh --bench
	@$(MAKE) --no-print-directory B='$(B)' all $(B)/bin/bench/qbench
	@RUNS='$(RUNS)' QUICK='$(QUICK)' OUT='$(OUT)' bench/run.sh $(B)

analyze:
	cppcheck --quiet --error-exitcode=1 --std=c11 -Ilibshmq/include \
		--suppress=missingIncludeSystem libshmq tools examples replicator

clean:
	rm -rf build build-asan

-include $(shell find $(B) -name '*.d' 2>/dev/null)
