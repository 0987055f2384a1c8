#!/usr/bin/env bash
# Prints a directory holding the `prometheus` and `promtool` binaries, fetching Debian's
# `prometheus` package into a cache on first use (`apt-get download` + `dpkg -x`: no
# service is installed or started, no root needed). The observability tests call this.
# Override with PROMETHEUS_BINDIR; the cache is VIGIL_CACHE_DIR (default ~/.cache/vigil).
set -euo pipefail

if [ -n "${PROMETHEUS_BINDIR:-}" ] && [ -x "$PROMETHEUS_BINDIR/promtool" ]; then
  echo "$PROMETHEUS_BINDIR"; exit 0
fi
if command -v promtool >/dev/null && command -v prometheus >/dev/null; then
  dirname "$(command -v promtool)"; exit 0
fi
cache="${VIGIL_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/vigil}/prometheus"
if [ ! -x "$cache/root/usr/bin/promtool" ]; then
  mkdir -p "$cache"
  (
    cd "$cache"
    rm -f prometheus_*.deb
    if ! apt-get download prometheus >&2 2>/dev/null; then
      # Package lists may be missing on a fresh machine (needs root).
      apt-get update -qq >&2
      apt-get download prometheus >&2
    fi
    rm -rf root && dpkg -x prometheus_*.deb root
    rm -f prometheus_*.deb
  )
fi
echo "$cache/root/usr/bin"
