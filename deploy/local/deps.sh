#!/usr/bin/env bash
# Installs what `make up` and `make test` need and a fresh machine may lack.
# Go itself is a prerequisite. The Cloud SDK Pub/Sub emulator is used when
# installed; without it the stack runs an embedded emulator.
set -euo pipefail

have_pg() {
  command -v pg_ctl >/dev/null 2>&1 || compgen -G '/usr/lib/postgresql/*/bin/pg_ctl' >/dev/null
}

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

if ! have_pg; then
  echo "deps: installing the PostgreSQL server (Debian package postgresql)"
  as_root apt-get update -q
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql
fi
if [ "$(id -u)" = 0 ] && ! id postgres >/dev/null 2>&1; then
  echo "deps: PostgreSQL refuses to run as root and there is no postgres user" >&2
  exit 1
fi
if ! command -v pdftoppm >/dev/null 2>&1; then
  echo "deps: installing pdftoppm (Debian package poppler-utils) for the reporter's PDF rendering test"
  as_root apt-get update -q
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q poppler-utils
fi
if [ ! -x /usr/bin/chromium ]; then
  echo "deps: installing Chromium (Debian package chromium) for the admin page's browser test"
  as_root apt-get update -q
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium
fi
