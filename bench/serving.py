#!/usr/bin/env python3
"""Serving benchmark: 50 concurrent clients for 60 s on a report over a
10M-row silver table (bench/serving.yaml), with ApacheBench (`ab -k`, from
Debian's apache2-utils), against the same query's time in the server with one
client and no cache (the floor), in the same run.

  python3 bench/serving.py --ingesta target/release/ingesta [--data DIR] [--seconds 60]

Steps: `ingesta generate iot` writes 10M readings (once, into --data);
`ingesta run --once` loads bronze and silver; `ingesta serve` serves the
report.

Runs, each against a freshly started server:
  * floor: one client, `serve.cache: 0`, 300 requests in turn over 300 farm x
    day pairs; the median is the query's time in the server (planning,
    reading, encoding) plus one loopback round trip.
  * default: the settings a user gets (the answer cache on): 50 keep-alive
    connections for --seconds asking for one farm's day, as a dashboard's
    viewers do; requests/s, p50, p99, longest.
  * no cache: `serve.cache: 0`, the same load: every request runs the query.
The server's peak RSS (VmHWM) is read from /proc at the end of each run. ab
runs on the same 2 cores as the server; its own CPU is not subtracted. (wrk
was tried first: on these answers its latency figures broke Little's law —
an average of 24 ms at 88,000 requests/s over 50 connections — so they are
not used.)
"""
import argparse
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
TOKEN = "bench-read-token-0123456789"
ASKED = "/api/reports/farm_day?farm=farm-042&day=2026-11-04"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def prepare(ingesta, data):
    landing, lake = f"{data}/landing", f"{data}/lake"
    if not os.path.exists(f"{landing}/_manifest.json"):
        shutil.rmtree(landing, ignore_errors=True)
        subprocess.run([ingesta, "generate", "iot", "--rows", "10000000", "--files", "20", "--out", landing],
                       check=True, stdout=subprocess.DEVNULL)
    env = dict(os.environ, BENCH_OUT=lake, BENCH_LANDING=landing)
    if not os.path.exists(f"{lake}/readings"):
        t = time.monotonic()
        subprocess.run([ingesta, "run", f"{HERE}/serving.yaml", "--once"], check=True, env=env,
                       stdout=subprocess.DEVNULL)
        print(f"loaded bronze and silver in {time.monotonic() - t:.1f}s", file=sys.stderr)
    return env


def serve(ingesta, env, cache_off):
    pipeline = open(f"{HERE}/serving.yaml").read()
    if cache_off:
        pipeline += "serve:\n  cache: 0\n"
    path = tempfile.mktemp(suffix=".yaml")
    with open(path, "w") as f:
        f.write(pipeline)
    port = free_port()
    proc = subprocess.Popen([ingesta, "serve", path, "--addr", f"127.0.0.1:{port}"],
                            env=dict(env, INGESTA_READ_TOKEN=TOKEN), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            urllib.request.urlopen(f"{url}/health", timeout=1)
            break
        except OSError:
            time.sleep(0.1)
    return proc, url


def peak_rss_mib(proc):
    with open(f"/proc/{proc.pid}/status") as f:
        return int(re.search(r"VmHWM:\s+(\d+)", f.read()).group(1)) / 1024


def ask(url, farm, day):
    req = urllib.request.Request(f"{url}/api/reports/farm_day?farm={farm}&day={day}",
                                 headers={"Authorization": f"Bearer {TOKEN}"})
    with urllib.request.urlopen(req, timeout=60) as r:
        return json.loads(r.read())


def floor(ingesta, env):
    proc, url = serve(ingesta, env, cache_off=True)
    try:
        assert ask(url, "farm-001", "2026-11-02")["row_count"] > 0, "the report has rows"
        times = []
        for i in range(300):
            t = time.perf_counter()
            ask(url, f"farm-{i % 200:03d}", f"2026-11-{1 + i % 7:02d}")
            times.append(time.perf_counter() - t)
        return {"median_ms": statistics.median(times) * 1e3, "peak_rss_mib": peak_rss_mib(proc)}
    finally:
        proc.terminate()
        proc.wait()


def ab(url, seconds, token):
    """50 keep-alive clients asking `url` for `seconds` (ApacheBench): requests/s,
    p50, p99 and longest in ms, errors, and answers whose length differed."""
    out = subprocess.run(["ab", "-k", "-c", "50", "-t", str(seconds), "-n", "100000000", "-H",
                          f"Authorization: Bearer {token}", url],
                         check=True, capture_output=True, text=True).stdout
    rps = float(re.search(r"Requests per second:\s+([\d.]+)", out).group(1))
    pct = {m.group(1): float(m.group(2)) for m in re.finditer(r"^\s+(\d+)%\s+(\d+)", out, re.M)}
    longest = float(re.search(r"100%\s+(\d+)", out).group(1))
    # ab calls an answer whose length differs from the first "failed (Length)": an average
    # of floats summed in parallel can differ in its last digit; those are counted apart
    kinds = re.search(r"\(Connect: (\d+), Receive: (\d+), Length: (\d+), Exceptions: (\d+)\)", out)
    connect, receive, length, exceptions = (int(g) for g in kinds.groups()) if kinds else (0, 0, 0, 0)
    non2xx = re.search(r"Non-2xx responses:\s+(\d+)", out)
    return {"requests_per_s": rps, "p50_ms": pct["50"], "p99_ms": pct["99"], "longest_ms": longest,
            "errors": connect + receive + exceptions + (int(non2xx.group(1)) if non2xx else 0),
            "length_differs": length}


def load(ingesta, env, seconds, cache_off):
    proc, url = serve(ingesta, env, cache_off)
    try:
        assert ask(url, "farm-042", "2026-11-04")["row_count"] > 0, "the report has rows"
        return dict(ab(url + ASKED, seconds, TOKEN), peak_rss_mib=peak_rss_mib(proc))
    finally:
        proc.terminate()
        proc.wait()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ingesta", required=True)
    ap.add_argument("--data", default="/tmp/bench-serving")
    ap.add_argument("--seconds", type=int, default=60)
    a = ap.parse_args()
    if not shutil.which("ab"):
        sys.exit("ab is missing: apt-get install apache2-utils")
    env = prepare(os.path.abspath(a.ingesta), a.data)
    results = {
        "floor_one_client_no_cache": floor(a.ingesta, env),
        "default_50_clients": load(a.ingesta, env, a.seconds, cache_off=False),
        "no_cache_50_clients": load(a.ingesta, env, a.seconds, cache_off=True),
    }
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
