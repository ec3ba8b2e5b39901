#!/usr/bin/env python3
"""Warehouse upsert benchmark: 1M rows upserted into a 10M-row PostgreSQL
table by Ingesta (bench/warehouse_upsert.yaml: a silver table with `store:
warehouse`, `mode: upsert`, key `[_source, _position]`, sequence
`_ingested_at`, default settings), against a hand-written
`INSERT … SELECT … ON CONFLICT DO UPDATE … WHERE newer` of the same 1M rows
from an already-loaded staging table into a copy of the same 10M-row table
(same unique key), on the same server, in the same run.

  python3 bench/warehouse_upsert.py --ingesta target/release/ingesta --python VENV/bin/python [--runs 3]

Set-up (not timed): the 50 bench files of 100,000 readings each, twice under
two names (10M rows; the first 10 files of the second name are copies, the
rest hard links), go to bronze and the warehouse table. Per round: those 10
copies are touched (a rewritten file is a new input), so bronze takes their
1M rows again and the table upserts them, every one an update (same key,
newer `_ingested_at`). Ingesta's figure is the table's own seconds from `run
--json` (bronze's ingestion of the 1M rows is not counted) and the whole
process. The hand-written statement's staging table holds the same 1M rows
with a newer `_ingested_at`; its `INSERT … ON CONFLICT` alone is timed.
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time

from warehouse import HERE, Server

COLUMNS = ["_source", "_position", "_ingested_at", "device_id", "farm_id", "ts", "temperature", "humidity",
           "soil_moisture", "battery", "status"]


def run(cmd, env):
    t = time.perf_counter()
    p = subprocess.run(cmd, env=env, capture_output=True)
    secs = time.perf_counter() - t
    if p.returncode != 0:
        sys.exit(f"failed: {' '.join(cmd)}\n{p.stderr.decode(errors='replace')}")
    report = json.loads(p.stdout)
    table = next(t for t in report["tables"] if t["table"] == "latest")
    return secs, table["seconds"], table["rows"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ingesta", required=True)
    ap.add_argument("--python", required=True)
    ap.add_argument("--data", default="/tmp/bench")
    ap.add_argument("--runs", type=int, default=3)
    a = ap.parse_args()
    source = f"{a.data}/landing_ndjson"
    landing, lake = f"{a.data}/out/upsert_landing", f"{a.data}/out/upsert_lake"
    shutil.rmtree(landing, ignore_errors=True)
    shutil.rmtree(lake, ignore_errors=True)
    os.makedirs(landing)
    files = sorted(f for f in os.listdir(source) if f.endswith(".ndjson"))
    touched = []
    for f in files:
        os.link(f"{source}/{f}", f"{landing}/a-{f}")
        if len(touched) < 10:
            shutil.copy(f"{source}/{f}", f"{landing}/b-{f}")
            touched.append(f"{landing}/b-{f}")
        else:
            os.link(f"{source}/{f}", f"{landing}/b-{f}")
    server = Server()
    try:
        server.psql("postgres", "CREATE DATABASE upsert")
        env = dict(os.environ, BENCH_OUT=lake, BENCH_LANDING=landing, BENCH_WAREHOUSE=server.url("upsert"),
                   INGESTA_LOG="warn")
        cmd = [a.ingesta, "run", f"{HERE}/warehouse_upsert.yaml", "--once", "--json"]
        t = time.perf_counter()
        _, _, loaded = run(cmd, env)
        total = int(server.psql("upsert", "SELECT count(*) FROM latest"))
        print(f"set-up: {total} rows in the table ({loaded} written) in {time.perf_counter() - t:.0f}s",
              file=sys.stderr)
        cols = ", ".join(COLUMNS)
        server.psql("upsert", f"CREATE TABLE by_hand AS SELECT {cols} FROM latest; "
                              "ALTER TABLE by_hand ADD UNIQUE (_source, _position); ANALYZE by_hand")
        names = ", ".join("'" + os.path.basename(p) + "'" for p in touched)
        sets = ", ".join(f"{c} = EXCLUDED.{c}" for c in COLUMNS[2:])
        # the valid rows of the touched files (about 0.1% of the generated lines are malformed)
        per_round = int(server.psql("upsert", f"SELECT count(*) FROM by_hand WHERE _source IN ({names})"))
        times = {"ingesta upsert 1M into 10M (table)": [], "ingesta upsert 1M into 10M (process, with bronze)": [],
                 "INSERT … ON CONFLICT from staging": []}
        for rnd in range(a.runs + 1):
            now = time.time() + rnd * 60
            for p in touched:
                os.utime(p, (now, now))
            proc, secs, rows = run(cmd, env)
            assert rows == per_round, f"the table wrote {rows} rows, expected {per_round}"
            got = int(server.psql("upsert", "SELECT count(*) FROM latest"))
            assert got == total, f"the table holds {got} rows, expected {total}"
            server.psql("upsert", f"DROP TABLE IF EXISTS staging; CREATE TABLE staging AS SELECT {COLUMNS[0]}, "
                                  f"{COLUMNS[1]}, now() AS _ingested_at, {', '.join(COLUMNS[3:])} FROM by_hand "
                                  f"WHERE _source IN ({names}); ANALYZE staging")
            t = time.perf_counter()
            server.psql("upsert", f"INSERT INTO by_hand ({cols}) SELECT {cols} FROM staging "
                                  f"ON CONFLICT (_source, _position) DO UPDATE SET {sets} "
                                  "WHERE by_hand._ingested_at < EXCLUDED._ingested_at")
            by_hand = time.perf_counter() - t
            updated = int(server.psql("upsert", "SELECT count(*) FROM by_hand "
                                                "WHERE _ingested_at = (SELECT max(_ingested_at) FROM staging)"))
            assert updated == per_round, f"the statement updated {updated} rows, expected {per_round}"
            label = "warm-up" if rnd == 0 else f"run {rnd}"
            print(f"  {label}: ingesta table {secs:.2f}s (process {proc:.2f}s), by hand {by_hand:.2f}s",
                  file=sys.stderr)
            if rnd > 0:
                for k, v in zip(times, (secs, proc, by_hand)):
                    times[k].append(v)
        base = statistics.median(times["INSERT … ON CONFLICT from staging"])
        print("| job | median s | runs s | vs hand-written |")
        print("|---|---|---|---|")
        for k, v in times.items():
            m = statistics.median(v)
            print(f"| {k} | {m:.2f} | {' / '.join(f'{x:.2f}' for x in v)} | {m / base:.2f}x |")
    finally:
        server.stop()
        shutil.rmtree(landing, ignore_errors=True)


if __name__ == "__main__":
    main()
