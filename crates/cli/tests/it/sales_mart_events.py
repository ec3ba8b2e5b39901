"""`order_upd` events for the sales-mart test, and what the mart must hold,
computed here independently of Ingesta.

Writes `events.ndjson` (one message per line, in delivery order: orders'
events shuffled across orders and partly within one, some delivered twice,
some malformed), `traffic.ndjson` (tracker events for the collector, a few
with a clock that is not a time) and `expected.json`:
* net amount and units per store x day, units per product x day;
* orders (confirmed minus cancelled, by the hour of the event) and distinct
  sessions per store x hour; the funnel's steps per product;
* counts: messages, lines (of distinct valid events), facts, valid traffic events.

A fact is a line of a confirmation (+1), or a line of a cancellation whose
variation a confirmation of the same order that occurred no later held (-1);
each event counts once however often it is delivered.
"""
import json, random, sys
from decimal import Decimal
from datetime import datetime, timedelta, timezone

orders, seed, out = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
rng = random.Random(seed)
STORES = ["st-003", "st-008", "st-011", "st-017"]
PRODUCTS = [("p-9031", "Calzado", "189.90"), ("p-4410", "Ropa", "49.90"), ("p-7702", "Accesorios", "119.90"),
            ("p-2205", "Accesorios", "69.90")]
START = datetime(2026, 11, 3, tzinfo=timezone.utc)
EVENTS = {"created": "update-status-created", "confirmed": "update-status-confirmed",
          "shipped": "update-status-shipped", "cancelled": "update-status-cancelled"}

def iso(t):
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"

messages, valid = [], []
n_event = 0
for o in range(orders):
    order_id = f"ORD-{o:06d}"
    store = rng.choice(STORES)
    items = []
    for v in rng.sample(range(12), rng.randint(1, 3)):
        pid, cat, price = PRODUCTS[v % len(PRODUCTS)]
        items.append({"variation_id": f"var-{v:03d}", "sku": f"SKU-{v}", "product_id": pid, "product_name": pid,
                      "brand": "Andes", "category": cat, "quantity": rng.randint(1, 3), "unit_price": float(price),
                      "discount": float(rng.choice(["0", "0", "5.00"]))})
    order = {"id": order_id, "store_id": store, "store_name": store, "customer_id": f"cu-{rng.randint(0, 999):03d}",
             "channel": rng.choice(["web", "app"]), "currency": "PEN", "items": items}
    t = START + timedelta(seconds=rng.randint(0, 3 * 86400))
    path = ["created"]
    r = rng.random()
    if r < 0.7:
        path += ["confirmed", "shipped"]
    elif r < 0.85:
        path += ["confirmed", "cancelled"]
    elif r < 0.95:
        path += ["cancelled"]  # cancelled before any confirmation: no facts
    else:
        path += ["confirmed"]
    for status in path:
        t = t + timedelta(seconds=rng.randint(30, 7200))
        n_event += 1
        e = {"event": EVENTS[status], "event_id": f"ev-{seed}-{n_event:07d}", "occurred_at": iso(t), "order": order}
        valid.append(e)
        messages.append(json.dumps(e))
# delivery: shuffled in windows (events of one order may arrive out of order), 2% twice
rng.shuffle(messages)
messages += [rng.choice(messages) for _ in range(len(messages) // 50)]
rng.shuffle(messages)
bad = {
    "broken_json": '{"event": "update-status-confirmed", "event_id": "broken", "order": {"id": "ORD-',
    "missing_order_id": json.dumps({"event": EVENTS["confirmed"], "event_id": "no-order", "occurred_at": iso(START),
                                    "order": {"store_id": "st-003", "items": []}}),
    "negative_quantity": json.dumps({"event": EVENTS["confirmed"], "event_id": "negative", "occurred_at": iso(START),
                                     "order": {"id": "ORD-NEG", "store_id": "st-003", "currency": "PEN", "items": [
                                         {"variation_id": "var-000", "product_id": "p-9031", "category": "Calzado",
                                          "quantity": -2, "unit_price": 189.9, "discount": 0}]}}),
    "unknown_event": json.dumps({"event": "update-status-teleported", "event_id": "teleported",
                                 "occurred_at": iso(START), "order": {"id": "ORD-T", "store_id": "st-003",
                                 "items": [{"variation_id": "var-001", "quantity": 1, "unit_price": 1, "discount": 0}]}}),
}
for m in bad.values():
    messages.insert(rng.randrange(len(messages)), m)

# the mart, from the valid events
by_id = {e["event_id"]: e for e in valid}
conf = {}
for e in by_id.values():
    if e["event"] == EVENTS["confirmed"]:
        conf.setdefault(e["order"]["id"], []).append(e)
facts = []
for e in by_id.values():
    o = e["order"]
    for it in o["items"]:
        if e["event"] == EVENTS["confirmed"]:
            facts.append((e, it, 1))
        elif e["event"] == EVENTS["cancelled"]:
            if any(c["occurred_at"] <= e["occurred_at"] and any(ci["variation_id"] == it["variation_id"]
                   for ci in c["order"]["items"]) for c in conf.get(o["id"], [])):
                facts.append((e, it, -1))
store_day, product_day = {}, {}
for e, it, sign in facts:
    day = e["occurred_at"][:10]
    qty = it["quantity"]
    net = (Decimal(str(it["unit_price"])) * qty - Decimal(str(it["discount"]))) * sign
    sd = store_day.setdefault(f'{e["order"]["store_id"]}|{day}', {"net_amount": Decimal(0), "net_units": 0})
    sd["net_amount"] += net
    sd["net_units"] += qty * sign
    pd = product_day.setdefault(f'{it["product_id"]}|{day}', {"net_units": 0})
    pd["net_units"] += qty * sign
orders_hour = {}
for sign in (1, -1):
    seen = set()
    for e, it, sg in facts:
        if sg != sign:
            continue
        hour = e["occurred_at"][:13]
        k = (e["order"]["store_id"], hour, e["order"]["id"])
        if k not in seen:
            seen.add(k)
            key = f'{e["order"]["store_id"]}|{hour}'
            orders_hour[key] = orders_hour.get(key, 0) + sign
traffic, sessions, funnel = [], {}, {}
TYPES = ["page_view"] * 5 + ["product_view"] * 3 + ["add_to_cart", "checkout_start"]
for i in range(orders * 4):
    store = rng.choice(STORES)
    session = f"s-{rng.randint(0, orders // 2):05d}"
    t = START + timedelta(seconds=rng.randint(0, 3 * 86400))
    kind = rng.choice(TYPES)
    pid = None if kind == "page_view" else rng.choice(PRODUCTS)[0]
    bad_clock = i % 97 == 0
    traffic.append(json.dumps({"type": kind, "ts": "yesterday" if bad_clock else iso(t), "session_id": session,
                               "anonymous_id": "a-" + session[2:], "store_id": store,
                               "url": f"/p/{pid}" if pid else "/", "product_id": pid, "referrer": "google",
                               "device": "mobile"}))
    if bad_clock:
        continue
    sessions.setdefault(f"{store}|{iso(t)[:13]}", set()).add(session)
    if pid:
        f = funnel.setdefault(pid, {"product_view": 0, "add_to_cart": 0, "checkout_start": 0})
        f[kind] += 1
expected = {
    "lines": sum(len(e["order"]["items"]) for e in by_id.values()),
    "traffic": sum(1 for i in range(orders * 4) if i % 97 != 0),
    "orders_hour": dict(sorted(orders_hour.items())),
    "sessions_hour": {k: len(v) for k, v in sorted(sessions.items())},
    "funnel": funnel,
    "messages": len(messages),
    "facts": len(facts),
    "store_day": {k: {"net_amount": str(v["net_amount"].quantize(Decimal("0.01"))), "net_units": v["net_units"]}
                  for k, v in sorted(store_day.items())},
    "product_day": {k: v for k, v in sorted(product_day.items())},
}
with open(f"{out}/traffic.ndjson", "w") as f:
    f.write("\n".join(traffic) + "\n")
with open(f"{out}/events.ndjson", "w") as f:
    f.write("\n".join(messages) + "\n")
with open(f"{out}/expected.json", "w") as f:
    json.dump(expected, f, indent=1)
