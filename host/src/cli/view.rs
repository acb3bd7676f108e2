//! The live team view of `swarm-host run`: one progress bar per teammate
//! and one for the whole task list when stderr is a terminal; nothing extra
//! otherwise (the plain log lines already say what happens).
//!
//! With `[models]`, each teammate's bar and the team's also show the model
//! usage so far (calls, tokens in/out, estimated cost), and a teammate's bar
//! its task's current model turn, the last tool its model called and the
//! tokens its budget has left.
//!
//! Everything shown that a teammate chose (ids, task ids) is sanitised.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::sanitize;
use crate::tasks::Status;
use crate::team::{Liveness, Team};

/// Progress bars for a team, redrawn from the roster and task list.
pub struct TeamView {
    multi: MultiProgress,
    overall: ProgressBar,
    bars: Mutex<HashMap<String, ProgressBar>>,
    models: OnceLock<Arc<crate::llm::Models>>,
}

fn usage_text(u: &crate::llm::UsageTotals) -> String {
    format!(" · {} calls {}/{} tok ~${:.4}", u.calls, u.input_tokens, u.output_tokens, u.usd)
}

/// An agent's turn, last tool and tokens left, e.g. ` · turn 3 · read_file ·
/// 1200 tok left` (empty before its first model call).
fn agent_text(models: &crate::llm::Models, teammate: &str, task: &str) -> String {
    let Some((turns, tool)) = models.turn_of(task) else { return String::new() };
    let tool = tool.map(|t| format!(" · {}", sanitize::line(&t))).unwrap_or_default();
    let left = models.budget_left(teammate).tokens.map(|n| format!(" · {n} tok left")).unwrap_or_default();
    format!(" · turn {turns}{tool}{left}")
}

impl std::fmt::Debug for TeamView {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TeamView").finish_non_exhaustive()
    }
}

fn style(template: &str) -> ProgressStyle {
    ProgressStyle::with_template(template).unwrap_or_else(|_| ProgressStyle::default_bar()).progress_chars("=> ")
}

impl TeamView {
    /// A view drawn on stderr (hidden if stderr is not a terminal).
    pub fn new(tasks: usize) -> Self {
        let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr());
        let overall = multi.add(ProgressBar::new(tasks as u64));
        overall.set_style(style("{prefix:>16} [{bar:30}] {pos}/{len} tasks {msg}"));
        overall.set_prefix("team");
        Self { multi, overall, bars: Mutex::new(HashMap::new()), models: OnceLock::new() }
    }

    /// Shows the model usage of `models` from now on (set once).
    pub fn show_usage(&self, models: Arc<crate::llm::Models>) {
        let _ = self.models.set(models);
    }

    /// Prints a line above the bars without tearing them.
    pub fn println(&self, line: &str) {
        let _ = self.multi.println(line);
    }

    /// Redraws from the team's current roster and task list.
    pub fn update(&self, team: &Team) {
        let tasks = team.tasks.snapshot();
        let done = tasks.iter().filter(|t| matches!(t.status, Status::Completed | Status::Failed)).count();
        let failed = tasks.iter().filter(|t| t.status == Status::Failed).count();
        self.overall.set_position(done as u64);
        let usage = self.models.get().map(|m| m.usage()).unwrap_or_default();
        let team_usage = if usage.is_empty() { String::new() } else { usage_text(&usage.total) };
        let failed = if failed > 0 { format!("({failed} failed)") } else { String::new() };
        self.overall.set_message(format!("{failed}{team_usage}"));
        let mut bars = self.bars.lock().unwrap_or_else(|e| e.into_inner());
        for m in team.roster.snapshot() {
            let bar = bars.entry(m.id.clone()).or_insert_with(|| {
                let bar = self.multi.add(ProgressBar::new(1));
                bar.set_style(style("{prefix:>16} [{bar:30}] {pos}/{len} {msg}"));
                bar.set_prefix(sanitize::line(&m.id));
                bar
            });
            let (pos, len) = m.progress.unwrap_or((0, 1));
            bar.set_length(u64::from(len.max(1)));
            bar.set_position(u64::from(pos));
            let state = format!("{:?}", m.state).to_lowercase();
            let task = m.task.as_deref().map(|t| format!(" {}", sanitize::line(t))).unwrap_or_default();
            let used = usage.teammates.get(&m.id).map(usage_text).unwrap_or_default();
            let agent = match (self.models.get(), m.task.as_deref()) {
                (Some(models), Some(task)) => agent_text(models, &m.id, task),
                _ => String::new(),
            };
            bar.set_message(format!("{state}{task}{used}{agent}"));
            if matches!(m.state, Liveness::Exited | Liveness::Dead) && !bar.is_finished() {
                bar.set_position(bar.length().unwrap_or(1));
                bar.finish_with_message(state);
            }
        }
    }

    /// Leaves the final bars on screen.
    pub fn finish(&self) {
        self.overall.finish();
        for bar in self.bars.lock().unwrap_or_else(|e| e.into_inner()).values() {
            if !bar.is_finished() {
                bar.finish();
            }
        }
    }
}
