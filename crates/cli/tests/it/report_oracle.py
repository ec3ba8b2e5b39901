"""Checks every report of a pipeline served by `ingesta serve` against the
same SQL run by DuckDB over the same Delta tables (read by deltalake, not by
Ingesta), in each answer format.

    python report_oracle.py URL TOKEN PIPELINE.yaml LAKE REPORT:PARAM=VALUE,... ...

Prints a JSON report {"ok": bool, "problems": [...], "checked": n}.
"""
import csv
import datetime
import decimal
import io
import json
import math
import os
import sys
import urllib.parse
import urllib.request

import deltalake
import duckdb
import pyarrow.ipc
import pyarrow.parquet
import yaml

url, token, pipeline_file, lake = sys.argv[1:5]
cases = sys.argv[5:]
reports = yaml.safe_load(open(pipeline_file))["reports"]

con = duckdb.connect()
con.execute("SET TimeZone = 'UTC'")
for name in sorted(os.listdir(lake)):
    if os.path.isdir(os.path.join(lake, name, "_delta_log")):
        con.register(name, deltalake.DeltaTable(os.path.join(lake, name)).to_pyarrow_dataset())


def norm(v):
    """One comparable form for a value from any format."""
    if v is None or v == "":
        return None
    if isinstance(v, bool):
        return v
    if isinstance(v, (int, float, decimal.Decimal)):
        return round(float(v), 6)
    if isinstance(v, datetime.datetime):
        if v.tzinfo is not None:
            v = v.astimezone(datetime.timezone.utc).replace(tzinfo=None)
        return v.isoformat()
    if isinstance(v, datetime.date):
        return v.isoformat()
    s = str(v)
    try:
        return round(float(s), 6)
    except ValueError:
        pass
    for suffix in ("Z", "+00:00"):
        if s.endswith(suffix):
            s = s[: -len(suffix)]
    return s.replace(" ", "T") if len(s) >= 19 and s[4] == "-" and s[10] in " T" else s


def typed(param, text):
    kind = param["type"]
    if text is None:
        return None
    if kind == "int":
        return int(text)
    if kind == "float":
        return float(text)
    if kind == "date":
        return datetime.date.fromisoformat(text)
    if kind == "timestamp":
        return datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    return text


def rows_of(table):
    return [tuple(row.values()) for row in table.to_pylist()]


def fetch(path, fmt):
    req = urllib.request.Request(f"{url}{path}&format={fmt}", headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(req, timeout=60) as r:
        return r.read(), r.headers


problems, checked = [], 0
for case in cases:
    name, _, given_text = case.partition(":")
    given = dict(kv.split("=", 1) for kv in given_text.split(",") if kv)
    r = reports[name]
    params = {}
    for p in r.get("params", []):
        text = given.get(p["name"], None if p.get("default") is None else str(p["default"]))
        params[p["name"]] = typed(p, text)
    expected = [tuple(norm(v) for v in row) for row in rows_of(con.sql(r["sql"], params=params).to_arrow_table())]
    query = urllib.parse.urlencode(given)
    path = f"/api/reports/{name}?{query}"
    answers = {}
    body, _ = fetch(path, "json")
    answers["json"] = [tuple(norm(v) for v in row) for row in json.loads(body)["rows"]]
    body, _ = fetch(path, "csv")
    rows = list(csv.reader(io.StringIO(body.decode())))
    answers["csv"] = [tuple(norm(v) for v in row) for row in rows[1:]]
    body, _ = fetch(path, "arrow")
    table = pyarrow.ipc.open_stream(body).read_all()
    answers["arrow"] = [tuple(norm(v) for v in row.values()) for row in table.to_pylist()]
    body, _ = fetch(path, "parquet")
    table = pyarrow.parquet.read_table(io.BytesIO(body))
    answers["parquet"] = [tuple(norm(v) for v in row.values()) for row in table.to_pylist()]
    if not expected:
        problems.append(f"{case}: DuckDB finds no rows; pick parameters that match some")
    for fmt, got in answers.items():
        checked += 1
        if got != expected:
            first = next((i for i, (a, b) in enumerate(zip(got, expected)) if a != b), min(len(got), len(expected)))
            problems.append(
                f"{case} as {fmt}: {len(got)} rows, DuckDB {len(expected)}; first difference at row {first}: "
                f"{got[first] if first < len(got) else None} vs {expected[first] if first < len(expected) else None}"
            )

print(json.dumps({"ok": not problems, "problems": problems, "checked": checked}))
