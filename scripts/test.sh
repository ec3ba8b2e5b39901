#!/usr/bin/env bash
# The test command. Makes (once) a Python virtualenv with the outside readers
# the tests check the lake with (deltalake, pyarrow, duckdb) and builds (once)
# the Kafka-protocol broker the Kafka tests start (tansu), then runs every
# test of the workspace. Extra arguments go to `cargo test`.
#
#   scripts/test.sh            # everything
#   scripts/test.sh -p ingesta # one crate
set -euo pipefail
cd "$(dirname "$0")/.."

venv="${INGESTA_VENV:-$PWD/.venv}"
if ! "$venv/bin/python" -c "import deltalake, pyarrow, duckdb, yaml, prometheus_client, kubernetes_validate" 2>/dev/null; then
  echo "scripts/test.sh: creating the test virtualenv in $venv (deltalake, pyarrow, duckdb, PyYAML, prometheus_client, kubernetes-validate)" >&2
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r scripts/requirements-test.txt
fi
export INGESTA_TEST_PYTHON="$venv/bin/python"
# the Kafka-protocol broker the Kafka tests start (built once, ~20 minutes)
scripts/install-tansu.sh
# PostgreSQL, redis-server and Chromium, which the tests start (Debian packages)
scripts/install-servers.sh

# the dashboard's browser test drives Chromium with playwright-core (pinned by its lockfile)
if [ ! -d tests/browser/node_modules/playwright-core ]; then
  (cd tests/browser && npm ci --silent --no-audit --no-fund)
fi

cargo test --workspace "$@"
