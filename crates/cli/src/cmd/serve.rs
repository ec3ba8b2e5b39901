//! `ingesta serve FILE [--addr ADDR]`: the dashboard, reports, SQL and
//! metrics over the pipeline's tables, without ingesting (a reader beside a
//! `run --watch`, or over a lake another process writes).

use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct Args {
    pipeline: PathBuf,
    /// Where to listen; by default the pipeline's `serve.listen` (127.0.0.1:9464).
    #[arg(long)]
    addr: Option<String>,
}

pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let p = super::load(&args.pipeline).await?;
    let addr = args.addr.or_else(|| p.serve.as_ref().map(|s| s.listen.clone()));
    let addr = addr.unwrap_or_else(|| ingesta_config::Serve::default().listen);
    let stop = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    println!("serving {} at http://{addr}/ (Ctrl-C stops)", p.pipeline);
    ingesta_runtime::serving::serve(&p, &addr, None, stop).await?;
    Ok(ExitCode::SUCCESS)
}
