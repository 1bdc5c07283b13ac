#!/bin/sh
# Installs what the benchmarks need beyond npm packages, from Debian's packages (run by `npm run bench` first).
# - socat: the simulator's pseudo-terminals.
# - gammu-smsd, libdbd-sqlite3: gammu-smsd with its SQL backend on SQLite, measured side by side (bench/gammu.ts).
# - python3-gammu, gammu: Gammu's own encoder, compared part for part (bench/encoding.ts).
# - mariadb-server: the ingest benchmark on MariaDB (bench/ingest.ts).
set -eu

missing=""
command -v socat >/dev/null 2>&1 || missing="$missing socat"
command -v gammu-smsd >/dev/null 2>&1 || missing="$missing gammu-smsd"
[ -e /usr/lib/x86_64-linux-gnu/dbd/libdbdsqlite3.so ] || ls /usr/lib/*/dbd/libdbdsqlite3.so >/dev/null 2>&1 || missing="$missing libdbd-sqlite3"
command -v gammu >/dev/null 2>&1 || missing="$missing gammu"
/usr/bin/python3 -c 'import gammu' >/dev/null 2>&1 || missing="$missing python3-gammu"
[ -x /usr/sbin/mariadbd ] || missing="$missing mariadb-server"

[ -z "$missing" ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
  echo "smsgate benchmarks: missing Debian packages:$missing; run as root or: sudo apt-get install$missing" >&2
  exit 1
fi
echo "smsgate benchmarks: installing$missing" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# shellcheck disable=SC2086 # one word per package
apt-get install -y -qq --no-install-recommends $missing >/dev/null
