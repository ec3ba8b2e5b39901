//! Message generators for topics and the HTTP collector (formats.md):
//! seed-002 orders (JSON, with later status updates of the same order and
//! malformed messages), farm online sales (records for Avro), and the
//! seed-000 `order_upd` and tracker traffic events (`sales_mart.rs`). A
//! generator is an iterator, deterministic for a seed; the caller sends the
//! messages (to Kafka, over HTTP) and writes the manifest.

use chrono::{DateTime, Utc};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::json;

/// 2023-04-01T00:00:00Z in seconds (the seed's order dates).
const ORDERS_START: i64 = 1_680_307_200;
/// 2026-11-01T00:00:00Z in milliseconds.
const SALES_START_MS: i64 = 1_793_491_200_000;

/// Message kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageKind {
    /// Seed 002 `order-service_orders`: JSON, no key.
    Orders,
    /// Farm `farm.online_sales`: records sent as Avro (`ONLINE_SALES_SCHEMA`).
    OnlineSales,
    /// Seed 000 `order_upd`: JSON status events keyed by order id.
    OrderUpd,
    /// Seed 000 tracker events (JSON) for `POST /ingest/traffic`.
    Traffic,
}

impl MessageKind {
    pub const NAMES: [&'static str; 4] = ["orders", "online_sales", "order_upd", "traffic"];

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "orders" => Self::Orders,
            "online_sales" | "online-sales" => Self::OnlineSales,
            "order_upd" | "order-upd" => Self::OrderUpd,
            "traffic" => Self::Traffic,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Orders => "orders",
            Self::OnlineSales => "online_sales",
            Self::OrderUpd => "order_upd",
            Self::Traffic => "traffic",
        }
    }
}

/// The Avro schema of farm online sales.
pub const ONLINE_SALES_SCHEMA: &str = r#"{"type": "record", "name": "OnlineSale", "namespace": "farm",
 "fields": [
  {"name": "order_id", "type": "string"},
  {"name": "ts", "type": {"type": "long", "logicalType": "timestamp-millis"}},
  {"name": "customer_id", "type": "string"},
  {"name": "product_id", "type": "string"},
  {"name": "quantity", "type": "int"},
  {"name": "unit_price", "type": {"type": "bytes", "logicalType": "decimal", "precision": 10, "scale": 2}},
  {"name": "channel", "type": "string"}]}"#;

/// One generated message.
#[derive(Debug, Clone, PartialEq)]
pub struct GenMessage {
    pub key: Option<String>,
    pub body: Body,
    /// Made unreadable on purpose (it must end in quarantine).
    pub malformed: bool,
    /// A later status of an order already sent.
    pub update: bool,
    /// What the manifest counts it as (an event type, `duplicate`, `malformed`).
    pub label: Option<&'static str>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Body {
    /// Bytes to send as they are.
    Bytes(Vec<u8>),
    /// An online sale, to encode with `ONLINE_SALES_SCHEMA`.
    Sale(Sale),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Sale {
    pub order_id: String,
    pub ts_ms: i64,
    pub customer_id: String,
    pub product_id: String,
    pub quantity: i32,
    /// Cents.
    pub unit_price_cents: i64,
    pub channel: String,
}

/// `count` messages of `kind`, `malformed_rate` of them malformed.
pub fn messages(kind: MessageKind, seed: u64, count: u64, malformed_rate: f64) -> Box<dyn Iterator<Item = GenMessage>> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x6d65_7373);
    match kind {
        MessageKind::Orders => {
            let mut orders = Orders { sent: Vec::new(), next_id: 1_000_000 + seed % 1000 };
            Box::new((0..count).map(move |i| orders.next(&mut rng, i, malformed_rate)))
        }
        MessageKind::OnlineSales => Box::new((0..count).map(move |i| sale(&mut rng, i, malformed_rate))),
        MessageKind::OrderUpd => {
            let mut orders = crate::sales_mart::OrderUpd::new(seed);
            Box::new((0..count).map(move |i| orders.next(&mut rng, i, malformed_rate)))
        }
        MessageKind::Traffic => {
            Box::new((0..count).map(move |i| crate::sales_mart::traffic(&mut rng, i, malformed_rate)))
        }
    }
}

fn hex24(rng: &mut ChaCha8Rng, pool: u64) -> String {
    let n = rng.random_range(0..pool);
    format!("{:024x}", n.wrapping_mul(0x9e37_79b9_7f4a_7c15) as u128 * 0x1_0000 + u128::from(n))
}

fn dttm(secs: i64) -> String {
    DateTime::<Utc>::from_timestamp(secs, 0).unwrap_or_default().format("%Y-%m-%d %H:%M:%S").to_string()
}

const STATUSES: [&str; 5] = ["OPEN", "COOKING", "DELIVERING", "CLOSED", "CANCELLED"];
const DISHES: [(&str, i64); 6] =
    [("Рис с лимоном", 175), ("Хачапури", 450), ("Кубдари", 520), ("Суп харчо", 310), ("Лобио", 260), ("Чай", 90)];

struct Orders {
    /// Orders sent (id, status index, time) that may get a later status.
    sent: Vec<(u64, usize, i64)>,
    next_id: u64,
}

impl Orders {
    fn next(&mut self, rng: &mut ChaCha8Rng, i: u64, malformed_rate: f64) -> GenMessage {
        if rng.random_bool(malformed_rate) {
            let body = if i.is_multiple_of(2) {
                br#"{"object_id": 17, "object_type": "order", "sent_dttm": "2023-04-08 20:27:3"#.to_vec()
            } else {
                format!(r#"{{"object_id": "id-{i}", "object_type": "order", "sent_dttm": "2023-04-08 20:27:36"}}"#)
                    .into_bytes()
            };
            return GenMessage { key: None, body: Body::Bytes(body), malformed: true, update: false, label: None };
        }
        // one message in five moves an order already sent to a later status
        let update = !self.sent.is_empty() && rng.random_range(0..5) == 0;
        let (id, status, at) = if update {
            let k = rng.random_range(0..self.sent.len());
            let (id, s, at) = self.sent[k];
            let s = (s + 1).min(4);
            let at = at + rng.random_range(60..1800);
            if s >= 3 {
                self.sent.swap_remove(k); // closed or cancelled: final
            } else {
                self.sent[k] = (id, s, at);
            }
            (id, s, at)
        } else {
            let id = self.next_id;
            self.next_id += 1;
            let at = ORDERS_START + (i as i64) * 7 + rng.random_range(0..7);
            let s = rng.random_range(0..4);
            if s < 3 {
                self.sent.push((id, s, at));
            }
            (id, s, at)
        };
        let items: Vec<serde_json::Value> = (0..rng.random_range(1..4))
            .map(|_| {
                let (name, price) = DISHES[rng.random_range(0..DISHES.len())];
                json!({"id": hex24(rng, 500), "name": name, "price": price, "quantity": rng.random_range(1..6)})
            })
            .collect();
        let cost: i64 =
            items.iter().map(|it| it["price"].as_i64().unwrap_or(0) * it["quantity"].as_i64().unwrap_or(0)).sum();
        let bonus = if rng.random_range(0..10) == 0 { cost / 10 } else { 0 };
        let body = json!({
            "object_id": id,
            "object_type": "order",
            "sent_dttm": dttm(at + 5),
            "payload": {
                "restaurant": {"id": hex24(rng, 40)},
                "date": dttm(at),
                "user": {"id": hex24(rng, 2000)},
                "order_items": items,
                "bonus_payment": bonus,
                "cost": cost,
                "payment": cost - bonus,
                "bonus_grant": 0,
                "statuses": [{"status": STATUSES[status], "dttm": dttm(at)}],
                "final_status": STATUSES[status],
                "update_ts": dttm(at),
            }
        });
        GenMessage {
            key: None,
            body: Body::Bytes(body.to_string().into_bytes()),
            malformed: false,
            update,
            label: None,
        }
    }
}

/// An online sale as an Avro datum of `ONLINE_SALES_SCHEMA` (no wire header).
pub fn encode_sale(schema: &apache_avro::Schema, s: &Sale) -> Result<Vec<u8>, String> {
    use apache_avro::types::Value;
    let cents = s.unit_price_cents.to_be_bytes();
    // shortest big-endian two's complement: keep a 0 byte before a high bit
    let mut first = cents.iter().position(|b| *b != 0).unwrap_or(7);
    if cents[first] & 0x80 != 0 {
        first -= 1;
    }
    let record = Value::Record(vec![
        ("order_id".into(), Value::String(s.order_id.clone())),
        ("ts".into(), Value::TimestampMillis(s.ts_ms)),
        ("customer_id".into(), Value::String(s.customer_id.clone())),
        ("product_id".into(), Value::String(s.product_id.clone())),
        ("quantity".into(), Value::Int(s.quantity)),
        ("unit_price".into(), Value::Decimal(apache_avro::Decimal::from(&cents[first..]))),
        ("channel".into(), Value::String(s.channel.clone())),
    ]);
    apache_avro::to_avro_datum(schema, record).map_err(|e| e.to_string())
}

fn sale(rng: &mut ChaCha8Rng, i: u64, malformed_rate: f64) -> GenMessage {
    if rng.random_bool(malformed_rate) {
        // not the wire format: a JSON text where Avro was expected
        let body = format!(r#"{{"order_id": "so-{i}"}}"#).into_bytes();
        return GenMessage {
            key: Some(format!("so-{i}")),
            body: Body::Bytes(body),
            malformed: true,
            update: false,
            label: None,
        };
    }
    let s = Sale {
        order_id: format!("so-{i:08}"),
        ts_ms: SALES_START_MS + (i as i64) * 1000 + rng.random_range(0..1000),
        customer_id: format!("c-{:05}", rng.random_range(0..20_000)),
        product_id: format!("p-{:04}", rng.random_range(0..200)),
        quantity: rng.random_range(1..10),
        unit_price_cents: rng.random_range(50..50_000),
        channel: ["web", "app", "marketplace"][rng.random_range(0..3)].to_string(),
    };
    GenMessage { key: Some(s.order_id.clone()), body: Body::Sale(s), malformed: false, update: false, label: None }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_messages_with_updates_and_malformed() {
        let a: Vec<_> = messages(MessageKind::Orders, 7, 2000, 0.01).collect();
        let b: Vec<_> = messages(MessageKind::Orders, 7, 2000, 0.01).collect();
        assert_eq!(a, b);
        assert!(a.iter().any(|m| m.update));
        let bad = a.iter().filter(|m| m.malformed).count();
        assert!((5..=40).contains(&bad), "{bad} malformed");
    }

    #[test]
    fn order_upd_follows_each_order_through_its_statuses() {
        let a: Vec<_> = messages(MessageKind::OrderUpd, 3, 5000, 0.002).collect();
        assert_eq!(a, messages(MessageKind::OrderUpd, 3, 5000, 0.002).collect::<Vec<_>>());
        let count = |l: &str| a.iter().filter(|m| m.label == Some(l)).count();
        let (created, confirmed, cancelled) =
            (count("update-status-created"), count("update-status-confirmed"), count("update-status-cancelled"));
        assert!(created > 1000 && confirmed > 500 && cancelled > 100, "{created} {confirmed} {cancelled}");
        assert!(count("duplicate") > 10 && count("malformed") > 2);
        // every status event is keyed by its order and names it in the body
        for m in a.iter().filter(|m| !m.malformed) {
            let Body::Bytes(b) = &m.body else { panic!("json") };
            let v: serde_json::Value = serde_json::from_slice(b).unwrap();
            assert_eq!(v["order"]["id"].as_str(), m.key.as_deref());
            assert!(v["order"]["items"].as_array().is_some_and(|i| !i.is_empty()));
        }
        // a cancellation never comes before the order was created
        let mut seen = std::collections::HashSet::new();
        for m in a.iter().filter(|m| !m.malformed) {
            match m.label {
                Some("update-status-created") => assert!(seen.insert(m.key.clone())),
                _ => assert!(seen.contains(&m.key), "{:?} before its creation", m.label),
            }
        }
    }

    #[test]
    fn traffic_events_have_the_tracker_shape() {
        let a: Vec<_> = messages(MessageKind::Traffic, 1, 2000, 0.01).collect();
        let Body::Bytes(b) = &a[0].body else { panic!("json") };
        let v: serde_json::Value = serde_json::from_slice(b).unwrap();
        for k in ["type", "ts", "session_id", "anonymous_id", "store_id", "url", "product_id", "referrer", "device"] {
            assert!(v.get(k).is_some(), "{k} in {v}");
        }
        assert!(a.iter().filter(|m| m.malformed).count() > 5);
    }
}
