//! `ingesta generate oltp --to postgresql://… [--rows ORDERS] [--transactions N]
//! [--rate TPS]`: the cdc-replica example's source (formats.md, seed 003).
//! Creates the `shop` schema (customers, products, orders, order_lines, each
//! with REPLICA IDENTITY FULL so changes carry the old row), fills it, then
//! runs a write load: new orders with their lines in one transaction, status
//! changes, customer and price updates that leave the wide `description` /
//! `notes` text untouched (unchanged TOAST values), rewritten descriptions,
//! and deletes. Ids continue from what the tables hold, so it can run again.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context;
use ingesta_warehouse::Warehouse;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::Args;

const DDL: &str = "
CREATE SCHEMA IF NOT EXISTS shop;
CREATE TABLE IF NOT EXISTS shop.customers (
  id bigint PRIMARY KEY, name text NOT NULL, email text NOT NULL, city text,
  notes text, created_at timestamptz NOT NULL, updated_at timestamptz NOT NULL);
CREATE TABLE IF NOT EXISTS shop.products (
  id bigint PRIMARY KEY, name text NOT NULL, category text NOT NULL, price numeric(12,2) NOT NULL,
  active boolean NOT NULL, description text, updated_at timestamptz NOT NULL);
CREATE TABLE IF NOT EXISTS shop.orders (
  id bigint PRIMARY KEY, customer_id bigint NOT NULL, status text NOT NULL,
  total numeric(14,2) NOT NULL, ordered_at timestamptz NOT NULL, updated_at timestamptz NOT NULL);
CREATE TABLE IF NOT EXISTS shop.order_lines (
  order_id bigint NOT NULL, line_no int NOT NULL, product_id bigint NOT NULL,
  quantity int NOT NULL, unit_price numeric(12,2) NOT NULL, PRIMARY KEY (order_id, line_no));
ALTER TABLE shop.customers REPLICA IDENTITY FULL;
ALTER TABLE shop.products REPLICA IDENTITY FULL;
ALTER TABLE shop.orders REPLICA IDENTITY FULL;
ALTER TABLE shop.order_lines REPLICA IDENTITY FULL;
";

const CITIES: [&str; 8] = ["Madrid", "Sevilla", "Valencia", "Bilbao", "Málaga", "Zaragoza", "Murcia", "Girona"];
const CATEGORIES: [&str; 6] = ["tools", "garden", "kitchen", "toys", "books", "sports"];
const STATUSES: [&str; 4] = ["paid", "shipped", "delivered", "cancelled"];

pub fn run(a: &Args, url: &str) -> anyhow::Result<ExitCode> {
    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(load(a, url))
}

struct Ids {
    customers: i64,
    products: i64,
    orders: i64,
}

async fn load(a: &Args, url: &str) -> anyhow::Result<ExitCode> {
    let db = Warehouse::database(url, 1, "the target database").map_err(|e| anyhow::anyhow!(e.message))?;
    let mut conn = db.connect().await.map_err(|e| anyhow::anyhow!(e.message))?;
    let c = &mut conn.client;
    c.batch_execute(DDL).await.context("creating the shop schema")?;
    let mut max = [0i64; 3];
    for (i, t) in ["customers", "products", "orders"].iter().enumerate() {
        max[i] = c.query_one(&format!("SELECT coalesce(max(id), 0) FROM shop.{t}"), &[]).await?.get(0);
    }
    let mut ids = Ids { customers: max[0], products: max[1], orders: max[2] };
    let mut rng = ChaCha8Rng::seed_from_u64(a.seed ^ ids.orders as u64);
    let started = Instant::now();
    if ids.products == 0 {
        let products = a.products.max(1);
        let customers = a.users.unwrap_or((a.rows / 5).max(10));
        for _ in 0..products {
            new_product(c, &mut rng, &mut ids).await?;
        }
        let tx = c.transaction().await?;
        for _ in 0..customers {
            new_customer(&tx, &mut rng, &mut ids).await?;
        }
        tx.commit().await?;
        eprintln!("created shop: {products} products, {customers} customers");
    }
    for i in 0..a.rows {
        new_order(c, &mut rng, &mut ids).await?;
        if (i + 1) % 10_000 == 0 {
            eprintln!("{} orders", i + 1);
        }
    }
    let (mut done, tick) = (0u64, a.rate.map(|r| Duration::from_secs_f64(1.0 / r.max(0.001))));
    let load_started = Instant::now();
    while done < a.transactions {
        change(c, &mut rng, &mut ids).await?;
        done += 1;
        if let Some(t) = tick {
            let due = load_started + t * done as u32;
            tokio::time::sleep_until(due.into()).await;
        }
    }
    eprintln!(
        "{} orders and {} write transactions in {:.1} s (ids up to: customers {}, products {}, orders {})",
        a.rows,
        done,
        started.elapsed().as_secs_f64(),
        ids.customers,
        ids.products,
        ids.orders
    );
    Ok(ExitCode::SUCCESS)
}

/// Text of `n` random words: wide values that PostgreSQL TOASTs.
fn words(rng: &mut ChaCha8Rng, n: usize) -> String {
    const SYL: [&str; 12] = ["ka", "lo", "mi", "ne", "ru", "sa", "ti", "vo", "zu", "pe", "do", "ga"];
    let mut s = String::with_capacity(n * 7);
    for i in 0..n {
        if i > 0 {
            s.push(' ');
        }
        for _ in 0..rng.random_range(1..4) {
            s.push_str(SYL[rng.random_range(0..SYL.len())]);
        }
        s.push_str(&rng.random_range(0..1000).to_string());
    }
    s
}

fn price(rng: &mut ChaCha8Rng) -> String {
    format!("{}.{:02}", rng.random_range(1..500), rng.random_range(0..100))
}

async fn new_customer(
    c: &impl tokio_postgres::GenericClient,
    rng: &mut ChaCha8Rng,
    ids: &mut Ids,
) -> anyhow::Result<()> {
    ids.customers += 1;
    let id = ids.customers;
    let wide = rng.random_bool(0.2).then(|| words(rng, 1200));
    c.execute(
        "INSERT INTO shop.customers VALUES ($1, $2, $3, $4, $5, now(), now())",
        &[&id, &format!("customer {id}"), &format!("c{id}@example.com"), &CITIES[rng.random_range(0..8)], &wide],
    )
    .await?;
    Ok(())
}

async fn new_product(c: &tokio_postgres::Client, rng: &mut ChaCha8Rng, ids: &mut Ids) -> anyhow::Result<()> {
    ids.products += 1;
    let id = ids.products;
    c.execute(
        "INSERT INTO shop.products VALUES ($1, $2, $3, $4::text::numeric, true, $5, now())",
        &[&id, &format!("product {id}"), &CATEGORIES[rng.random_range(0..6)], &price(rng), &words(rng, 1500)],
    )
    .await?;
    Ok(())
}

/// A new order and its lines, in one transaction.
async fn new_order(c: &mut tokio_postgres::Client, rng: &mut ChaCha8Rng, ids: &mut Ids) -> anyhow::Result<()> {
    ids.orders += 1;
    let (id, customer) = (ids.orders, rng.random_range(1..=ids.customers.max(1)));
    let tx = c.transaction().await?;
    tx.execute("INSERT INTO shop.orders VALUES ($1, $2, 'new', 0, now(), now())", &[&id, &customer]).await?;
    for line in 1..=rng.random_range(1..=4i32) {
        let product = rng.random_range(1..=ids.products.max(1));
        tx.execute(
            "INSERT INTO shop.order_lines SELECT $1, $2, id, $3, price FROM shop.products WHERE id = $4",
            &[&id, &line, &rng.random_range(1..=5i32), &product],
        )
        .await?;
    }
    tx.execute(
        "UPDATE shop.orders SET total = (SELECT coalesce(sum(quantity * unit_price), 0) FROM shop.order_lines WHERE order_id = $1) WHERE id = $1",
        &[&id],
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// One write transaction of the load.
async fn change(c: &mut tokio_postgres::Client, rng: &mut ChaCha8Rng, ids: &mut Ids) -> anyhow::Result<()> {
    let order = rng.random_range(1..=ids.orders.max(1));
    match rng.random_range(0..100) {
        0..35 => new_order(c, rng, ids).await?,
        35..60 => {
            let status = STATUSES[rng.random_range(0..4)];
            c.execute("UPDATE shop.orders SET status = $2, updated_at = now() WHERE id = $1", &[&order, &status])
                .await?;
        }
        60..72 => {
            // the wide `notes` stays as it is: an unchanged TOAST value
            let (id, city) = (rng.random_range(1..=ids.customers.max(1)), CITIES[rng.random_range(0..8)]);
            c.execute("UPDATE shop.customers SET city = $2, updated_at = now() WHERE id = $1", &[&id, &city]).await?;
        }
        72..82 => {
            let id = rng.random_range(1..=ids.products.max(1));
            c.execute(
                "UPDATE shop.products SET price = $2::text::numeric, updated_at = now() WHERE id = $1",
                &[&id, &price(rng)],
            )
            .await?;
        }
        82..86 => {
            let id = rng.random_range(1..=ids.products.max(1));
            let text = words(rng, 1500);
            c.execute("UPDATE shop.products SET description = $2, updated_at = now() WHERE id = $1", &[&id, &text])
                .await?;
        }
        86..90 => {
            let tx = c.transaction().await?;
            new_customer(&tx, rng, ids).await?;
            tx.commit().await?;
        }
        90..95 => {
            c.execute("DELETE FROM shop.order_lines WHERE order_id = $1 AND line_no > 1", &[&order]).await?;
        }
        _ => {
            let tx = c.transaction().await?;
            tx.execute("DELETE FROM shop.order_lines WHERE order_id = $1", &[&order]).await?;
            tx.execute("DELETE FROM shop.orders WHERE id = $1", &[&order]).await?;
            tx.commit().await?;
        }
    }
    Ok(())
}
