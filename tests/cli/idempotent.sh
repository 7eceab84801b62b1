#!/usr/bin/env bash
# tests/cli/idempotent.sh — `produce --idempotent NAME`: records carry
# the producer id and per-partition sequences (shown by --report-acks and
# by `consume --format json`); a second run under the same name resumes
# the identity and its sequences from the log; a plain producer's
# records carry none; bad options are refused.
#
#   bash tests/cli/idempotent.sh BUILD_DIR   (from the repo root)
# shellcheck source=tests/cli/lib.bash
. "$(dirname "$0")/lib.bash"

# field NAME: the values of a JSON field, one per line of $T/out.
field() {
	python3 -c '
import json, sys
for line in open(sys.argv[1]):
    v = json.loads(line).get(sys.argv[2])
    print("-" if v is None else v)' "$T/out" "$1" | tr '\n' ' '
}

run "$CTL" topic create t --partitions 1 --durability volatile
expect_rc "topic create" 0

printf 'a\nb\nc\n' >"$T/in"
run "$CTL" produce t --idempotent w --report-acks <"$T/in"
expect_rc "idempotent produce" 0
check "sequences 0 1 2" [ "$(field sequence)" = "0 1 2 " ]
check "no duplicates" [ "$(field duplicate)" = "False False False " ]

printf 'd\ne\n' >"$T/in"
run "$CTL" produce t --idempotent w --retries max --report-acks <"$T/in"
expect_rc "second run under the same name" 0
check "sequences go on from the log" [ "$(field sequence)" = "3 4 " ]

printf 'plain\n' >"$T/in"
run "$CTL" produce t <"$T/in"
expect_rc "plain produce" 0

run "$CTL" consume t --format json --count 6 --timeout-ms 2000
expect_rc "consume" 0
check "values in order" [ "$(field value)" = "a b c d e plain " ]
check "consumers see the sequences" [ "$(field sequence)" = "0 1 2 3 4 - " ]
ids=$(field producer_id)
read -r -a id <<<"$ids"
check "one producer id for both runs" [ "${id[0]}" = "${id[4]}" ]
check "a plain record has none" [ "${id[5]}" = "-" ]
epochs=$(field producer_epoch)
read -r -a ep <<<"$epochs"
check "the second run has the next epoch" [ "$((ep[0] + 1))" = "${ep[3]}" ]

printf 'x\n' >"$T/in"
run "$CTL" produce t --retries 3 <"$T/in"
expect_rc "--retries without --idempotent" 2
check "it says why" has_err "needs --idempotent"
run "$CTL" produce t --idempotent 'a/b' <"$T/in"
expect_rc "bad name" 2
run "$CTL" produce t --idempotent w --retries many <"$T/in"
expect_rc "bad --retries" 2
run "$CTL" produce t --acks all <"$T/in"
expect_rc "--acks all" 1
check "--acks all says replication is missing" has_err "needs replication"

finish
