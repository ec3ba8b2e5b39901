//! `ingesta generate orders --rows ORDERS [--out DIR] [--redis redis://…]
//! [--to kafka://HOST:PORT/order-service_orders]`: the orders DWH's data
//! (seed 002): the users and restaurants loaded into Redis, the week of
//! order messages sent to the topic, and with `--out` the baseline's files
//! (`redis.jsonl`, `orders.jsonl`, `manifest.json`, `expected.json`).

use std::process::ExitCode;

use anyhow::{Context, bail};
use ingesta_generate::orders_dwh::{Dataset, Shape};
use ingesta_generate::{Body, GenMessage, MessageKind};

use super::Args;

pub fn run(a: &Args) -> anyhow::Result<ExitCode> {
    if a.out.is_none() && a.to.is_none() {
        bail!("give --out DIR, --to kafka://HOST:PORT/TOPIC (with --redis redis://HOST:PORT), or both");
    }
    let shape = Shape {
        seed: a.seed,
        orders: a.rows,
        users: a.users.unwrap_or((a.rows / 10).max(1)),
        restaurants: a.restaurants,
    };
    let d = Dataset::new(shape);
    if let Some(dir) = &a.out {
        ingesta_generate::orders_dwh::write(&d, dir).with_context(|| format!("writing {}", dir.display()))?;
        eprintln!(
            "wrote {} orders in {} messages and {} Redis values to {} (manifest.json, expected.json)",
            a.rows,
            d.messages.len(),
            d.redis.len(),
            dir.display()
        );
    }
    if let Some(url) = &a.redis {
        load(url, &d.redis)?;
        eprintln!("loaded {} users and restaurants into Redis", d.redis.len());
    }
    let Some(to) = &a.to else { return Ok(ExitCode::SUCCESS) };
    if a.redis.is_none() {
        eprintln!("note: without --redis the messages name users and restaurants that Redis may not hold");
    }
    let stream = d.messages.iter().zip(&d.labels).map(|(m, label)| GenMessage {
        key: None,
        body: Body::Bytes(m.clone().into_bytes()),
        malformed: label.is_some_and(|l| l != "redelivery"),
        update: false,
        label: *label,
    });
    super::super::send::send(MessageKind::Orders, a.seed, stream, &super::target(a, to))
}

/// `MSET`s the values, 1,000 keys per command.
fn load(url: &str, pairs: &[(String, String)]) -> anyhow::Result<()> {
    let shown = url.split('@').next_back().unwrap_or(url);
    let client = redis::Client::open(url).with_context(|| format!("the Redis URL (…@{shown})"))?;
    let mut con = client.get_connection().with_context(|| format!("connecting to Redis at {shown}"))?;
    for chunk in pairs.chunks(1000) {
        let mut cmd = redis::cmd("MSET");
        for (k, v) in chunk {
            cmd.arg(k).arg(v);
        }
        cmd.query::<()>(&mut con).with_context(|| format!("MSET into Redis at {shown}"))?;
    }
    Ok(())
}
