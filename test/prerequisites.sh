#!/bin/sh
# Installs what the test suite needs beyond npm packages, from Debian's packages (run by `npm test` first).
# - python3-gammu: Gammu 1.42, the reference decoder the PDU tests are judged by (/usr/bin/python3).
# - gammu: the real Gammu command line, which must work against our modem simulator.
# - socat: makes the simulator's pseudo-terminals.
# - mariadb-server: the storage conformance suite runs against a throw-away MariaDB on 127.0.0.1.
# - openssh-server: remote boxes are tested against a real sshd on 127.0.0.1.
# - chromium: the web pages are tested in a real headless browser (driven by playwright-core).
# - systemd: systemd-analyze checks the service unit (systemd need not be running).
# - debootstrap, shellcheck: install.sh is run for real in a throw-away Debian root, and linted.
# Nothing is skipped for a missing tool: without root to install it, this fails and says what to install.
set -eu

missing=""
/usr/bin/python3 -c 'import gammu' >/dev/null 2>&1 || missing="$missing python3-gammu"
command -v gammu >/dev/null 2>&1 || missing="$missing gammu"
command -v socat >/dev/null 2>&1 || missing="$missing socat"
[ -x /usr/sbin/mariadbd ] || missing="$missing mariadb-server"
[ -x /usr/sbin/sshd ] || missing="$missing openssh-server"
[ -x /usr/bin/chromium ] || missing="$missing chromium"
command -v systemd-analyze >/dev/null 2>&1 || missing="$missing systemd"
[ -x /usr/sbin/debootstrap ] || missing="$missing debootstrap"
command -v shellcheck >/dev/null 2>&1 || missing="$missing shellcheck"

node_major=$(node -p 'process.versions.node.split(".")[0]')
if [ "$node_major" -lt 20 ]; then
  echo "smsgate tests: Node.js 20 or newer is needed, this is $(node --version)" >&2
  exit 1
fi

[ -z "$missing" ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
  echo "smsgate tests: missing Debian packages:$missing; run as root or: sudo apt-get install$missing" >&2
  exit 1
fi
echo "smsgate tests: installing$missing" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# shellcheck disable=SC2086 # one word per package
apt-get install -y -qq --no-install-recommends $missing >/dev/null
/usr/bin/python3 -c 'import gammu'
command -v gammu >/dev/null
command -v socat >/dev/null
[ -x /usr/sbin/mariadbd ]
[ -x /usr/sbin/sshd ]
[ -x /usr/bin/chromium ]
command -v systemd-analyze >/dev/null
[ -x /usr/sbin/debootstrap ]
command -v shellcheck >/dev/null
