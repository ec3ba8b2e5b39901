#!/usr/bin/env bash
# Kafka -> bronze, on a local tansu broker (in-memory):
#  1. throughput: Ingesta (`run --once`, exactly-once commits) against the
#     broker's own consume rate, a bare librdkafka consumer that only counts
#     (crates/kafka/examples/count_messages.rs), over the same N messages of
#     ~1 KB JSON, both timed from process start (both join a group), medians
#     of RUNS;
#  2. latency: `run --watch` with a 1 s trigger while 5,000 msg/s are sent for
#     SECONDS; per message, the commit that made it visible minus its Kafka
#     timestamp (set when produced); p50 / p99.
# Needs the test venv (deltalake) at $INGESTA_VENV or .venv (scripts/test.sh makes it).
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-300000}
RUNS=${RUNS:-3}
SECONDS_AT_RATE=${SECONDS_AT_RATE:-20}
venv="${INGESTA_VENV:-$PWD/.venv}"

cargo build --release -p ingesta -p ingesta-kafka --example count_messages
B=$PWD/target/release/ingesta
C=$PWD/target/release/examples/count_messages
scripts/install-tansu.sh
T=$(command -v tansu || echo "$HOME/.cache/ingesta/tansu/bin/tansu")

work=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$T" broker --listener-url "tcp://127.0.0.1:$port" --advertised-listener-url "tcp://127.0.0.1:$port" \
  --storage-engine memory://tansu/ > "$work/broker.log" 2>&1 &
broker=$!
trap 'kill $broker 2>/dev/null; rm -rf "$work"' EXIT
sleep 1
"$T" topic create bench --partitions 3 --broker "tcp://127.0.0.1:$port" >/dev/null
"$T" topic create live --partitions 3 --broker "tcp://127.0.0.1:$port" >/dev/null

pipeline() { # TOPIC MAX_ROWS MAX_WAIT LAKE
  cat <<YAML
pipeline: bench
lake: {root: "$4"}
sources:
  events: {type: kafka, brokers: "127.0.0.1:$port", topics: [$1], group: "bench-$RANDOM"}
tables:
  events_raw:
    layer: bronze
    input: events
    columns:
      - {name: object_id, type: bigint, required: true}
      - {name: object_type, type: string}
      - {name: sent_dttm, type: timestamp}
    batch: {max_rows: $2, max_wait: $3}
YAML
}

echo "== sending $N messages of ~1 KB JSON"
"$B" generate orders --rows "$N" --malformed-rate 0 --pad-to 1024 --to "kafka://127.0.0.1:$port/bench" --out "$work/gen" 2>&1 | tail -1

median() { sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
bare=(); ours=()
for r in $(seq "$RUNS"); do
  bare+=("$("$C" "127.0.0.1:$port" bench "$N" | python3 -c 'import json,sys; print(json.load(sys.stdin)["seconds"])')")
  rm -rf "$work/lake"; pipeline bench 200000 5s "$work/lake" > "$work/p.yaml"
  t0=$(date +%s.%N)
  INGESTA_LOG=warn "$B" run "$work/p.yaml" --once > /dev/null
  ours+=("$(python3 -c "import time; print(round(time.time() - $t0, 3))")")
  echo "run $r: bare consumer ${bare[-1]} s, ingesta ${ours[-1]} s"
done
b=$(printf '%s\n' "${bare[@]}" | median); o=$(printf '%s\n' "${ours[@]}" | median)
mb=$(python3 -c "import json; print(json.load(open('$work/gen/_manifest.json'))['bytes'] / 1e6)")
python3 -c "
b, o, n, mb = $b, $o, $N, $mb
print(f'throughput (median of $RUNS): bare consumer {b:.2f} s ({n/b:,.0f} msg/s, {mb/b:.0f} MB/s); '
      f'ingesta {o:.2f} s ({n/o:,.0f} msg/s, {mb/o:.0f} MB/s); ingesta / bare = {b/o:.0%}')"

echo "== latency at 5,000 msg/s for ${SECONDS_AT_RATE}s, 1 s trigger"
rm -rf "$work/lake2"; pipeline live 100000 1s "$work/lake2" > "$work/p2.yaml"
INGESTA_LOG=warn "$B" run "$work/p2.yaml" --watch > /dev/null 2>&1 &
watch=$!
sleep 4
"$B" generate orders --rows $((5000 * SECONDS_AT_RATE)) --malformed-rate 0 --pad-to 1024 --rate 5000 \
  --to "kafka://127.0.0.1:$port/live" --out "$work/gen2" 2>&1 | tail -1
sleep 4
kill -INT $watch; wait $watch || true
"$venv/bin/python" - "$work/lake2/events_raw" <<'PY'
import glob, json, os, sys
import deltalake, pyarrow.compute as pc
path = sys.argv[1]
commit_ms = {}
for f in glob.glob(os.path.join(path, "_delta_log", "*.json")):
    for line in open(f):
        a = json.loads(line)
        if "commitInfo" in a and "ingesta.batch_id" in a["commitInfo"]:
            commit_ms[a["commitInfo"]["ingesta.batch_id"]] = a["commitInfo"]["timestamp"]
t = deltalake.DeltaTable(path).to_pyarrow_table(columns=["_timestamp", "_batch_id"])
lat = sorted(commit_ms[b] - ts.timestamp() * 1000 for ts, b in zip(t["_timestamp"].to_pylist(), t["_batch_id"].to_pylist()))
q = lambda p: lat[min(len(lat) - 1, int(p * len(lat)))]
print(f"latency over {len(lat):,} messages: p50 {q(0.50):.0f} ms, p99 {q(0.99):.0f} ms, max {lat[-1]:.0f} ms")
os._exit(0)
PY
