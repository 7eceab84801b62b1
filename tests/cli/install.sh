#!/usr/bin/env bash
# make install puts header, libraries (with the right soname), shmq.pc,
# binaries and man pages under DESTDIR/PREFIX; a program built from them
# with pkg-config runs against the installed library.
set -euo pipefail
B=${1:-build}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
pass=0
fail=0
check() {
	if eval "$2"; then
		echo "ok - $1"
		pass=$((pass + 1))
	else
		echo "not ok - $1"
		fail=$((fail + 1))
	fi
}

make -s install B="$B" DESTDIR="$tmp/root" PREFIX=/usr >/dev/null
R=$tmp/root/usr
check "header installed" "[ -f $R/include/shmq.h ]"
check "soname link" "[ \"\$(readlink $R/lib/libshmq.so.1)\" = libshmq.so.1.0.0 ]"
check "static library" "[ -f $R/lib/libshmq.a ]"
check "pc file names the prefix" "grep -q '^prefix=/usr\$' $R/lib/pkgconfig/shmq.pc"
check "binaries" "[ -x $R/bin/shmqctl ] && [ -x $R/bin/shmq-perf ]"
check "man pages" "[ -f $R/share/man/man7/shmq.7 ] && [ -f $R/share/man/man1/shmqctl.1 ]"
check "soname in the library" "objdump -p $R/lib/libshmq.so.1.0.0 | grep -q 'SONAME *libshmq.so.1'"
check "only shmq_ symbols exported" "[ \$(nm -D --defined-only $R/lib/libshmq.so.1.0.0 | awk '\$2 == \"T\" && \$3 !~ /^shmq_/' | wc -l) -eq 0 ]"

cat > "$tmp/app.c" <<'C'
#include <shmq.h>
#include <stdio.h>
#include <string.h>
int main(int argc, char **argv) {
	shmq_t *q; shmq_producer_t *p; shmq_consumer_t *c;
	shmq_topic_config_t tc; shmq_topic_config_init(&tc); tc.ring_size = 1 << 16;
	if (argc < 2 || shmq_attach(argv[1], NULL, &q) != 0) return 1;
	if (shmq_topic_create(q, "t", &tc) != 0) return 2;
	if (shmq_producer_open(q, "t", NULL, &p) != 0) return 3;
	shmq_msg_t m = { .value = "hi", .value_len = 2, .partition = 0 };
	if (shmq_send(p, &m) != 0) return 4;
	uint32_t p0 = 0; char buf[8]; shmq_record_t r;
	if (shmq_consumer_open(q, "t", NULL, &c) != 0 || shmq_assign(c, &p0, 1) != 0) return 5;
	if (shmq_recv(c, buf, sizeof buf, &r, 0) != 0 || r.value_len != 2 || memcmp(r.value, "hi", 2)) return 6;
	printf("%s\n", shmq_version());
	shmq_consumer_close(c); shmq_producer_close(p); shmq_topic_delete(q, "t"); shmq_detach(q);
	return 0;
}
C
sed -i "s|^prefix=/usr\$|prefix=$R|; s|^libdir=/usr/lib|libdir=$R/lib|; s|^includedir=/usr/include|includedir=$R/include|" "$R/lib/pkgconfig/shmq.pc"
flags=$(PKG_CONFIG_PATH=$R/lib/pkgconfig pkg-config --cflags --libs shmq)
# A sanitizer build (make asan) installs an instrumented library: the
# program must link the same runtimes.
# (grep -c, not -q: -q may close the pipe early, and under pipefail
# nm's SIGPIPE would turn a match into "no match".)
if [ "$(nm -D "$R/lib/libshmq.so.1.0.0" | grep -c __asan_init)" -gt 0 ]; then
	flags="$flags -fsanitize=address,undefined"
fi
check "builds with pkg-config" "cc -o $tmp/app $tmp/app.c $flags"
shm=""
if LD_LIBRARY_PATH=$R/lib "$tmp/app" "$tmp/home" >"$tmp/out"; then
	check "runs against the installed library" "grep -q '^0\\.1\\.0\$' $tmp/out"
else
	check "runs against the installed library" false
fi
rm -rf "/dev/shm/shmq-$(cat "$tmp/home/instance.id" 2>/dev/null || echo none)"
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
