#!/usr/bin/env python3
"""Bronze -> silver -> gold benchmark: Ingesta's silver and gold tables
(bench/layers.yaml) over the 5M-row bronze table, against DuckDB and Polars
computing the same gold from the same bronze files (../shared/bench gold jobs),
in the same run; then the cost of a 1% append.

  python3 bench/layers.py --ingesta target/release/ingesta --python VENV/bin/python [--runs 3] [--appends 3]

Per round: a fresh lake; bronze alone (not timed); then, timed, Ingesta's
silver + gold (`readings` → `hourly`), Ingesta's gold straight from bronze
(`direct_hourly`), DuckDB's and Polars' gold jobs (reading the same bronze
Parquet files / Delta table). Seconds per table come from `ingesta run --json`
(the process's own figures, without startup), and whole processes ("process")
as for the peers. Gold
is checked against DuckDB's: same 33,600 rows and values. Then `--appends`
1% appends (50,000 rows each, one after the other), each timed as silver +
gold; their median over all rounds is set against the median full silver +
gold (the issue's "a 1% append costs less than 5% of the full computation").
The same appends are also timed in a long-running pipeline (`run --watch`,
its tables open between polls): the seconds of the pass that committed each,
from `GET /health`'s `last_commit_seconds`.
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
SHARED = os.path.normpath(os.path.join(HERE, "..", "..", "shared", "bench"))


CHECK = ("import os, sys, deltalake, duckdb\n"
         "g = deltalake.DeltaTable(sys.argv[1] + '/hourly').to_pyarrow_table()\n"
         "d = deltalake.DeltaTable(sys.argv[1] + '/direct_hourly').to_pyarrow_table()\n"
         "con = duckdb.connect()\n"
         "n = con.execute(\"SELECT count(*) FROM read_parquet(?) p JOIN g USING (farm_id, hour) "
         "WHERE p.n = g.n AND p.temp_min = g.temp_min AND p.temp_max = g.temp_max "
         "AND abs(p.temp_avg - g.temp_avg) < 1e-9\", [sys.argv[1] + '/gold.parquet']).fetchone()[0]\n"
         "print(g.num_rows, d.num_rows, n, flush=True); os._exit(0)\n")


def run(cmd, env=None):
    t = time.perf_counter()
    p = subprocess.run(cmd, env=env, capture_output=True)
    secs = time.perf_counter() - t
    if p.returncode != 0:
        sys.exit(f"failed: {' '.join(cmd)}\n{p.stderr.decode(errors='replace')}")
    return secs, p.stdout.decode()


def write_pipeline(tables):
    """layers.yaml with only `tables` (bronze always), so each timing is one job."""
    text = open(os.path.join(HERE, "layers.yaml")).read()
    head, body = text.split("\ntables:\n")
    blocks, cur = {}, None
    for line in body.splitlines(keepends=True):
        if line.startswith("  ") and not line.startswith("   ") and line.strip().endswith(":"):
            cur = line.strip()[:-1]
            blocks[cur] = ""
        blocks[cur] += line
    out = head + "\ntables:\n" + "".join(blocks[t] for t in ["bronze"] + tables)
    path = f"/tmp/bench-layers-{'-'.join(tables) or 'bronze'}.yaml"
    open(path, "w").write(out)
    return path


def append_file(landing, k):
    """One more landing file: the first 50,000 readings again, as other devices (late data)."""
    extra = f"{landing}/zz-append-{k}.ndjson"
    with open(f"{landing}/readings-00000.ndjson") as src, open(extra + ".tmp", "w") as dst:
        for i, line in enumerate(src):
            if i >= 50_000:
                break
            late = f"late{k}-"
            dst.write(line.replace('"device_id": "', f'"device_id": "{late}').replace('"device_id":"', f'"device_id":"{late}'))
    os.rename(extra + ".tmp", extra)
    return extra


def watched_appends(ingesta, pipeline, env, landing, ks):
    """Appends into a running `run --watch`: silver + gold seconds of the pass that committed each."""
    addr = "127.0.0.1:9479"
    proc = subprocess.Popen([ingesta, "run", pipeline, "--watch", "--health", addr], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def commits():
        try:
            with urllib.request.urlopen(f"http://{addr}/health", timeout=2) as r:
                h = json.load(r)
        except urllib.error.HTTPError as e:
            h = json.load(e)
        except OSError:
            return {}
        return {t["table"]: (t["last_commit"], t["last_commit_seconds"]) for t in h["tables"]}

    out, files = [], []
    try:
        deadline = time.time() + 60
        while {"readings", "hourly"} - set(commits()) and time.time() < deadline:
            time.sleep(0.1)
        time.sleep(1.5)  # a first pass over what is there (nothing new)
        for k in ks:
            before = commits()
            files.append(append_file(landing, k))
            deadline = time.time() + 60
            while time.time() < deadline:
                now = commits()
                if all(now.get(t, (None,))[0] not in (None, before.get(t, (None,))[0]) for t in ("readings", "hourly")):
                    out.append(now["readings"][1] + now["hourly"][1])
                    break
                time.sleep(0.05)
            else:
                sys.exit("the watching pipeline did not commit an append within 60 s")
    finally:
        proc.terminate()
        proc.wait()
        for f in files:
            os.remove(f)
    return out


def seconds(report, tables):
    r = json.loads(report)
    return sum(t["seconds"] for t in r["tables"] if t["table"] in tables), r


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ingesta", required=True)
    ap.add_argument("--python", required=True)
    ap.add_argument("--data", default="/tmp/bench")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--appends", type=int, default=3, help="1%% appends per round (each its own file)")
    a = ap.parse_args()
    landing = f"{a.data}/landing_ndjson"
    lake = f"{a.data}/out/layers"
    env = dict(os.environ, BENCH_OUT=lake, BENCH_LANDING=landing, BENCH_FMT="ndjson")
    bronze_only = write_pipeline([])
    silver_gold = write_pipeline(["readings", "hourly"])
    direct = write_pipeline(["direct_hourly"])
    times = {"ingesta silver+gold": [], "ingesta silver+gold (process)": [], "ingesta gold from bronze": [],
             "ingesta gold from bronze (process)": [], "duckdb gold (process)": [], "polars gold (process)": [],
             "ingesta 1% append (silver+gold)": [], "ingesta 1% append, run --watch (silver+gold)": []}
    for rnd in range(a.runs + 1):
        shutil.rmtree(lake, ignore_errors=True)
        run([a.ingesta, "run", bronze_only, "--once", "--json"], env)
        sg_proc, rep = run([a.ingesta, "run", silver_gold, "--once", "--json"], env)
        sg, _ = seconds(rep, {"readings", "hourly"})
        dg_proc, rep = run([a.ingesta, "run", direct, "--once", "--json"], env)
        dg, _ = seconds(rep, {"direct_hourly"})
        duck, _ = run([a.python, f"{SHARED}/duckdb_job.py", "gold", "--fmt", "ndjson", "--out", lake])
        pol, _ = run([a.python, f"{SHARED}/polars_job.py", "gold", "--fmt", "ndjson", "--sink", "delta", "--out", lake])
        if rnd == a.runs:
            out = subprocess.check_output([a.python, "-c", CHECK, lake]).decode().split()
            print(f"gold rows: silver+gold {out[0]}, from bronze {out[1]}; equal to DuckDB's gold: {out[2]}")
        # 1% appends: one more landing file of 50,000 rows each time, then bronze, silver and gold again
        incs = []
        for k in range(a.appends):
            extra = append_file(landing, k)
            try:
                run([a.ingesta, "run", bronze_only, "--once", "--json"], env)
                _, rep = run([a.ingesta, "run", silver_gold, "--once", "--json"], env)
                incs.append(seconds(rep, {"readings", "hourly"})[0])
            finally:
                os.remove(extra)
        watched = watched_appends(a.ingesta, silver_gold, env, landing, range(a.appends, 2 * a.appends))
        label = "warm-up" if rnd == 0 else f"run {rnd}"
        print(f"  {label}: silver+gold {sg:.2f}s, gold from bronze {dg:.2f}s, duckdb {duck:.2f}s, "
              f"polars {pol:.2f}s, 1% appends {' / '.join(f'{x:.3f}' for x in incs)}s, "
              f"watched {' / '.join(f'{x:.3f}' for x in watched)}s", file=sys.stderr)
        if rnd > 0:
            for k, v in zip(times, (sg, sg_proc, dg, dg_proc, duck, pol)):
                times[k].append(v)
            times["ingesta 1% append (silver+gold)"].extend(incs)
            times["ingesta 1% append, run --watch (silver+gold)"].extend(watched)
    full = statistics.median(times["ingesta silver+gold"])
    print("| job | median s | runs s | vs Ingesta silver+gold |")
    print("|---|---|---|---|")
    for k, v in times.items():
        m = statistics.median(v)
        print(f"| {k} | {m:.3f} | {' / '.join(f'{x:.3f}' for x in v)} | {m / full:.2f}x |")
    for k in ("ingesta 1% append (silver+gold)", "ingesta 1% append, run --watch (silver+gold)"):
        inc = statistics.median(times[k])
        print(f"\n{k[8:]} (median of {len(times[k])}) / silver+gold (median): {100 * inc / full:.1f}% (goal: under 5%)")


if __name__ == "__main__":
    main()
