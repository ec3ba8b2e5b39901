//! The farm datasets of seed 004 (formats.md, farm-iot): IoT readings,
//! inventory snapshots, batch sales orders and weather documents.

use std::sync::Arc;

use arrow_array::{ArrayRef, Float64Array, Int32Array, RecordBatch, StringArray, TimestampMillisecondArray};
use arrow_schema::{DataType, Field, Schema, TimeUnit};
use chrono::{DateTime, Utc};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::out::{Out, io};
use crate::{FileEntry, FileFormat, GenerateError, Manifest, Options};

/// 2026-11-01T00:00:00Z in milliseconds.
const START_MS: i64 = 1_793_491_200_000;
const SPAN_MS: i64 = 7 * 86_400_000;
const DEVICES: u64 = 5000;
const FARMS: u64 = 200;
const PRODUCTS: u64 = 200;
const WAREHOUSES: u64 = 5;

fn ts(ms: i64) -> String {
    DateTime::<Utc>::from_timestamp_millis(START_MS + ms)
        .unwrap_or_default()
        .format("%Y-%m-%dT%H:%M:%S%.3fZ")
        .to_string()
}

fn farm_of(device: u64, seed: u64) -> u64 {
    (device.wrapping_mul(2_654_435_761) ^ seed) % FARMS
}

/// Rows of file `i` of `files` when `rows` are spread evenly.
fn share(rows: u64, files: u32, i: u32) -> u64 {
    rows / u64::from(files) + u64::from(u64::from(i) < rows % u64::from(files))
}

fn manifest(kind: &str, opts: &Options, format: &str) -> Manifest {
    Manifest { kind: kind.into(), seed: opts.seed, format: format.into(), ..Default::default() }
}

pub fn iot(opts: &Options) -> Result<Manifest, GenerateError> {
    let format = opts.format.unwrap_or(FileFormat::Ndjson);
    let (ext, json) = match format {
        FileFormat::Ndjson => ("ndjson", true),
        FileFormat::Csv => ("csv", false),
        other => return Err(GenerateError::Invalid(format!("iot writes ndjson or csv, not {other:?}"))),
    };
    let mut m = manifest("iot", opts, ext);
    let mut rng = ChaCha8Rng::seed_from_u64(opts.seed);
    for fi in 0..opts.files {
        let n = share(opts.rows, opts.files, fi);
        let (w0, w1) =
            (SPAN_MS * i64::from(fi) / i64::from(opts.files), SPAN_MS * i64::from(fi + 1) / i64::from(opts.files));
        let step = if n > 0 { (w1 - w0) as f64 / n as f64 } else { 0.0 };
        let name = format!("readings-{fi:05}.{ext}");
        let mut out = Out::create(&opts.out.join(&name))?;
        if !json {
            out.line("device_id,farm_id,ts,temperature,humidity,soil_moisture,battery,status")?;
        }
        let mut bad = 0;
        for k in 0..n {
            let ms = w0 + ((k as f64 + rng.random::<f64>()) * step) as i64;
            let d = rng.random_range(0..DEVICES);
            let farm = farm_of(d, opts.seed);
            let temp = 12.0 + (d % 7) as f64 - 3.0 + 16.0 * rng.random::<f64>();
            let hum = 30.0 + 60.0 * rng.random::<f64>();
            let soil = 0.05 + 0.55 * rng.random::<f64>();
            let batt = rng.random_range(0..=100);
            let s = rng.random::<f64>();
            let status = if s < 0.90 {
                "ok"
            } else if s < 0.98 {
                "warn"
            } else {
                "fail"
            };
            let m_roll = rng.random::<f64>();
            let (temp_text, ts_text) = if m_roll < opts.malformed_rate / 2.0 {
                bad += 1;
                (if json { "\"N/A\"".to_string() } else { "N/A".to_string() }, Some(ts(ms)))
            } else if m_roll < opts.malformed_rate {
                bad += 1;
                (format!("{temp:.2}"), None)
            } else if m_roll < opts.malformed_rate * 1.5 {
                // a sensor glitch: a valid record with an implausible value, for silver's rules
                ("999.90".to_string(), Some(ts(ms)))
            } else {
                (format!("{temp:.2}"), Some(ts(ms)))
            };
            let line = if json {
                let ts_part = ts_text.map(|t| format!("\"ts\":\"{t}\",")).unwrap_or_default();
                format!(
                    "{{\"device_id\":\"dev-{d:05}\",\"farm_id\":\"farm-{farm:03}\",{ts_part}\"temperature\":{temp_text},\"humidity\":{hum:.2},\"soil_moisture\":{soil:.3},\"battery\":{batt},\"status\":\"{status}\"}}"
                )
            } else {
                format!(
                    "dev-{d:05},farm-{farm:03},{},{temp_text},{hum:.2},{soil:.3},{batt},{status}",
                    ts_text.unwrap_or_default()
                )
            };
            out.line(&line)?;
        }
        let bytes = out.finish()?;
        m.add(FileEntry { name, rows: n, malformed: bad, bytes });
    }
    Ok(m)
}

pub fn inventory(opts: &Options) -> Result<Manifest, GenerateError> {
    let mut m = manifest("inventory", opts, "csv");
    let mut rng = ChaCha8Rng::seed_from_u64(opts.seed ^ 0x1);
    for fi in 0..opts.files {
        let day = DateTime::<Utc>::from_timestamp_millis(START_MS + i64::from(fi) * 86_400_000).unwrap_or_default();
        let date = day.format("%Y-%m-%d");
        let name = format!("inventory-{date}.csv");
        let mut out = Out::create(&opts.out.join(&name))?;
        out.line("snapshot_date,warehouse_id,product_id,quantity_on_hand,unit_cost")?;
        let n = share(opts.rows, opts.files, fi);
        let mut bad = 0;
        for k in 0..n {
            let (wh, product) = (k % WAREHOUSES, (k / WAREHOUSES) % PRODUCTS);
            let cost = 1.0 + (product % 50) as f64 + 0.25 * (product % 4) as f64;
            let qty = if rng.random::<f64>() < opts.malformed_rate {
                bad += 1;
                "unknown".to_string()
            } else {
                rng.random_range(0..1000u32).to_string()
            };
            out.line(&format!("{date},wh-{wh:02},p-{product:04},{qty},{cost:.2}"))?;
        }
        let bytes = out.finish()?;
        m.add(FileEntry { name, rows: n, malformed: bad, bytes });
    }
    Ok(m)
}

const CHANNELS: [&str; 3] = ["web", "store", "phone"];

pub fn sales(opts: &Options) -> Result<Manifest, GenerateError> {
    let format = opts.format.unwrap_or(FileFormat::Csv);
    let ext = match format {
        FileFormat::Csv => "csv",
        FileFormat::Parquet => "parquet",
        other => return Err(GenerateError::Invalid(format!("sales writes csv or parquet, not {other:?}"))),
    };
    let mut m = manifest("sales", opts, ext);
    let mut rng = ChaCha8Rng::seed_from_u64(opts.seed ^ 0x2);
    let mut order = 0u64;
    for fi in 0..opts.files {
        let n = share(opts.rows, opts.files, fi);
        let name = format!("sales-{fi:05}.{ext}");
        let path = opts.out.join(&name);
        let w0 = SPAN_MS * i64::from(fi) / i64::from(opts.files);
        let w = SPAN_MS / i64::from(opts.files);
        let mut rows = Vec::with_capacity(n as usize);
        for _ in 0..n {
            order += 1;
            let ms = w0 + rng.random_range(0..w.max(1));
            let customer = rng.random_range(0..20_000u32);
            let product = rng.random_range(0..PRODUCTS);
            let qty = rng.random_range(1..=10i32);
            let price = 2.0 + (product % 40) as f64 * 1.5;
            let channel = CHANNELS[rng.random_range(0..CHANNELS.len())];
            let bad = format == FileFormat::Csv && rng.random::<f64>() < opts.malformed_rate;
            rows.push((order, ms, customer, product, qty, price, channel, bad));
        }
        let bad = rows.iter().filter(|r| r.7).count() as u64;
        let bytes = if format == FileFormat::Csv {
            let mut out = Out::create(&path)?;
            out.line("order_id,ts,customer_id,product_id,quantity,unit_price,channel")?;
            for (o, ms, c, p, q, price, ch, bad) in &rows {
                let q = if *bad { "two".to_string() } else { q.to_string() };
                out.line(&format!("SO-{o:08},{},cu-{c:05},p-{p:04},{q},{price:.2},{ch}", ts(*ms)))?;
            }
            out.finish()?
        } else {
            write_sales_parquet(&path, &rows)?
        };
        m.add(FileEntry { name, rows: n, malformed: bad, bytes });
    }
    Ok(m)
}

type SaleRow = (u64, i64, u32, u64, i32, f64, &'static str, bool);

fn write_sales_parquet(path: &std::path::Path, rows: &[SaleRow]) -> Result<u64, GenerateError> {
    let schema = Arc::new(Schema::new(vec![
        Field::new("order_id", DataType::Utf8, false),
        Field::new("ts", DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into())), false),
        Field::new("customer_id", DataType::Utf8, false),
        Field::new("product_id", DataType::Utf8, false),
        Field::new("quantity", DataType::Int32, false),
        Field::new("unit_price", DataType::Float64, false),
        Field::new("channel", DataType::Utf8, false),
    ]));
    let cols: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from_iter_values(rows.iter().map(|r| format!("SO-{:08}", r.0)))),
        Arc::new(TimestampMillisecondArray::from_iter_values(rows.iter().map(|r| START_MS + r.1)).with_timezone("UTC")),
        Arc::new(StringArray::from_iter_values(rows.iter().map(|r| format!("cu-{:05}", r.2)))),
        Arc::new(StringArray::from_iter_values(rows.iter().map(|r| format!("p-{:04}", r.3)))),
        Arc::new(Int32Array::from_iter_values(rows.iter().map(|r| r.4))),
        Arc::new(Float64Array::from_iter_values(rows.iter().map(|r| r.5))),
        Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.6))),
    ];
    let batch = RecordBatch::try_new(schema.clone(), cols).map_err(|e| GenerateError::Invalid(e.to_string()))?;
    let file = std::fs::File::create(path).map_err(|e| io(path, e))?;
    let mut w =
        parquet::arrow::ArrowWriter::try_new(file, schema, None).map_err(|e| GenerateError::Invalid(e.to_string()))?;
    w.write(&batch).map_err(|e| GenerateError::Invalid(e.to_string()))?;
    w.close().map_err(|e| GenerateError::Invalid(e.to_string()))?;
    Ok(std::fs::metadata(path).map_err(|e| io(path, e))?.len())
}

pub fn weather(opts: &Options) -> Result<Manifest, GenerateError> {
    let mut m = manifest("weather", opts, "json");
    let mut rng = ChaCha8Rng::seed_from_u64(opts.seed ^ 0x3);
    for fi in 0..opts.files {
        let n = share(opts.rows, opts.files, fi);
        let name = format!("station-ws-{fi:02}.json");
        let step = if n > 0 { SPAN_MS / n as i64 } else { 0 };
        let mut bad = 0;
        let observations: Vec<String> = (0..n)
            .map(|k| {
                let temp = if rng.random::<f64>() < opts.malformed_rate {
                    bad += 1;
                    "\"n/a\"".to_string()
                } else {
                    format!("{:.1}", 8.0 + 14.0 * rng.random::<f64>())
                };
                let rain = (rng.random::<f64>() * 6.0).max(0.0);
                format!("{{\"ts\": \"{}\", \"temp_c\": {temp}, \"rain_mm\": {rain:.1}}}", ts(k as i64 * step))
            })
            .collect();
        let doc = format!(
            "{{\"station\": \"ws-{fi:02}\", \"provider\": \"open-meteo\", \"observations\": [\n  {}\n]}}",
            observations.join(",\n  ")
        );
        let mut out = Out::create(&opts.out.join(&name))?;
        out.line(&doc)?;
        let bytes = out.finish()?;
        m.add(FileEntry { name, rows: n, malformed: bad, bytes });
    }
    Ok(m)
}

/// The four datasets under `iot/`, `inventory/`, `sales/`, `weather/`.
pub fn all(opts: &Options) -> Result<Manifest, GenerateError> {
    let mut m = manifest("farm", opts, "mixed");
    type Gen = fn(&Options) -> Result<Manifest, GenerateError>;
    let parts: [(&str, Gen, u64, u32, Option<FileFormat>); 4] = [
        ("iot", iot, opts.rows, opts.files, Some(FileFormat::Ndjson)),
        ("inventory", inventory, (opts.rows / 50).max(7), 7, None),
        ("sales", sales, (opts.rows / 20).max(4), (opts.files / 2).max(1), Some(FileFormat::Csv)),
        ("weather", weather, (opts.rows / 100).max(4), 4, None),
    ];
    for (dir, f, rows, files, format) in parts {
        let sub = Options { rows, files, out: opts.out.join(dir), format, ..opts.clone() };
        std::fs::create_dir_all(&sub.out).map_err(|e| io(&sub.out, e))?;
        let dm = f(&sub)?;
        dm.write(&sub.out)?;
        m.rows += dm.rows;
        m.malformed += dm.malformed;
        m.valid_rows += dm.valid_rows;
        m.files += dm.files;
        m.bytes += dm.bytes;
        m.datasets.insert(dir.to_string(), dm);
    }
    Ok(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(dir: &std::path::Path) -> Options {
        Options { seed: 7, rows: 2000, files: 3, out: dir.to_path_buf(), format: None, malformed_rate: 0.01 }
    }

    #[test]
    fn same_seed_same_bytes_and_counts_add_up() {
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let ma = iot(&opts(a.path())).unwrap();
        let mb = iot(&opts(b.path())).unwrap();
        assert_eq!(ma, mb);
        assert_eq!(ma.rows, 2000);
        assert!(ma.malformed > 0 && ma.malformed < 100);
        let text_a = std::fs::read(a.path().join("readings-00001.ndjson")).unwrap();
        let text_b = std::fs::read(b.path().join("readings-00001.ndjson")).unwrap();
        assert_eq!(text_a, text_b);
        let lines: usize = (0..3)
            .map(|i| std::fs::read_to_string(a.path().join(format!("readings-{i:05}.ndjson"))).unwrap().lines().count())
            .sum();
        assert_eq!(lines, 2000);
    }
}
