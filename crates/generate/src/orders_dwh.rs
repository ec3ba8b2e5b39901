//! The seed-002 orders DWH's data (formats.md "orders-dwh"): users and
//! restaurants with their menus (the Redis values), and a week of order
//! messages in arrival order, the same shape and proportions as the
//! baseline's `gen_orders.py`: about 10% of orders come twice (a non-final
//! status, later CLOSED or CANCELLED), 2% of messages are delivered again up
//! to 2,000 messages later, 0.5% are malformed (broken JSON, no user, an
//! unknown user). [`Dataset::expected`] is the end state a correct pipeline
//! reaches (the baseline's `expected.py`): an order's state is its last valid
//! message by `sent_dttm`, then arrival.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{Value, json};

const CATEGORIES: [(&str, [&str; 5]); 8] = [
    ("Выпечка", ["Хачапури по-аджарски", "Пирожок с капустой", "Круассан", "Сырники", "Самса с бараниной"]),
    ("Закуски", ["Брускетта с томатами", "Хумус с питой", "Сельдь под шубой", "Пхали", "Сырная тарелка"]),
    ("Супы", ["Борщ", "Солянка", "Том ям", "Харчо", "Куриный суп с лапшой"]),
    ("Салаты", ["Цезарь с курицей", "Греческий салат", "Оливье", "Винегрет", "Салат с тунцом"]),
    ("Горячее", ["Плов", "Бефстроганов", "Рис с лимоном", "Шашлык из свинины", "Пельмени"]),
    ("Десерты", ["Медовик", "Наполеон", "Чизкейк", "Пахлава", "Тирамису"]),
    ("Напитки", ["Морс клюквенный", "Капучино", "Лимонад", "Чай облепиховый", "Компот"]),
    ("Пицца", ["Пицца Маргарита", "Пицца Пепперони", "Пицца Четыре сыра", "Пицца Гавайская", "Пицца Дьябло"]),
];
const RESTAURANTS: [&str; 12] = [
    "Кубдари",
    "Кофейня №1",
    "Вкус Индии",
    "Гриль Хаус",
    "Пицца Мания",
    "Сушиман",
    "Пекарня на углу",
    "Шаурма Бро",
    "Хинкальная",
    "Столовая №7",
    "Чайхана",
    "Бистро Париж",
];
const SURNAMES: [(&str, &str); 6] = [
    ("Котов", "Котова"),
    ("Игнатьев", "Игнатьева"),
    ("Смирнов", "Смирнова"),
    ("Кузнецов", "Кузнецова"),
    ("Попов", "Попова"),
    ("Соколов", "Соколова"),
];
const MALE: [&str; 5] = ["Гаврила", "Иван", "Пётр", "Алексей", "Дмитрий"];
const FEMALE: [&str; 5] = ["Ольга", "Анна", "Мария", "Елена", "Татьяна"];
const PATRONYMICS: [(&str, &str); 3] =
    [("Архипович", "Архиповна"), ("Вениаминович", "Вениаминовна"), ("Иванович", "Ивановна")];
const PATH: [&str; 4] = ["OPEN", "COOKING", "DELIVERING", "CLOSED"];
/// 2026-11-01T00:00:00Z: the history's first day.
const START: i64 = 1_793_491_200;
/// The seed's one-week backfill.
const SPAN: i64 = 7 * 24 * 3600;

/// What to generate.
#[derive(Debug, Clone, Copy)]
pub struct Shape {
    pub seed: u64,
    pub orders: u64,
    pub users: u64,
    pub restaurants: u64,
}

/// The Redis values and the messages, in arrival order.
pub struct Dataset {
    /// (key, JSON value): users, then restaurants.
    pub redis: Vec<(String, String)>,
    /// Message values as sent, in arrival order.
    pub messages: Vec<String>,
    /// Each message's kind when it is not a plain one: `redelivery`,
    /// `invalid_json`, `no_user`, `unknown_user`.
    pub labels: Vec<Option<&'static str>>,
    /// What was made, for `manifest.json`.
    pub manifest: Value,
}

impl Dataset {
    pub fn new(s: Shape) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(s.seed);
        let hex = |rng: &mut ChaCha8Rng| format!("{:024x}", rng.random::<u128>() >> 32);
        let mut redis = Vec::new();
        let mut users = Vec::new();
        for _ in 0..s.users.max(1) {
            let female = rng.random_bool(0.5);
            let pick = |rng: &mut ChaCha8Rng, pairs: &[(&'static str, &'static str)]| -> &'static str {
                let (m, f) = pairs[rng.random_range(0..pairs.len())];
                if female { f } else { m }
            };
            let surname = pick(&mut rng, &SURNAMES);
            let first = if female { FEMALE.choose(&mut rng) } else { MALE.choose(&mut rng) }.copied().unwrap_or("");
            let patronymic = pick(&mut rng, &PATRONYMICS);
            let login: String = (0..6).map(|_| (b'a' + rng.random_range(0..26u8)) as char).collect();
            let id = hex(&mut rng);
            let v = json!({"_id": id, "name": format!("{surname} {first} {patronymic}"),
                           "login": format!("{login}_{}", rng.random_range(0..10_000)),
                           "update_ts_utc": dttm(START - rng.random_range(0..SPAN))});
            redis.push((id.clone(), v.to_string()));
            users.push(id);
        }
        let dishes: Vec<(&str, &str)> =
            CATEGORIES.iter().flat_map(|(c, ds)| ds.iter().map(move |d| (*c, *d))).collect();
        let mut restaurants = Vec::new();
        for i in 0..s.restaurants.max(1) as usize {
            let mut name = RESTAURANTS[i % RESTAURANTS.len()].to_string();
            if i >= RESTAURANTS.len() {
                name = format!("{name} {}", i / RESTAURANTS.len() + 1);
            }
            let n = rng.random_range(15..=30);
            let menu: Vec<Value> = dishes
                .choose_multiple(&mut rng, n)
                .map(|(c, d)| json!({"_id": hex(&mut rng), "name": d, "price": rng.random_range(12..180) * 5, "category": c}))
                .collect();
            let id = hex(&mut rng);
            let v = json!({"_id": id, "name": name, "menu": menu, "update_ts_utc": dttm(START - rng.random_range(0..SPAN))});
            redis.push((id.clone(), v.to_string()));
            restaurants.push((id, menu));
        }

        let mut events: Vec<(i64, usize, String)> = Vec::new();
        let mut finals: BTreeMap<&str, u64> = BTreeMap::new();
        let mut first_versions = 0u64;
        let mut next_oid = 1_000_000u64;
        for n in 0..s.orders {
            next_oid += rng.random_range(1..=30);
            let (rest, menu) = &restaurants[rng.random_range(0..restaurants.len())];
            let user = &users[rng.random_range(0..users.len())];
            let k = rng.random_range(1..=4).min(menu.len());
            let items: Vec<Value> = menu
                .choose_multiple(&mut rng, k)
                .map(|p| json!({"id": p["_id"], "name": p["name"], "price": p["price"], "quantity": rng.random_range(1..=5)}))
                .collect();
            let cost: i64 =
                items.iter().map(|i| i["price"].as_i64().unwrap_or(0) * i["quantity"].as_i64().unwrap_or(0)).sum();
            let bonus = if rng.random_range(0..10) == 0 { cost.min(rng.random_range(5..50) * 10) } else { 0 };
            let r: f64 = rng.random();
            let path: Vec<&str> = if r < 0.85 {
                PATH.to_vec()
            } else if r < 0.95 {
                let mut p = PATH[..rng.random_range(1..=2)].to_vec();
                p.push("CANCELLED");
                p
            } else {
                PATH[..rng.random_range(1..=3)].to_vec()
            };
            let last = path.len() - 1;
            *finals.entry(path[last]).or_default() += 1;
            let open = START + SPAN * n as i64 / s.orders as i64 + rng.random_range(0..60);
            let mut times = vec![open];
            for _ in 1..path.len() {
                times.push(times[times.len() - 1] + rng.random_range(300..1800));
            }
            let mut message = |k: usize, rng: &mut ChaCha8Rng| {
                let statuses: Vec<Value> =
                    (0..=k).rev().map(|j| json!({"status": path[j], "dttm": dttm(times[j])})).collect();
                let sent = times[k] + rng.random_range(5..120);
                let m = json!({"object_id": next_oid, "object_type": "order", "sent_dttm": dttm(sent),
                    "payload": {"restaurant": {"id": rest}, "date": dttm(times[k]), "user": {"id": user},
                                "order_items": items, "bonus_payment": bonus, "cost": cost, "payment": cost - bonus,
                                "bonus_grant": (cost - bonus) / 100, "statuses": statuses,
                                "final_status": path[k], "update_ts": dttm(times[k])}});
                events.push((sent, events.len(), m.to_string()));
            };
            let closed_or_cancelled = matches!(path[last], "CLOSED" | "CANCELLED");
            if closed_or_cancelled && path.len() > 1 && rng.random_bool(0.105) {
                first_versions += 1;
                message(rng.random_range(0..last), &mut rng);
            }
            message(last, &mut rng);
        }
        events.sort_by_key(|e| (e.0, e.1));
        let mut lines: Vec<String> = events.into_iter().map(|e| e.2).collect();
        let mut labels: Vec<Option<&'static str>> = vec![None; lines.len()];

        // exact redeliveries of earlier messages, up to 2,000 messages later
        let redeliveries = lines.len() / 50;
        for _ in 0..redeliveries {
            let i = rng.random_range(0..lines.len());
            let at = (i + rng.random_range(1..=2000)).min(lines.len());
            lines.insert(at, lines[i].clone());
            labels.insert(at, Some("redelivery"));
        }
        // malformed messages with their own order ids
        let mut kinds: BTreeMap<&str, u64> = [("invalid_json", 0), ("no_user", 0), ("unknown_user", 0)].into();
        let valid = lines.len();
        for _ in 0..(valid / 200).max(1) {
            next_oid += rng.random_range(1..=30);
            let kind = ["invalid_json", "no_user", "unknown_user"][rng.random_range(0..3)];
            *kinds.entry(kind).or_default() += 1;
            let mut m: Value = serde_json::from_str(&lines[rng.random_range(0..valid)]).expect("generated JSON");
            m["object_id"] = json!(next_oid);
            match kind {
                "no_user" => {
                    m["payload"].as_object_mut().map(|p| p.remove("user"));
                }
                "unknown_user" => m["payload"]["user"]["id"] = json!(hex(&mut rng)),
                _ => {}
            }
            let mut line = m.to_string();
            if kind == "invalid_json" {
                line = line.chars().take(line.chars().count() / 2).collect();
            }
            let at = rng.random_range(0..=lines.len());
            lines.insert(at, line);
            labels.insert(at, Some(kind));
        }
        let manifest = json!({
            "seed": s.seed, "orders": s.orders, "users": users.len(), "restaurants": restaurants.len(),
            "products": restaurants.iter().map(|(_, m)| m.len()).sum::<usize>(), "categories": CATEGORIES.len(),
            "messages": lines.len(), "first_versions": first_versions, "redeliveries": redeliveries,
            "malformed": kinds, "final_status": finals,
        });
        Dataset { redis, messages: lines, labels, manifest }
    }

    /// The end state (the baseline's `expected.json`): row counts per table,
    /// each order's final status, and the non-zero counters as
    /// `[user id, product id | category, count]`.
    pub fn expected(&self) -> Value {
        let redis: HashMap<&str, Value> =
            self.redis.iter().map(|(k, v)| (k.as_str(), serde_json::from_str(v).unwrap_or(Value::Null))).collect();
        type Products = Vec<(String, String, String)>;
        let mut last: HashMap<i64, ((String, usize), String, String, Products)> = HashMap::new();
        let mut seen: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
        let mut malformed = 0u64;
        for (idx, line) in self.messages.iter().enumerate() {
            let Some((oid, sent, status, p, user, rest, prods)) = parse(line, &redis) else {
                malformed += 1;
                continue;
            };
            let mut add = |t: &'static str, k: String| {
                seen.entry(t).or_default().insert(k);
            };
            let (uid, rid) = (user["_id"].as_str().unwrap_or(""), rest["_id"].as_str().unwrap_or(""));
            add("h_order", oid.to_string());
            add("h_user", uid.into());
            add("h_restaurant", rid.into());
            add("l_order_user", format!("{oid}|{uid}"));
            add("s_user_names", format!("{uid}|{}|{}", user["name"], user["login"]));
            add("s_restaurant_names", format!("{rid}|{}", rest["name"]));
            add("s_order_cost", format!("{oid}|{}|{}", p["cost"], p["payment"]));
            add("s_order_status", format!("{oid}|{status}"));
            for (pid, name, cat) in &prods {
                add("h_product", pid.clone());
                add("h_category", cat.clone());
                add("l_order_product", format!("{oid}|{pid}"));
                add("l_product_restaurant", format!("{pid}|{rid}"));
                add("l_product_category", format!("{pid}|{cat}"));
                add("s_product_names", format!("{pid}|{name}"));
            }
            let key = (sent, idx);
            if last.get(&oid).is_none_or(|l| key > l.0) {
                last.insert(oid, (key, status, uid.to_string(), prods));
            }
        }
        let (mut upc, mut ucc): (BTreeMap<_, BTreeSet<i64>>, BTreeMap<_, BTreeSet<i64>>) = Default::default();
        for (oid, (_, status, uid, prods)) in &last {
            if status == "CLOSED" {
                for (pid, _, cat) in prods {
                    upc.entry((uid.clone(), pid.clone())).or_default().insert(*oid);
                    ucc.entry((uid.clone(), cat.clone())).or_default().insert(*oid);
                }
            }
        }
        let mut counts = serde_json::Map::new();
        counts.insert("stg.order_events".into(), json!(last.len()));
        for (t, v) in seen {
            counts.insert(t.into(), json!(v.len()));
        }
        let rows = |m: BTreeMap<(String, String), BTreeSet<i64>>| -> Vec<Value> {
            m.into_iter().map(|((u, x), o)| json!([u, x, o.len()])).collect()
        };
        let finals: BTreeMap<String, &str> = last.iter().map(|(o, l)| (o.to_string(), l.1.as_str())).collect();
        json!({
            "messages": self.messages.len(),
            "malformed": malformed,
            "counts": counts,
            "closed_orders": last.values().filter(|l| l.1 == "CLOSED").count(),
            "final_status": finals,
            "user_product_counters": rows(upc),
            "user_category_counters": rows(ucc),
        })
    }
}

type Parsed<'a> = (i64, String, String, Value, &'a Value, &'a Value, Vec<(String, String, String)>);

/// A valid message's order id, `sent_dttm`, status, payload, user,
/// restaurant and (product id, name, category) per item; `None` when it is
/// malformed or names what Redis does not have.
fn parse<'a>(line: &str, redis: &'a HashMap<&str, Value>) -> Option<Parsed<'a>> {
    let m: Value = serde_json::from_str(line).ok()?;
    let p = m.get("payload")?.clone();
    let oid = m.get("object_id")?.as_i64()?;
    let sent = m.get("sent_dttm")?.as_str()?.to_string();
    let user = redis.get(p.get("user")?.get("id")?.as_str()?)?;
    let rest = redis.get(p.get("restaurant")?.get("id")?.as_str()?)?;
    user.get("login")?;
    let menu = rest.get("menu")?.as_array()?;
    let mut prods = Vec::new();
    for item in p.get("order_items")?.as_array()? {
        let id = item.get("id")?.as_str()?;
        let dish = menu.iter().find(|d| d["_id"].as_str() == Some(id))?;
        prods.push((id.to_string(), dish["name"].as_str()?.to_string(), dish["category"].as_str()?.to_string()));
    }
    let status = p.get("final_status")?.as_str()?.to_string();
    Some((oid, sent, status, p, user, rest, prods))
}

fn dttm(secs: i64) -> String {
    chrono::DateTime::<chrono::Utc>::from_timestamp(secs, 0).unwrap_or_default().format("%Y-%m-%d %H:%M:%S").to_string()
}

/// Writes `redis.jsonl`, `orders.jsonl`, `manifest.json` and `expected.json`
/// into `dir` (the baseline's layout: its `harness.py` loads and checks them).
pub fn write(d: &Dataset, dir: &std::path::Path) -> Result<(), crate::GenerateError> {
    use std::io::Write;
    std::fs::create_dir_all(dir).map_err(|e| crate::out::io(dir, e))?;
    let file = |name: &str, body: Vec<u8>| {
        let path = dir.join(name);
        std::fs::File::create(&path).and_then(|mut f| f.write_all(&body)).map_err(|e| crate::out::io(&path, e))
    };
    let mut redis = Vec::new();
    for (k, v) in &d.redis {
        redis.extend(json!({"key": k, "value": v}).to_string().into_bytes());
        redis.push(b'\n');
    }
    file("redis.jsonl", redis)?;
    file("orders.jsonl", d.messages.iter().flat_map(|m| m.bytes().chain([b'\n'])).collect())?;
    file("manifest.json", serde_json::to_vec_pretty(&d.manifest).unwrap_or_default())?;
    file("expected.json", serde_json::to_vec(&d.expected()).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_dataset_is_deterministic_and_reconciles() {
        let shape = Shape { seed: 2, orders: 2000, users: 200, restaurants: 12 };
        let (a, b) = (Dataset::new(shape), Dataset::new(shape));
        assert_eq!(a.messages, b.messages);
        let e = a.expected();
        let m = &a.manifest;
        let malformed: u64 = m["malformed"].as_object().unwrap().values().map(|v| v.as_u64().unwrap()).sum();
        assert_eq!(e["malformed"].as_u64().unwrap(), malformed);
        assert_eq!(e["counts"]["h_order"].as_u64().unwrap(), 2000);
        assert_eq!(e["counts"]["stg.order_events"].as_u64().unwrap(), 2000);
        let statuses = e["counts"]["s_order_status"].as_u64().unwrap();
        assert_eq!(statuses, 2000 + m["first_versions"].as_u64().unwrap());
        assert!(e["closed_orders"].as_u64().unwrap() > 1500);
    }
}
