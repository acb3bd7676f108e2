//! The control plane: team file → validated plan → spawned team → routed
//! events → synthesized report. Teammates only execute; everything that
//! decides lives here.

pub mod config;
pub mod events;
pub mod plan;
pub mod report;
pub mod run;

pub use config::{ConfigError, Loaded};
pub use plan::{Plan, PlanError};
pub use report::RunReport;
pub use run::{Observer, Restored, RunOptions, StartError, run_in_process};
