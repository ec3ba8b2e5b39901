#!/usr/bin/env python3
"""PostgreSQL change data capture (seed 003), release build, default settings,
against PostgreSQL's own tools on the same server, in the same run.

  $O2B/venv/bin/python bench/cdc.py --ingesta target/release/ingesta \\
      [--rows 2000000] [--changes 1000000] [--runs 3] [--lag 60] [--big 10000000]

1. Snapshot: `bench.items` (--rows rows, six columns, one ~60-byte text)
   copied by the first `run --once` of a bronze-only pipeline (slot created,
   COPY under its snapshot, change rows committed), against
   `COPY (SELECT * FROM bench.items) TO STDOUT` into /dev/null (psql).
   Median of --runs, each on a fresh lake and slot; rows/s and peak RSS.
2. Streaming: --changes updates in transactions of 1,000 rows, written while
   nothing reads; then `run --once` drains them into bronze, against
   `pg_recvlogical` receiving the same pgoutput stream from its own slot
   into /dev/null (the decode ceiling). Changes/s.
3. Lag: `run --watch` with replicas in the source database (schema
   `replica`) while 5,000 changes/s are written (50-row transactions);
   every 200 ms a probe row is inserted and its latency is from its commit
   to its row in replica.probe (polled every 5 ms). p50 / p99 over --lag s.
4. Memory: peak RSS of the snapshot of a --big-row table, and of draining
   one transaction of 1,000,000 updates.
Needs PostgreSQL (scripts/install-servers.sh) and psycopg (the orders DWH
baseline's venv has it).
"""
import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time

import psycopg

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from warehouse import PASSWORD, Server, timed_rss  # noqa: E402

LOGICAL = "-c wal_level=logical -c max_wal_senders=10 -c max_replication_slots=10 -c max_wal_size=8GB"


def fill(server, db, rows):
    server.psql(db, "DROP PUBLICATION IF EXISTS ingesta_db; DROP SCHEMA IF EXISTS bench CASCADE; CREATE SCHEMA bench")
    server.psql(db, "CREATE TABLE bench.items (id bigint PRIMARY KEY, name text, qty int, price numeric(12,2), "
                    "updated_at timestamptz, note text); CREATE TABLE bench.probe (id bigint PRIMARY KEY, sent timestamptz)")
    server.psql(db, f"INSERT INTO bench.items SELECT g, 'item ' || g, g % 100, (g % 10000) / 100.0, "
                    f"timestamp '2026-12-01' + g * interval '1 ms', md5(g::text) || md5((g + 1)::text) "
                    f"FROM generate_series(1, {rows}) g")
    server.psql(db, "VACUUM ANALYZE bench.items")


def drop_slots(server, db):
    server.psql(db, "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE NOT active")


def bronze_only(work):
    text = open(os.path.join(HERE, "cdc.yaml")).read().split("\nreplicas:")[0]
    path = os.path.join(work, "bronze.yaml")
    with open(path, "w") as f:
        f.write(text)
    return path


def run_once(ingesta, pipeline, env):
    return timed_rss([ingesta, "run", pipeline, "--once"], env)


def copy_out(server, db):
    env = dict(os.environ, PGPASSWORD=PASSWORD)
    t = time.perf_counter()
    with open(os.devnull, "wb") as null:
        subprocess.run([f"{server.bin}/psql", "-X", "-h", "127.0.0.1", "-p", str(server.port), "-U", "bench", "-d", db,
                        "-c", "COPY (SELECT * FROM bench.items) TO STDOUT"], env=env, stdout=null, check=True)
    return time.perf_counter() - t


def snapshot(a, server, db, work):
    pipeline = bronze_only(work)
    copies, ours, rss = [], [], []
    for _ in range(a.runs):
        copies.append(copy_out(server, db))
        lake = tempfile.mkdtemp(dir=work)
        drop_slots(server, db)
        secs, mib = run_once(a.ingesta, pipeline, dict(os.environ, BENCH_LAKE=lake, BENCH_SOURCE=server.url(db)))
        ours.append(secs)
        rss.append(mib)
        shutil.rmtree(lake)
    c, o = statistics.median(copies), statistics.median(ours)
    print(f"snapshot of {a.rows:,} rows: COPY TO STDOUT {c:.2f} s ({a.rows / c:,.0f} rows/s); "
          f"ingesta {o:.2f} s ({a.rows / o:,.0f} rows/s, {c / o:.0%} of COPY), peak RSS {max(rss):.0f} MiB", flush=True)


def streaming(a, server, db, work):
    pipeline = bronze_only(work)
    lake = tempfile.mkdtemp(dir=work)
    env = dict(os.environ, BENCH_LAKE=lake, BENCH_SOURCE=server.url(db))
    drop_slots(server, db)
    run_once(a.ingesta, pipeline, env)  # the copy, and the slot
    server.psql(db, "SELECT pg_create_logical_replication_slot('bare', 'pgoutput')")
    n = a.changes // 1000
    server.psql(db, f"""DO $$ BEGIN FOR i IN 0..{n - 1} LOOP
        UPDATE bench.items SET qty = qty + 1 WHERE id > i * 1000 AND id <= (i + 1) * 1000; COMMIT; END LOOP; END $$""")
    end = server.psql(db, "SELECT pg_current_wal_lsn()")
    penv = dict(os.environ, PGPASSWORD=PASSWORD)
    t = time.perf_counter()
    subprocess.run([f"{server.bin}/pg_recvlogical", "-h", "127.0.0.1", "-p", str(server.port), "-U", "bench",
                    "-d", db, "--slot", "bare", "--start", "-o", "proto_version=1",
                    "-o", "publication_names=ingesta_db", "-E", end, "-f", "/dev/null"], env=penv, check=True)
    bare = time.perf_counter() - t
    secs, mib = run_once(a.ingesta, pipeline, env)
    changes = n * 1000
    print(f"streaming {changes:,} changes: pg_recvlogical {bare:.2f} s ({changes / bare:,.0f}/s); "
          f"ingesta {secs:.2f} s ({changes / secs:,.0f}/s, {bare / secs:.0%} of the bare client), "
          f"peak RSS {mib:.0f} MiB", flush=True)
    server.psql(db, "SELECT pg_drop_replication_slot('bare')")
    # one transaction of 1,000,000 updates: committed in parts, never held whole
    big = min(1_000_000, a.rows)
    server.psql(db, f"UPDATE bench.items SET qty = qty + 1 WHERE id <= {big}")
    secs, mib = run_once(a.ingesta, pipeline, env)
    print(f"one transaction of {big:,} updates: {secs:.2f} s, peak RSS {mib:.0f} MiB", flush=True)
    shutil.rmtree(lake)


def lag(a, server, db, work):
    lake = tempfile.mkdtemp(dir=work)
    env = dict(os.environ, BENCH_LAKE=lake, BENCH_SOURCE=server.url(db), INGESTA_LOG="warn")
    drop_slots(server, db)
    server.psql(db, "DROP SCHEMA IF EXISTS replica CASCADE")
    pipeline = os.path.join(HERE, "cdc.yaml")
    secs, _ = run_once(a.ingesta, pipeline, env)
    print(f"lag: initial copy and replicas of {a.rows:,} rows in {secs:.1f} s", flush=True)
    watch = subprocess.Popen([a.ingesta, "run", pipeline, "--watch"], env=env, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
    stop = threading.Event()

    def load():
        with psycopg.connect(server.url(db), autocommit=True) as c:
            i, t0 = 0, time.perf_counter()
            while not stop.is_set():
                lo = (i * 50) % a.rows
                c.execute("UPDATE bench.items SET qty = qty + 1 WHERE id > %s AND id <= %s", (lo, lo + 50))
                i += 1
                ahead = t0 + i * 50 / 5000 - time.perf_counter()
                if ahead > 0:
                    time.sleep(ahead)

    writer = threading.Thread(target=load)
    time.sleep(3)
    writer.start()
    lags = []
    with psycopg.connect(server.url(db), autocommit=True) as c:
        end, k = time.time() + a.lag, 0
        while time.time() < end:
            k += 1
            c.execute("INSERT INTO bench.probe VALUES (%s, now())", (k,))
            t = time.perf_counter()
            while True:
                try:
                    if c.execute("SELECT 1 FROM replica.probe WHERE id = %s", (k,)).fetchone():
                        break
                except psycopg.errors.UndefinedTable:
                    pass
                if time.perf_counter() - t > 30:
                    sys.exit("a probe did not arrive in 30 s")
                time.sleep(0.005)
            lags.append(time.perf_counter() - t)
            time.sleep(0.2)
    stop.set()
    writer.join()
    watch.terminate()
    watch.wait()
    lags.sort()
    p50, p99 = lags[len(lags) // 2], lags[int(len(lags) * 0.99) - 1]
    print(f"lag at 5,000 changes/s over {a.lag} s ({len(lags)} probes): "
          f"p50 {p50 * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms", flush=True)
    shutil.rmtree(lake)


def memory(a, server, db, work):
    fill(server, db, a.big)
    pipeline = bronze_only(work)
    lake = tempfile.mkdtemp(dir=work)
    drop_slots(server, db)
    secs, mib = run_once(a.ingesta, pipeline, dict(os.environ, BENCH_LAKE=lake, BENCH_SOURCE=server.url(db)))
    print(f"snapshot of {a.big:,} rows: {secs:.1f} s ({a.big / secs:,.0f} rows/s), peak RSS {mib:.0f} MiB", flush=True)
    shutil.rmtree(lake)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ingesta", required=True)
    ap.add_argument("--rows", type=int, default=2_000_000)
    ap.add_argument("--changes", type=int, default=1_000_000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--lag", type=int, default=60)
    ap.add_argument("--big", type=int, default=10_000_000)
    ap.add_argument("--only", default="snapshot,streaming,lag,memory")
    a = ap.parse_args()
    work = tempfile.mkdtemp(prefix="ingesta-bench-cdc-")
    server = Server(LOGICAL)
    try:
        server.psql("postgres", "CREATE DATABASE shop")
        fill(server, "shop", a.rows)
        for part in a.only.split(","):
            globals()[part](a, server, "shop", work)
    finally:
        server.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
