//! The service callers use: [`Models`], built from an [`LlmConfig`], checks
//! a call (allow-list, request rules, size cap, budgets) before anything is
//! sent, waits for a slot under the provider's concurrency limit, runs the
//! attempts with retries under one deadline, charges the usage, and
//! records or replays the call in cassette modes.

use super::anthropic::{self, Anthropic};
use super::budget::{Budget, Cost, Ledger, Price};
use super::cassette::{self, Cassettes};
use super::openai::{self, OpenAi};
use super::port::{ModelCall, ModelPort, UsageBook, UsageReport};
use super::retry::{self, AttemptError, RetryPolicy};
use super::scripted::Scripted;
use super::{Block, BudgetLeft, LlmError, ModelRequest, ModelResponse, Secret, StopReason, Usage, validate};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;
use tokio::time::Instant;

pub use super::anthropic::AnthropicVersion;

/// Which wire format an alias speaks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProviderKind {
    /// Anthropic Messages.
    Anthropic,
    /// OpenAI-compatible Chat Completions.
    OpenAi,
    /// Responses listed in this file ([`super::scripted`]); for tests and
    /// offline examples, never a real model.
    Scripted(PathBuf),
}

/// One model alias: what a teammate names instead of a provider, URL or key.
#[derive(Debug, Clone)]
pub struct AliasConfig {
    /// Wire format.
    pub provider: ProviderKind,
    /// The provider's model id.
    pub model: String,
    /// Endpoint; the provider's public API when `None`.
    pub base_url: Option<String>,
    /// API key; `None` for a local server that wants none.
    pub key: Option<Secret>,
    /// Largest output a call may ask for (and the default); 4096 when `None`.
    pub max_output_tokens: Option<u32>,
    /// Needed when a USD budget applies to a teammate allowed this alias.
    pub price: Option<Price>,
    /// Anthropic only: the pinned `anthropic-version` (default `2023-06-01`).
    pub anthropic_version: Option<AnthropicVersion>,
}

impl AliasConfig {
    /// An alias with no URL, key, cap, price or version set.
    pub fn new(provider: ProviderKind, model: impl Into<String>) -> Self {
        AliasConfig {
            provider,
            model: model.into(),
            base_url: None,
            key: None,
            max_output_tokens: None,
            price: None,
            anthropic_version: None,
        }
    }
}

/// What one teammate may use.
#[derive(Debug, Clone, Default)]
pub struct TeammateModels {
    /// Aliases it may name.
    pub allow: Vec<String>,
    /// The alias used when it names none.
    pub default: Option<String>,
    /// Its own budget (the team's applies too).
    pub budget: Budget,
}

/// Where answers come from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Mode {
    /// From the providers.
    #[default]
    Live,
    /// From the providers, each call also written to `<dir>/<teammate>.jsonl`.
    Record(PathBuf),
    /// From `<dir>/<teammate>.jsonl` only; no network.
    Replay(PathBuf),
}

/// Limits on every call.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CallLimits {
    /// The whole call, waiting for a slot and retries included.
    pub timeout: Duration,
    /// Connecting to a provider.
    pub connect_timeout: Duration,
    /// Retries and backoff.
    pub retry: RetryPolicy,
    /// Largest request (canonical JSON of the teammate's request), bytes.
    pub max_request_bytes: usize,
    /// Largest response body read from a provider, bytes.
    pub max_response_bytes: usize,
    /// Calls in flight per provider endpoint (kind + base URL).
    pub concurrency_per_provider: usize,
    /// Output cap of an alias that sets none.
    pub default_max_output_tokens: u32,
}

impl Default for CallLimits {
    fn default() -> Self {
        CallLimits {
            timeout: Duration::from_secs(600),
            connect_timeout: Duration::from_secs(10),
            retry: RetryPolicy::default(),
            max_request_bytes: 1 << 20,
            max_response_bytes: 4 << 20,
            concurrency_per_provider: 4,
            default_max_output_tokens: 4096,
        }
    }
}

/// Everything [`Models`] needs.
#[derive(Debug, Clone, Default)]
pub struct LlmConfig {
    /// Aliases by name.
    pub aliases: BTreeMap<String, AliasConfig>,
    /// Teammates by name; a teammate not listed may use no model.
    pub teammates: BTreeMap<String, TeammateModels>,
    /// The team-wide budget.
    pub team_budget: Budget,
    /// Limits on every call.
    pub limits: CallLimits,
    /// Live, record or replay.
    pub mode: Mode,
}

/// A configuration that cannot work, naming the setting.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("model configuration: {0}")]
pub struct ConfigError(pub String);

/// A call as a provider sees it.
#[derive(Debug)]
pub(crate) struct ProviderCall<'a> {
    pub teammate: &'a str,
    pub alias: &'a str,
    pub model: &'a str,
    pub request: &'a ModelRequest,
    pub max_output_tokens: u32,
}

/// A provider's answer, before the budget is added.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct ProviderAnswer {
    pub id: String,
    pub model: String,
    pub content: Vec<Block>,
    pub stop_reason: StopReason,
    pub usage: Usage,
}

/// A boxed future that owns what it needs (or borrows for `'a`).
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// One wire format (or the scripted stand-in).
pub(crate) trait Provider: Send + Sync {
    /// One attempt; the caller retries.
    fn attempt<'a>(&'a self, call: &'a ProviderCall<'a>) -> BoxFuture<'a, Result<ProviderAnswer, AttemptError>>;
    /// Rules of this provider a request must keep, checked before budgets.
    fn check(&self, _call: &ProviderCall<'_>) -> Result<(), LlmError> {
        Ok(())
    }
    /// What shares a concurrency limit (kind and base URL).
    fn endpoint(&self) -> String;
}

struct Alias {
    model: String,
    max_output_tokens: u32,
    price: Option<Price>,
    provider: Arc<dyn Provider>,
    slots: Arc<Semaphore>,
}

/// The model service of one team. Cheap to share behind an `Arc`; every
/// method takes `&self`.
pub struct Models {
    aliases: BTreeMap<String, Alias>,
    teammates: BTreeMap<String, TeammateModels>,
    ledger: Ledger,
    limits: CallLimits,
    cassettes: Option<Cassettes>,
    usage: UsageBook,
    transcripts: super::transcript::TranscriptBook,
}

impl std::fmt::Debug for Models {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Models")
            .field("aliases", &self.aliases.keys().collect::<Vec<_>>())
            .field("teammates", &self.teammates)
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

fn bad(text: String) -> ConfigError {
    ConfigError(text)
}

impl Models {
    /// Checks `config` and builds the service. Scripted providers' files are
    /// read here, so a bad script is an error before any teammate starts.
    pub fn new(config: LlmConfig) -> Result<Self, ConfigError> {
        let LlmConfig { aliases, teammates, team_budget, limits, mode } = config;
        if limits.concurrency_per_provider == 0 {
            return Err(bad("limits.concurrency_per_provider must be at least 1".into()));
        }
        let client = reqwest::Client::builder()
            .connect_timeout(limits.connect_timeout)
            // Redirects could carry the key's header to another host.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| bad(format!("cannot build the HTTP client: {}", e.without_url())))?;
        let mut slots: HashMap<String, Arc<Semaphore>> = HashMap::new();
        let mut built = BTreeMap::new();
        for (name, a) in aliases {
            if a.model.is_empty() {
                return Err(bad(format!("alias '{name}': model is empty")));
            }
            if let Some(url) = &a.base_url
                && !(url.starts_with("http://") || url.starts_with("https://"))
            {
                return Err(bad(format!("alias '{name}': base_url must start with http:// or https://")));
            }
            if a.anthropic_version.is_some() && a.provider != ProviderKind::Anthropic {
                return Err(bad(format!("alias '{name}': anthropic_version is only for the anthropic provider")));
            }
            let max_response_bytes = limits.max_response_bytes;
            let provider: Arc<dyn Provider> = match &a.provider {
                ProviderKind::Anthropic => Arc::new(Anthropic {
                    client: client.clone(),
                    base_url: a.base_url.clone().unwrap_or_else(|| anthropic::DEFAULT_BASE_URL.into()),
                    key: a.key.clone(),
                    version: a.anthropic_version.unwrap_or_default(),
                    max_response_bytes,
                }),
                ProviderKind::OpenAi => Arc::new(OpenAi {
                    client: client.clone(),
                    base_url: a.base_url.clone().unwrap_or_else(|| openai::DEFAULT_BASE_URL.into()),
                    key: a.key.clone(),
                    max_response_bytes,
                }),
                ProviderKind::Scripted(path) => {
                    Arc::new(Scripted::load(path).map_err(|e| bad(format!("alias '{name}': {e}")))?)
                }
            };
            let slot = slots
                .entry(provider.endpoint())
                .or_insert_with(|| Arc::new(Semaphore::new(limits.concurrency_per_provider)))
                .clone();
            let cap = a.max_output_tokens.unwrap_or(limits.default_max_output_tokens);
            if cap == 0 {
                return Err(bad(format!("alias '{name}': max_output_tokens must be at least 1")));
            }
            built.insert(name, Alias { model: a.model, max_output_tokens: cap, price: a.price, provider, slots: slot });
        }
        for (teammate, t) in &teammates {
            for alias in t.allow.iter().chain(&t.default) {
                let Some(a) = built.get(alias) else {
                    return Err(bad(format!("teammate '{teammate}' allows alias '{alias}', which is not defined")));
                };
                if (t.budget.usd.is_some() || team_budget.usd.is_some()) && a.price.is_none() {
                    return Err(bad(format!(
                        "alias '{alias}' has no price, but a usd budget applies to teammate '{teammate}'; \
                         set the alias's price or remove the usd budget"
                    )));
                }
            }
            if let Some(d) = &t.default
                && !t.allow.contains(d)
            {
                return Err(bad(format!("teammate '{teammate}': default alias '{d}' is not in its allow-list")));
            }
        }
        let cassettes = match mode {
            Mode::Live => None,
            Mode::Record(dir) => Some(Cassettes::for_recording(dir)),
            Mode::Replay(dir) => Some(Cassettes::for_replay(dir)),
        };
        if cassettes.is_some()
            && let Some(t) = teammates.keys().find(|t| !cassette::name_ok(t))
        {
            return Err(bad(format!(
                "teammate '{t}' cannot name a cassette file: use letters, digits, '-', '_' and '.' (not first)"
            )));
        }
        let ledger = Ledger::new(team_budget, teammates.iter().map(|(n, t)| (n.clone(), t.budget)));
        Ok(Models {
            aliases: built,
            teammates,
            ledger,
            limits,
            cassettes,
            usage: UsageBook::default(),
            transcripts: Default::default(),
        })
    }

    /// Checks `config` as [`Models::new`] does, without keeping the service.
    pub fn check(config: &LlmConfig) -> Result<(), ConfigError> {
        Models::new(config.clone()).map(drop)
    }

    /// What `teammate` has left (the smaller of its budget and the team's).
    pub fn budget_left(&self, teammate: &str) -> BudgetLeft {
        self.ledger.left(teammate)
    }

    /// What every teammate and task has used so far.
    pub fn usage(&self) -> UsageReport {
        self.usage.report()
    }

    /// How many model turns `task` has had and the last tool its model
    /// called (the live view).
    pub fn turn_of(&self, task: &str) -> Option<(usize, Option<String>)> {
        self.transcripts.now(task)
    }

    /// The model transcript of `task` so far, and how many entries were
    /// left out past the cap ([`super::transcript`]).
    pub fn transcript(&self, task: &str) -> (Vec<super::transcript::Entry>, usize) {
        self.transcripts.of(task)
    }

    /// One model call for `teammate` under `alias` (its default when `None`).
    /// Dropping the future cancels the call and releases its reservation.
    pub async fn complete(
        &self,
        teammate: &str,
        alias: Option<&str>,
        request: ModelRequest,
    ) -> Result<ModelResponse, LlmError> {
        self.complete_for(teammate, None, alias, request).await
    }

    /// [`Models::complete`] for `teammate` holding `task`: its usage is
    /// also counted for the task.
    pub async fn complete_for(
        &self,
        teammate: &str,
        task: Option<&str>,
        alias: Option<&str>,
        request: ModelRequest,
    ) -> Result<ModelResponse, LlmError> {
        let started = Instant::now();
        let deadline = started + self.limits.timeout;
        let (alias_name, alias) = self.resolve(teammate, alias)?;
        validate::check(&request)?;
        let max_output_tokens = match request.max_output_tokens {
            Some(n) if n > alias.max_output_tokens => {
                return Err(LlmError::InvalidRequest(format!(
                    "max_output_tokens {n} is more than alias '{alias_name}' allows ({})",
                    alias.max_output_tokens
                )));
            }
            Some(n) => n,
            None => alias.max_output_tokens,
        };
        let call =
            ProviderCall { teammate, alias: alias_name, model: &alias.model, request: &request, max_output_tokens };
        alias.provider.check(&call)?;
        let canonical = cassette::canonical(&call);
        let size = canonical.to_string().len();
        if size > self.limits.max_request_bytes {
            return Err(LlmError::InvalidRequest(format!(
                "the request is {size} bytes, more than the cap of {} (limits.max_request_bytes)",
                self.limits.max_request_bytes
            )));
        }
        // Worst case: the whole output cap plus the input, estimated as a
        // quarter of the request's bytes (rounded up).
        let input_estimate = size.div_ceil(4) as u64;
        let worst = Cost {
            tokens: input_estimate + u64::from(max_output_tokens),
            usd: alias.price.map_or(0.0, |p| p.cost(input_estimate, u64::from(max_output_tokens))),
        };
        let mut reservation = self.ledger.reserve(teammate, worst)?;

        // A cassette that cannot be written fails the call, but only after
        // the usage of an answered call is charged.
        let mut cassette_failure = None;
        let answer = match &self.cassettes {
            Some(c) if c.replaying() => {
                reservation.mark_sent();
                c.replay(teammate, &canonical)
            }
            _ => {
                let run = async {
                    let _slot =
                        alias.slots.acquire().await.map_err(|_| LlmError::Provider("provider closed".into()))?;
                    reservation.mark_sent();
                    let (result, attempts) =
                        retry::run(&self.limits.retry, deadline, || alias.provider.attempt(&call)).await;
                    if attempts > 1 {
                        tracing::info!(teammate, alias = alias_name, attempts, "model call retried");
                    }
                    result
                };
                let result = match tokio::time::timeout_at(deadline, run).await {
                    Ok(r) => r,
                    Err(_) => Err(LlmError::Timeout(self.limits.timeout.as_millis() as u64)),
                };
                if let Some(c) = &self.cassettes
                    && let Err(e) = c.record(teammate, &canonical, &result)
                {
                    tracing::error!(teammate, error = %e, "cannot write the model cassette");
                    cassette_failure = Some(LlmError::Provider(format!("the host cannot write the cassette: {e}")));
                }
                result
            }
        };
        let answer = answer?;
        let u = answer.usage;
        let cost = Cost {
            tokens: u.total(),
            usd: alias
                .price
                .map_or(0.0, |p| p.cost(u.input_tokens + u.cache_read_tokens + u.cache_write_tokens, u.output_tokens)),
        };
        let budget = reservation.settle(cost);
        self.usage.record(teammate, task, &u, cost.usd);
        if let Some(e) = cassette_failure {
            return Err(e);
        }
        tracing::info!(
            teammate,
            alias = alias_name,
            input_tokens = u.input_tokens,
            output_tokens = u.output_tokens,
            ms = started.elapsed().as_millis() as u64,
            "model call"
        );
        let response = ModelResponse {
            id: answer.id,
            alias: alias_name.to_string(),
            model: answer.model,
            content: answer.content,
            stop_reason: answer.stop_reason,
            usage: u,
            budget,
        };
        if let Some(task) = task {
            self.transcripts.record(task, &request, &response);
        }
        Ok(response)
    }

    fn resolve<'a>(&'a self, teammate: &str, alias: Option<&'a str>) -> Result<(&'a str, &'a Alias), LlmError> {
        let Some(t) = self.teammates.get(teammate) else {
            return Err(LlmError::ModelNotAllowed(format!("teammate '{teammate}' has no model allow-list")));
        };
        let Some(name) = alias.or(t.default.as_deref()) else {
            return Err(LlmError::ModelNotAllowed(format!(
                "no model alias named and teammate '{teammate}' has no default alias"
            )));
        };
        match self.aliases.get_key_value(name) {
            Some((n, a)) if t.allow.iter().any(|x| x == name) => Ok((n.as_str(), a)),
            _ => Err(LlmError::ModelNotAllowed(format!(
                "alias '{name}' is not on teammate '{teammate}''s allow-list (allowed: {})",
                if t.allow.is_empty() { "none".to_string() } else { t.allow.join(", ") }
            ))),
        }
    }
}

impl ModelPort for Models {
    fn complete(&self, call: ModelCall) -> BoxFuture<'_, Result<ModelResponse, LlmError>> {
        Box::pin(async move {
            self.complete_for(&call.teammate, call.task.as_deref(), call.alias.as_deref(), call.request).await
        })
    }
}
