#!/usr/bin/env python3
"""Lake -> PostgreSQL benchmark: the 5M IoT readings of the bronze table
copied into a PostgreSQL table by Ingesta (bench/warehouse.yaml, a silver
table with `store: warehouse`, default settings), against `psql \\copy` of the
same rows from a CSV file into a table of the same columns (PostgreSQL's own
bulk-load path), in the same run, on the same server.

  python3 bench/warehouse.py --ingesta target/release/ingesta --python VENV/bin/python [--runs 3]

The server is a fresh PostgreSQL cluster (initdb, default settings, run as
the `postgres` user when this runs as root) on a free port. Per round: a new
database; Ingesta's run (bronze is already in the lake, so it only reads
bronze's Parquet files and loads PostgreSQL), timed as a process, with its
peak RSS; then `psql \\copy` of the CSV into an empty table, timed as a
process. Row counts are checked. Needs PostgreSQL (scripts/install-servers.sh)
and the bench data (bench/run.py writes it to --data).
"""
import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
PASSWORD = "bench-password"
COLUMNS = "device_id, farm_id, ts, temperature, humidity, soil_moisture, battery, status"
EXPORT = ("import sys, duckdb\n"
          "con = duckdb.connect()\n"
          f"con.execute(\"COPY (SELECT {COLUMNS} FROM read_parquet(?, hive_partitioning=false)) TO '\" + sys.argv[2] + \"' "
          "(HEADER, DELIMITER ',')\", [sys.argv[1] + '/bronze/**/*.parquet'])\n")


def pg_bin():
    versions = sorted((d for d in os.listdir("/usr/lib/postgresql") if d.isdigit()), key=int)
    if not versions:
        sys.exit("PostgreSQL is missing: scripts/install-servers.sh")
    return f"/usr/lib/postgresql/{versions[-1]}/bin"


class Server:
    def __init__(self, options=""):
        self.bin = pg_bin()
        self.dir = tempfile.mkdtemp(prefix="ingesta-bench-pg-")
        self.data = f"{self.dir}/data"
        self.user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        with open(f"{self.dir}/pw", "w") as f:
            f.write(PASSWORD)
        if self.user:
            subprocess.run(["chown", "-R", "postgres", self.dir], check=True)
            os.chmod(self.dir, 0o755)
        subprocess.run(self.user + [f"{self.bin}/initdb", "-D", self.data, "-U", "bench", "--pwfile", f"{self.dir}/pw",
                                    "--auth-host=scram-sha-256", "--auth-local=trust", "-E", "UTF8", "--locale=C"],
                       check=True, capture_output=True)
        opts = f"-p {self.port} -c listen_addresses=127.0.0.1 -c unix_socket_directories='' {options}"
        subprocess.run(self.user + [f"{self.bin}/pg_ctl", "-D", self.data, "-l", f"{self.dir}/log", "-o", opts,
                                    "-w", "start"], check=True, capture_output=True)

    def url(self, db):
        return f"postgresql://bench:{PASSWORD}@127.0.0.1:{self.port}/{db}"

    def psql(self, db, sql):
        env = dict(os.environ, PGPASSWORD=PASSWORD)
        out = subprocess.run([f"{self.bin}/psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1",
                              "-p", str(self.port), "-U", "bench", "-d", db, "-c", sql],
                             env=env, capture_output=True)
        if out.returncode != 0:
            sys.exit(f"psql `{sql}` failed: {out.stderr.decode(errors='replace')}")
        return out.stdout.decode().strip()

    def stop(self):
        subprocess.run(self.user + [f"{self.bin}/pg_ctl", "-D", self.data, "-m", "fast", "stop"], capture_output=True)
        shutil.rmtree(self.dir, ignore_errors=True)


def timed_rss(cmd, env):
    """Seconds and peak RSS (MiB) of one process."""
    t = time.perf_counter()
    p = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(p.pid, 0)
    secs = time.perf_counter() - t
    if status != 0:
        sys.exit(f"failed: {' '.join(cmd)}\n{p.stderr.read().decode(errors='replace')}")
    return secs, usage.ru_maxrss / 1024


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ingesta", required=True)
    ap.add_argument("--python", required=True)
    ap.add_argument("--data", default="/tmp/bench")
    ap.add_argument("--runs", type=int, default=3)
    a = ap.parse_args()
    landing, lake = f"{a.data}/landing_ndjson", f"{a.data}/out/warehouse"
    csv = f"{a.data}/out/warehouse.csv"
    server = Server()
    try:
        env = dict(os.environ, BENCH_OUT=lake, BENCH_LANDING=landing, BENCH_FMT="ndjson",
                   BENCH_WAREHOUSE=server.url("postgres"), INGESTA_LOG="warn")
        pipeline = f"{HERE}/warehouse.yaml"
        shutil.rmtree(lake, ignore_errors=True)
        server.psql("postgres", "CREATE DATABASE setup")
        # bronze (and a first load into another database), then the CSV psql loads: not timed
        bronze_env = dict(env, BENCH_WAREHOUSE=server.url("setup"))
        subprocess.run([a.ingesta, "run", pipeline, "--once"], env=bronze_env, check=True,
                       capture_output=True)
        subprocess.run([a.python, "-c", EXPORT, lake, csv], check=True)
        rows = sum(1 for _ in open(csv)) - 1
        print(f"{rows} rows; CSV {os.path.getsize(csv) / 2**20:.0f} MiB", file=sys.stderr)
        times = {"ingesta lake -> PostgreSQL": [], "psql \\copy from CSV": []}
        rss = []
        for rnd in range(a.runs + 1):
            db = f"round{rnd}"
            server.psql("postgres", f"CREATE DATABASE {db}")
            # a fresh lake position: the warehouse table is new in each database
            run_env = dict(env, BENCH_WAREHOUSE=server.url(db))
            secs, peak = timed_rss([a.ingesta, "run", pipeline, "--once"], run_env)
            got = int(server.psql(db, "SELECT count(*) FROM readings_pg"))
            assert got == rows, f"ingesta loaded {got} rows, expected {rows}"
            server.psql(db, "CREATE TABLE copy_target (LIKE readings_pg INCLUDING DEFAULTS)")
            t = time.perf_counter()
            server.psql(db, f"\\copy copy_target ({COLUMNS}) FROM '{csv}' CSV HEADER")
            psql = time.perf_counter() - t
            got = int(server.psql(db, "SELECT count(*) FROM copy_target"))
            assert got == rows, f"psql loaded {got} rows, expected {rows}"
            server.psql("postgres", f"DROP DATABASE {db}")
            label = "warm-up" if rnd == 0 else f"run {rnd}"
            print(f"  {label}: ingesta {secs:.2f}s (peak RSS {peak:.0f} MiB), psql \\copy {psql:.2f}s", file=sys.stderr)
            if rnd > 0:
                times["ingesta lake -> PostgreSQL"].append(secs)
                times["psql \\copy from CSV"].append(psql)
                rss.append(peak)
        base = statistics.median(times["psql \\copy from CSV"])
        print("| job | median s | runs s | rows/s | rate vs psql \\copy |")
        print("|---|---|---|---|---|")
        for k, v in times.items():
            m = statistics.median(v)
            print(f"| {k} | {m:.2f} | {' / '.join(f'{x:.2f}' for x in v)} | {rows / m:,.0f} | {base / m:.2f} |")
        print(f"\npeak RSS of the Ingesta load: median {statistics.median(rss):.0f} MiB "
              f"(runs {' / '.join(f'{x:.0f}' for x in rss)})")
    finally:
        server.stop()


if __name__ == "__main__":
    main()
