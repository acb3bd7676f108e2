//! The `steering-lead` world of `wit/planner.wit` (since 0.1.3): a lead
//! that, for a message to `team-lead` while the team runs, returns actions
//! (answer, broadcast, add a task, reassign a task that has not started)
//! instead of one answer. A component of the older `lead` world still
//! loads: its `on-message` answer becomes the one action.
//!
//! What comes back is bounded here (at most [`MAX_ACTIONS`] actions, each
//! text cut to `message_kib`, the whole at most `report_kib`) and otherwise
//! passed on as written: the coordinator validates every change.

use super::{PlannedTask, Planner, PlannerError, planning};

/// Generated bindings for the `steering-lead` world of `wit/`.
#[allow(missing_docs)]
pub(super) mod bindings {
    wasmtime::component::bindgen!({
        world: "steering-lead",
        path: "../wit",
        imports: { default: async | trappable },
        exports: { default: async },
        // Shared with the lead world, so one host implementation serves both.
        with: {
            "swarm:teammate/llm": crate::sandbox::bindings::swarm::teammate::llm,
            "swarm:teammate/log": super::super::bindings::swarm::teammate::log,
            "swarm:teammate/planning": super::super::bindings::swarm::teammate::planning,
            "swarm:teammate/leading": super::super::lead::bindings::swarm::teammate::leading,
            "swarm:teammate/tree": super::super::lead::bindings::swarm::teammate::tree,
        },
    });
}

use bindings::swarm::teammate::steering;

/// Most actions one `steer` call may return; more is a refusal of the call.
pub const MAX_ACTIONS: usize = 32;

/// Most owned files listed per task in a [`TaskView`].
pub const MAX_OWNS_SHOWN: usize = 50;

/// A task of the running team, as the lead sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskView {
    /// Task id.
    pub id: String,
    /// Its subject.
    pub subject: String,
    /// Who may run it.
    pub owner: Option<String>,
    /// `pending`, `in-progress`, `completed` or `failed`.
    pub status: String,
    /// True once claimed.
    pub started: bool,
    /// Its owned files (the first [`MAX_OWNS_SHOWN`]).
    pub owns: Vec<String>,
}

/// A message to `team-lead`, with what the lead sees of the team.
#[derive(Debug, Clone, Default)]
pub struct SteerInput {
    /// Team name.
    pub team: String,
    /// The goal (may be empty).
    pub goal: String,
    /// A teammate id, or `person`.
    pub sender: String,
    /// The message.
    pub body: String,
    /// Every task.
    pub tasks: Vec<TaskView>,
    /// The teammate groups.
    pub teammates: Vec<String>,
}

/// One thing the lead does about a message (not validated yet).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LeadAction {
    /// Answer the sender.
    Answer(String),
    /// Message every teammate.
    Broadcast(String),
    /// Add a task.
    AddTask(PlannedTask),
    /// Give a task that has not started to `owner` (`None`: anyone).
    Reassign {
        /// The task id.
        task: String,
        /// The new owner.
        owner: Option<String>,
    },
}

impl LeadAction {
    /// Bytes of text it carries, for the size bound.
    fn size(&self) -> usize {
        match self {
            Self::Answer(t) | Self::Broadcast(t) => t.len(),
            Self::AddTask(t) => super::plan_size(&[planning::PlannedTask::from(t)]),
            Self::Reassign { task, owner } => task.len() + owner.as_ref().map_or(0, String::len),
        }
    }
}

impl Planner {
    /// Runs the lead for a message to `team-lead` in a fresh sandbox: the
    /// `steer` export of a steering lead, else the `on-message` of a plain
    /// lead (its answer, if any, is the one action). `Err` if it traps,
    /// returns more than [`MAX_ACTIONS`] actions or more than `report_kib`
    /// of text, or is not a lead.
    pub async fn steer(&self, input: SteerInput) -> Result<Vec<LeadAction>, PlannerError> {
        let call = "steer";
        let super::Pre::Lead(_, Some(pre)) = &self.pre else {
            let answer = self.on_message(&input.team, &input.goal, &input.sender, &input.body).await?;
            return Ok(answer.map(LeadAction::Answer).into_iter().collect());
        };
        let msg = steering::Incoming {
            team: input.team,
            goal: input.goal,
            sender: input.sender,
            body: input.body,
            tasks: input
                .tasks
                .into_iter()
                .map(|t| steering::TaskView {
                    id: t.id,
                    subject: t.subject,
                    owner: t.owner,
                    status: t.status,
                    started: t.started,
                    owns: t.owns.into_iter().take(MAX_OWNS_SHOWN).collect(),
                })
                .collect(),
            teammates: input.teammates,
        };
        let mut store = self.store(call, None);
        let lead = self.instantiated(pre.instantiate_async(&mut store).await, &store)?;
        let actions = match lead.call_steer(&mut store, &msg).await {
            Ok(actions) => actions,
            Err(e) => return Err(self.trap(call, &e, store.data())),
        };
        if actions.len() > MAX_ACTIONS {
            return Err(PlannerError::Refused {
                path: self.path.clone(),
                reason: format!("steer returned {} actions, over the most, {MAX_ACTIONS}", actions.len()),
            });
        }
        let actions: Vec<LeadAction> = actions
            .into_iter()
            .map(|a| match a {
                steering::Action::Answer(t) => LeadAction::Answer(self.cut_message(t)),
                steering::Action::Broadcast(t) => LeadAction::Broadcast(self.cut_message(t)),
                steering::Action::AddTask(t) => LeadAction::AddTask(PlannedTask::from(t)),
                steering::Action::Reassign(r) => LeadAction::Reassign { task: r.task, owner: r.owner },
            })
            .collect();
        self.check_size(call, actions.iter().map(LeadAction::size).sum())?;
        Ok(actions)
    }
}
