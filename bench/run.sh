#!/usr/bin/env bash
# Landing -> bronze benchmark against the peers, in one run on this machine.
#   bench/run.sh [--runs 3] [--spark]
# Data (5M rows, 50 files, NDJSON and CSV) goes to $BENCH_DATA (/tmp/bench);
# the peers' Python packages to $BENCH_VENV (/tmp/bench/venv), pinned by
# ../shared/bench/requirements.txt.
set -euo pipefail
cd "$(dirname "$0")/.."
data="${BENCH_DATA:-/tmp/bench}"
venv="${BENCH_VENV:-$data/venv}"
shared="$(cd .. && pwd)/shared/bench"

cargo build --release -p ingesta
mkdir -p "$data"
for fmt in ndjson csv; do
  if [ ! -f "$data/landing_$fmt/_manifest.json" ]; then
    python3 "$shared/gen_landing.py" --out "$data/landing_$fmt" --rows 5000000 --files 50 --format "$fmt"
  fi
done
if ! "$venv/bin/python" -c "import duckdb, polars, pyarrow, deltalake" 2>/dev/null; then
  python3 -m venv "$venv"
  # everything but pyspark unless asked for (it needs Java 17 and takes a minute per job)
  grep -v -i '^pyspark\|^py4j' "$shared/requirements.txt" > "$data/requirements.txt"
  if [[ " $* " == *" --spark "* ]]; then cp "$shared/requirements.txt" "$data/requirements.txt"; fi
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$data/requirements.txt"
fi
exec python3 bench/run.py --ingesta "${CARGO_TARGET_DIR:-target}/release/ingesta" --python "$venv/bin/python" \
  --data "$data" --json "$data/results.json" "$@"
