//! Conversions between the host's types and protocol v1's wire types
//! (`protocol::wire`). They live here, above both layers, so that neither
//! the protocol nor the core knows the other; every `match` is exhaustive,
//! so a variant added on one side and not the other fails to compile.

use std::time::Duration;

use crate::llm::{
    Block, BudgetLeft, LlmError, Message, ModelCall, ModelRequest, ModelResponse, Role, StopReason, Tool, ToolChoice,
    Usage,
};
use crate::mailbox::{Incoming, SendError};
use crate::model::{Finding, LimitKind, Severity, TeammateMessage};
use crate::protocol::wire::{
    WireBeat, WireDependency, WireEvent, WireExitReason, WireFinding, WireIncoming, WireLimitKind, WireLimits,
    WireLiveness, WireReadScope, WireSendError, WireSeverity, WireTaskReport, WireTaskSpec,
};
use crate::protocol::wire::{
    WireBlock, WireBudgetLeft, WireModelCall, WireModelError, WireModelMessage, WireModelResponse, WireRole,
    WireStopReason, WireTool, WireToolChoice, WireUsage,
};
use crate::sandbox::{Limits, ReadScope};
use crate::tasks::{DependencyResult, TaskReport, TaskSpec};
use crate::team::{Beat, ExitReason, Liveness};

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

impl From<Severity> for WireSeverity {
    fn from(s: Severity) -> Self {
        match s {
            Severity::Note => Self::Note,
            Severity::Warning => Self::Warning,
            Severity::Error => Self::Error,
        }
    }
}

impl From<WireSeverity> for Severity {
    fn from(s: WireSeverity) -> Self {
        match s {
            WireSeverity::Note => Self::Note,
            WireSeverity::Warning => Self::Warning,
            WireSeverity::Error => Self::Error,
        }
    }
}

impl From<Finding> for WireFinding {
    fn from(f: Finding) -> Self {
        let Finding { file, line, rule, message, severity } = f;
        Self { file, line, rule, message, severity: severity.into() }
    }
}

impl From<WireFinding> for Finding {
    fn from(f: WireFinding) -> Self {
        let WireFinding { file, line, rule, message, severity } = f;
        Self { file, line, rule, message, severity: severity.into() }
    }
}

fn findings_to_wire(findings: Vec<Finding>) -> Vec<WireFinding> {
    findings.into_iter().map(Into::into).collect()
}

fn findings_from_wire(findings: Vec<WireFinding>) -> Vec<Finding> {
    findings.into_iter().map(Into::into).collect()
}

impl From<DependencyResult> for WireDependency {
    fn from(d: DependencyResult) -> Self {
        let DependencyResult { task_id, subject, summary, findings, omitted_findings } = d;
        Self { task_id, subject, summary, findings: findings_to_wire(findings), omitted_findings }
    }
}

impl From<WireDependency> for DependencyResult {
    fn from(d: WireDependency) -> Self {
        let WireDependency { task_id, subject, summary, findings, omitted_findings } = d;
        Self { task_id, subject, summary, findings: findings_from_wire(findings), omitted_findings }
    }
}

impl From<TaskReport> for WireTaskReport {
    fn from(r: TaskReport) -> Self {
        Self { summary: r.summary, findings: findings_to_wire(r.findings) }
    }
}

impl From<WireTaskReport> for TaskReport {
    fn from(r: WireTaskReport) -> Self {
        Self { summary: r.summary, findings: findings_from_wire(r.findings) }
    }
}

impl From<TaskSpec> for WireTaskSpec {
    fn from(t: TaskSpec) -> Self {
        let TaskSpec { id, subject, description, owned_files, owner, blocked_by, deadline, max_attempts, creates } = t;
        Self {
            id,
            subject,
            description,
            owned_files: owned_files.into_iter().collect(),
            owner,
            blocked_by,
            deadline_ms: deadline.map(ms),
            max_attempts,
            creates,
        }
    }
}

impl From<WireTaskSpec> for TaskSpec {
    fn from(t: WireTaskSpec) -> Self {
        let WireTaskSpec {
            id,
            subject,
            description,
            owned_files,
            owner,
            blocked_by,
            deadline_ms,
            max_attempts,
            creates,
        } = t;
        Self {
            id,
            subject,
            description,
            owned_files: owned_files.into_iter().collect(),
            owner,
            blocked_by,
            deadline: deadline_ms.map(Duration::from_millis),
            max_attempts,
            creates,
        }
    }
}

impl From<&Limits> for WireLimits {
    fn from(l: &Limits) -> Self {
        let Limits {
            memory_mib,
            table_elements,
            instances,
            wasm_stack_kib,
            task_deadline,
            message_kib,
            report_kib,
            inbox_len,
            file_mib,
            plugin_mib,
            compile_timeout,
            log_lines_per_sec,
            events_per_sec,
            idle_cpu,
            fuel,
        } = *l;
        Self {
            memory_mib,
            table_elements,
            instances,
            wasm_stack_kib,
            task_deadline_ms: ms(task_deadline),
            message_kib,
            report_kib,
            inbox_len,
            file_mib,
            plugin_mib,
            compile_timeout_ms: ms(compile_timeout),
            log_lines_per_sec,
            events_per_sec,
            idle_cpu_ms: ms(idle_cpu),
            fuel,
        }
    }
}

impl From<&WireLimits> for Limits {
    fn from(l: &WireLimits) -> Self {
        let WireLimits {
            memory_mib,
            table_elements,
            instances,
            wasm_stack_kib,
            task_deadline_ms,
            message_kib,
            report_kib,
            inbox_len,
            file_mib,
            plugin_mib,
            compile_timeout_ms,
            log_lines_per_sec,
            events_per_sec,
            idle_cpu_ms,
            fuel,
        } = *l;
        Self {
            memory_mib,
            table_elements,
            instances,
            wasm_stack_kib,
            task_deadline: Duration::from_millis(task_deadline_ms),
            message_kib,
            report_kib,
            inbox_len,
            file_mib,
            plugin_mib,
            compile_timeout: Duration::from_millis(compile_timeout_ms),
            log_lines_per_sec,
            events_per_sec,
            idle_cpu: Duration::from_millis(idle_cpu_ms),
            fuel,
        }
    }
}

impl From<ReadScope> for WireReadScope {
    fn from(r: ReadScope) -> Self {
        match r {
            ReadScope::Owned => Self::Owned,
            ReadScope::Root => Self::Root,
        }
    }
}

impl From<WireReadScope> for ReadScope {
    fn from(r: WireReadScope) -> Self {
        match r {
            WireReadScope::Owned => Self::Owned,
            WireReadScope::Root => Self::Root,
        }
    }
}

impl From<LimitKind> for WireLimitKind {
    fn from(k: LimitKind) -> Self {
        match k {
            LimitKind::Memory => Self::Memory,
            LimitKind::Table => Self::Table,
            LimitKind::Deadline => Self::Deadline,
            LimitKind::Instances => Self::Instances,
            LimitKind::Stack => Self::Stack,
            LimitKind::Fuel => Self::Fuel,
            LimitKind::LogRate => Self::LogRate,
            LimitKind::EventRate => Self::EventRate,
            LimitKind::IdleCpu => Self::IdleCpu,
        }
    }
}

impl From<WireLimitKind> for LimitKind {
    fn from(k: WireLimitKind) -> Self {
        match k {
            WireLimitKind::Memory => Self::Memory,
            WireLimitKind::Table => Self::Table,
            WireLimitKind::Deadline => Self::Deadline,
            WireLimitKind::Instances => Self::Instances,
            WireLimitKind::Stack => Self::Stack,
            WireLimitKind::Fuel => Self::Fuel,
            WireLimitKind::LogRate => Self::LogRate,
            WireLimitKind::EventRate => Self::EventRate,
            WireLimitKind::IdleCpu => Self::IdleCpu,
        }
    }
}

impl From<ExitReason> for WireExitReason {
    fn from(r: ExitReason) -> Self {
        match r {
            ExitReason::Finished => Self::Finished,
            ExitReason::Failed(message) => Self::Failed { message },
            ExitReason::Trapped { message, limit } => Self::Trapped { message, limit: limit.map(Into::into) },
            ExitReason::Killed { message, limit } => Self::Killed { message, limit: limit.map(Into::into) },
            ExitReason::SpawnFailed { message, limit } => Self::SpawnFailed { message, limit: limit.map(Into::into) },
        }
    }
}

impl From<WireExitReason> for ExitReason {
    fn from(r: WireExitReason) -> Self {
        match r {
            WireExitReason::Finished => Self::Finished,
            WireExitReason::Failed { message } => Self::Failed(message),
            WireExitReason::Trapped { message, limit } => Self::Trapped { message, limit: limit.map(Into::into) },
            WireExitReason::Killed { message, limit } => Self::Killed { message, limit: limit.map(Into::into) },
            WireExitReason::SpawnFailed { message, limit } => {
                Self::SpawnFailed { message, limit: limit.map(Into::into) }
            }
        }
    }
}

impl From<Liveness> for WireLiveness {
    fn from(l: Liveness) -> Self {
        match l {
            Liveness::Spawning => Self::Spawning,
            Liveness::Working => Self::Working,
            Liveness::Idle => Self::Idle,
            Liveness::Stopping => Self::Stopping,
            Liveness::Exited => Self::Exited,
            Liveness::Dead => Self::Dead,
        }
    }
}

impl From<WireLiveness> for Liveness {
    fn from(l: WireLiveness) -> Self {
        match l {
            WireLiveness::Spawning => Self::Spawning,
            WireLiveness::Working => Self::Working,
            WireLiveness::Idle => Self::Idle,
            WireLiveness::Stopping => Self::Stopping,
            WireLiveness::Exited => Self::Exited,
            WireLiveness::Dead => Self::Dead,
        }
    }
}

impl From<Beat> for WireBeat {
    fn from(b: Beat) -> Self {
        match b {
            Beat::Alive => Self::Alive,
            Beat::Started => Self::Started,
            Beat::State { state } => Self::State { state: state.into() },
            Beat::Idle => Self::Idle,
            Beat::Working { task } => Self::Working { task },
            Beat::TaskCleared => Self::TaskCleared,
            Beat::Progress { done, total } => Self::Progress { done, total },
        }
    }
}

impl From<WireBeat> for Beat {
    fn from(b: WireBeat) -> Self {
        match b {
            WireBeat::Alive => Self::Alive,
            WireBeat::Started => Self::Started,
            WireBeat::State { state } => Self::State { state: state.into() },
            WireBeat::Idle => Self::Idle,
            WireBeat::Working { task } => Self::Working { task },
            WireBeat::TaskCleared => Self::TaskCleared,
            WireBeat::Progress { done, total } => Self::Progress { done, total },
        }
    }
}

impl From<Incoming> for WireIncoming {
    fn from(i: Incoming) -> Self {
        match i {
            Incoming::Message { sender, body, summary } => Self::Message { sender, body, summary },
            Incoming::Shutdown { request_id, reason } => Self::Shutdown { request_id, reason },
            Incoming::TasksAvailable => Self::TasksAvailable,
        }
    }
}

impl From<WireIncoming> for Incoming {
    fn from(i: WireIncoming) -> Self {
        match i {
            WireIncoming::Message { sender, body, summary } => Self::Message { sender, body, summary },
            WireIncoming::Shutdown { request_id, reason } => Self::Shutdown { request_id, reason },
            WireIncoming::TasksAvailable => Self::TasksAvailable,
        }
    }
}

impl From<SendError> for WireSendError {
    fn from(e: SendError) -> Self {
        match e {
            SendError::UnknownRecipient(recipient) => Self::UnknownRecipient { recipient },
            SendError::InboxFull { recipient, limit } => Self::InboxFull { recipient, limit },
        }
    }
}

impl From<WireSendError> for SendError {
    fn from(e: WireSendError) -> Self {
        match e {
            WireSendError::UnknownRecipient { recipient } => Self::UnknownRecipient(recipient),
            WireSendError::InboxFull { recipient, limit } => Self::InboxFull { recipient, limit },
        }
    }
}

impl From<TeammateMessage> for WireEvent {
    fn from(m: TeammateMessage) -> Self {
        use TeammateMessage as M;
        match m {
            M::TaskCompleted { from, task_id, summary, findings } => {
                Self::TaskCompleted { from, task_id, summary, findings: findings_to_wire(findings) }
            }
            M::IdleNotification { from, reason } => Self::IdleNotification { from, reason },
            M::ShutdownRequest { request_id, from, reason } => Self::ShutdownRequest { request_id, from, reason },
            M::ShutdownResponse { request_id, from, approve, reason } => {
                Self::ShutdownResponse { request_id, from, approve, reason }
            }
            M::Progress { from, task_id, done, total } => Self::Progress { from, task_id, done, total },
            M::Error { from, task_id, message } => Self::Error { from, task_id, message },
            M::AccessDenied { from, task_id, operation, reason } => {
                Self::AccessDenied { from, task_id, operation, reason }
            }
            M::Message { from, to, body, summary } => Self::Message { from, to, body, summary },
        }
    }
}

impl From<WireEvent> for TeammateMessage {
    fn from(m: WireEvent) -> Self {
        use WireEvent as W;
        match m {
            W::TaskCompleted { from, task_id, summary, findings } => {
                Self::TaskCompleted { from, task_id, summary, findings: findings_from_wire(findings) }
            }
            W::IdleNotification { from, reason } => Self::IdleNotification { from, reason },
            W::ShutdownRequest { request_id, from, reason } => Self::ShutdownRequest { request_id, from, reason },
            W::ShutdownResponse { request_id, from, approve, reason } => {
                Self::ShutdownResponse { request_id, from, approve, reason }
            }
            W::Progress { from, task_id, done, total } => Self::Progress { from, task_id, done, total },
            W::Error { from, task_id, message } => Self::Error { from, task_id, message },
            W::AccessDenied { from, task_id, operation, reason } => {
                Self::AccessDenied { from, task_id, operation, reason }
            }
            W::Message { from, to, body, summary } => Self::Message { from, to, body, summary },
        }
    }
}

// ----- model calls ---------------------------------------------------------

impl From<Block> for WireBlock {
    fn from(b: Block) -> Self {
        match b {
            Block::Text { text } => Self::Text { text },
            Block::ToolCall { id, name, input } => Self::ToolCall { id, name, input },
            Block::ToolResult { call_id, content, is_error } => Self::ToolResult { call_id, content, is_error },
        }
    }
}

impl From<WireBlock> for Block {
    fn from(b: WireBlock) -> Self {
        match b {
            WireBlock::Text { text } => Self::Text { text },
            WireBlock::ToolCall { id, name, input } => Self::ToolCall { id, name, input },
            WireBlock::ToolResult { call_id, content, is_error } => Self::ToolResult { call_id, content, is_error },
        }
    }
}

fn role_to_wire(r: Role) -> WireRole {
    match r {
        Role::User => WireRole::User,
        Role::Assistant => WireRole::Assistant,
    }
}

fn role_from_wire(r: WireRole) -> Role {
    match r {
        WireRole::User => Role::User,
        WireRole::Assistant => Role::Assistant,
    }
}

impl From<ModelCall> for WireModelCall {
    fn from(c: ModelCall) -> Self {
        let r = c.request;
        Self {
            task: c.task,
            alias: c.alias,
            system: r.system,
            messages: r
                .messages
                .into_iter()
                .map(|m| WireModelMessage {
                    role: role_to_wire(m.role),
                    content: m.content.into_iter().map(Into::into).collect(),
                })
                .collect(),
            tools: r
                .tools
                .into_iter()
                .map(|t| WireTool { name: t.name, description: t.description, input_schema: t.input_schema })
                .collect(),
            tool_choice: r.tool_choice.map(|c| match c {
                ToolChoice::Auto => WireToolChoice::Auto,
                ToolChoice::None => WireToolChoice::None,
                ToolChoice::Any => WireToolChoice::Any,
                ToolChoice::Named(name) => WireToolChoice::Named { name },
            }),
            max_output_tokens: r.max_output_tokens,
            temperature: r.temperature,
            stop_sequences: r.stop_sequences,
        }
    }
}

/// A call from the wire, made by teammate `teammate` (the connection's id,
/// never a field of the call).
pub fn model_call_from_wire(teammate: &str, c: WireModelCall) -> ModelCall {
    ModelCall {
        teammate: teammate.to_string(),
        task: c.task,
        alias: c.alias,
        request: ModelRequest {
            system: c.system,
            messages: c
                .messages
                .into_iter()
                .map(|m| Message {
                    role: role_from_wire(m.role),
                    content: m.content.into_iter().map(Into::into).collect(),
                })
                .collect(),
            tools: c
                .tools
                .into_iter()
                .map(|t| Tool { name: t.name, description: t.description, input_schema: t.input_schema })
                .collect(),
            tool_choice: c.tool_choice.map(|c| match c {
                WireToolChoice::Auto => ToolChoice::Auto,
                WireToolChoice::None => ToolChoice::None,
                WireToolChoice::Any => ToolChoice::Any,
                WireToolChoice::Named { name } => ToolChoice::Named(name),
            }),
            max_output_tokens: c.max_output_tokens,
            temperature: c.temperature,
            stop_sequences: c.stop_sequences,
        },
    }
}

impl From<BudgetLeft> for WireBudgetLeft {
    fn from(b: BudgetLeft) -> Self {
        Self { tokens: b.tokens, calls: b.calls, usd: b.usd }
    }
}

impl From<WireBudgetLeft> for BudgetLeft {
    fn from(b: WireBudgetLeft) -> Self {
        Self { tokens: b.tokens, calls: b.calls, usd: b.usd }
    }
}

impl From<ModelResponse> for WireModelResponse {
    fn from(r: ModelResponse) -> Self {
        let u = r.usage;
        Self {
            id: r.id,
            alias: r.alias,
            model: r.model,
            content: r.content.into_iter().map(Into::into).collect(),
            stop_reason: match r.stop_reason {
                StopReason::EndTurn => WireStopReason::EndTurn,
                StopReason::ToolUse => WireStopReason::ToolUse,
                StopReason::MaxTokens => WireStopReason::MaxTokens,
                StopReason::StopSequence => WireStopReason::StopSequence,
                StopReason::Refusal => WireStopReason::Refusal,
                StopReason::Other => WireStopReason::Other,
            },
            usage: WireUsage {
                input_tokens: u.input_tokens,
                output_tokens: u.output_tokens,
                cache_read_tokens: u.cache_read_tokens,
                cache_write_tokens: u.cache_write_tokens,
            },
            budget: r.budget.into(),
        }
    }
}

impl From<WireModelResponse> for ModelResponse {
    fn from(r: WireModelResponse) -> Self {
        let u = r.usage;
        Self {
            id: r.id,
            alias: r.alias,
            model: r.model,
            content: r.content.into_iter().map(Into::into).collect(),
            stop_reason: match r.stop_reason {
                WireStopReason::EndTurn => StopReason::EndTurn,
                WireStopReason::ToolUse => StopReason::ToolUse,
                WireStopReason::MaxTokens => StopReason::MaxTokens,
                WireStopReason::StopSequence => StopReason::StopSequence,
                WireStopReason::Refusal => StopReason::Refusal,
                WireStopReason::Other => StopReason::Other,
            },
            usage: Usage {
                input_tokens: u.input_tokens,
                output_tokens: u.output_tokens,
                cache_read_tokens: u.cache_read_tokens,
                cache_write_tokens: u.cache_write_tokens,
            },
            budget: r.budget.into(),
        }
    }
}

impl From<LlmError> for WireModelError {
    fn from(e: LlmError) -> Self {
        match e {
            LlmError::ModelNotAllowed(detail) => Self::ModelNotAllowed { detail },
            LlmError::InvalidRequest(detail) => Self::InvalidRequest { detail },
            LlmError::BudgetExhausted { reason, left } => Self::BudgetExhausted { detail: reason, left: left.into() },
            LlmError::RateLimited { retry_after_ms } => Self::RateLimited { retry_after_ms },
            LlmError::Overloaded => Self::Overloaded,
            LlmError::Timeout(ms) => Self::Timeout { ms },
            LlmError::Provider(detail) => Self::ProviderError { detail },
            LlmError::ReplayMiss(detail) => Self::ReplayMiss { detail },
        }
    }
}

impl From<WireModelError> for LlmError {
    fn from(e: WireModelError) -> Self {
        match e {
            WireModelError::ModelNotAllowed { detail } => Self::ModelNotAllowed(detail),
            WireModelError::InvalidRequest { detail } => Self::InvalidRequest(detail),
            WireModelError::BudgetExhausted { detail, left } => {
                Self::BudgetExhausted { reason: detail, left: left.into() }
            }
            WireModelError::RateLimited { retry_after_ms } => Self::RateLimited { retry_after_ms },
            WireModelError::Overloaded => Self::Overloaded,
            WireModelError::Timeout { ms } => Self::Timeout(ms),
            WireModelError::ProviderError { detail } => Self::Provider(detail),
            WireModelError::ReplayMiss { detail } => Self::ReplayMiss(detail),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    /// Host value → wire → bytes → wire → host value is the identity.
    fn through_the_wire<H, W>(value: H) -> H
    where
        H: Into<W>,
        W: serde::Serialize + serde::de::DeserializeOwned + Into<H>,
    {
        let bytes = serde_json::to_vec(&value.into()).unwrap();
        serde_json::from_slice::<W>(&bytes).unwrap().into()
    }

    #[test]
    fn a_task_and_its_report_survive_the_wire() {
        let spec = TaskSpec {
            id: "t1".into(),
            subject: "scan".into(),
            description: "d".into(),
            owned_files: BTreeSet::from(["a.rs".to_string(), "b/c.rs".to_string()]),
            owner: Some("lint".into()),
            blocked_by: vec!["t0".into()],
            deadline: Some(Duration::from_millis(1500)),
            max_attempts: 3,
            creates: vec!["b/*.rs".into()],
        };
        assert_eq!(through_the_wire::<_, WireTaskSpec>(spec.clone()), spec);
        let report = TaskReport {
            summary: "2 found".into(),
            findings: vec![
                Finding {
                    file: "a.rs".into(),
                    line: Some(3),
                    rule: "r".into(),
                    message: "m".into(),
                    severity: Severity::Error,
                },
                Finding {
                    file: "b/c.rs".into(),
                    line: None,
                    rule: "r".into(),
                    message: "m".into(),
                    severity: Severity::Note,
                },
            ],
        };
        assert_eq!(through_the_wire::<_, WireTaskReport>(report.clone()), report);
    }

    #[test]
    fn limits_survive_the_wire_in_milliseconds() {
        let limits = Limits { fuel: Some(7), idle_cpu: Duration::from_millis(1234), ..Limits::default() };
        let wire = WireLimits::from(&limits);
        assert_eq!(wire.idle_cpu_ms, 1234);
        let bytes = serde_json::to_vec(&wire).unwrap();
        assert_eq!(Limits::from(&serde_json::from_slice::<WireLimits>(&bytes).unwrap()), limits);
    }

    #[test]
    fn every_exit_beat_and_event_survives_the_wire() {
        for exit in [
            ExitReason::Finished,
            ExitReason::Failed("no".into()),
            ExitReason::Trapped { message: "t".into(), limit: Some(LimitKind::IdleCpu) },
            ExitReason::Killed { message: "k".into(), limit: None },
            ExitReason::SpawnFailed { message: "s".into(), limit: Some(LimitKind::Instances) },
        ] {
            assert_eq!(through_the_wire::<_, WireExitReason>(exit.clone()), exit);
        }
        for beat in [
            Beat::Alive,
            Beat::Started,
            Beat::State { state: Liveness::Stopping },
            Beat::Idle,
            Beat::Working { task: "t".into() },
            Beat::TaskCleared,
            Beat::Progress { done: 1, total: 2 },
        ] {
            assert_eq!(through_the_wire::<_, WireBeat>(beat.clone()), beat);
        }
        let from = || "w-1".to_string();
        for event in [
            TeammateMessage::TaskCompleted { from: from(), task_id: "t".into(), summary: "s".into(), findings: vec![] },
            TeammateMessage::IdleNotification { from: from(), reason: Some("r".into()) },
            TeammateMessage::ShutdownRequest { request_id: "q".into(), from: from(), reason: "r".into() },
            TeammateMessage::ShutdownResponse { request_id: "q".into(), from: from(), approve: false, reason: None },
            TeammateMessage::Progress { from: from(), task_id: None, done: 1, total: 3 },
            TeammateMessage::Error { from: from(), task_id: Some("t".into()), message: "m".into() },
            TeammateMessage::AccessDenied { from: from(), task_id: None, operation: "read".into(), reason: "r".into() },
            TeammateMessage::Message { from: from(), to: "*".into(), body: "b".into(), summary: None },
        ] {
            assert_eq!(through_the_wire::<_, WireEvent>(event.clone()), event);
        }
    }

    /// The wire's spelling is protocol v1's, whatever the host's fields are
    /// called: a rename on the host side must not change these bytes.
    #[test]
    fn v1_spelling_is_pinned() {
        let event: WireEvent = (TeammateMessage::ShutdownRequest {
            request_id: "r1".into(),
            from: "lint-1".into(),
            reason: "done".into(),
        })
        .into();
        assert_eq!(
            serde_json::to_string(&event).unwrap(),
            r#"{"type":"shutdown_request","requestId":"r1","from":"lint-1","reason":"done"}"#
        );
        let exit = WireExitReason::from(ExitReason::Killed { message: "x".into(), limit: Some(LimitKind::LogRate) });
        assert_eq!(serde_json::to_string(&exit).unwrap(), r#"{"kind":"killed","message":"x","limit":"log_rate"}"#);

        // Model calls and their answers (since the `llm` import).
        let call = WireModelCall::from(ModelCall {
            teammate: "not-on-the-wire".into(),
            task: Some("t1".into()),
            alias: Some("fast".into()),
            request: ModelRequest {
                messages: vec![
                    Message {
                        role: Role::Assistant,
                        content: vec![Block::ToolCall {
                            id: "c1".into(),
                            name: "grep".into(),
                            input: serde_json::json!({"q": "x"}),
                        }],
                    },
                    Message {
                        role: Role::User,
                        content: vec![Block::ToolResult {
                            call_id: "c1".into(),
                            content: "none".into(),
                            is_error: true,
                        }],
                    },
                ],
                tool_choice: Some(ToolChoice::Named("grep".into())),
                max_output_tokens: Some(9),
                ..ModelRequest::default()
            },
        });
        assert_eq!(
            serde_json::to_string(&call).unwrap(),
            r#"{"task":"t1","alias":"fast","messages":[{"role":"assistant","content":[{"type":"tool_call","id":"c1","name":"grep","input":{"q":"x"}}]},{"role":"user","content":[{"type":"tool_result","call_id":"c1","content":"none","is_error":true}]}],"tools":[],"tool_choice":{"kind":"named","name":"grep"},"max_output_tokens":9,"stop_sequences":[]}"#
        );
        let answer = WireModelResponse::from(ModelResponse {
            id: "m1".into(),
            alias: "fast".into(),
            model: "x".into(),
            content: vec![Block::text("hi")],
            stop_reason: StopReason::EndTurn,
            usage: Usage { input_tokens: 3, output_tokens: 2, ..Usage::default() },
            budget: BudgetLeft { calls: Some(4), ..BudgetLeft::default() },
        });
        assert_eq!(
            serde_json::to_string(&answer).unwrap(),
            r#"{"id":"m1","alias":"fast","model":"x","content":[{"type":"text","text":"hi"}],"stop_reason":"end_turn","usage":{"input_tokens":3,"output_tokens":2,"cache_read_tokens":0,"cache_write_tokens":0},"budget":{"calls":4}}"#
        );
        let error = WireModelError::from(LlmError::RateLimited { retry_after_ms: Some(5) });
        assert_eq!(serde_json::to_string(&error).unwrap(), r#"{"kind":"rate_limited","retry_after_ms":5}"#);
    }
}
