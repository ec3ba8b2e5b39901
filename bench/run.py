#!/usr/bin/env python3
"""Landing -> bronze benchmark: Ingesta against the peer jobs of
../shared/bench (DuckDB, Polars -> Parquet, Polars -> Delta, pyarrow; PySpark
with --spark) on the same generated data, in the same run.

  bench/run.sh            # builds, makes the data and the peers' venv, runs this
  python3 bench/run.py --ingesta target/release/ingesta --python VENV/bin/python

Each job: one warm-up run, then --runs measured runs of the whole process;
the median wall time, the median CPU time (user + system, from wait4: steadier
than wall time on a noisy machine) and the largest peak RSS are reported. Every output is
checked: bronze rows and quarantined rows against the manifest.
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SHARED = os.path.normpath(os.path.join(HERE, "..", "..", "shared", "bench"))


def timed(cmd, env=None):
    """Runs cmd; returns (seconds, peak RSS MiB, CPU seconds: user + system)."""
    t = time.perf_counter()
    p = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(p.pid, 0)
    secs = time.perf_counter() - t
    err = p.stderr.read().decode(errors="replace")
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"failed: {' '.join(cmd)}\n{err}")
    return secs, usage.ru_maxrss / 1024, usage.ru_utime + usage.ru_stime


def count_delta(python, path):
    # os._exit: pyarrow + deltalake + polars in one venv can abort at interpreter exit
    code = ("import os, sys, deltalake; print(deltalake.DeltaTable(sys.argv[1]).to_pyarrow_table().num_rows, "
            "flush=True); os._exit(0)")
    return int(subprocess.check_output([python, "-c", code, path]).decode())


def count_parquet(python, path):
    code = ("import os, sys, pyarrow.dataset as ds; "
            "print(ds.dataset(sys.argv[1], format='parquet', partitioning='hive').count_rows(), flush=True); "
            "os._exit(0)")
    return int(subprocess.check_output([python, "-c", code, path]).decode())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ingesta", required=True)
    ap.add_argument("--python", required=True, help="python with the peers' packages")
    ap.add_argument("--data", default="/tmp/bench")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--spark", action="store_true")
    ap.add_argument("--json", help="write the results here")
    a = ap.parse_args()

    results = []
    for fmt in ("ndjson", "csv"):
        landing = f"{a.data}/landing_{fmt}"
        man = json.load(open(f"{landing}/_manifest.json"))
        out_root = f"{a.data}/out"
        jobs = {
            "ingesta": (
                [a.ingesta, "run", os.path.join(HERE, "bronze.yaml"), "--once"],
                f"{out_root}/ingesta/{fmt}",
            ),
            "duckdb": ([a.python, f"{SHARED}/duckdb_job.py", "bronze", "--fmt", fmt, "--landing", landing,
                        "--out", f"{out_root}/duckdb/{fmt}"], f"{out_root}/duckdb/{fmt}"),
            "polars_parquet": ([a.python, f"{SHARED}/polars_job.py", "bronze", "--fmt", fmt, "--sink", "parquet",
                                "--landing", landing, "--out", f"{out_root}/polars_parquet/{fmt}"],
                               f"{out_root}/polars_parquet/{fmt}"),
            "polars_delta": ([a.python, f"{SHARED}/polars_job.py", "bronze", "--fmt", fmt, "--sink", "delta",
                              "--landing", landing, "--out", f"{out_root}/polars_delta/{fmt}"],
                             f"{out_root}/polars_delta/{fmt}"),
            "pyarrow": ([a.python, f"{SHARED}/pyarrow_job.py", "bronze", "--fmt", fmt, "--landing", landing,
                         "--out", f"{out_root}/pyarrow/{fmt}"], f"{out_root}/pyarrow/{fmt}"),
        }
        if a.spark:
            jobs["pyspark"] = ([a.python, f"{SHARED}/spark_job.py", "bronze", "--fmt", fmt, "--landing", landing,
                                "--out", f"{out_root}/pyspark/{fmt}"], f"{out_root}/pyspark/{fmt}")
        env = dict(os.environ, BENCH_OUT=f"{out_root}/ingesta/{fmt}", BENCH_LANDING=landing, BENCH_FMT=fmt)
        # interleave the tools run by run, so machine noise spreads over all of them
        times = {k: [] for k in jobs}
        rss = {k: 0.0 for k in jobs}
        cpu = {k: [] for k in jobs}
        for run in range(a.runs + 1):
            for name, (cmd, out) in jobs.items():
                if name == "ingesta":
                    shutil.rmtree(out, ignore_errors=True)  # a fresh lake, else nothing is new
                secs, mib, cpus = timed(cmd, env)
                if run > 0:  # run 0 is the warm-up
                    times[name].append(secs)
                    rss[name] = max(rss[name], mib)
                    cpu[name].append(cpus)
                print(f"  {fmt} {name} run {run}: {secs:.2f}s {mib:.0f} MiB {cpus:.2f} CPU s", file=sys.stderr)
        # check what each wrote
        for name, (_, out) in jobs.items():
            if name == "ingesta":
                bronze = count_delta(a.python, f"{out}/bronze")
                quarantined = count_delta(a.python, f"{out}/_quarantine/bronze")
            elif os.path.isdir(f"{out}/bronze/_delta_log"):
                bronze = count_delta(a.python, f"{out}/bronze")
                quarantined = count_parquet(a.python, f"{out}/quarantine.parquet")
            else:
                bronze = count_parquet(a.python, f"{out}/bronze")
                quarantined = count_parquet(a.python, f"{out}/quarantine.parquet")
            ok = bronze == man["valid_rows"] and quarantined == man["malformed"]
            results.append({"fmt": fmt, "tool": name, "median_s": statistics.median(times[name]),
                            "runs_s": times[name], "peak_rss_mib": rss[name], "cpu_s": statistics.median(cpu[name]),
                            "bronze_rows": bronze,
                            "quarantined": quarantined, "counts_ok": ok})

    print("| format | tool | median s | runs s | CPU s | peak RSS MiB | vs Ingesta | counts ok |")
    print("|---|---|---|---|---|---|---|---|")
    for fmt in ("ndjson", "csv"):
        rows = [r for r in results if r["fmt"] == fmt]
        ours = next(r for r in rows if r["tool"] == "ingesta")["median_s"]
        for r in sorted(rows, key=lambda r: r["median_s"]):
            runs = " / ".join(f"{x:.2f}" for x in r["runs_s"])
            print(f"| {fmt} | {r['tool']} | {r['median_s']:.2f} | {runs} | {r['cpu_s']:.2f} | {r['peak_rss_mib']:.0f} | "
                  f"{r['median_s'] / ours:.2f}x | {'yes' if r['counts_ok'] else 'NO'} |")
    if a.json:
        json.dump(results, open(a.json, "w"), indent=1)


if __name__ == "__main__":
    main()
