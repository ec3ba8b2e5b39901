//! Seed 000 (the sales mart): `order_upd` events, one per status change of an
//! order, keyed by order id, with some delivered twice (same `event_id`) and
//! confirmed orders later cancelled; and tracker traffic events for the HTTP
//! collector. Shapes in formats.md.

use chrono::{DateTime, Utc};
use rand::{Rng, RngCore};
use rand_chacha::ChaCha8Rng;
use serde_json::{Value, json};

use crate::messages::{Body, GenMessage};

/// 2026-11-03T00:00:00Z in milliseconds.
const START_MS: i64 = 1_794_009_600_000;

const STORES: [(&str, &str); 6] = [
    ("st-003", "Tienda Barranco"),
    ("st-008", "Tienda San Isidro"),
    ("st-011", "Tienda Surco"),
    ("st-017", "Tienda Miraflores"),
    ("st-021", "Tienda Arequipa Centro"),
    ("st-034", "Tienda Trujillo"),
];

/// (product_id, name, brand, category, sku stem, price in cents)
const PRODUCTS: [(&str, &str, &str, &str, &str, i64); 8] = [
    ("p-9031", "Zapatilla Running", "Andes", "Calzado", "ZAP-RUN", 18_990),
    ("p-9032", "Zapatilla Trail", "Andes", "Calzado", "ZAP-TRL", 22_990),
    ("p-4410", "Polo Algodón", "Pima Co", "Ropa", "POL-ALG", 4_990),
    ("p-4415", "Casaca Cortavientos", "Pima Co", "Ropa", "CAS-CRT", 15_990),
    ("p-7702", "Mochila 25L", "Cóndor", "Accesorios", "MOC-25L", 11_990),
    ("p-7710", "Gorra Deportiva", "Cóndor", "Accesorios", "GOR-DEP", 3_990),
    ("p-2205", "Botella Térmica", "Inti", "Accesorios", "BOT-TER", 6_990),
    ("p-3301", "Short Running", "Andes", "Ropa", "SHO-RUN", 7_990),
];
const SIZES: [&str; 4] = ["38", "40", "42", "M"];
const COLORS: [&str; 3] = ["BLK", "BLU", "RED"];

#[derive(Clone, Copy, PartialEq)]
enum Status {
    Created,
    Confirmed,
    Shipped,
    Cancelled,
}

impl Status {
    fn event(self) -> &'static str {
        match self {
            Status::Created => "update-status-created",
            Status::Confirmed => "update-status-confirmed",
            Status::Shipped => "update-status-shipped",
            Status::Cancelled => "update-status-cancelled",
        }
    }
}

struct Order {
    status: Status,
    at_ms: i64,
    order: Value,
}

/// `order_upd` events in order: new orders, and later statuses of open ones.
pub(crate) struct OrderUpd {
    open: Vec<Order>,
    next_id: u64,
    last: Option<GenMessage>,
}

impl OrderUpd {
    pub fn new(seed: u64) -> Self {
        OrderUpd { open: Vec::new(), next_id: 184_000 + seed % 1000, last: None }
    }

    pub fn next(&mut self, rng: &mut ChaCha8Rng, i: u64, malformed_rate: f64) -> GenMessage {
        if rng.random_bool(malformed_rate) {
            let body = if i.is_multiple_of(2) {
                br#"{"event": "update-status-confirmed", "event_id": "0bad", "order": {"id": "ORD-"#.to_vec()
            } else {
                format!(r#"{{"event": "update-status-created", "event_id": "bad-{i}", "occurred_at": "not a time", "order": {{"id": "ORD-X{i}"}}}}"#).into_bytes()
            };
            return GenMessage {
                key: None,
                body: Body::Bytes(body),
                malformed: true,
                update: false,
                label: Some("malformed"),
            };
        }
        // the same event delivered again (the consumer must not count it twice)
        if let Some(last) = &self.last
            && rng.random_range(0..100) == 0
        {
            let mut again = last.clone();
            again.label = Some("duplicate");
            return again;
        }
        let update = !self.open.is_empty() && rng.random_range(0..10) < 6;
        let (order, status, at_ms) = if update {
            let k = rng.random_range(0..self.open.len());
            let o = &mut self.open[k];
            let next = match o.status {
                Status::Created if rng.random_range(0..10) < 8 => Status::Confirmed,
                Status::Confirmed if rng.random_range(0..100) < 85 => Status::Shipped,
                _ => Status::Cancelled,
            };
            o.status = next;
            o.at_ms += rng.random_range(30_000..3_600_000);
            let out = (o.order.clone(), next, o.at_ms);
            if matches!(next, Status::Shipped | Status::Cancelled) {
                self.open.swap_remove(k);
            }
            out
        } else {
            let id = format!("ORD-{:09}", self.next_id);
            self.next_id += 1;
            let at_ms = START_MS + (i as i64) * 2_000 + rng.random_range(0..2_000);
            let order = new_order(rng, &id);
            self.open.push(Order { status: Status::Created, at_ms, order: order.clone() });
            (order, Status::Created, at_ms)
        };
        let id = order["id"].as_str().unwrap_or_default().to_string();
        let body = json!({
            "event": status.event(),
            "event_id": event_id(rng),
            "occurred_at": iso_ms(at_ms),
            "order": order,
        });
        let m = GenMessage {
            key: Some(id),
            body: Body::Bytes(body.to_string().into_bytes()),
            malformed: false,
            update,
            label: Some(status.event()),
        };
        self.last = Some(m.clone());
        m
    }
}

fn new_order(rng: &mut ChaCha8Rng, id: &str) -> Value {
    let (store_id, store_name) = STORES[rng.random_range(0..STORES.len())];
    let items: Vec<Value> = (0..rng.random_range(1..4))
        .map(|_| {
            let (pid, name, brand, category, sku, cents) = PRODUCTS[rng.random_range(0..PRODUCTS.len())];
            let (size, color) = (rng.random_range(0..SIZES.len()), rng.random_range(0..COLORS.len()));
            let variation = 55_000 + pid[2..].parse::<u64>().unwrap_or(0) % 100 * 12 + (size * 3 + color) as u64;
            let discount = if rng.random_range(0..4) == 0 { cents / 10 } else { 0 };
            json!({
                "variation_id": format!("var-{variation}"),
                "sku": format!("{sku}-{}-{}", SIZES[size], COLORS[color]),
                "product_id": pid,
                "product_name": name,
                "brand": brand,
                "category": category,
                "quantity": rng.random_range(1..4),
                "unit_price": cents as f64 / 100.0,
                "discount": discount as f64 / 100.0,
            })
        })
        .collect();
    let channel = ["web", "app", "store"][rng.random_range(0..3)];
    json!({
        "id": id,
        "store_id": store_id,
        "store_name": store_name,
        "customer_id": format!("cu-{:05}", rng.random_range(0..90_000)),
        "channel": channel,
        "currency": "PEN",
        "items": items,
    })
}

const TRAFFIC_TYPES: [&str; 4] = ["page_view", "product_view", "add_to_cart", "checkout_start"];
const REFERRERS: [&str; 4] = ["google", "direct", "instagram", "email"];
const DEVICES: [&str; 3] = ["mobile", "desktop", "tablet"];

/// One tracker event (formats.md: `POST /ingest/traffic`).
pub(crate) fn traffic(rng: &mut ChaCha8Rng, i: u64, malformed_rate: f64) -> GenMessage {
    let session = rng.random_range(0..5_000u64);
    let ts = START_MS + (i as i64) * 150 + rng.random_range(0..150);
    let kind = match rng.random_range(0..100) {
        0..55 => 0,
        55..85 => 1,
        85..95 => 2,
        _ => 3,
    };
    let (pid, ..) = PRODUCTS[rng.random_range(0..PRODUCTS.len())];
    let (store, _) = STORES[(session as usize) % STORES.len()];
    let malformed = rng.random_bool(malformed_rate);
    let home = kind == 0 && i.is_multiple_of(3);
    let body = json!({
        "type": TRAFFIC_TYPES[kind],
        // a clock the tracker got wrong: not a time, quarantined
        "ts": if malformed { "yesterday".to_string() } else { iso_ms(ts) },
        "session_id": format!("s-{:04x}", session),
        "anonymous_id": format!("a-{:04x}", session.wrapping_mul(2_654_435_761) % 0xffff),
        "store_id": store,
        "url": if home { "/".to_string() } else { format!("/p/{pid}") },
        "product_id": if home { Value::Null } else { pid.into() },
        "referrer": REFERRERS[rng.random_range(0..REFERRERS.len())],
        "device": DEVICES[rng.random_range(0..DEVICES.len())],
    });
    let label = if malformed { "malformed" } else { TRAFFIC_TYPES[kind] };
    GenMessage {
        key: None,
        body: Body::Bytes(body.to_string().into_bytes()),
        malformed,
        update: false,
        label: Some(label),
    }
}

fn event_id(rng: &mut ChaCha8Rng) -> String {
    let (a, b) = (rng.next_u64(), rng.next_u64());
    format!(
        "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
        a >> 32,
        (a >> 16) & 0xffff,
        a & 0xfff,
        (b >> 48) | 0x8000,
        b & 0xffff_ffff_ffff
    )
}

fn iso_ms(ms: i64) -> String {
    DateTime::<Utc>::from_timestamp_millis(ms).unwrap_or_default().format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}
