//! Plain data at the bottom of the layers: what a teammate found, what it
//! tells the coordinator, and which sandbox limit stopped it. No behaviour
//! beyond formatting; every other module may use these, and these use no
//! other module of the crate (see `host/tests/layering.rs`).

mod finding;
mod limit;
mod message;
mod scale_out;

pub use finding::{Finding, Severity};
pub use limit::LimitKind;
pub use message::TeammateMessage;
pub use scale_out::ScaleOut;
