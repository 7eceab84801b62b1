#!/usr/bin/env bash
# tests/cli/topic.sh — shmqctl: topic create/list/describe/delete, name
# checks, usage errors and exit statuses.
#
#   bash tests/cli/topic.sh BUILD_DIR      (from the repository root)
#
# Each check prints "ok - ..." or "not ok - ..."; the last line is
# "N passed, M failed" and the exit status is 1 if any check failed.
# shellcheck source=tests/cli/lib.bash
. "$(dirname "$0")/lib.bash"

# --- create, list --------------------------------------------------------

# Rings only, no disk: volatile (the default is persistent, checked
# below under "durability").
run "$CTL" topic create orders --partitions 3 --durability volatile
expect_rc "topic create orders" 0
check "topic create is quiet" test ! -s "$T/out"

run "$CTL" topic create events --partitions 1 --ring-size 64K \
	--overflow drop --durability volatile
expect_rc "topic create with --ring-size 64K --overflow drop" 0

run "$CTL" topic create orders --partitions 3
expect_rc "topic create of an existing topic fails" 1
check "  ... and says so on stderr" has_err "shmqctl: topic create orders:"

run "$CTL" topic list
expect_rc "topic list" 0
check "topic list prints one name per line, in order" \
	test "$(cat "$T/out")" = "$(printf 'events\norders')"

run "$CTL" topic list --json
expect_rc "topic list --json" 0
check "topic list --json gives the config of each topic" \
	python3 - "$T/out" <<'EOF'
import json, sys
v = json.load(open(sys.argv[1]))
assert v == [
    {"name": "events", "partitions": 1, "ring_size": 65536,
     "overflow": "drop"},
    {"name": "orders", "partitions": 3, "ring_size": 16 << 20,
     "overflow": "block"},
], v
EOF

run "$CTL" --json topic list
check "--json also works before the command" \
	python3 -c 'import json,sys; assert len(json.load(sys.stdin)) == 2' \
	<"$T/out"

# --- describe ------------------------------------------------------------

run "$CTL" topic describe orders
expect_rc "topic describe" 0
check "topic describe shows the config" has_out "^PARTITIONS  *3$"
check "topic describe has the partition table header" \
	has_out "^PARTITION  *LOG-START  *COMMITTED  *END  *RING-USED"
check "topic describe has one row per partition" \
	test "$(grep -c '^[0-9]' "$T/out")" -eq 3
check "topic describe shows ring use with a percentage" \
	has_out "/16M (0.0%)"

run "$CTL" topic describe orders --json
expect_rc "topic describe --json" 0
check "topic describe --json: config and a partitions array" \
	python3 - "$T/out" <<'EOF'
import json, sys
v = json.load(open(sys.argv[1]))
assert v["name"] == "orders"
assert v["config"] == {"partitions": 3, "ring_size": 16 << 20,
                       "overflow": "block", "durability": "volatile"}, \
    v["config"]
ps = v["partitions"]
assert [p["partition"] for p in ps] == [0, 1, 2]
for p in ps:
    for k in ("log_start", "committed", "end", "ring_size", "ring_used",
              "records_in", "producers", "consumers"):
        assert isinstance(p[k], int), (k, p)
    assert p["end"] == 0 and p["records_in"] == 0 and p["consumers"] == 0
EOF

run "$CTL" topic describe nosuch
expect_rc "topic describe of a missing topic fails" 1
check "  ... naming the topic" has_err "shmqctl: topic describe nosuch:"

# --- durability -----------------------------------------------------------

run "$CTL" topic create dflt --partitions 2
expect_rc "topic create without --durability" 0
run "$CTL" topic describe dflt
check "  ... makes a persistent topic" has_out "^DURABILITY  *persistent$"
check "  ... flushed every batch" has_out "^FSYNC  *always$"
run "$CTL" topic describe dflt --json
check "  ... (describe --json agrees)" python3 -c '
import json, sys
c = json.load(open(sys.argv[1]))["config"]
assert c["durability"] == "persistent" and c["fsync"] == "always", c
' "$T/out"
run "$CTL" topic create vol --partitions 1 --durability volatile
expect_rc "topic create --durability volatile" 0
run "$CTL" topic describe vol
check "  ... makes a volatile topic" has_out "^DURABILITY  *volatile$"
run "$CTL" topic create p2 --partitions 1 --durability sometimes
expect_rc "topic create --durability sometimes is a usage error" 2
check "  ... naming both values" has_err "persistent or volatile"
run "$CTL" topic create --help
check "topic create --help names persistent as the default" \
	has_out "persistent (default"
"$CTL" topic delete dflt
"$CTL" topic delete vol

# --- names and values the library refuses: exit 1 -------------------------

run "$CTL" topic create a/b --partitions 1
expect_rc "topic create a/b (bad name) fails with 1" 1
check "  ... with the name and a hint on the rule" \
	test "$(grep -c 'a/b\|A-Za-z0-9' "$T/err")" -ge 2

run "$CTL" topic create .. --partitions 1
expect_rc "topic create .. fails with 1" 1

run "$CTL" topic create "$(printf 'x%.0s' {1..101})" --partitions 1
expect_rc "topic create with a 101-character name fails with 1" 1

run "$CTL" topic create odd --partitions 1 --ring-size 100000
expect_rc "topic create with a ring size not a power of two fails" 1
check "  ... with a hint" has_err "power of two"

run "$CTL" topic create zero --partitions 0
expect_rc "topic create --partitions 0 fails" 1

# --- usage errors: exit 2 -------------------------------------------------

run "$CTL" topic create p1
expect_rc "topic create without --partitions is a usage error" 2
check "  ... pointing at --help" \
	has_err "Try 'shmqctl topic create --help'"
run "$CTL" topic create --partitions 1
expect_rc "topic create without NAME is a usage error" 2
run "$CTL" topic create a b --partitions 1
expect_rc "topic create with two names is a usage error" 2
run "$CTL" topic create p2 --partitions x
expect_rc "topic create --partitions x is a usage error" 2
run "$CTL" topic create p2 --partitions 1 --ring-size 12X
expect_rc "topic create --ring-size 12X is a usage error" 2
run "$CTL" topic create p2 --partitions 1 --overflow sometimes
expect_rc "topic create --overflow sometimes is a usage error" 2
run "$CTL" topic create p2 --partitions
expect_rc "an option without its argument is a usage error" 2
run "$CTL" topic list --bogus
expect_rc "an unknown option is a usage error" 2
check "  ... naming it" has_err "unknown option '--bogus'"
run "$CTL" topic frob
expect_rc "an unknown subcommand is a usage error" 2
run "$CTL" topic
expect_rc "a missing subcommand is a usage error" 2
run "$CTL" frobnicate
expect_rc "an unknown command is a usage error" 2
run "$CTL"
expect_rc "no command is a usage error" 2
run "$CTL" --bogus topic list
expect_rc "an unknown global option is a usage error" 2
check "usage errors print one message line and one hint line" \
	test "$(wc -l <"$T/err")" -eq 2

# --- help and version -----------------------------------------------------

run "$CTL" --help
expect_rc "--help exits 0" 0
check "  ... and prints the usage on stdout" has_out "^Usage: shmqctl"
run "$CTL" topic create --help
expect_rc "topic create --help exits 0" 0
check "  ... and describes --ring-size" has_out "--ring-size"
run "$CTL" -V
expect_rc "-V exits 0" 0
check "  ... and prints the version" has_out "^shmqctl [0-9]"

# --- homes ----------------------------------------------------------------

run "$CTL" --home "$T/nosuch" topic list
expect_rc "topic list in a missing home fails" 1
check "  ... and does not create it" test ! -e "$T/nosuch"

run "$CTL" --home "$T/other" topic create elsewhere --partitions 1 \
	--durability volatile
expect_rc "--home selects another instance" 0
run "$CTL" topic list --home "$T/other"
check "  ... which has only its own topics" \
	test "$(cat "$T/out")" = elsewhere

run "$CTL" info --json
expect_rc "info --json" 0
check "info names the home and an shm dir" python3 - "$T/out" "$T" <<'EOF'
import json, os, sys
v = json.load(open(sys.argv[1]))
assert v["home"] == os.path.realpath(sys.argv[2] + "/home"), v
assert os.path.isdir(v["shm_dir"]), v
EOF

# --- delete ---------------------------------------------------------------

run "$CTL" topic delete orders
expect_rc "topic delete" 0
run "$CTL" topic list
check "  ... removes it from the list" test "$(cat "$T/out")" = events
run "$CTL" topic delete orders
expect_rc "topic delete of a missing topic fails" 1
run "$CTL" topic delete events
expect_rc "topic delete events" 0
run "$CTL" --home "$T/other" topic delete elsewhere
expect_rc "topic delete in the other home" 0

finish
