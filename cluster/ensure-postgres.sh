#!/usr/bin/env bash
# Makes sure PostgreSQL server binaries (initdb, pg_ctl, postgres) are installed.
# Vigil runs its own server from them; it never uses a system-wide cluster.
set -euo pipefail

have_server() {
  if [ -n "${VIGIL_PG_BINDIR:-}" ] && [ -x "$VIGIL_PG_BINDIR/initdb" ]; then return 0; fi
  if command -v pg_config >/dev/null && [ -x "$(pg_config --bindir)/initdb" ]; then return 0; fi
  compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null && return 0
  command -v initdb >/dev/null
}

have_server && exit 0

echo "PostgreSQL server binaries not found; installing them." >&2
if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null; then
  echo "Install PostgreSQL (e.g. 'sudo apt-get install postgresql') or set VIGIL_PG_BINDIR." >&2
  exit 1
fi
# Binaries only: no system cluster is created or started.
mkdir -p /etc/postgresql-common
if [ ! -f /etc/postgresql-common/createcluster.conf ]; then
  echo "create_main_cluster = false" > /etc/postgresql-common/createcluster.conf
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq postgresql >/dev/null
have_server
