"""Checks the cdc-replica example's lake against its source, with DuckDB and
deltalake only (none of Ingesta's code):

* every replica equals its source table, and each gold table the same
  aggregate of the source (rows compared as text, both ways);
* every history holds one version per change row of its table, and one
  current version per key;
* the change rows hold each change once: no (commit_lsn, ordinal) twice,
  ordinals without gaps, and the same (transaction, table, operation)
  multiset as an independent `test_decoding` slot for every transaction
  committed after the initial copy.

usage: cdc_check.py LAKE DUMPS SPEC_JSON; prints a JSON report.
"""

import csv
import collections
import json
import os
import sys

import deltalake
import duckdb

lake, dumps, spec = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
db = duckdb.connect()
db.execute("SET TimeZone = 'UTC'").fetchall()


def delta(name):
    t = deltalake.DeltaTable(os.path.join(lake, name)).to_pyarrow_table()
    db.register(name, t)


def source_rows(table):
    with open(os.path.join(dumps, table + ".csv"), newline="") as f:
        return collections.Counter(tuple(None if v == "" else v for v in row) for row in csv.reader(f))


report = {"replicas": {}, "histories": {}}
delta("shop_changes")
for name, t in spec["compare"].items():
    for table in t["tables"]:
        delta(table)
    got = collections.Counter(tuple(r) for r in db.execute(t["duck"]).fetchall())
    want = source_rows(name)
    missing, extra = want - got, got - want
    report["replicas"][name] = {
        "rows": sum(want.values()),
        "missing": sum(missing.values()),
        "extra": sum(extra.values()),
        "examples": [list(r) for r in list(missing)[:2] + list(extra)[:2]],
    }
for table, keys in spec["histories"].items():
    delta(table + "_history")
    h = db.execute(
        f"""SELECT count(*), count(DISTINCT ({keys}, seq)), count(*) FILTER (WHERE is_current),
                   count(DISTINCT ({keys})),
                   (SELECT count(*) FROM shop_changes WHERE "table" = 'shop.{table}' AND op <> 't')
            FROM {table}_history"""
    ).fetchall()[0]
    report["histories"][table] = {
        "versions": h[0], "distinct_versions": h[1], "current": h[2], "keys": h[3], "changes": h[4]
    }

c = db.execute(
    """SELECT count(*), count(DISTINCT (commit_lsn, ordinal)),
              (SELECT max(commit_lsn) FROM shop_changes WHERE op = 'r') FROM shop_changes"""
).fetchall()[0]
gaps = db.execute(
    """SELECT count(*) FROM (SELECT commit_lsn, count(*) n, max(ordinal) m, min(ordinal) lo
                             FROM shop_changes GROUP BY commit_lsn) WHERE n <> m OR lo <> 1"""
).fetchall()[0][0]
consistent_point = c[2]
ours = collections.Counter(
    tuple(r)
    for r in db.execute(
        """SELECT tx_id, "table", op FROM shop_changes WHERE op IN ('c', 'u', 'd')"""
    ).fetchall()
)
# the independent slot: `lsn|xid|data` lines from pg_logical_slot_peek_changes
ops = {"INSERT": "c", "UPDATE": "u", "DELETE": "d"}
theirs, tx_rows, committed = collections.Counter(), collections.defaultdict(list), {}
with open(os.path.join(dumps, "test_decoding.txt")) as f:
    for line in f:
        lsn, xid, data = line.rstrip("\n").split("|", 2)
        if data.startswith("table "):
            name, op = data[len("table "):].split(": ", 2)[:2]
            if op.rstrip(":") in ops:
                tx_rows[xid].append((int(xid), name, ops[op.rstrip(":")]))
        elif data.startswith("COMMIT"):
            hi, lo = lsn.split("/")
            committed[xid] = (int(hi, 16) << 32) + int(lo, 16)
for xid, rows in tx_rows.items():
    if xid in committed and committed[xid] > consistent_point:
        theirs.update(rows)
report["changes"] = {
    "rows": c[0],
    "distinct_places": c[1],
    "ordinal_gaps": gaps,
    "streamed": sum(ours.values()),
    "independent": sum(theirs.values()),
    "missing": sum((theirs - ours).values()),
    "doubled_or_extra": sum((ours - theirs).values()),
}
print(json.dumps(report), flush=True)
os._exit(0)
