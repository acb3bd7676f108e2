//! The planning itself: pure functions, no host calls, tested natively.

use swarm_guest_sdk::planner::{PlanRequest, PlannedTask, TaskResult, TaskStatus, count_results};

/// The subject template used when the request's is empty.
pub const DEFAULT_SUBJECT: &str = "part {n}: {first} .. {last}";

/// Splits `items` into at most `groups` contiguous, non-empty chunks whose
/// lengths differ by at most one (the longer chunks come first). Fewer items
/// than groups gives one chunk per item; no items (or no groups) gives none.
pub fn split<T>(items: &[T], groups: usize) -> Vec<&[T]> {
    let count = groups.min(items.len());
    if count == 0 {
        return Vec::new();
    }
    let (base, extra) = (items.len() / count, items.len() % count);
    let mut chunks = Vec::with_capacity(count);
    let mut rest = items;
    for i in 0..count {
        let (chunk, tail) = rest.split_at(base + usize::from(i < extra));
        chunks.push(chunk);
        rest = tail;
    }
    chunks
}

/// Fills `{n}`, `{first}` and `{last}` in `template` in one pass, so a file
/// name that itself contains `{n}` is left alone. Other braces are kept.
pub fn fill_subject(template: &str, n: usize, first: &str, last: &str) -> String {
    let mut out = String::with_capacity(template.len() + first.len() + last.len());
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open..];
        let (value, len) = if after.starts_with("{n}") {
            (n.to_string(), 3)
        } else if after.starts_with("{first}") {
            (first.to_string(), 7)
        } else if after.starts_with("{last}") {
            (last.to_string(), 6)
        } else {
            ("{".to_string(), 1)
        };
        out.push_str(&value);
        rest = &after[len..];
    }
    out.push_str(rest);
    out
}

/// The plan for `req`: its files (sorted, duplicates dropped) split by
/// [`split`] into tasks `p1..pN`.
pub fn plan(req: &PlanRequest) -> Result<Vec<PlannedTask>, String> {
    if req.groups == 0 {
        return Err("groups must be at least 1 (got 0)".into());
    }
    let mut files = req.files.clone();
    files.sort();
    files.dedup();
    let template = if req.subject.trim().is_empty() { DEFAULT_SUBJECT } else { req.subject.as_str() };
    let groups = usize::try_from(req.groups).unwrap_or(usize::MAX);
    let tasks = split(&files, groups)
        .into_iter()
        .enumerate()
        .map(|(i, chunk)| {
            let n = i + 1;
            // `split` never yields an empty chunk.
            let (first, last) = (&chunk[0], &chunk[chunk.len() - 1]);
            let mut task = PlannedTask::new(format!("p{n}"), fill_subject(template, n, first, last), chunk.to_vec());
            task.description = match chunk.len() {
                1 => format!("1 file of team {}: {first}.", req.team),
                len => format!("{len} files of team {}, from {first} to {last}.", req.team),
            };
            task
        })
        .collect();
    Ok(tasks)
}

/// `N tasks: X completed, Y failed, Z findings.`, then one line per failed
/// task: `- p2 failed: <reason>` (the reason on one line).
pub fn synthesize(results: &[TaskResult]) -> String {
    let mut text = format!("{}.", count_results(results));
    for r in results.iter().filter(|r| r.status == TaskStatus::Failed) {
        let reason = r.summary.split_whitespace().collect::<Vec<_>>().join(" ");
        let reason = if reason.is_empty() { "no reason given".to_string() } else { reason };
        text.push_str(&format!("\n- {} failed: {reason}", r.id));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    fn files(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("src/f{i:03}.rs")).collect()
    }

    fn request(files: Vec<String>, groups: u32, subject: &str) -> PlanRequest {
        PlanRequest { team: "t".into(), files, groups, subject: subject.into(), teammates: vec!["scan".into()] }
    }

    #[test]
    fn chunks_are_balanced_contiguous_and_cover_everything() {
        for n in 0..40 {
            let items: Vec<usize> = (0..n).collect();
            for groups in 1..12 {
                let chunks = split(&items, groups);
                assert_eq!(chunks.len(), groups.min(n), "n={n} groups={groups}");
                assert!(chunks.iter().all(|c| !c.is_empty()));
                let lens: Vec<usize> = chunks.iter().map(|c| c.len()).collect();
                let (min, max) = (lens.iter().min(), lens.iter().max());
                assert!(max.zip(min).is_none_or(|(max, min)| max - min <= 1), "{lens:?}");
                assert_eq!(chunks.concat(), items, "contiguous, in order, each item once");
            }
        }
    }

    #[test]
    fn longer_chunks_come_first() {
        let items: Vec<u8> = (0..10).collect();
        let lens: Vec<usize> = split(&items, 4).iter().map(|c| c.len()).collect();
        assert_eq!(lens, [3, 3, 2, 2]);
    }

    #[test]
    fn no_groups_or_no_items_gives_no_chunks() {
        assert!(split(&[1, 2, 3], 0).is_empty());
        assert!(split::<u8>(&[], 3).is_empty());
    }

    #[test]
    fn placeholders_are_filled_once() {
        assert_eq!(fill_subject("scan {n}: {first}..{last}", 2, "a.rs", "c.rs"), "scan 2: a.rs..c.rs");
        assert_eq!(fill_subject("{n}{n}", 7, "", ""), "77");
        // A file name holding a placeholder is not expanded again.
        assert_eq!(fill_subject("{first}", 1, "{last}.rs", "z"), "{last}.rs");
        assert_eq!(fill_subject("{other} {", 1, "a", "b"), "{other} {");
        assert_eq!(fill_subject("héllo {n}", 3, "a", "b"), "héllo 3");
    }

    #[test]
    fn plan_makes_disjoint_tasks_p1_to_pn() {
        let req = request(files(10), 3, "audit {n} ({first} to {last})");
        let tasks = plan(&req).unwrap();
        let ids: Vec<&str> = tasks.iter().map(|t| t.id.as_str()).collect();
        assert_eq!(ids, ["p1", "p2", "p3"]);
        assert_eq!(tasks[0].subject, "audit 1 (src/f000.rs to src/f003.rs)");
        assert_eq!(tasks[2].subject, "audit 3 (src/f007.rs to src/f009.rs)");
        let mut seen = BTreeSet::new();
        for t in &tasks {
            assert_eq!(t.owner, None);
            assert!(t.blocked_by.is_empty());
            for f in &t.owns {
                assert!(seen.insert(f.clone()), "{f} owned twice");
            }
        }
        assert_eq!(seen.into_iter().collect::<Vec<_>>(), files(10));
    }

    #[test]
    fn plan_sorts_and_dedups_its_input() {
        let req = request(vec!["b".into(), "a".into(), "b".into(), "c".into()], 2, "{first}");
        let tasks = plan(&req).unwrap();
        assert_eq!(tasks[0].owns, ["a", "b"]);
        assert_eq!(tasks[1].owns, ["c"]);
    }

    #[test]
    fn fewer_files_than_groups_gives_fewer_tasks() {
        let tasks = plan(&request(files(2), 5, "")).unwrap();
        assert_eq!(tasks.len(), 2);
        assert_eq!(tasks[1].subject, "part 2: src/f001.rs .. src/f001.rs");
        assert!(plan(&request(Vec::new(), 5, "")).unwrap().is_empty());
    }

    #[test]
    fn zero_groups_is_an_error() {
        let err = plan(&request(files(3), 0, "")).unwrap_err();
        assert!(err.contains("groups"), "{err}");
    }

    #[test]
    fn synthesis_counts_and_lists_failures() {
        let results = [
            TaskResult { id: "p1".into(), status: TaskStatus::Completed, summary: "ok".into(), findings: 4 },
            TaskResult { id: "p2".into(), status: TaskStatus::Failed, summary: "deadline\nhit".into(), findings: 0 },
            TaskResult { id: "p3".into(), status: TaskStatus::Completed, summary: "ok".into(), findings: 1 },
        ];
        assert_eq!(synthesize(&results), "3 tasks: 2 completed, 1 failed, 5 findings.\n- p2 failed: deadline hit");
        assert_eq!(synthesize(&[]), "0 tasks: 0 completed, 0 failed, 0 findings.");
    }
}
