#!/usr/bin/env bash
# Makes sure the system packages Vigil runs with are installed:
# - PostgreSQL server binaries (initdb, pg_ctl, postgres): Vigil runs its own server from
#   them and never uses a system-wide cluster;
# - poppler-utils (pdftoppm, pdftotext): the report tests render the PDFs they check;
# - Node.js and npm: build the web app (web/);
# - chromium: the browser tests drive Debian's Chromium with Playwright.
# - kubectl is expected from the machine image: the deploy tests build Kustomize overlays.
# - python3-cryptography (as root): the WAL archive command of the database's own user.
# - python3-boto3 (as root, with an s3:// VIGIL_BACKUP_TARGET): the same, for S3.
set -euo pipefail

# kubectl comes with the machine image (Debian does not package it, and only the package
# registries are reachable here); without it the Kustomize checks fail, so say so up front.
command -v kubectl >/dev/null \
  || echo "kubectl not found: tests/cluster/test_deploy_kubernetes.py needs it on PATH" >&2

have_postgres() {
  if [ -n "${VIGIL_PG_BINDIR:-}" ] && [ -x "$VIGIL_PG_BINDIR/initdb" ]; then return 0; fi
  if command -v pg_config >/dev/null && [ -x "$(pg_config --bindir)/initdb" ]; then return 0; fi
  compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null && return 0
  command -v initdb >/dev/null
}

missing=()
have_postgres || missing+=(postgresql)
command -v pdftoppm >/dev/null || missing+=(poppler-utils)
command -v npm >/dev/null || missing+=(nodejs npm)
[ -x /usr/bin/chromium ] || missing+=(chromium)
# WAL archiving runs as the database's unprivileged user, which (when Vigil runs as root)
# uses the system Python: it needs cryptography there.
if [ "$(id -u)" -eq 0 ] && [ -x /usr/bin/python3 ] && ! /usr/bin/python3 -c 'import cryptography' 2>/dev/null; then
  missing+=(python3-cryptography)
fi
# An s3:// backup target: the archive command of the database's own user needs boto3 there.
if [ "$(id -u)" -eq 0 ] && [[ "${VIGIL_BACKUP_TARGET:-}" == s3://* ]] && [ -x /usr/bin/python3 ] \
  && ! /usr/bin/python3 -c 'import boto3' 2>/dev/null; then
  missing+=(python3-boto3)
fi
[ ${#missing[@]} -eq 0 ] && exit 0

echo "Installing system packages: ${missing[*]}" >&2
if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null; then
  echo "Please install: ${missing[*]} (e.g. 'sudo apt-get install ${missing[*]}')," >&2
  echo "or point VIGIL_PG_BINDIR at PostgreSQL's server binaries." >&2
  have_postgres || exit 1
  exit 0  # poppler-utils only matters for the PDF rendering checks
fi
# Binaries only: no system cluster is created or started.
mkdir -p /etc/postgresql-common
if [ ! -f /etc/postgresql-common/createcluster.conf ]; then
  echo "create_main_cluster = false" > /etc/postgresql-common/createcluster.conf
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq "${missing[@]}" >/dev/null
have_postgres
