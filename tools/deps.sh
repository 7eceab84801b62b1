#!/usr/bin/env bash
# Install the Debian packages shmq needs to build and test, if missing.
# As root it installs them; otherwise it prints the exact command.
#   tools/deps.sh           build and test (gdb: tests/cli/relay_groups.sh
#                           holds a process between two chosen calls)
#   tools/deps.sh --bench   also what `make bench` compares shmq with
#                           (ZeroMQ, hiredis, a Redis server) and plots with
set -euo pipefail
pkgs=(gcc make pkg-config liburing-dev libnng-dev libcunit1-dev libisal-dev
	libsqlite3-dev python3 procps gdb)
case ${1:-} in
'') ;;
--bench) pkgs+=(libzmq3-dev libhiredis-dev redis-server redis-tools
	gnuplot-nox) ;;
*)
	echo "usage: tools/deps.sh [--bench]" >&2
	exit 2
	;;
esac
missing=()
for p in "${pkgs[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' ||
		missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -eq 0 ]; then
	echo "deps: installing ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
	echo "deps: missing packages: ${missing[*]}" >&2
	echo "deps: run: sudo apt-get update && sudo apt-get install -y ${missing[*]}" >&2
	exit 1
fi
