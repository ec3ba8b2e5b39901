//! `ingesta demo`: generate farm data and sales events, run examples/farm-iot
//! and examples/sales-mart on a local lake, reconcile with the generator's
//! manifest and say where everything is.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context;
use ingesta_config::Source;
use ingesta_generate::{Kind, Manifest, Options};
use ingesta_runtime::Progress;

/// The example pipeline, built into the binary so the demo runs from anywhere.
const FARM_IOT: &str = include_str!("../../../../examples/farm-iot/ingesta.yaml");

#[derive(clap::Args)]
pub struct Args {
    /// Working folder: landing/ and lake/ are (re)created in it.
    #[arg(long, default_value = ".ingesta-demo")]
    dir: PathBuf,
    /// IoT readings to generate (inventory, sales and weather scale with it).
    #[arg(long, default_value_t = 1_000_000)]
    rows: u64,
    #[arg(long, default_value_t = 20)]
    files: u32,
    #[arg(long, default_value_t = 20261101)]
    seed: u64,
    /// End after the summary instead of serving the dashboard.
    #[arg(long)]
    no_serve: bool,
    /// Where the dashboard is served.
    #[arg(long, default_value = "127.0.0.1:8080")]
    addr: String,
}

pub async fn run(a: Args) -> anyhow::Result<ExitCode> {
    let landing = a.dir.join("landing");
    let lake = a.dir.join("lake");
    for d in [&landing, &lake] {
        if d.exists() {
            std::fs::remove_dir_all(d).with_context(|| format!("cannot clear {}", d.display()))?;
        }
    }
    println!("1. generating farm data (seed {}) into {}", a.seed, landing.display());
    let t = Instant::now();
    let opts = Options {
        seed: a.seed,
        rows: a.rows,
        files: a.files,
        out: landing.clone(),
        format: None,
        malformed_rate: 0.001,
    };
    let manifest = ingesta_generate::generate(Kind::Farm, &opts)?;
    println!(
        "   {} records in {} files, {:.0} MB, {} malformed on purpose ({:.1}s)",
        manifest.rows,
        manifest.files,
        manifest.bytes as f64 / 1e6,
        manifest.malformed,
        t.elapsed().as_secs_f64()
    );

    let (landing_abs, lake_abs) = (absolute(&landing)?, absolute(&lake)?);
    let env = |k: &str| match k {
        "INGESTA_LANDING" => Some(landing_abs.display().to_string()),
        "INGESTA_LAKE" => Some(lake_abs.display().to_string()),
        _ => std::env::var(k).ok(),
    };
    let mut pipeline = ingesta_config::load_str("examples/farm-iot/ingesta.yaml", FARM_IOT, env)
        .map_err(|d| anyhow::anyhow!("{d}"))?;
    let sales = super::demo_sales::pipeline(&lake_abs)?;
    let (orders, traffic) = (a.rows / 20, a.rows / 10);
    let t = Instant::now();
    super::demo_sales::fill(&sales, &lake_abs, a.seed, orders, traffic).await?;
    println!(
        "   and for the sales mart {orders} order events and {traffic} tracker events, in its collector logs ({:.1}s)",
        t.elapsed().as_secs_f64()
    );
    super::demo_sales::merge(&mut pipeline, sales);

    println!("2. running examples/farm-iot and examples/sales-mart into the lake at {}", lake_abs.display());
    let progress = Progress::new(true);
    let t = Instant::now();
    let report = ingesta_runtime::run_once(&pipeline, &progress).await?;
    let secs = t.elapsed().as_secs_f64();
    super::run::print_report(&report, false);
    let bronze: Vec<_> = report
        .tables
        .iter()
        .filter(|t| pipeline.tables.get(&t.table).is_some_and(|c| c.layer == ingesta_config::Layer::Bronze))
        .collect();
    let (rows, quarantined, bytes) =
        bronze.iter().fold((0, 0, 0), |a, t| (a.0 + t.rows, a.1 + t.quarantined, a.2 + t.bytes));
    println!(
        "   total: {rows} rows to bronze, {quarantined} quarantined, {:.0} MB read; all layers in {secs:.1}s",
        bytes as f64 / 1e6,
    );
    println!("3. reconciling with the generator's manifest (records in = bronze rows + quarantined)");
    let mut ok = reconcile(&pipeline, &report, &manifest);
    for (table, sent) in [("order_upd_bronze", orders), ("traffic_bronze", traffic)] {
        let Some(t) = report.tables.iter().find(|t| t.table == table) else { continue };
        let good = t.rows + t.quarantined == sent;
        ok &= good;
        println!(
            "   {table:<18} logged    {sent:>9} = bronze {:>9} + quarantined {:>6}   {}",
            t.rows,
            t.quarantined,
            if good { "ok" } else { "MISMATCH" }
        );
    }
    for (table, error) in report.errors() {
        match error.contains(&format!("`{table}`")) {
            true => eprintln!("error: {error}"),
            false => eprintln!("error: table `{table}`: {error}"),
        }
        ok = false;
    }

    println!("4. gold, read back with SQL (ingesta query):");
    for sql in [
        "SELECT farm_id, hour, readings, round(temp_min, 1) AS temp_min, round(temp_avg, 2) AS temp_avg, \
         round(temp_max, 1) AS temp_max FROM temperature_hourly ORDER BY farm_id, hour LIMIT 5",
        "SELECT day, count(*) AS products, sum(units) AS units, sum(revenue) AS revenue \
         FROM sales_daily GROUP BY day ORDER BY day LIMIT 5",
        "SELECT store_id, sum(orders) AS orders, sum(net_units) AS net_units, sum(net_amount) AS net_amount \
         FROM sales_store_hour GROUP BY store_id ORDER BY store_id",
    ] {
        let ctx = ingesta_runtime::query::session(&pipeline).await?;
        let batches = ctx.sql(sql).await?.collect().await?;
        println!("{}", ingesta_lake::datafusion::arrow::util::pretty::pretty_format_batches(&batches)?);
    }

    println!("\nThe lake is at {}", lake_abs.display());
    println!(
        "  tables (bronze, silver, gold): {}/<table>/   quarantine: {}/_quarantine/<table>/",
        lake_abs.display(),
        lake_abs.display()
    );
    println!(
        "  any Delta reader opens them, e.g. python -c \"import deltalake; print(deltalake.DeltaTable('{}/iot_bronze').to_pyarrow_table().num_rows)\"",
        lake_abs.display()
    );
    let exe = std::env::current_exe().map_or("ingesta".into(), |p| p.display().to_string());
    let env = format!("INGESTA_LANDING={} INGESTA_LAKE={}", landing_abs.display(), lake_abs.display());
    println!("  status:  {env} {exe} status examples/farm-iot/ingesta.yaml");
    println!(
        "  query:   {env} {exe} query examples/farm-iot/ingesta.yaml \"SELECT * FROM temperature_hourly LIMIT 10\""
    );
    if !ok {
        return Ok(ExitCode::from(2));
    }
    if !a.no_serve {
        dashboard(&pipeline, &a.addr).await?;
    }
    Ok(ExitCode::SUCCESS)
}

/// Serves the dashboard over the demo's lake until Ctrl-C, with a token made
/// for this run (the environment's INGESTA_READ_TOKEN when set).
async fn dashboard(pipeline: &ingesta_config::Pipeline, addr: &str) -> anyhow::Result<()> {
    let token = match std::env::var("INGESTA_READ_TOKEN") {
        Ok(t) if !t.trim().is_empty() => t,
        _ => uuid::Uuid::new_v4().simple().to_string(),
    };
    println!("\n5. the dashboard: http://{addr}/#token={token}");
    println!(
        "   reports: curl -H 'Authorization: Bearer {token}' http://{addr}/api/reports/farm_temperature?farm=farm-001"
    );
    println!("   (Ctrl-C stops; `ingesta demo --no-serve` ends after the summary)");
    let stop = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    ingesta_runtime::serving::serve(pipeline, addr, Some(token), stop).await?;
    Ok(())
}

fn reconcile(p: &ingesta_config::Pipeline, report: &ingesta_runtime::RunReport, manifest: &Manifest) -> bool {
    let mut ok = true;
    for t in &report.tables {
        let Some(Source::Landing(src)) = p.tables.get(&t.table).and_then(|c| p.sources.get(&c.input)) else {
            continue;
        };
        let dataset = Path::new(&src.path).file_name().map(|s| s.to_string_lossy().to_string()).unwrap_or_default();
        let Some(m) = manifest.datasets.get(&dataset) else { continue };
        let good = t.rows == m.valid_rows && t.quarantined == m.malformed;
        ok &= good;
        println!(
            "   {:<18} generated {:>9} = bronze {:>9} + quarantined {:>6}   {}",
            t.table,
            m.rows,
            t.rows,
            t.quarantined,
            if good { "ok" } else { "MISMATCH" }
        );
    }
    ok
}

fn absolute(p: &Path) -> anyhow::Result<PathBuf> {
    std::fs::create_dir_all(p)?;
    Ok(std::fs::canonicalize(p)?)
}
