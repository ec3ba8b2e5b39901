//! Named reports: SQL over the pipeline's tables with typed parameters,
//! served at `GET /api/reports/<name>` and drawn on the dashboard.
//!
//! ```yaml
//! reports:
//!   temperature_by_farm:
//!     description: Hourly temperature of one farm
//!     sql: SELECT hour, temp_max FROM temperature_hourly WHERE farm_id = $farm ORDER BY hour
//!     params:
//!       - {name: farm, type: string, default: farm-01}
//!     chart: {type: line, x: hour, y: [temp_max]}
//! ```

use serde::Deserialize;

/// A report: one read-only query, its parameters bound (never spliced) as
/// `$name` placeholders.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Report {
    #[serde(default)]
    pub description: String,
    pub sql: String,
    /// In the order the dashboard's form and the API document show them.
    #[serde(default)]
    pub params: Vec<Param>,
    /// The result's columns, when declared: `validate` checks the query gives them.
    #[serde(default)]
    pub columns: Vec<String>,
    /// How the dashboard draws it (a table when absent).
    #[serde(default)]
    pub chart: Option<Chart>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Param {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: ParamType,
    #[serde(default)]
    pub description: String,
    /// Without a default, a required parameter must be given; an optional
    /// one is NULL when absent (write `$p IS NULL OR col = $p`).
    #[serde(default)]
    pub required: bool,
    /// The value when the caller gives none, as the caller would write it.
    #[serde(default)]
    pub default: Option<serde_yaml::Value>,
    /// `type: enum` only: the values accepted.
    #[serde(default)]
    pub values: Vec<String>,
}

impl Param {
    /// The default as text, the way it would come in a query string.
    pub fn default_text(&self) -> Option<String> {
        self.default.as_ref().map(|v| match v {
            serde_yaml::Value::String(s) => s.clone(),
            other => serde_yaml::to_string(other).unwrap_or_default().trim().to_string(),
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ParamType {
    String,
    Int,
    Float,
    Bool,
    Date,
    Timestamp,
    Enum,
}

impl ParamType {
    pub fn as_str(self) -> &'static str {
        match self {
            ParamType::String => "string",
            ParamType::Int => "int",
            ParamType::Float => "float",
            ParamType::Bool => "bool",
            ParamType::Date => "date",
            ParamType::Timestamp => "timestamp",
            ParamType::Enum => "enum",
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Chart {
    #[serde(rename = "type")]
    pub kind: ChartType,
    /// The column along the x axis (time or category).
    pub x: String,
    /// The columns drawn as series.
    pub y: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChartType {
    Line,
    Bar,
    Table,
}

impl ChartType {
    pub fn as_str(self) -> &'static str {
        match self {
            ChartType::Line => "line",
            ChartType::Bar => "bar",
            ChartType::Table => "table",
        }
    }
}

/// A parameter's value, read from text (a query string, a default).
#[derive(Debug, Clone, PartialEq)]
pub enum ParamValue {
    Null,
    Text(String),
    Int(i64),
    Float(f64),
    Bool(bool),
    Date(chrono::NaiveDate),
    /// Microseconds since the epoch, UTC.
    Timestamp(i64),
}

impl Param {
    /// Reads `text` as this parameter's type, or says what is accepted.
    pub fn parse(&self, text: &str) -> Result<ParamValue, String> {
        let t = text.trim();
        let bad = |what: &str| format!("parameter `{}`: `{text}` is not {what}", self.name);
        match self.kind {
            ParamType::String => Ok(ParamValue::Text(text.to_string())),
            ParamType::Enum if self.values.iter().any(|v| v == text) => Ok(ParamValue::Text(text.to_string())),
            ParamType::Enum => Err(bad(&format!("one of: {}", self.values.join(", ")))),
            ParamType::Int => t.parse().map(ParamValue::Int).map_err(|_| bad("an integer")),
            ParamType::Float => t.parse().map(ParamValue::Float).map_err(|_| bad("a number")),
            ParamType::Bool => match t {
                "true" | "1" => Ok(ParamValue::Bool(true)),
                "false" | "0" => Ok(ParamValue::Bool(false)),
                _ => Err(bad("true or false")),
            },
            ParamType::Date => chrono::NaiveDate::parse_from_str(t, "%Y-%m-%d")
                .map(ParamValue::Date)
                .map_err(|_| bad("a date (YYYY-MM-DD)")),
            ParamType::Timestamp => timestamp(t)
                .map(ParamValue::Timestamp)
                .ok_or_else(|| bad("a timestamp (2026-11-01T08:00:00Z, 2026-11-01 08:00:00 in UTC, or 2026-11-01)")),
        }
    }

    /// The value when the caller gives `given`: it parsed, else the default,
    /// else NULL for an optional parameter.
    pub fn value(&self, given: Option<&str>) -> Result<ParamValue, String> {
        match (given, self.default_text()) {
            (Some(g), _) => self.parse(g),
            (None, Some(d)) => self.parse(&d),
            (None, None) if self.required => Err(format!("parameter `{}` is required", self.name)),
            (None, None) => Ok(ParamValue::Null),
        }
    }
}

fn timestamp(t: &str) -> Option<i64> {
    if let Ok(at) = chrono::DateTime::parse_from_rfc3339(t) {
        return Some(at.timestamp_micros());
    }
    let naive = chrono::NaiveDateTime::parse_from_str(t, "%Y-%m-%d %H:%M:%S")
        .or_else(|_| chrono::NaiveDateTime::parse_from_str(t, "%Y-%m-%dT%H:%M:%S"))
        .or_else(|_| chrono::NaiveDateTime::parse_from_str(t, "%Y-%m-%dT%H:%M"))
        .ok()
        .or_else(|| chrono::NaiveDate::parse_from_str(t, "%Y-%m-%d").ok().and_then(|d| d.and_hms_opt(0, 0, 0)))?;
    Some(naive.and_utc().timestamp_micros())
}
