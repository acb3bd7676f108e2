//! The control plane: team file → validated plan → spawned team → routed
//! events → synthesized report. Teammates only execute; everything that
//! decides lives here.

pub mod changes;
pub mod config;
pub mod events;
pub mod model_settings;
pub mod plan;
pub mod report;
pub mod run;
pub mod state;
pub mod steer;
pub mod verdict;

pub use config::{ConfigError, Loaded};
pub use plan::{Plan, PlanError};
pub use report::{RunReport, StopCause};
pub use run::{Interrupt, Observer, Restored, RunOptions, StartError, run_in_process};
pub use verdict::{FailOn, Verdict};
