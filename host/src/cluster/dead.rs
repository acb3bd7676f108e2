//! Dead letters. JetStream keeps a task message that ran out of deliveries
//! in the work queue and only says so with an advisory; the coordinator
//! listens for it, copies the message to the team's dead-letter stream,
//! marks the task `dead` in the bucket (with the last error a worker
//! recorded) and deletes the message from the queue, so nothing is stuck
//! and the failure is visible.
//!
//! An advisory is not kept for a coordinator that was not listening, so
//! starting the mover first sweeps the queue for tasks that failed their
//! last attempt meanwhile (recorded `retrying` at `max_attempts`).

use std::time::Duration;

use futures_util::StreamExt as _;
use serde::Deserialize;

use super::ClusterError;
use super::fence::{self, Cas, State};
use super::queue::Cluster;

/// The fields of the max-deliveries advisory used here.
#[derive(Debug, Deserialize)]
struct MaxDeliveries {
    stream_seq: u64,
    deliveries: u32,
}

/// The running dead-letter mover; stops when dropped.
#[derive(Debug)]
pub struct DeadLetters {
    task: tokio::task::JoinHandle<()>,
    moved: tokio::sync::watch::Receiver<u64>,
}

impl DeadLetters {
    /// Dead letters moved so far (copied out, marked and deleted).
    pub fn moved(&self) -> u64 {
        *self.moved.borrow()
    }

    /// Waits up to `timeout` until `n` dead letters were moved; whether they were.
    pub async fn wait_moved(&self, n: u64, timeout: Duration) -> bool {
        let mut moved = self.moved.clone();
        tokio::time::timeout(timeout, moved.wait_for(|m| *m >= n)).await.is_ok_and(|r| r.is_ok())
    }
}

impl Drop for DeadLetters {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Cluster {
    /// Starts moving dead letters (subscribed when this returns).
    pub async fn dead_letters(&self) -> Result<DeadLetters, ClusterError> {
        let subject = self.names.max_deliveries_advisory();
        let mut advisories = self
            .js
            .client()
            .subscribe(subject.clone())
            .await
            .map_err(|e| ClusterError::js(format!("subscribe to {subject}"), e))?;
        let (count, moved) = tokio::sync::watch::channel(0u64);
        for (seq, deliveries) in self.missed_dead_letters().await? {
            let task = self.bury(seq, deliveries).await?;
            count.send_modify(|m| *m += 1);
            tracing::warn!(task = %task, deliveries, "task out of attempts (found at start): dead letter");
        }
        let cluster = self.clone();
        let task = tokio::spawn(async move {
            while let Some(msg) = advisories.next().await {
                let Ok(advisory) = serde_json::from_slice::<MaxDeliveries>(&msg.payload) else {
                    tracing::warn!("ignoring a max-deliveries advisory that does not parse");
                    continue;
                };
                match cluster.bury(advisory.stream_seq, advisory.deliveries).await {
                    Ok(task) => {
                        count.send_modify(|m| *m += 1);
                        tracing::warn!(task = %task, deliveries = advisory.deliveries, "task out of attempts: dead letter");
                    }
                    Err(e) => tracing::error!("cannot move dead letter {}: {e}", advisory.stream_seq),
                }
            }
        });
        Ok(DeadLetters { task, moved })
    }

    /// The queue's messages whose task failed its last attempt: `(sequence,
    /// deliveries)`. The queue holds at most one message per task.
    async fn missed_dead_letters(&self) -> Result<Vec<(u64, u32)>, ClusterError> {
        let mut tasks = self.tasks.clone();
        let state = &tasks.info().await.map_err(|e| ClusterError::js("read the queue's info", e))?.state;
        let mut found = Vec::new();
        if state.messages == 0 {
            return Ok(found);
        }
        for seq in state.first_sequence..=state.last_sequence {
            // A sequence already acked or deleted is simply not there.
            let Ok(raw) = self.tasks.get_raw_message(seq).await else { continue };
            let Ok(a) = self.assignment(Some(&raw.headers), &raw.payload).await else { continue };
            if let Some(current) = fence::read(&self.kv, &a.task).await?
                && let State::Retrying { attempt, .. } = current.record.state
                && attempt >= self.settings.max_attempts
            {
                found.push((seq, attempt));
            }
        }
        Ok(found)
    }

    /// Moves message `seq` of the queue to the dead letters; returns its task.
    async fn bury(&self, seq: u64, deliveries: u32) -> Result<String, ClusterError> {
        let raw =
            self.tasks.get_raw_message(seq).await.map_err(|e| ClusterError::js(format!("read message {seq}"), e))?;
        let a = self.assignment(Some(&raw.headers), &raw.payload).await?;
        let ack = self
            .js
            .publish_with_headers(self.names.dead_subject(&a.task), raw.headers.clone(), raw.payload.clone())
            .await
            .map_err(|e| ClusterError::js("publish a dead letter", e))?;
        ack.await.map_err(|e| ClusterError::js("publish a dead letter", e))?;
        // The record may move under us (a last worker recording its error):
        // read and write again until the write lands or the task is done.
        loop {
            let Some(current) = fence::read(&self.kv, &a.task).await? else { break };
            let error = match &current.record.state {
                State::Done { .. } | State::Dead { .. } => break,
                State::Retrying { error, .. } => Some(error.clone()),
                _ => None,
            };
            let dead = current.record.with_state(State::Dead { deliveries, error });
            if fence::write(&self.kv, &a.task, &dead, current.revision).await? != Cas::Moved {
                break;
            }
        }
        self.tasks.delete_message(seq).await.map_err(|e| ClusterError::js(format!("delete message {seq}"), e))?;
        Ok(a.task)
    }
}
