//! The report as JSON: the model serialized as it is (versioned by
//! [`REPORT_VERSION`](super::REPORT_VERSION)).

use super::RunReport;

impl RunReport {
    /// The report as pretty JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("reports always serialize")
    }
}
