//! The `ingesta` binary: parses the command line and hands over to a command.

mod cmd;

/// mimalloc: the readers allocate and free large buffers per chunk; the system
/// allocator returns them to the kernel each time and pays page faults. Built
/// without transparent huge pages (`no_thp`): a first touch then zeroes 4 KiB,
/// not 2 MiB, which cuts a short run's system time and bronze's peak RSS
/// (bench/README.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = cmd::Cli::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_env("INGESTA_LOG").unwrap_or_else(|_| {
            "warn,deltalake_core::writer::stats=error,deltalake_core::operations::merge=error".into()
        }))
        .init();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("tokio runtime");
    match runtime.block_on(cmd::run(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}
