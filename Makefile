# ipc.h - build, test, demo, bench. `make help` lists the targets.
CC      ?= cc
CFLAGS  ?= -O2 -g
WARN    := -Wall -Wextra -Wpedantic -Werror -Wshadow -Wstrict-prototypes
PREFIX  ?= /usr/local
B       := build
FORMAT  := ipc.h $(wildcard tests/*.c tests/*.h tests/compile/*.c tests/compile/*.cpp \
                            tests/bench/*.c examples/*.c)
EXAMPLES := $(patsubst examples/%.c,$(B)/examples/%,$(wildcard examples/*.c))
BENCHES  := $(patsubst tests/bench/%.c,$(B)/bench/%,$(wildcard tests/bench/*.c))
VERSION  := $(shell sed -n 's/^\#define IPC_VERSION_\(MAJOR\|MINOR\|PATCH\) *\([0-9]*\)/\2/p' ipc.h | paste -sd.)

.PHONY: FORCE all benches test demo bench format format-check install uninstall clean help

all: $(EXAMPLES)

benches: $(BENCHES)

help:
	@echo "make            build the examples into $(B)/examples (make benches: the benchmarks)"
	@echo "make test       format check, compile matrix, suite under gcc/clang/ASan/musl/-m32"
	@echo "make test T=shm_   only the tests whose names match (glob or substring)"
	@echo "make demo       build and run every example, a guided tour"
	@echo "make bench      measure (never fails on a number)"
	@echo "make format     clang-format every source; format-check only checks"
	@echo "make install PREFIX=/usr/local   ipc.h and ipc.pc; make uninstall"

$(B)/examples/%: examples/%.c ipc.h
	@mkdir -p $(@D)
	$(CC) -std=gnu11 $(CFLAGS) $(WARN) -I. $< -o $@ -pthread

$(B)/bench/%: tests/bench/%.c ipc.h
	@mkdir -p $(@D)
	$(CC) -std=gnu11 -O2 -g $(WARN) -I. $< -o $@ -pthread

test:
	@sh tests/suite.sh $(T)

demo: $(EXAMPLES)
	@for e in $(EXAMPLES); do \
	    echo; echo "=== $$e"; \
	    timeout 60 $$e || { echo "demo $$e failed"; exit 1; }; \
	done; echo; echo "demo: every example ran"

bench: $(BENCHES)
	@for b in $(BENCHES); do $$b || true; done

format:
	clang-format -i $(FORMAT)

format-check:
	@clang-format --dry-run --Werror $(FORMAT)

$(B)/ipc.pc: ipc.h Makefile FORCE
	@mkdir -p $(@D)
	@printf '%s\n' 'prefix=$(PREFIX)' 'includedir=$${prefix}/include' '' \
	    'Name: ipc.h' 'Description: Linux inter-process communication in one header' \
	    'Version: $(VERSION)' 'Cflags: -I$${includedir}' 'Libs: -pthread' > $@

install: $(B)/ipc.pc
	install -d $(DESTDIR)$(PREFIX)/include $(DESTDIR)$(PREFIX)/lib/pkgconfig
	install -m 644 ipc.h $(DESTDIR)$(PREFIX)/include/ipc.h
	install -m 644 $(B)/ipc.pc $(DESTDIR)$(PREFIX)/lib/pkgconfig/ipc.pc

uninstall:
	rm -f $(DESTDIR)$(PREFIX)/include/ipc.h $(DESTDIR)$(PREFIX)/lib/pkgconfig/ipc.pc

clean:
	rm -rf $(B) bench.csv bench.md bench-*.png
