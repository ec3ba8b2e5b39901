#!/usr/bin/env python3
"""Landing -> bronze as the input grows: 5M, 20M and 50M NDJSON rows (100,000
rows per file), Ingesta with a pipeline's default settings (bench/bronze.yaml)
beside DuckDB (../shared/bench/duckdb_job.py), in the same run. Reports each
size's median wall time, CPU time per million rows and peak RSS, and checks
the rows against the manifest. Then small runs (5,000 rows each) on top of
the largest table: what the automatic compaction costs a run after a big one.

  python3 bench/landing_scale.py --ingesta target/release/ingesta \
      --python VENV/bin/python --data /tmp/scale [--sizes 5,20,50] [--runs 2]

The data (ingesta generate iot) is made once per size under --data.

With --files: polls with nothing new over 10,000, 100,000 and 1,000,000
ingested files instead (one-line NDJSON files in folders of 1,000 under
--data/files, made once, the smaller counts as folders of links to some of
them; bench/files.yaml): each count is ingested into a new lake, then polled
3 times (median time, largest RSS).
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from run import HERE, SHARED, count_delta, count_parquet, timed  # noqa: E402


def data(ingesta, root, millions):
    folder = f"{root}/ndjson_{millions}m"
    if not os.path.exists(f"{folder}/_manifest.json"):
        shutil.rmtree(folder, ignore_errors=True)
        rows = millions * 1_000_000
        subprocess.run([ingesta, "generate", "iot", "--rows", str(rows), "--files", str(rows // 100_000),
                        "--out", folder], check=True, stdout=subprocess.DEVNULL)
    return folder, json.load(open(f"{folder}/_manifest.json"))


def make_files(root, count):
    """One-line NDJSON files, 1,000 per folder, under files/ (a million), and
    folders of links to the first 10 and 100 of its folders (files_10k,
    files_100k); returns whether anything was made."""
    made = False
    for d in range(count // 1000):
        folder = f"{root}/files/{d:03d}"
        if not os.path.exists(f"{folder}/f{d * 1000 + 999:07d}.ndjson"):
            os.makedirs(folder, exist_ok=True)
            for i in range(d * 1000, d * 1000 + 1000):
                with open(f"{folder}/f{i:07d}.ndjson", "w") as f:
                    f.write('{"id":%d,"v":"x"}\n' % i)
            made = True
    for name, folders in (("files_10k", 10), ("files_100k", 100)):
        for d in range(folders):
            link = f"{root}/{name}/{d:03d}"
            if not os.path.islink(link):
                os.makedirs(f"{root}/{name}", exist_ok=True)
                os.symlink(f"{root}/files/{d:03d}", link)
                made = True
    return made


def files_curve(a):
    if make_files(a.data, 1_000_000):
        time.sleep(35)  # older than a poll's start less clock_skew (30 s)
    print("| files ingested | taking them: s | MiB | poll with nothing new: median s | polls s | peak RSS MiB |")
    print("|---:|---:|---:|---:|---|---:|")
    for count, folder in ((10_000, "files_10k"), (100_000, "files_100k"), (1_000_000, "files")):
        out = f"{a.data}/out_files_{count}"
        shutil.rmtree(out, ignore_errors=True)
        env = dict(os.environ, BENCH_OUT=out, BENCH_LANDING=f"{a.data}/{folder}", BENCH_GLOB="*/*.ndjson")
        cmd = [a.ingesta, "run", os.path.join(HERE, "files.yaml"), "--once"]
        took, took_mib, _ = timed(cmd, env)
        polls = [timed(cmd, env) for _ in range(3)]
        times = [p[0] for p in polls]
        runs = " / ".join(f"{t:.2f}" for t in times)
        print(f"| {count:,} | {took:.1f} | {took_mib:.0f} | {statistics.median(times):.2f} | {runs} | "
              f"{max(p[1] for p in polls):.0f} |", flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ingesta", required=True)
    ap.add_argument("--python", required=True, help="python with the peers' packages")
    ap.add_argument("--data", default="/tmp/scale")
    ap.add_argument("--sizes", default="5,20,50", help="millions of rows")
    ap.add_argument("--runs", type=int, default=2)
    ap.add_argument("--small-runs", type=int, default=8, help="5,000-row runs after the largest")
    ap.add_argument("--files", action="store_true", help="polls over many ingested files instead")
    a = ap.parse_args()
    if a.files:
        return files_curve(a)

    rows = []
    for millions in [int(s) for s in a.sizes.split(",")]:
        landing, man = data(a.ingesta, a.data, millions)
        out = f"{a.data}/out_{millions}m"
        jobs = {
            "ingesta": [a.ingesta, "run", os.path.join(HERE, "bronze.yaml"), "--once"],
            "duckdb": [a.python, f"{SHARED}/duckdb_job.py", "bronze", "--fmt", "ndjson", "--landing", landing,
                       "--out", f"{out}/duckdb"],
        }
        env = dict(os.environ, BENCH_OUT=f"{out}/ingesta", BENCH_LANDING=landing, BENCH_FMT="ndjson")
        got = {k: ([], [], 0.0) for k in jobs}
        for run in range(a.runs):
            for name, cmd in jobs.items():
                shutil.rmtree(f"{out}/{name}", ignore_errors=True)
                secs, mib, cpus = timed(cmd, env)
                times, cpu, rss = got[name]
                times.append(secs)
                cpu.append(cpus)
                got[name] = (times, cpu, max(rss, mib))
                print(f"  {millions}M {name} run {run}: {secs:.2f}s {mib:.0f} MiB {cpus:.2f} CPU s", file=sys.stderr)
        bronze = count_delta(a.python, f"{out}/ingesta/bronze")
        quarantined = count_delta(a.python, f"{out}/ingesta/_quarantine/bronze")
        ok = bronze == man["valid_rows"] and quarantined == man["malformed"]
        duck = count_parquet(a.python, f"{out}/duckdb/bronze")
        for name, (times, cpu, rss) in got.items():
            wall = statistics.median(times)
            rows.append((millions, name, wall, wall / millions, statistics.median(cpu) / millions, rss,
                         ok if name == "ingesta" else duck == man["valid_rows"]))
    print("| rows | tool | median s | s per M rows | CPU s per M rows | peak RSS MiB | counts ok |")
    print("|---|---|---|---|---|---|---|")
    for m, name, wall, per, cpu, rss, ok in rows:
        print(f"| {m}M | {name} | {wall:.2f} | {per:.3f} | {cpu:.3f} | {rss:.0f} | {'yes' if ok else 'NO'} |")

    # small runs on top of the largest table (what its automatic compaction costs them)
    millions = max(int(s) for s in a.sizes.split(","))
    landing, _ = data(a.ingesta, a.data, millions)
    env = dict(os.environ, BENCH_OUT=f"{a.data}/out_{millions}m/ingesta", BENCH_LANDING=landing, BENCH_FMT="ndjson")
    worst = (0.0, 0.0, 0.0)
    for k in range(a.small_runs):
        small = f"{landing}/zz-small-{k}.ndjson"
        with open(f"{landing}/readings-{k:05d}.ndjson") as f, open(small, "w") as w:
            for _, line in zip(range(5000), f):
                w.write(line)
        try:
            secs, mib, cpus = timed([a.ingesta, "run", os.path.join(HERE, "bronze.yaml"), "--once"], env)
        finally:
            os.remove(small)
        worst = max(worst, (secs, cpus, mib))
    print(f"\n{a.small_runs} runs of 5,000 rows on top of {millions}M, the slowest: "
          f"{worst[0]:.2f} s, {worst[1]:.2f} CPU s, {worst[2]:.0f} MiB")

if __name__ == "__main__":
    main()
