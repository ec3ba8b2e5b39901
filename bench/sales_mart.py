#!/usr/bin/env python3
"""Sales-mart benchmark (seed 000), on 10M generated rows of
`fact_order_variation_sold` (bench/sales_mart.yaml, default settings):

1. rollup refresh: the store x hour rollup computed over all the facts (the
   table's first pass: a full computation), then refreshed after a 1% append
   (only the touched hours merge); the rollup is checked against the facts;
2. facts into PostgreSQL: the facts copied from the lake into a PostgreSQL
   table by Ingesta, against `psql \\copy` of the same rows from a CSV file,
   on the same fresh server;
3. the `sales_by_day` report over the rollup, 50 keep-alive clients for 20 s
   with `ab -k -c 50`.

  python3 bench/sales_mart.py --ingesta target/release/ingesta --python VENV/bin/python [--runs 3]

Times are the tables' own seconds from `run --once --json` (the process
around them adds start-up and the other tables). Needs PostgreSQL
(scripts/install-servers.sh), DuckDB in --python's environment and `ab`.
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from serving import ab  # noqa: E402  (the same ApacheBench run and parse)
from warehouse import Server  # noqa: E402  (the same fresh PostgreSQL cluster)

TOKEN = "bench-read-token-0123456789"
COLUMNS = ("time, day, order_id, store_id, customer_id, channel, variation_id, sku, product_id, category, brand, "
           "quantity, gross_amount, discount_amount, net_amount, currency, status, sign, event_id")
# rows i in [first, first + n): deterministic, November 2026, 50 stores, 500 products, 5% cancellations
GENERATE = """
import sys, duckdb
out, first, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
duckdb.connect().execute(f'''
COPY (
  SELECT TIMESTAMPTZ '2026-11-01 00:00:00+00' + to_microseconds(CAST((i * 2654435761) % 2592000000000 AS BIGINT)) AS time,
         CAST(TIMESTAMPTZ '2026-11-01 00:00:00+00' + to_microseconds(CAST((i * 2654435761) % 2592000000000 AS BIGINT)) AS DATE) AS day,
         'ORD-' || lpad(CAST(i // 2 AS VARCHAR), 9, '0') AS order_id,
         'st-' || lpad(CAST(i % 50 AS VARCHAR), 3, '0') AS store_id,
         'cu-' || CAST((i * 7919) % 90000 AS VARCHAR) AS customer_id,
         ['web', 'app', 'store'][1 + i % 3] AS channel,
         'var-' || CAST((i * 31) % 6000 AS VARCHAR) AS variation_id,
         'SKU-' || CAST((i * 31) % 6000 AS VARCHAR) AS sku,
         'p-' || CAST((i * 31) % 500 AS VARCHAR) AS product_id,
         ['Calzado', 'Ropa', 'Accesorios', 'Hogar', 'Deporte', 'Niños', 'Belleza', 'Tecnología'][1 + i % 8] AS category,
         ['Andes', 'Pima Co', 'Cóndor', 'Inti'][1 + i % 4] AS brand,
         CAST(1 + i % 3 AS BIGINT) AS quantity,
         CAST((1 + i % 3) * (9.90 + (i % 200)) AS DECIMAL(14, 2)) AS gross_amount,
         CAST(CASE WHEN i % 4 = 0 THEN 5 ELSE 0 END AS DECIMAL(14, 2)) AS discount_amount,
         CAST((1 + i % 3) * (9.90 + (i % 200)) - CASE WHEN i % 4 = 0 THEN 5 ELSE 0 END AS DECIMAL(14, 2)) AS net_amount,
         'PEN' AS currency,
         CASE WHEN i % 20 = 7 THEN 'cancelled' ELSE 'confirmed' END AS status,
         CAST(CASE WHEN i % 20 = 7 THEN -1 ELSE 1 END AS INTEGER) AS sign,
         'ev-' || CAST(i AS VARCHAR) AS event_id
  FROM range({first}, {first + n}) t(i)
) TO '{out}' (FORMAT parquet, ROW_GROUP_SIZE 122880)''')
"""
EXPORT = ("import sys, duckdb\n"
          "duckdb.connect().execute(\"COPY (SELECT " + COLUMNS + " FROM read_parquet(?)) TO '\" + sys.argv[2] + \"' "
          "(HEADER, DELIMITER ',')\", [sys.argv[1] + '/*.parquet'])\n")


def run_json(ingesta, env):
    out = subprocess.run([ingesta, "run", f"{HERE}/sales_mart.yaml", "--once", "--json"], env=env,
                         capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"ingesta run failed: {out.stderr[-3000:]}")
    return {t["table"]: t for t in json.loads(out.stdout)["tables"]}


def query(ingesta, env, sql):
    out = subprocess.run([ingesta, "query", f"{HERE}/sales_mart.yaml", sql, "--format", "csv"], env=env,
                         capture_output=True, text=True, check=True)
    return out.stdout.splitlines()[1]


def prepare(python, data, facts, files):
    src = f"{data}/facts"
    if not os.path.exists(f"{src}/done"):
        shutil.rmtree(src, ignore_errors=True)
        os.makedirs(f"{src}/main")
        os.makedirs(f"{src}/append")
        per = facts // files
        for f in range(files):
            subprocess.run([python, "-c", GENERATE, f"{src}/main/part-{f:03d}.parquet", str(f * per), str(per)],
                           check=True)
        subprocess.run([python, "-c", GENERATE, f"{src}/append/part-999.parquet", str(facts), str(facts // 100)],
                       check=True)
        open(f"{src}/done", "w").close()
    return src


def landing_with(src, parts, landing):
    """A landing folder holding hard links to `parts` of `src`."""
    os.makedirs(landing, exist_ok=True)
    for part in parts:
        for name in sorted(os.listdir(f"{src}/{part}")):
            target = f"{landing}/{part}-{name}"
            if not os.path.exists(target):
                os.link(f"{src}/{part}/{name}", target)


def rollup(a, src):
    full, refresh = [], []
    for r in range(a.runs):
        out = f"{a.data}/out/rollup-{r}"
        shutil.rmtree(out, ignore_errors=True)
        env = dict(os.environ, BENCH_OUT=f"{out}/lake", BENCH_LANDING=f"{out}/landing", INGESTA_LOG="warn")
        landing_with(src, ["main"], f"{out}/landing")
        first = run_json(a.ingesta, env)
        landing_with(src, ["main", "append"], f"{out}/landing")
        second = run_json(a.ingesta, env)
        rolled = query(a.ingesta, env, "SELECT sum(net_units), sum(net_amount) FROM sales_store_hour")
        direct = query(a.ingesta, env, "SELECT sum(sign * quantity), sum(sign * net_amount) FROM facts")
        assert rolled == direct, f"the rollup ({rolled}) differs from the facts ({direct})"
        full.append(first["sales_store_hour"]["seconds"])
        refresh.append(second["sales_store_hour"]["seconds"])
        print(f"  run {r + 1}: full {full[-1]:.2f}s over {first['facts']['rows']:,} facts, refresh "
              f"{refresh[-1]:.3f}s after {second['facts']['rows']:,} more", file=sys.stderr)
    return full, refresh, env


def to_postgres(a, src):
    server = Server()
    try:
        out = f"{a.data}/out/pg"
        shutil.rmtree(out, ignore_errors=True)
        landing_with(src, ["main"], f"{out}/landing")
        env = dict(os.environ, BENCH_OUT=f"{out}/lake", BENCH_LANDING=f"{out}/landing", INGESTA_LOG="warn")
        run_json(a.ingesta, env)  # bronze, not timed
        csv = f"{out}/facts.csv"
        subprocess.run([a.python, "-c", EXPORT, f"{src}/main", csv], check=True)
        ingesta, psql = [], []
        for r in range(a.runs + 1):
            db = f"round{r}"
            server.psql("postgres", f"CREATE DATABASE {db}")
            tables = run_json(a.ingesta, dict(env, BENCH_WAREHOUSE=server.url(db), BENCH_FACTS_STORE="warehouse"))
            rows = int(server.psql(db, "SELECT count(*) FROM sales.facts_pg"))
            assert rows == tables["facts_pg"]["rows"] and rows > 0, f"loaded {rows}"
            server.psql(db, "CREATE TABLE copy_target (LIKE sales.facts_pg INCLUDING DEFAULTS)")
            t = time.perf_counter()
            server.psql(db, f"\\copy copy_target ({COLUMNS}) FROM '{csv}' CSV HEADER")
            secs = time.perf_counter() - t
            assert int(server.psql(db, "SELECT count(*) FROM copy_target")) == rows
            server.psql("postgres", f"DROP DATABASE {db}")
            print(f"  {'warm-up' if r == 0 else f'run {r}'}: ingesta {tables['facts_pg']['seconds']:.2f}s, "
                  f"psql \\copy {secs:.2f}s ({rows:,} rows)", file=sys.stderr)
            if r > 0:
                ingesta.append(tables["facts_pg"]["seconds"])
                psql.append(secs)
        return ingesta, psql, rows
    finally:
        server.stop()


def report_load(a, env):
    port = 20000 + os.getpid() % 20000
    proc = subprocess.Popen([a.ingesta, "serve", f"{HERE}/sales_mart.yaml", "--addr", f"127.0.0.1:{port}"],
                            env=dict(env, INGESTA_READ_TOKEN=TOKEN), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/api/reports/sales_by_day?store=st-007&from=2026-11-01&to=2026-11-30"
    try:
        for _ in range(300):
            try:
                req = urllib.request.Request(url, headers={"Authorization": f"Bearer {TOKEN}"})
                body = json.loads(urllib.request.urlopen(req, timeout=5).read())
                assert body["row_count"] == 30, body
                break
            except OSError:
                time.sleep(0.1)
        return ab(url, 20, TOKEN)
    finally:
        proc.terminate()
        proc.wait()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ingesta", required=True)
    ap.add_argument("--python", required=True, help="a Python with duckdb")
    ap.add_argument("--data", default="/tmp/bench-sales")
    ap.add_argument("--facts", type=int, default=10_000_000)
    ap.add_argument("--files", type=int, default=20)
    ap.add_argument("--runs", type=int, default=3)
    a = ap.parse_args()
    src = prepare(a.python, a.data, a.facts, a.files)
    print("rollup refresh:", file=sys.stderr)
    full, refresh, env = rollup(a, src)
    print("facts into PostgreSQL:", file=sys.stderr)
    ingesta, psql, rows = to_postgres(a, src)
    print("the sales_by_day report:", file=sys.stderr)
    load = report_load(a, env)
    fm, rm = statistics.median(full), statistics.median(refresh)
    print("| job | median s | runs s | ratio |")
    print("|---|---|---|---|")
    print(f"| rollup, full computation over {a.facts:,} facts | {fm:.2f} | {' / '.join(f'{x:.2f}' for x in full)} | 1.00 |")
    print(f"| rollup refresh after a 1% append | {rm:.3f} | {' / '.join(f'{x:.3f}' for x in refresh)} | "
          f"{rm / fm:.3f} |")
    im, pm = statistics.median(ingesta), statistics.median(psql)
    print(f"| facts lake -> PostgreSQL (Ingesta, {rows:,} rows) | {im:.2f} | {' / '.join(f'{x:.2f}' for x in ingesta)} | "
          f"{pm / im:.2f} of psql's rate |")
    print(f"| `psql \\copy` of the same rows from CSV | {pm:.2f} | {' / '.join(f'{x:.2f}' for x in psql)} | 1.00 |")
    print(f"\nsales_by_day, 50 clients, 20 s: {load['requests_per_s']:,.0f} requests/s, p50 {load['p50_ms']:.0f} ms, "
          f"p99 {load['p99_ms']:.0f} ms, longest {load['longest_ms']:.0f} ms, {load['errors']} errors, "
          f"{load['length_differs']} answers of another length")


if __name__ == "__main__":
    main()
