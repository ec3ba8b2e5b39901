"""Recomputes the farm-iot gold tables with DuckDB from the landing files (not
with Ingesta's code) and compares them with the lake's, read by deltalake.

    python farm_gold.py LANDING LAKE [temperature|sales|stock ...]

Prints a JSON report {"ok": bool, "problems": [...], "rows": {...}}.
"""
import json
import math
import os
import sys

import deltalake
import duckdb
import pyarrow

landing, lake = sys.argv[1], sys.argv[2]
checks = sys.argv[3:] or ["temperature", "sales", "stock"]
con = duckdb.connect()
con.execute("SET TimeZone = 'UTC'")
problems, counts = [], {}
# the latest snapshot per warehouse x product (what inventory_current upserts to);
# DuckDB reads the files when the view is made, so only for the checks that use it
if {"sales", "stock"} & set(checks):
    con.execute(f"""
        CREATE VIEW latest_inventory AS
        WITH inv AS (
          SELECT TRY_CAST(snapshot_date AS DATE) AS d, warehouse_id, product_id,
                 TRY_CAST(quantity_on_hand AS INTEGER) AS qty
          FROM read_csv('{landing}/inventory/*.csv', all_varchar = true, header = true)
        )
        SELECT warehouse_id, product_id, arg_max(qty, d) AS qty FROM inv
        WHERE d IS NOT NULL AND qty IS NOT NULL GROUP BY ALL
    """)


def expected_temperature():
    cols = "{'device_id': 'VARCHAR', 'farm_id': 'VARCHAR', 'ts': 'VARCHAR', 'temperature': 'VARCHAR', 'status': 'VARCHAR'}"
    return con.execute(f"""
        WITH raw AS (
          SELECT device_id, farm_id, TRY_CAST(ts AS TIMESTAMPTZ) AS ts,
                 TRY_CAST(temperature AS DOUBLE) AS t, status
          FROM read_json('{landing}/iot/*.ndjson', format = 'newline_delimited', columns = {cols})
        ), valid AS (
          SELECT DISTINCT ON (device_id, ts) * FROM raw
          WHERE device_id IS NOT NULL AND farm_id IS NOT NULL AND ts IS NOT NULL AND t IS NOT NULL
            AND t BETWEEN -40 AND 70 AND status IN ('ok', 'warn', 'fail')
        )
        SELECT farm_id, strftime(date_trunc('hour', ts), '%Y-%m-%dT%H') AS hour,
               count(*) AS readings, sum(t) AS temp_sum, min(t) AS temp_min, max(t) AS temp_max
        FROM valid GROUP BY ALL
    """).fetchall()


def expected_sales():
    return con.execute(f"""
        WITH s AS (
          SELECT order_id, TRY_CAST(ts AS TIMESTAMPTZ) AS ts, product_id, customer_id,
                 TRY_CAST(quantity AS INTEGER) AS q, TRY_CAST(unit_price AS DECIMAL(10, 2)) AS p
          FROM read_csv('{landing}/sales/*.csv', all_varchar = true, header = true)
        ), valid AS (
          SELECT DISTINCT ON (order_id, product_id) * FROM s
          WHERE order_id IS NOT NULL AND ts IS NOT NULL AND product_id IS NOT NULL AND q IS NOT NULL AND q > 0
        ), stock AS (SELECT product_id, sum(qty) AS stock FROM latest_inventory GROUP BY ALL)
        SELECT strftime(CAST(v.ts AS DATE), '%Y-%m-%d') AS day, v.product_id, count(*) AS order_lines,
               sum(v.q) AS units, sum(CAST(v.q * v.p AS DECIMAL(12, 2))) AS revenue, max(st.stock) AS stock,
               count(DISTINCT v.customer_id) AS customers
        FROM valid v LEFT JOIN stock st USING (product_id) GROUP BY ALL
    """).fetchall()


def expected_stock():
    return con.execute(f"""
        SELECT warehouse_id, sum(qty) AS units, count(*) AS products FROM latest_inventory GROUP BY ALL
    """).fetchall()


def lake_rows(table):
    return deltalake.DeltaTable(os.path.join(lake, table)).to_pyarrow_table().to_pylist()


def close(a, b):
    return a is not None and b is not None and math.isclose(float(a), float(b), rel_tol=1e-9, abs_tol=1e-6)


if "temperature" in checks:
    want = {(r[0], r[1]): r[2:] for r in expected_temperature()}
    got = {(r["farm_id"], r["hour"].strftime("%Y-%m-%dT%H")): r for r in lake_rows("temperature_hourly")}
    counts["temperature_hourly"] = len(got)
    counts["temperature_readings"] = sum(r["readings"] for r in got.values())
    if set(want) != set(got):
        problems.append(f"temperature_hourly keys: {len(set(want) - set(got))} missing, {len(set(got) - set(want))} extra")
    for k in set(want) & set(got):
        n, s, lo, hi = want[k]
        g = got[k]
        if g["readings"] != n or not close(g["temp_sum"], s) or g["temp_min"] != lo or g["temp_max"] != hi \
                or not close(g["temp_avg"], s / n):
            problems.append(f"temperature_hourly {k}: lake {g} != duckdb {want[k]}")
            break

if "sales" in checks:
    want = {(r[0], r[1]): r[2:] for r in expected_sales()}
    got = {(str(r["day"]), r["product_id"]): r for r in lake_rows("sales_daily")}
    counts["sales_daily"] = len(got)
    if set(want) != set(got):
        problems.append(f"sales_daily keys: {len(set(want) - set(got))} missing, {len(set(got) - set(want))} extra")
    for k in set(want) & set(got):
        lines, units, revenue, stock, customers = want[k]
        g = got[k]
        if g["order_lines"] != lines or g["units"] != units or g["revenue"] != revenue or g["stock_on_hand"] != stock \
                or g["customers"] != customers:
            problems.append(f"sales_daily {k}: lake {g} != duckdb {want[k]}")
            break

if "stock" in checks:
    want = {r[0]: (r[1], r[2]) for r in expected_stock()}
    got = {r["warehouse_id"]: (r["units"], r["products"]) for r in lake_rows("stock_by_warehouse")}
    counts["stock_by_warehouse"] = len(got)
    if want != got:
        problems.append(f"stock_by_warehouse: lake {sorted(got.items())} != duckdb {sorted(want.items())}")
    # an outside reader of inventory_current's change feed (deltalake's own CDF reader) sums to the same
    feed = deltalake.DeltaTable(os.path.join(lake, "inventory_current")).load_cdf(starting_version=0)
    moved = {}
    for r in pyarrow.RecordBatchReader.from_stream(feed).read_all().to_pylist():
        sign = 1 if r["_change_type"] in ("insert", "update_postimage") else -1
        units, products = moved.get(r["warehouse_id"], (0, 0))
        products += {"insert": 1, "delete": -1}.get(r["_change_type"], 0)
        moved[r["warehouse_id"]] = (units + sign * r["quantity_on_hand"], products)
    if {k: v for k, v in moved.items() if v != (0, 0)} != want:
        problems.append(f"inventory_current's change feed read by deltalake: {sorted(moved.items())} != {sorted(want.items())}")

print(json.dumps({"ok": not problems, "problems": problems, "rows": counts}, default=str), flush=True)
os._exit(0)
