//! The process's metrics recorder: `metrics` macros anywhere in the process
//! (the runtime's `events`) record into it; `/metrics` renders it in the
//! Prometheus text format.

use std::sync::OnceLock;

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

/// The installed recorder.
#[derive(Clone)]
pub struct Metrics(PrometheusHandle);

static INSTALLED: OnceLock<Result<PrometheusHandle, String>> = OnceLock::new();

impl Metrics {
    /// Installs the process-wide recorder (once; later calls share it).
    pub fn install() -> Result<Metrics, String> {
        let handle = INSTALLED.get_or_init(|| {
            PrometheusBuilder::new().install_recorder().map_err(|e| format!("cannot install the metrics recorder: {e}"))
        });
        handle.clone().map(Metrics)
    }

    /// Every metric now, in the Prometheus text format.
    pub fn render(&self) -> String {
        self.0.run_upkeep();
        self.0.render()
    }
}
