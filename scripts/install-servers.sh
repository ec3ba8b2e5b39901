#!/usr/bin/env bash
# What the tests start beside the binary: PostgreSQL 15 (initdb / pg_ctl, and
# the `postgres` user the tests run it as when they run as root),
# redis-server and Chromium (the dashboard's browser test), from Debian's
# packages. Installs only what is missing.
set -euo pipefail

need=()
if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 && ! command -v initdb >/dev/null; then
  need+=(postgresql-15)
fi
if [ "$(id -u)" = 0 ] && ! id postgres >/dev/null 2>&1; then
  need+=(postgresql-15)
fi
command -v redis-server >/dev/null || need+=(redis-server)
command -v chromium >/dev/null || need+=(chromium)
[ ${#need[@]} -eq 0 ] && exit 0

echo "scripts/install-servers.sh: installing ${need[*]}" >&2
sudo=""
[ "$(id -u)" = 0 ] || sudo="sudo"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
# the packages start their own servers; the tests start theirs on free ports
$sudo service postgresql stop >/dev/null 2>&1 || true
$sudo service redis-server stop >/dev/null 2>&1 || true
