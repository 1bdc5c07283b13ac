#!/bin/sh
# smsgate installer: one command on a fresh Debian 12 / Armbian / Raspberry Pi OS box (amd64, arm64, armhf).
#
#   sudo ./install.sh                 install or upgrade, enable and start the service
#   sudo ./install.sh --mysql         ... with a local MariaDB instead of the embedded SQLite
#   sudo ./install.sh --uninstall     remove everything but the data directory
#   ./install.sh --help
#
# Idempotent: running it again changes nothing that is already right (the app is rebuilt only when its sources or
# Node changed; the config, the data, the users are never overwritten).
set -eu

PREFIX=/opt/smsgate
CONFIG_DIR=/etc/smsgate
CONFIG=$CONFIG_DIR/smsgate.toml
DATA_DIR=/var/lib/smsgate
UNIT=/etc/systemd/system/smsgate.service
UDEV_RULES=/etc/udev/rules.d/77-smsgate.rules
LINK=/usr/local/bin/smsgate
SERVICE_USER=smsgate
NODE_MAJOR_MIN=20
NODE_FALLBACK_VERSION=v20.19.5
MYSQL=no
UNINSTALL=no
START=yes
ADMIN='admin'
SRC=$(CDPATH='' cd -- "$(dirname -- "$0")" && pwd)

say() { printf 'smsgate install: %s\n' "$*"; }
die() { printf 'smsgate install: error: %s\n' "$*" >&2; exit 1; }

usage() {
  cat <<EOF
Usage: sudo $0 [--prefix DIR] [--mysql] [--admin NAME] [--no-start] | --uninstall | --help

Installs smsgate as a systemd service on Debian 12 / Armbian / Raspberry Pi OS:
  - Debian packages it needs (and Node.js $NODE_MAJOR_MIN or newer when the box has none or an older one),
  - the app under PREFIX (default $PREFIX), the command $LINK,
  - the config $CONFIG (commented; readable by root and the service only),
  - the data under $DATA_DIR, a system user '$SERVICE_USER' in the dialout group,
  - udev rules: ModemManager keeps off the modem ports, each modem port gets a stable name under /dev/smsgate/,
  - the service smsgate.service, enabled and started, and a first admin (its password is printed once).

Options:
  --prefix DIR   install the app there (default $PREFIX)
  --mysql        use a local MariaDB (installed and set up) instead of SQLite in $DATA_DIR
  --admin NAME   the first admin's name (default admin); created only when there is no user yet
  --no-start     install and enable, but do not start the service now
  --uninstall    stop and remove the service, the app, the config, the udev rules and the user; keep $DATA_DIR
  --help         this text
EOF
}

while [ $# -gt 0 ]; do
  case $1 in
    --prefix) [ $# -ge 2 ] || die "--prefix needs a directory"; PREFIX=$2; shift 2 ;;
    --prefix=*) PREFIX=${1#--prefix=}; shift ;;
    --mysql) MYSQL=yes; shift ;;
    --admin) [ $# -ge 2 ] || die "--admin needs a name"; ADMIN=$2; shift 2 ;;
    --no-start) START=no; shift ;;
    --uninstall) UNINSTALL=yes; shift ;;
    -h|--help) usage; exit 0 ;;
    *) usage >&2; die "unknown option $1" ;;
  esac
done
case $PREFIX in /*) ;; *) die "--prefix must be an absolute path" ;; esac
# The prefix is smsgate's alone (--uninstall removes what is in it): a directory named smsgate.
case ${PREFIX%/} in */smsgate) PREFIX=${PREFIX%/} ;; *) die "--prefix must be a directory of its own named smsgate (e.g. /srv/smsgate), not $PREFIX" ;; esac

[ "$(id -u)" -eq 0 ] || die "run as root (sudo $0)"
[ -f /etc/debian_version ] || die "this installer is for Debian and its derivatives (Armbian, Raspberry Pi OS)"

systemd_running() { [ -d /run/systemd/system ]; }

# ---- uninstall

if [ $UNINSTALL = yes ]; then
  # The prefix the command points into, when it was installed elsewhere.
  if [ -L "$LINK" ]; then
    linked=$(readlink "$LINK")
    case $linked in */smsgate/bin/smsgate) PREFIX=${linked%/bin/smsgate} ;; esac
  fi
  if systemd_running && systemctl list-unit-files smsgate.service >/dev/null 2>&1; then
    systemctl disable --now smsgate.service >/dev/null 2>&1 || true
  fi
  rm -f "$UNIT" "$UDEV_RULES" "$LINK"
  rm -rf "$UNIT.d"
  if systemd_running; then systemctl daemon-reload || true; fi
  if command -v udevadm >/dev/null 2>&1; then udevadm control --reload >/dev/null 2>&1 || true; fi
  # Only what the installer puts there, then the directory if that leaves it empty.
  if [ -f "$PREFIX/.smsgate-install" ]; then
    rm -rf "${PREFIX:?}/app" "${PREFIX:?}/app.new" "${PREFIX:?}/app.old" "${PREFIX:?}/node" "${PREFIX:?}/bin" "${PREFIX:?}/README.md" "${PREFIX:?}/npm-install.log" "${PREFIX:?}/.smsgate-install"
    rmdir "$PREFIX" 2>/dev/null || say "left $PREFIX: it holds files the installer did not put there"
  fi
  rm -rf "$CONFIG_DIR"
  if id "$SERVICE_USER" >/dev/null 2>&1; then
    deluser --system "$SERVICE_USER" >/dev/null 2>&1 || userdel "$SERVICE_USER" || say "could not remove the user '$SERVICE_USER'"
  fi
  say "removed the service, the app ($PREFIX), the config ($CONFIG_DIR), the udev rules and the user '$SERVICE_USER'"
  if [ -d "$DATA_DIR" ]; then
    say "kept the data directory $DATA_DIR (the message history and the SQLite database); remove it with: rm -rf $DATA_DIR"
  fi
  say "a MariaDB database 'smsgate', if --mysql made one, is kept too (DROP DATABASE smsgate; to remove it)"
  exit 0
fi

# ---- packages

ARCH=$(dpkg --print-architecture)
case $ARCH in
  amd64) NODE_ARCH=x64 ;;
  arm64) NODE_ARCH=arm64 ;;
  armhf) NODE_ARCH=armv7l ;;
  *) die "unsupported architecture $ARCH (amd64, arm64 and armhf are)" ;;
esac

# python3: the systemd notify helper; build-essential: better-sqlite3's native module is compiled here;
# socat: the modem simulator (smsgate serve --simulate); udev for the stable modem names.
PACKAGES="ca-certificates curl python3 build-essential socat udev xz-utils adduser"
[ $MYSQL = yes ] && PACKAGES="$PACKAGES mariadb-server"
missing=""
for p in $PACKAGES; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing="$missing $p"
done
if [ -n "$missing" ]; then
  say "installing Debian packages:$missing"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # shellcheck disable=SC2086 # one word per package
  apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi

node_major() { "$1" -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0; }

# Node: the box's own when it is new enough; else Debian's package when its version suffices; else the official
# build from nodejs.org, checked against its published SHA-256, under PREFIX/node (and said so).
NODE=""
for candidate in "$(command -v node 2>/dev/null || true)" "$PREFIX/node/bin/node"; do
  if [ -n "$candidate" ] && [ -x "$candidate" ] && [ "$(node_major "$candidate")" -ge $NODE_MAJOR_MIN ]; then NODE=$candidate; break; fi
done
if [ -z "$NODE" ]; then
  debian_version=$(apt-cache policy nodejs 2>/dev/null | sed -n 's/^ *Candidate: *\([0-9]*\).*/\1/p')
  if [ -n "$debian_version" ] && [ "$debian_version" -ge $NODE_MAJOR_MIN ] 2>/dev/null; then
    say "installing Node.js $debian_version from Debian's packages"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null
    NODE=/usr/bin/node
    [ "$(node_major "$NODE")" -ge $NODE_MAJOR_MIN ] || die "Debian's Node.js did not install as expected"
  else
    say "this Debian's Node.js is older than $NODE_MAJOR_MIN: installing the official Node.js $NODE_FALLBACK_VERSION ($NODE_ARCH) from nodejs.org under $PREFIX/node"
    tarball=node-$NODE_FALLBACK_VERSION-linux-$NODE_ARCH.tar.xz
    tmp=$(mktemp -d)
    curl -fsSL "https://nodejs.org/dist/$NODE_FALLBACK_VERSION/$tarball" -o "$tmp/$tarball" || die "cannot download Node.js from nodejs.org; install Node.js $NODE_MAJOR_MIN+ yourself and run this again"
    curl -fsSL "https://nodejs.org/dist/$NODE_FALLBACK_VERSION/SHASUMS256.txt" -o "$tmp/SHASUMS256.txt" || die "cannot download Node.js's checksums"
    (cd "$tmp" && grep " $tarball\$" SHASUMS256.txt | sha256sum -c - >/dev/null) || die "the Node.js download does not match its published SHA-256"
    mkdir -p "$PREFIX/node"
    tar -xJf "$tmp/$tarball" -C "$PREFIX/node" --strip-components=1
    rm -rf "$tmp"
    NODE=$PREFIX/node/bin/node
  fi
fi
NODE_DIR=$(dirname "$NODE")
NPM=$NODE_DIR/npm
[ -x "$NPM" ] || NPM=$(command -v npm || true)
[ -n "$NPM" ] || die "npm is missing next to $NODE (install Debian's npm, or Node.js with npm)"
say "using Node.js $("$NODE" --version) ($NODE)"
# Native modules are compiled against the headers of the Node that runs them: those installed next to it when there
# are (official builds and most packages ship them), else node-gyp downloads them.
node_prefix=$(dirname "$NODE_DIR")
if [ -f "$node_prefix/include/node/node.h" ] && [ -z "${npm_config_nodedir:-}" ]; then
  npm_config_nodedir=$node_prefix
  export npm_config_nodedir
fi
# npm trusts the box's certificate store too (a proxy's CA added with update-ca-certificates, for instance).
if [ -z "${NODE_EXTRA_CA_CERTS:-}" ] && [ -f /etc/ssl/certs/ca-certificates.crt ]; then
  NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt
  export NODE_EXTRA_CA_CERTS
fi

# ---- user and directories

if ! id "$SERVICE_USER" >/dev/null 2>&1; then
  adduser --system --group --home "$DATA_DIR" --gecos 'smsgate SMS gateway' "$SERVICE_USER" >/dev/null
  say "created the system user '$SERVICE_USER'"
fi
id -nG "$SERVICE_USER" | grep -qw dialout || usermod -a -G dialout "$SERVICE_USER"
install -d -o "$SERVICE_USER" -g "$SERVICE_USER" -m 0750 "$DATA_DIR"
# A data directory kept from an earlier install belongs to this install's user (its uid may have changed).
chown -R "$SERVICE_USER:$SERVICE_USER" "$DATA_DIR"
install -d -o root -g "$SERVICE_USER" -m 0750 "$CONFIG_DIR"

# ---- the app: rebuilt only when its sources or Node changed

APP=$PREFIX/app
CHANGED=no
# The marker that PREFIX is ours (--uninstall removes only such a PREFIX); it holds the installed app's stamp.
mkdir -p "$PREFIX"
[ -f "$PREFIX/.smsgate-install" ] || printf 'incomplete\n' > "$PREFIX/.smsgate-install"
stamp=$( (cd "$SRC" && find package.json package-lock.json tsconfig.json README.md server modem scheduler sql public systemd bench -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum; "$NODE" --version) | sha256sum | cut -d' ' -f1)
if [ "$(cat "$PREFIX/.smsgate-install" 2>/dev/null || true)" != "$stamp" ] || [ ! -f "$APP/dist/server/smsgate.js" ]; then
  say "installing the app under $APP (npm packages are fetched and built: a few minutes on a small board)"
  new=$PREFIX/app.new
  rm -rf "$new"
  mkdir -p "$new"
  (cd "$SRC" && tar -cf - package.json package-lock.json tsconfig.json README.md server modem scheduler sql public systemd bench) | tar -xf - -C "$new"
  npm_log=$PREFIX/npm-install.log
  if ! (cd "$new" && PATH="$NODE_DIR:$PATH" "$NPM" ci --no-audit --no-fund --loglevel=error && PATH="$NODE_DIR:$PATH" "$NPM" prune --omit=dev --no-audit --no-fund --loglevel=error) > "$npm_log" 2>&1; then
    tail -n 40 "$npm_log" >&2
    die "npm could not install the app (the last lines above; all of it in $npm_log)"
  fi
  rm -rf "$APP.old"
  [ -d "$APP" ] && mv "$APP" "$APP.old"
  mv "$new" "$APP"
  rm -rf "$APP.old"
  cp "$SRC/README.md" "$PREFIX/README.md"
  printf '%s\n' "$stamp" > "$PREFIX/.smsgate-install"
  CHANGED=yes
else
  say "the app under $APP is up to date"
fi

# The command: runs as the service user (so the database files stay the service's), with the service's config.
mkdir -p "$PREFIX/bin"
wrapper=$(mktemp)
cat > "$wrapper" <<EOF
#!/bin/sh
# smsgate, as installed by install.sh: the service's config, and the service user's rights when run as root.
export SMSGATE_CONFIG="\${SMSGATE_CONFIG:-$CONFIG}"
if [ "\$(id -u)" -eq 0 ]; then
  exec runuser -u $SERVICE_USER -- "$NODE" "$APP/dist/server/smsgate.js" "\$@"
fi
exec "$NODE" "$APP/dist/server/smsgate.js" "\$@"
EOF
cmp -s "$wrapper" "$PREFIX/bin/smsgate" 2>/dev/null || install -m 0755 "$wrapper" "$PREFIX/bin/smsgate"
rm -f "$wrapper"
ln -sfn "$PREFIX/bin/smsgate" "$LINK"

# ---- config: written once, never overwritten

if [ ! -f "$CONFIG" ]; then
  db_line='db = ""'
  if [ $MYSQL = yes ]; then
    password=$(head -c 18 /dev/urandom | base64 | tr -d '/+=')
    if systemd_running; then systemctl enable --now mariadb >/dev/null 2>&1 || true; else service mariadb start >/dev/null 2>&1 || true; fi
    # On stdin, so the password never shows in the process list.
    printf "CREATE DATABASE IF NOT EXISTS smsgate CHARACTER SET utf8mb4 COLLATE utf8mb4_bin;
      CREATE USER IF NOT EXISTS 'smsgate'@'localhost' IDENTIFIED BY '%s';
      ALTER USER 'smsgate'@'localhost' IDENTIFIED BY '%s';
      GRANT ALL PRIVILEGES ON smsgate.* TO 'smsgate'@'localhost';\n" "$password" "$password" | mariadb ||
      die "cannot set up the MariaDB database: is MariaDB running? (systemctl start mariadb, or service mariadb start)"
    db_line="db = \"mysql://smsgate:$password@localhost:3306/smsgate\""
    say "created the MariaDB database 'smsgate' and its user"
  fi
  example=$(mktemp)
  "$NODE" "$APP/dist/server/smsgate.js" config example > "$example" || die "cannot print the example config"
  tmpconf=$(mktemp)
  sed -e "s|^data_dir = .*|data_dir = \"$DATA_DIR\"|" -e "s|^db = .*|$db_line|" "$example" > "$tmpconf"
  install -o root -g "$SERVICE_USER" -m 0640 "$tmpconf" "$CONFIG"
  rm -f "$tmpconf" "$example"
  say "wrote $CONFIG (every key documented; edit it, then: systemctl restart smsgate)"
  CHANGED=yes
else
  say "kept the existing $CONFIG"
  if [ $MYSQL = yes ] && ! grep -q '^db = "mysql://' "$CONFIG"; then
    say "warning: --mysql, but the existing $CONFIG does not use MariaDB; it is kept as it is (set db = \"mysql://...\" in it yourself)"
  fi
fi
SMSGATE_CONFIG=$CONFIG "$NODE" "$APP/dist/server/smsgate.js" config check --config "$CONFIG" >/dev/null || die "$CONFIG has an error (see above)"

# ---- udev: no ModemManager on modem ports; stable names under /dev/smsgate/

rules=$(mktemp)
cat > "$rules" <<'EOF'
# smsgate (installed by install.sh). USB serial ports of GSM modems:
# - ModemManager keeps off them (it would send its own AT commands and read the SMS);
# - each gets a stable name: /dev/smsgate/<vendor>-<serial>-if<interface> and /dev/smsgate/path-<USB path>-if<interface>,
#   whichever ttyUSB number the kernel hands out this time.
SUBSYSTEM!="tty", GOTO="smsgate_end"
KERNEL!="ttyUSB[0-9]*|ttyACM[0-9]*", GOTO="smsgate_end"
ENV{ID_MM_DEVICE_IGNORE}="1"
GROUP="dialout", MODE="0660"
ENV{ID_VENDOR_ID}=="?*", ENV{ID_SERIAL_SHORT}=="?*", ENV{ID_USB_INTERFACE_NUM}=="?*", SYMLINK+="smsgate/$env{ID_VENDOR_ID}-$env{ID_SERIAL_SHORT}-if$env{ID_USB_INTERFACE_NUM}"
ENV{ID_PATH_TAG}=="?*", ENV{ID_USB_INTERFACE_NUM}=="?*", SYMLINK+="smsgate/path-$env{ID_PATH_TAG}-if$env{ID_USB_INTERFACE_NUM}"
LABEL="smsgate_end"
EOF
if ! cmp -s "$rules" "$UDEV_RULES" 2>/dev/null; then
  install -m 0644 "$rules" "$UDEV_RULES"
  if command -v udevadm >/dev/null 2>&1 && udevadm control --reload >/dev/null 2>&1; then
    udevadm trigger --subsystem-match=tty --action=change >/dev/null 2>&1 || true
  fi
  say "installed $UDEV_RULES (ModemManager ignores the modem ports; stable names under /dev/smsgate/)"
fi
rm -f "$rules"
if systemd_running && systemctl is-active --quiet ModemManager 2>/dev/null; then
  say "note: ModemManager runs here; it now ignores USB serial ports. If smsgate still finds ports busy: systemctl disable --now ModemManager"
fi

# ---- the service

unit=$(mktemp)
sed "s|@PREFIX@|$PREFIX|g" "$APP/systemd/smsgate.service" > "$unit"
if ! cmp -s "$unit" "$UNIT" 2>/dev/null; then
  install -m 0644 "$unit" "$UNIT"
  say "installed $UNIT"
  CHANGED=yes
fi
rm -f "$unit"

# ---- the first admin, only when there is no user yet

users=$(runuser -u "$SERVICE_USER" -- env SMSGATE_CONFIG="$CONFIG" "$NODE" "$APP/dist/server/smsgate.js" user list --json)
if [ "$users" = "[]" ]; then
  created=$(runuser -u "$SERVICE_USER" -- env SMSGATE_CONFIG="$CONFIG" "$NODE" "$APP/dist/server/smsgate.js" user add "$ADMIN" --admin)
  admin_password=$(printf '%s\n' "$created" | sed -n 's/^password: //p')
  # Said at once: whatever fails after this, the password is not lost.
  say "created the first admin '$ADMIN' with the password: $admin_password   (change it: smsgate user passwd $ADMIN)"
fi

# Enabled in any case (systemctl does that without a running systemd, e.g. in an image being built); started, or
# restarted only when the app, the config or the unit changed: a second run does not interrupt the sends.
if command -v systemctl >/dev/null 2>&1; then systemctl enable smsgate.service >/dev/null 2>&1 || say "warning: could not enable smsgate.service"; fi
if systemd_running; then
  systemctl daemon-reload
  if [ $START = yes ]; then
    if [ $CHANGED = yes ]; then systemctl restart smsgate.service; else systemctl start smsgate.service; fi
    say "the service runs (systemctl status smsgate; journalctl -u smsgate -f)"
  fi
else
  say "systemd is not running here: the service is installed and enabled but not started; run it by hand with: $LINK serve"
fi

port=$(sed -n 's/^listen = "[^"]*:\([0-9]*\)"$/\1/p' "$CONFIG")
# The first IPv4 address, for the URL.
address=$(hostname -I 2>/dev/null | tr ' ' '\n' | grep -m1 -E '^[0-9]+[.][0-9]+[.][0-9]+[.][0-9]+$' || true)
say "done. Open http://${address:-<this box>}:${port:-8080}/"
if [ -n "${admin_password:-}" ]; then
  say "log in as '$ADMIN' with the password: $admin_password"
fi
say "admin commands: smsgate status | smsgate user add NAME | smsgate sim list | smsgate --help"
