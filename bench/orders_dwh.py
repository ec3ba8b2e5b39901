#!/usr/bin/env python3
"""The orders DWH (seed 002): Ingesta's one-process pipeline
(examples/orders-dwh, default settings) against the per-message baseline of
the shared benchmarks (bench/orders_dwh_baseline: three Python services, one
SQL statement per row), on the same data, in the same run.

  $O2B/venv/bin/python bench/orders_dwh.py --ingesta target/release/ingesta \\
      --baseline ../shared/bench/orders_dwh_baseline [--orders 50000] [--runs 3] [--steady 60]

1. Backfill: the baseline's generator (gen_orders.py --orders N, users N/10)
   puts the week's history on a fresh tansu broker (3 partitions, no keys)
   and Redis; Ingesta's `run --once` drains it into STG, DDS and CDM on a
   fresh PostgreSQL, timed as a process from its start (joining the group
   included) to its exit, with its peak RSS; then the baseline's
   `harness.py check` must say PASS. Median of --runs. The baseline runs
   once as `run_baseline.sh --orders N --keyed` (its fastest correct
   variant), its drain as it prints it.
   With --services, the seed's three services too (examples/orders-dwh/
   services), each `run --once` after the one before it, then the check.
2. Steady state: `run --watch` over the drained DWH while orders arrive at
   100 per second for --steady seconds; one order per second is a probe
   (a CLOSED order of a user of its own); the probe's latency is from its
   send to the moment its counter row is in cdm.user_product_counters
   (polled every 10 ms). p50 / p99, and the process's peak RSS.
Needs PostgreSQL and redis-server (scripts/install-servers.sh), tansu
(scripts/install-tansu.sh) and to run under the baseline's venv ($O2B/venv,
made as its README says: confluent-kafka, psycopg, redis).
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from warehouse import Server, timed_rss  # noqa: E402  (the same fresh PostgreSQL cluster)
from serving import free_port  # noqa: E402

NS = uuid.UUID("7f288a2e-0ad0-4039-8e59-6c9838d87307")
EXAMPLE = os.path.join(HERE, "..", "examples", "orders-dwh")


def tansu():
    found = shutil.which("tansu") or os.path.expanduser("~/.cache/ingesta/tansu/bin/tansu")
    if not os.path.exists(found):
        sys.exit("tansu is missing: scripts/install-tansu.sh")
    return found


class Servers:
    """A fresh PostgreSQL (with the example's ddl.sql), redis-server and tansu."""

    def __init__(self, work):
        self.pg = Server()
        self.pg.psql("postgres", "CREATE DATABASE dwh")
        self.pg.psql("dwh", open(os.path.join(EXAMPLE, "ddl.sql")).read())
        self.redis_port, self.kafka_port = free_port(), free_port()
        subprocess.run(["redis-server", "--bind", "127.0.0.1", "--port", str(self.redis_port), "--save", "",
                        "--daemonize", "yes", "--dir", work, "--logfile", f"{work}/redis.log"], check=True)
        url = f"tcp://127.0.0.1:{self.kafka_port}"
        self.broker = subprocess.Popen([tansu(), "broker", "--listener-url", url, "--advertised-listener-url", url,
                                        "--storage-engine", "memory://tansu/"],
                                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(1)
        subprocess.run([tansu(), "topic", "create", "order-service_orders", "--partitions", "3", "--broker", url],
                       check=True, capture_output=True)

    def env(self, lake):
        return dict(os.environ, KAFKA_BROKERS=f"127.0.0.1:{self.kafka_port}", INGESTA_LAKE=lake,
                    INGESTA_REDIS=f"redis://127.0.0.1:{self.redis_port}", INGESTA_WAREHOUSE=self.pg.url("dwh"))

    def libpq(self):
        return f"host=127.0.0.1 port={self.pg.port} user=bench password=bench-password dbname=dwh"

    def stop(self):
        self.broker.kill()
        subprocess.run(["redis-cli", "-p", str(self.redis_port), "shutdown", "nosave"], capture_output=True)
        self.pg.stop()


def data(a):
    d = f"{a.work}/data_{a.orders}"
    if not os.path.exists(f"{d}/expected.json"):
        subprocess.run([a.python, f"{a.baseline}/gen_orders.py", "--orders", str(a.orders), "--users",
                        str(a.orders // 10), "--out", d], check=True, capture_output=True)
        subprocess.run([a.python, f"{a.baseline}/expected.py", d], check=True, capture_output=True)
    return d


def backfill(a, d):
    work = tempfile.mkdtemp(prefix="ingesta-bench-o2-")
    s = Servers(work)
    try:
        for cmd in (["load-redis", d, f"127.0.0.1:{s.redis_port}"], ["produce", d, f"127.0.0.1:{s.kafka_port}"]):
            subprocess.run([a.python, f"{a.baseline}/harness.py", *cmd], check=True, capture_output=True)
        secs, rss = timed_rss([a.ingesta, "run", f"{EXAMPLE}/ingesta.yaml", "--once"], s.env(f"{work}/lake"))
        check = subprocess.run([a.python, f"{a.baseline}/harness.py", "check", d, s.libpq()], capture_output=True)
        verdict = check.stdout.decode().strip().splitlines()[-1]
        print(f"  ingesta backfill: {secs:.2f} s, peak RSS {rss:.0f} MiB, check {verdict}", flush=True)
        return secs, rss, verdict
    finally:
        s.stop()
        shutil.rmtree(work, ignore_errors=True)


def services(a, d):
    """The seed's three services (examples/orders-dwh/services), each `run
    --once` after the one before it: (seconds, peak RSS MiB) per service."""
    work = tempfile.mkdtemp(prefix="ingesta-bench-o2-")
    s = Servers(work)
    try:
        url = f"tcp://127.0.0.1:{s.kafka_port}"
        for t in ("stg-service-orders", "dds-service-orders"):
            subprocess.run([tansu(), "topic", "create", t, "--partitions", "3", "--broker", url],
                           check=True, capture_output=True)
        for cmd in (["load-redis", d, f"127.0.0.1:{s.redis_port}"], ["produce", d, f"127.0.0.1:{s.kafka_port}"]):
            subprocess.run([a.python, f"{a.baseline}/harness.py", *cmd], check=True, capture_output=True)
        figures = []
        for name in ("stg", "dds", "cdm"):
            secs, rss = timed_rss([a.ingesta, "run", f"{EXAMPLE}/services/{name}.yaml", "--once"],
                                  s.env(f"{work}/lake-{name}"))
            figures.append((name, secs, rss))
        check = subprocess.run([a.python, f"{a.baseline}/harness.py", "check", d, s.libpq()], capture_output=True)
        verdict = check.stdout.decode().strip().splitlines()[-1]
        print("  three services: " + ", ".join(f"{n} {t:.2f} s ({r:.0f} MiB)" for n, t, r in figures) +
              f", {sum(t for _, t, _ in figures):.2f} s in all, check {verdict}", flush=True)
        return figures
    finally:
        s.stop()
        shutil.rmtree(work, ignore_errors=True)


def steady(a, d):
    """(p50, p99, peak RSS MiB) of probe latencies at 100 orders/s."""
    from confluent_kafka import Producer
    import psycopg
    import redis
    work = tempfile.mkdtemp(prefix="ingesta-bench-o2-")
    s = Servers(work)
    try:
        subprocess.run([a.python, f"{a.baseline}/harness.py", "load-redis", d, f"127.0.0.1:{s.redis_port}"],
                       check=True, capture_output=True)
        orders = []
        for line in open(f"{d}/orders.jsonl", encoding="utf-8"):
            try:
                m = json.loads(line)
            except ValueError:
                continue
            if "user" in m["payload"]:
                orders.append(m)
        r = redis.Redis(port=s.redis_port)
        probes = a.steady
        for i in range(probes):
            uid = f"probe{i:019d}"
            r.set(uid, json.dumps({"_id": uid, "name": f"Probe {i}", "login": f"probe_{i}"}))
        env = s.env(f"{work}/lake")
        proc = subprocess.Popen([a.ingesta, "run", f"{EXAMPLE}/ingesta.yaml", "--watch"], env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(8)  # the group joined, the tables opened
        p = Producer({"bootstrap.servers": f"127.0.0.1:{s.kafka_port}", "linger.ms": 0})
        sent, seen = {}, {}
        conn = psycopg.connect(s.libpq(), autocommit=True)

        def watch():
            waiting = set()
            while len(seen) < probes:
                waiting |= {i for i in sent if i not in seen}
                if waiting:
                    keys = {str(uuid.uuid5(NS, f"probe{i:019d}")): i for i in waiting}
                    for (k,) in conn.execute("SELECT user_id::text FROM cdm.user_product_counters "
                                             "WHERE user_id = ANY(%s::uuid[])", (list(keys),)).fetchall():
                        seen[keys[k]] = time.monotonic()
                        waiting.discard(keys[k])
                time.sleep(0.01)
                if time.monotonic() > deadline:
                    return

        deadline = time.monotonic() + probes + 60
        t = threading.Thread(target=watch)
        t.start()
        start, oid = time.monotonic(), 90_000_000
        for n in range(probes * 100):
            due = start + n / 100
            while time.monotonic() < due:
                time.sleep(0.0005)
            m = dict(orders[n % len(orders)])
            oid += 1
            m["object_id"] = oid
            m["sent_dttm"] = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime())
            probe = n % 100 == 0
            if probe:
                m = json.loads(json.dumps(m))
                m["payload"]["user"]["id"] = f"probe{n // 100:019d}"
                m["payload"]["final_status"] = "CLOSED"
            p.produce("order-service_orders", json.dumps(m, ensure_ascii=False).encode())
            p.poll(0)
            if probe:
                p.flush(5)
                sent[n // 100] = time.monotonic()
        p.flush(30)
        t.join()
        proc.terminate()
        _, _, usage = os.wait4(proc.pid, 0)
        lat = sorted((seen[i] - sent[i]) * 1000 for i in seen)
        if len(lat) < probes:
            print(f"  only {len(lat)} of {probes} probes reached the counters", flush=True)
        p50 = statistics.median(lat)
        p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))]
        print(f"  steady 100 orders/s: probe latency p50 {p50:.0f} ms, p99 {p99:.0f} ms, "
              f"peak RSS {usage.ru_maxrss / 1024:.0f} MiB", flush=True)
        return p50, p99, usage.ru_maxrss / 1024
    finally:
        s.stop()
        shutil.rmtree(work, ignore_errors=True)


def baseline(a):
    env = dict(os.environ, PY=a.python, O2B=f"{a.work}/o2b", TANSU=tansu())
    out = subprocess.run(["bash", f"{a.baseline}/run_baseline.sh", "--orders", str(a.orders), "--keyed"],
                         env=env, capture_output=True, text=True)
    lines = out.stdout.splitlines()
    drain = next((ln for ln in lines if ln.startswith("DRAIN")), "")
    if not drain:
        sys.exit(f"the baseline failed:\n{out.stdout[-2000:]}\n{out.stderr[-2000:]}")
    print(f"  baseline: {drain} check {lines[-1]}", flush=True)
    return float(drain.split()[2]) if drain else None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ingesta", required=True)
    ap.add_argument("--baseline", required=True, help="the folder of run_baseline.sh")
    ap.add_argument("--python", default=sys.executable, help="with confluent-kafka, psycopg, redis")
    ap.add_argument("--orders", type=int, default=50000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--steady", type=int, default=60, help="seconds at 100 orders/s (0: skip)")
    ap.add_argument("--skip-baseline", action="store_true")
    ap.add_argument("--services", action="store_true", help="also the three-service shape, each service in turn")
    ap.add_argument("--work", default="/tmp/ingesta-bench-orders-dwh")
    a = ap.parse_args()
    os.makedirs(a.work, exist_ok=True)
    d = data(a)
    print(f"data: {d} {open(f'{d}/manifest.json').read().strip()[:200]}", flush=True)
    runs = [backfill(a, d) for _ in range(a.runs)]
    if a.services:
        services(a, d)
    steady_figs = steady(a, d) if a.steady else None
    base = None if a.skip_baseline else baseline(a)
    ours = statistics.median(r[0] for r in runs) if runs else None
    if runs:
        print(f"\nbackfill of {a.orders} orders: ingesta median {ours:.2f} s (runs {[round(r[0], 2) for r in runs]}), "
              f"peak RSS {max(r[1] for r in runs):.0f} MiB, checks {[r[2] for r in runs]}")
    if base and ours:
        print(f"baseline --keyed drain {base:.1f} s: ingesta is {base / ours:.1f}x faster")
    if steady_figs:
        print(f"steady state at 100 orders/s: p50 {steady_figs[0]:.0f} ms, p99 {steady_figs[1]:.0f} ms, "
              f"peak RSS {steady_figs[2]:.0f} MiB")


if __name__ == "__main__":
    main()
