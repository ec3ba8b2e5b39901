//! Pipeline YAML → validated model. Every mistake is reported with the file,
//! line and column, the key path, the bad value and what would be accepted.
//! Values may reference the environment as `${VAR}` or `${VAR:-default}`;
//! secrets read that way are never printed.

mod diagnostics;
mod interpolate;
mod load;
pub mod model;
mod spans;
mod validate;
mod validate_enrich;
mod validate_reports;
mod validate_sources;

pub use diagnostics::{Diagnostic, Diagnostics};
pub use load::{Origin, generated_table, load_file, load_str};
pub use model::*;
pub use validate_reports::placeholders;
