//! The NATS names of one team: every stream, subject, bucket and key is
//! derived from the team name here, so two teams on one server never meet.
//! Names that would change a subject's meaning (`.`, `*`, `>`, spaces) are
//! refused, never escaped silently.

use super::ClusterError;

/// The durable pull consumer every worker of a team shares.
pub const CONSUMER: &str = "workers";

/// The names of team `team`'s JetStream objects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Names {
    team: String,
}

/// `name` if it is safe as one subject token and key part.
pub fn token<'a>(what: &'static str, name: &'a str) -> Result<&'a str, ClusterError> {
    let ok = !name.is_empty()
        && name.len() <= 128
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok { Ok(name) } else { Err(ClusterError::Name { what, name: name.to_string() }) }
}

impl Names {
    /// The names of team `team`.
    pub fn new(team: &str) -> Result<Self, ClusterError> {
        Ok(Self { team: token("team", team)?.to_string() })
    }

    /// The team.
    pub fn team(&self) -> &str {
        &self.team
    }

    /// The work-queue stream of task assignments.
    pub fn tasks_stream(&self) -> String {
        format!("SWARM_TASKS_{}", self.team)
    }

    /// Subjects of the work-queue stream.
    pub fn tasks_subjects(&self) -> String {
        format!("swarm.{}.task.>", self.team)
    }

    /// The subject task `task` of group `group` is published on.
    pub fn task_subject(&self, group: &str, task: &str) -> String {
        format!("swarm.{}.task.{group}.{task}", self.team)
    }

    /// The stream dead letters are copied to.
    pub fn dead_stream(&self) -> String {
        format!("SWARM_DEAD_{}", self.team)
    }

    /// The subject of task `task`'s dead letter.
    pub fn dead_subject(&self, task: &str) -> String {
        format!("swarm.{}.dead.{task}", self.team)
    }

    /// The server's advisory when a task message ran out of deliveries.
    pub fn max_deliveries_advisory(&self) -> String {
        format!("$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.{}.{CONSUMER}", self.tasks_stream())
    }

    /// The key-value bucket of the team's state.
    pub fn bucket(&self) -> String {
        format!("swarm_{}", self.team)
    }

    /// The object store of plugins and outputs.
    pub fn blobs(&self) -> String {
        format!("swarm_blobs_{}", self.team)
    }

    /// Teammate `member`'s mailbox subject.
    pub fn mailbox(&self, member: &str) -> String {
        format!("swarm.{}.mbox.{member}", self.team)
    }

    /// The subject a remote teammate `member` sends its host calls to
    /// (request/reply, answered by the coordinator).
    pub fn calls(&self, member: &str) -> String {
        format!("swarm.{}.call.{member}", self.team)
    }

    /// The subjects of every teammate's host calls.
    pub fn all_calls(&self) -> String {
        format!("swarm.{}.call.*", self.team)
    }

    /// The subject a remote teammate `member`'s events go to (one-way).
    pub fn events(&self, member: &str) -> String {
        format!("swarm.{}.evt.msg.{member}", self.team)
    }

    /// The subjects of every teammate's events.
    pub fn all_events(&self) -> String {
        format!("swarm.{}.evt.msg.*", self.team)
    }

    /// The subject workers count what they do on (`executed`, `fenced`).
    pub fn worker_events(&self, kind: &str) -> String {
        format!("swarm.{}.evt.worker.{kind}", self.team)
    }

    /// The key of task `task`'s record.
    pub fn task_key(task: &str) -> String {
        format!("task.{task}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_that_would_change_a_subject_are_refused() {
        for bad in ["", "a.b", "a*", "a>", "a b", "ä"] {
            let err = Names::new(bad).unwrap_err();
            assert!(err.to_string().contains("team"), "{err}");
        }
        let names = Names::new("ci-audit_2").unwrap();
        assert_eq!(names.task_subject("scan", "t1"), "swarm.ci-audit_2.task.scan.t1");
        assert_eq!(names.mailbox("lead"), "swarm.ci-audit_2.mbox.lead");
        assert_eq!(names.calls("scan-1"), "swarm.ci-audit_2.call.scan-1");
        assert_eq!(names.events("scan-1"), "swarm.ci-audit_2.evt.msg.scan-1");
        assert_eq!(
            names.max_deliveries_advisory(),
            "$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.SWARM_TASKS_ci-audit_2.workers"
        );
    }
}
