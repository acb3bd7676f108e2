//! How a [`TaskChange`](super::TaskChange)'s report is written in the
//! state journal: each finding as an array `[file, line, rule, message,
//! severity]` instead of an object, since a completion's findings are most
//! of the journal and each is written (and fsynced) before the completion
//! is acknowledged. The field names were about 40% of every finding's
//! bytes (row 6 of docs/BENCHMARKS.md: 13 MB of journal for 114,000
//! findings). Reading accepts both forms, so a journal of format v1
//! (objects) replays too.

use std::sync::Arc;

use serde::ser::SerializeSeq as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::TaskReport;
use crate::model::{Finding, Severity};

/// Serializes the report with array findings.
pub fn serialize<S: Serializer>(report: &Option<Arc<TaskReport>>, s: S) -> Result<S::Ok, S::Error> {
    report.as_deref().map(|r| Compact { summary: &r.summary, findings: Findings(&r.findings) }).serialize(s)
}

/// Reads a report whose findings are arrays or objects.
pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Arc<TaskReport>>, D::Error> {
    let report = Option::<Read>::deserialize(d)?;
    Ok(report.map(|r| {
        let findings = r.findings.into_iter().map(Form::into_finding).collect();
        Arc::new(TaskReport { summary: r.summary, findings })
    }))
}

#[derive(Serialize)]
struct Compact<'a> {
    summary: &'a str,
    findings: Findings<'a>,
}

struct Findings<'a>(&'a [Finding]);

impl Serialize for Findings<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(self.0.len()))?;
        for f in self.0 {
            seq.serialize_element(&(&f.file, f.line, &f.rule, &f.message, f.severity))?;
        }
        seq.end()
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Read {
    summary: String,
    findings: Vec<Form>,
}

/// A finding as written by format v2 (an array) or v1 (an object).
#[derive(Deserialize)]
#[serde(untagged)]
enum Form {
    Array(String, Option<u32>, String, String, Severity),
    Object(Finding),
}

impl Form {
    fn into_finding(self) -> Finding {
        match self {
            Form::Array(file, line, rule, message, severity) => Finding { file, line, rule, message, severity },
            Form::Object(f) => f,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Serialize, Deserialize, Debug, PartialEq)]
    struct Holder {
        #[serde(with = "super")]
        report: Option<Arc<TaskReport>>,
    }

    fn report() -> Holder {
        let f = |line, severity| Finding {
            file: "src/a \"b\".rs".into(),
            line,
            rule: "todo".into(),
            message: "// TODO: é\n".into(),
            severity,
        };
        let findings = vec![f(Some(3), Severity::Note), f(None, Severity::Error)];
        Holder { report: Some(Arc::new(TaskReport { summary: "2 markers".into(), findings })) }
    }

    #[test]
    fn findings_are_arrays_and_read_back_whole() {
        let json = serde_json::to_string(&report()).unwrap();
        assert!(json.contains(r#"["src/a \"b\".rs",3,"todo","// TODO: é\n","note"]"#), "{json}");
        assert!(!json.contains("\"rule\""), "no field names per finding: {json}");
        assert_eq!(serde_json::from_str::<Holder>(&json).unwrap(), report());
        let none = Holder { report: None };
        assert_eq!(serde_json::from_str::<Holder>(&serde_json::to_string(&none).unwrap()).unwrap(), none);
    }

    #[test]
    fn a_v1_report_of_objects_reads_the_same() {
        let r = report();
        let v1 = serde_json::json!({ "report": r.report.as_deref() }).to_string();
        assert!(v1.contains("\"rule\":\"todo\""), "{v1}");
        assert_eq!(serde_json::from_str::<Holder>(&v1).unwrap(), r);
    }
}
