//! `md-links`: a teammate that checks the relative links and images in the
//! Markdown files its task owns. It only reads; it never rewrites a file.
//!
//! For every inline link `[text](target)`, image `![alt](target)` and
//! reference definition `[label]: target` outside code, a relative target
//! must name an existing file or directory (relative to the Markdown file,
//! or to the workspace root when it starts with `/`, as on GitHub), and a
//! `#anchor` must match a heading (GitHub slug) or an `id`/`name` attribute
//! of the target Markdown file, or of the same file for a bare `#anchor`.
//! URLs with a scheme (`https:`, `mailto:`) are not checked.
//!
//! Rules (ids are stable): `md-links/broken-link`, `md-links/broken-image`,
//! `md-links/broken-anchor`, `md-links/outside-root`.
//!
//! **Needs `read = "root"`** in the team file: link targets are usually
//! files the task does not own. Under `read = "owned"` the first target the
//! sandbox hides fails the task with an error saying so.
//!
//! Options, in the task's `description` (see `swarm_guest_sdk::options`):
//! `no-anchors` skips the anchor checks. Owned files that are not Markdown
//! (`.md`, `.markdown`) are skipped and counted in the summary.

pub mod links;

use std::collections::{HashMap, HashSet};

use links::rule;
use swarm_guest_sdk::options::Options;
use swarm_guest_sdk::prelude::*;

/// The teammate: stateless, every task checks its own files.
#[derive(Default)]
pub struct MdLinks;

/// What the task learnt about the tree: directory listings and anchors of
/// Markdown files, each fetched once.
#[derive(Default)]
struct Tree {
    dirs: HashMap<String, Option<HashSet<String>>>,
    anchors: HashMap<String, Option<HashSet<String>>>,
}

const NEEDS_ROOT: &str = "md-links needs `read = \"root\"` in the team file to see link targets";

impl Tree {
    /// Whether `path` (root-relative, `""` = the root) exists. `Err` if the
    /// sandbox hides it (read = "owned").
    fn exists(&mut self, ctx: &Context, path: &str) -> Result<bool, String> {
        if path.is_empty() {
            return Ok(true);
        }
        let (dir, _) = path.rsplit_once('/').unwrap_or(("", path));
        if !self.dirs.contains_key(dir) {
            let listed = match ctx.list(dir) {
                Ok(entries) => Some(entries.into_iter().map(|e| e.path).collect()),
                Err(FsError::Denied(why)) => return Err(format!("{NEEDS_ROOT} ({why})")),
                // Not there, or not a directory (`README.md/x`): nothing
                // under it exists.
                Err(_) => None,
            };
            self.dirs.insert(dir.to_string(), listed);
        }
        match self.dirs.get(dir) {
            Some(Some(names)) if names.contains(path) => Ok(true),
            Some(None) => Ok(false),
            // Not listed: under read = "owned" the listing hides what the
            // task does not own, so ask for the file itself to tell.
            _ => match ctx.read(path) {
                Ok(_) => Ok(true),
                Err(FsError::NotFound(_)) => Ok(false),
                Err(FsError::Denied(why)) => Err(format!("{NEEDS_ROOT} ({why})")),
                Err(_) => Ok(true),
            },
        }
    }

    /// The anchors of the Markdown file `path`, or `None` if it is not
    /// readable text.
    fn anchors(&mut self, ctx: &Context, path: &str) -> Result<Option<&HashSet<String>>, String> {
        if !self.anchors.contains_key(path) {
            let set = match ctx.read(path) {
                Ok(bytes) => String::from_utf8(bytes).ok().map(|text| links::anchors(&text)),
                Err(FsError::Denied(why)) => return Err(format!("{NEEDS_ROOT} ({why})")),
                Err(_) => None,
            };
            self.anchors.insert(path.to_string(), set);
        }
        Ok(self.anchors.get(path).and_then(Option::as_ref))
    }
}

fn is_markdown(path: &str) -> bool {
    let lower = path.to_ascii_lowercase();
    lower.ends_with(".md") || lower.ends_with(".markdown")
}

impl Teammate for MdLinks {
    fn on_task(&mut self, ctx: &mut Context, task: &Task) -> Result<Report, String> {
        let opts = Options::parse(&task.description, &["no-anchors"])?;
        let check_anchors = !opts.flag("no-anchors");
        let files = &task.owned_files;
        let total = u32::try_from(files.len()).unwrap_or(u32::MAX);
        ctx.progress(0, total);

        let mut tree = Tree::default();
        let mut findings = Vec::new();
        let (mut checked, mut skipped, mut link_count) = (0, 0, 0);
        for (i, file) in files.iter().enumerate() {
            ctx.progress(u32::try_from(i).unwrap_or(u32::MAX), total);
            if !is_markdown(file) {
                skipped += 1;
                continue;
            }
            let text = match ctx.read(file).map(String::from_utf8) {
                Ok(Ok(text)) => text,
                Ok(Err(_)) => {
                    skipped += 1;
                    continue;
                }
                Err(e) => {
                    findings.push(Finding::for_file(file, "unreadable", e.describe()));
                    continue;
                }
            };
            checked += 1;
            let own_anchors = links::anchors(&text);
            for link in links::extract(&text).into_iter().filter(|l| !links::is_external(&l.target)) {
                link_count += 1;
                let at = |rule: &str, message: String| Finding::new(file, link.line, rule, message);
                let target = match links::resolve(file, &link.target) {
                    Ok(t) => t,
                    Err(why) => {
                        findings.push(at(rule::OUTSIDE_ROOT, why));
                        continue;
                    }
                };
                let anchors = match &target.path {
                    None => Some(&own_anchors),
                    Some(path) => {
                        if !tree.exists(ctx, path)? {
                            let (rule, what) =
                                if link.image { (rule::BROKEN_IMAGE, "image") } else { (rule::BROKEN_LINK, "link") };
                            findings.push(at(rule, format!("{what} target `{}` does not exist ({path})", link.target)));
                            continue;
                        }
                        if check_anchors && target.anchor.is_some() && is_markdown(path) {
                            tree.anchors(ctx, path)?
                        } else {
                            None
                        }
                    }
                };
                if let (true, Some(anchor), Some(defined)) = (check_anchors, &target.anchor, anchors)
                    && !anchor.is_empty()
                    && !defined.contains(anchor)
                {
                    let whose = target.path.as_deref().unwrap_or("this file");
                    findings.push(at(rule::BROKEN_ANCHOR, format!("no heading or id `#{anchor}` in {whose}")));
                }
            }
        }
        ctx.progress(total, total);

        let mut summary = format!(
            "{} broken of {link_count} relative link(s) in {checked} Markdown file(s)",
            findings.iter().filter(|f| f.rule.starts_with("md-links/")).count()
        );
        if skipped > 0 {
            summary += &format!(", {skipped} other file(s) skipped");
        }
        Ok(Report::with_findings(summary, findings))
    }
}

export_teammate!(MdLinks);
// Each rule's description and help for the report (`rules.toml`).
swarm_guest_sdk::describe_rules!();
