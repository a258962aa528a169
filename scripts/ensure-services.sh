#!/usr/bin/env bash
# The local services the tests talk to: installed from Debian's packages if missing, started if down.
set -euo pipefail

up() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
wait_for() { for _ in $(seq 1 60); do up "$1" && return 0; sleep 1; done; echo "service on port $1 did not start" >&2; return 1; }
apt_install() {
  [ "$(id -u)" = 0 ] || { echo "need root to install $*" >&2; return 1; }
  DEBIAN_FRONTEND=noninteractive apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

if ! up 5432; then
  command -v pg_ctlcluster >/dev/null || apt_install postgresql
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start || true
  wait_for 5432
fi
if ! up 3306; then
  command -v mariadbd >/dev/null || apt_install mariadb-server
  start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd
  wait_for 3306
fi
if ! up 1883; then
  command -v mosquitto >/dev/null || apt_install mosquitto
  mosquitto -d -c /etc/mosquitto/mosquitto.conf
  wait_for 1883
fi
echo "services up: postgresql :5432, mariadb :3306, mosquitto :1883"
