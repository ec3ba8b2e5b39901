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

#[cfg(test)]
mod tests {
    /// The Grafana dashboard in the repository reads only metrics the process records.
    #[test]
    fn the_grafana_dashboard_uses_our_metric_names() {
        let dash: serde_json::Value =
            serde_json::from_str(include_str!("../../../docs/grafana/ingesta.json")).expect("valid JSON");
        let known = [
            "ingesta_rows_committed_total",
            "ingesta_rows_quarantined_total",
            "ingesta_last_commit_timestamp_seconds",
            "ingesta_commit_seconds",
            "ingesta_pass_seconds",
            "ingesta_errors_total",
            "ingesta_table_stopped",
            "ingesta_collector_requests_total",
            "ingesta_collector_pending_bytes",
            "ingesta_kafka_lag_messages",
            "ingesta_kafka_lag_seconds",
        ];
        for panel in dash["panels"].as_array().expect("panels") {
            let expr = panel["targets"][0]["expr"].as_str().expect("an expression");
            assert!(known.iter().any(|m| expr.contains(m)), "{expr}");
        }
    }
}
