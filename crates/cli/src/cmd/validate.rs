//! `ingesta validate FILE`

use std::path::Path;
use std::process::ExitCode;

pub async fn run(path: &Path) -> anyhow::Result<ExitCode> {
    let result = match ingesta_config::load_file(path) {
        Ok(mut p) => {
            if let Err(e) = ingesta_runtime::discover(&mut p).await {
                eprintln!("warning: replicas not discovered: {}", e.message);
            }
            super::plan(p).await
        }
        Err(d) => Err(d),
    };
    match result {
        Ok(p) => {
            println!(
                "ok: pipeline `{}`: {} source{}, {} table{}, lake at {}",
                p.pipeline,
                p.sources.len(),
                if p.sources.len() == 1 { "" } else { "s" },
                p.tables.len(),
                if p.tables.len() == 1 { "" } else { "s" },
                p.lake.root
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(d) => {
            eprintln!("{d}");
            eprintln!("{} mistake{} in {}", d.0.len(), if d.0.len() == 1 { "" } else { "s" }, path.display());
            Ok(ExitCode::from(1))
        }
    }
}
