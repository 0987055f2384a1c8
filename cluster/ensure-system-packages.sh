#!/usr/bin/env bash
# Makes sure the system packages Vigil runs with are installed:
# - PostgreSQL server binaries (initdb, pg_ctl, postgres): Vigil runs its own server from
#   them and never uses a system-wide cluster;
# - poppler-utils (pdftoppm, pdftotext): the report tests render the PDFs they check;
# - kubectl (not packaged by Debian): the deploy tests build the Kustomize overlays with it.
set -euo pipefail

KUBECTL_VERSION="${KUBECTL_VERSION:-v1.32.4}"

# kubectl from the Kubernetes release site, checked against its published SHA-256; into
# /usr/local/bin as root, else ~/.local/bin (which must then be on PATH).
ensure_kubectl() {
  command -v kubectl >/dev/null && return 0
  local arch dir tmp
  arch="$(dpkg --print-architecture 2>/dev/null || echo amd64)"
  dir=/usr/local/bin
  [ "$(id -u)" -eq 0 ] || dir="$HOME/.local/bin"
  mkdir -p "$dir"
  tmp="$(mktemp)"
  echo "Installing kubectl $KUBECTL_VERSION into $dir" >&2
  curl -fsSLo "$tmp" "https://dl.k8s.io/release/$KUBECTL_VERSION/bin/linux/$arch/kubectl"
  echo "$(curl -fsSL "https://dl.k8s.io/release/$KUBECTL_VERSION/bin/linux/$arch/kubectl.sha256")  $tmp" \
    | sha256sum --check --quiet
  install -m 0755 "$tmp" "$dir/kubectl"
  rm -f "$tmp"
}
ensure_kubectl

have_postgres() {
  if [ -n "${VIGIL_PG_BINDIR:-}" ] && [ -x "$VIGIL_PG_BINDIR/initdb" ]; then return 0; fi
  if command -v pg_config >/dev/null && [ -x "$(pg_config --bindir)/initdb" ]; then return 0; fi
  compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null && return 0
  command -v initdb >/dev/null
}

missing=()
have_postgres || missing+=(postgresql)
command -v pdftoppm >/dev/null || missing+=(poppler-utils)
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
