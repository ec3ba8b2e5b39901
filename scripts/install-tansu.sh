#!/usr/bin/env bash
# Installs the Kafka-protocol broker the tests start (tansu, a Rust broker)
# into ~/.cache/ingesta/tansu unless it is already there or on PATH. It builds
# from crates.io: about 20 minutes on 2 cores, once. The `dynostore` feature
# is the in-memory storage engine the tests use (`memory://tansu/`).
set -euo pipefail
root="${INGESTA_TANSU_ROOT:-$HOME/.cache/ingesta/tansu}"
if command -v tansu >/dev/null || [ -x "$root/bin/tansu" ]; then
  exit 0
fi
echo "scripts/install-tansu.sh: building tansu 0.6.0 into $root (about 20 minutes, once)" >&2
# its own build folder: the workspace target folder stays ours
env -u CARGO_TARGET_DIR cargo install tansu --version 0.6.0 --locked --features dynostore --root "$root"
