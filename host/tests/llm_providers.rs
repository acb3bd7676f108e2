//! The model layer against a scripted HTTP/1.1 server on 127.0.0.1 that
//! speaks both real wire formats, checks what the host sends and answers
//! with real-shaped bodies, errors, cut-short and stalled bodies. No test
//! here reaches the internet; `real_server_when_configured` talks to a
//! server only when `SWARM_LLM_TEST_BASE_URL` names one.

use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use swarm_host::llm::retry::RetryPolicy;
use swarm_host::llm::{
    AliasConfig, AnthropicVersion, Block, Budget, BudgetLeft, CallLimits, LlmConfig, LlmError, Message, Mode,
    ModelRequest, Models, Price, ProviderKind, Role, Secret, StopReason, TeammateModels, Tool, ToolChoice, Usage,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

const KEY: &str = "sk-test-KEY-never-shown-0123456789";
/// Bound on any awaited event, so a broken test fails instead of hanging.
const PATIENCE: Duration = Duration::from_secs(20);

// ---------------------------------------------------------------- server

/// What the server answers to one request.
#[derive(Clone, Debug)]
enum Answer {
    /// A whole answer.
    Reply { status: u16, headers: Vec<(&'static str, String)>, body: String, delay: Duration },
    /// A 200 announcing the whole body, sending half of it, then closing.
    CutShort { body: String },
    /// A 200 announcing the whole body, sending a few bytes, then waiting
    /// until the client goes away.
    Stall { body: String },
}

fn reply(status: u16, body: Value) -> Answer {
    Answer::Reply { status, headers: vec![], body: body.to_string(), delay: Duration::ZERO }
}

fn reply_with(status: u16, headers: Vec<(&'static str, String)>, body: Value) -> Answer {
    Answer::Reply { status, headers, body: body.to_string(), delay: Duration::ZERO }
}

/// A request the server received.
#[derive(Clone, Debug)]
struct Seen {
    method: String,
    path: String,
    headers: HashMap<String, String>,
    body: Value,
}

struct Server {
    base: String,
    seen: Arc<Mutex<Vec<Seen>>>,
    most_at_once: Arc<AtomicUsize>,
    /// A stalled connection was closed by the client.
    stall_closed: mpsc::UnboundedReceiver<()>,
}

impl Server {
    async fn start(answers: Vec<Answer>) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let seen = Arc::new(Mutex::new(Vec::new()));
        let answers = Arc::new(Mutex::new(VecDeque::from(answers)));
        let now = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let (closed_tx, stall_closed) = mpsc::unbounded_channel();
        let (s, a, m) = (seen.clone(), answers.clone(), most.clone());
        tokio::spawn(async move {
            loop {
                let Ok((sock, _)) = listener.accept().await else { return };
                let (s, a, n, m, c) = (s.clone(), a.clone(), now.clone(), m.clone(), closed_tx.clone());
                tokio::spawn(async move {
                    let at_once = n.fetch_add(1, Ordering::SeqCst) + 1;
                    m.fetch_max(at_once, Ordering::SeqCst);
                    serve(sock, s, a, c).await;
                    n.fetch_sub(1, Ordering::SeqCst);
                });
            }
        });
        Server { base, seen, most_at_once: most, stall_closed }
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    fn count(&self) -> usize {
        self.seen.lock().unwrap().len()
    }
}

async fn serve(
    mut sock: TcpStream,
    seen: Arc<Mutex<Vec<Seen>>>,
    answers: Arc<Mutex<VecDeque<Answer>>>,
    closed: mpsc::UnboundedSender<()>,
) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break p + 4;
        }
        match sock.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let mut first = lines.next().unwrap_or_default().split(' ');
    let (method, path) = (first.next().unwrap_or_default().to_string(), first.next().unwrap_or_default().to_string());
    let headers: HashMap<String, String> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let len: usize = headers.get("content-length").and_then(|v| v.parse().ok()).unwrap_or(0);
    while buf.len() < head_end + len {
        match sock.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    let body = serde_json::from_slice(&buf[head_end..head_end + len]).unwrap_or(Value::Null);
    seen.lock().unwrap().push(Seen { method, path, headers, body });
    let answer = answers
        .lock()
        .unwrap()
        .pop_front()
        .unwrap_or_else(|| reply(500, json!({"error": "the test scripted no answer"})));
    let head = |status: u16, len: usize, extra: &[(&'static str, String)]| {
        let mut h = format!(
            "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {len}\r\nconnection: close\r\n"
        );
        for (k, v) in extra {
            h.push_str(&format!("{k}: {v}\r\n"));
        }
        h + "\r\n"
    };
    match answer {
        Answer::Reply { status, headers, body, delay } => {
            tokio::time::sleep(delay).await;
            let _ = sock.write_all(head(status, body.len(), &headers).as_bytes()).await;
            let _ = sock.write_all(body.as_bytes()).await;
        }
        Answer::CutShort { body } => {
            let _ = sock.write_all(head(200, body.len(), &[]).as_bytes()).await;
            let _ = sock.write_all(&body.as_bytes()[..body.len() / 2]).await;
        }
        Answer::Stall { body } => {
            let _ = sock.write_all(head(200, body.len(), &[]).as_bytes()).await;
            let _ = sock.write_all(&body.as_bytes()[..5]).await;
            let _ = sock.flush().await;
            // Wait for the client to hang up (it reads nothing more).
            let mut rest = [0u8; 64];
            while let Ok(n) = sock.read(&mut rest).await {
                if n == 0 {
                    break;
                }
            }
            let _ = closed.send(());
        }
    }
    let _ = sock.shutdown().await;
}

// ---------------------------------------------------------------- wire bodies

fn anthropic_text(text: &str, input: u64, output: u64) -> Value {
    json!({"id": "msg_01", "type": "message", "role": "assistant", "model": "claude-test",
           "content": [{"type": "text", "text": text}], "stop_reason": "end_turn", "stop_sequence": null,
           "usage": {"input_tokens": input, "output_tokens": output, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0}})
}

fn anthropic_error(kind: &str, message: &str) -> Value {
    json!({"type": "error", "error": {"type": kind, "message": message}, "request_id": "req_1"})
}

fn openai_text(text: &str) -> Value {
    json!({"id": "chatcmpl-1", "object": "chat.completion", "model": "gpt-test",
           "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
           "usage": {"prompt_tokens": 9, "completion_tokens": 4, "total_tokens": 13}})
}

// ---------------------------------------------------------------- config

fn limits() -> CallLimits {
    CallLimits {
        timeout: Duration::from_secs(15),
        retry: RetryPolicy {
            max_retries: 2,
            backoff_base: Duration::from_millis(5),
            backoff_max: Duration::from_millis(20),
            max_retry_after: Duration::from_secs(5),
        },
        ..CallLimits::default()
    }
}

fn alias(provider: ProviderKind, base: &str) -> AliasConfig {
    AliasConfig {
        base_url: Some(base.to_string()),
        key: Some(Secret::new(KEY)),
        max_output_tokens: Some(100),
        ..AliasConfig::new(provider, "model-x")
    }
}

fn teammate(budget: Budget) -> TeammateModels {
    TeammateModels { allow: vec!["m".into()], default: Some("m".into()), budget }
}

fn config(a: AliasConfig) -> LlmConfig {
    LlmConfig {
        aliases: BTreeMap::from([("m".to_string(), a)]),
        teammates: BTreeMap::from([("a".to_string(), teammate(Budget::default()))]),
        limits: limits(),
        ..LlmConfig::default()
    }
}

fn anthropic(server: &Server) -> Models {
    Models::new(config(alias(ProviderKind::Anthropic, &server.base))).unwrap()
}

fn hello() -> ModelRequest {
    ModelRequest { messages: vec![Message::user("hello")], ..ModelRequest::default() }
}

async fn call(models: &Models, req: ModelRequest) -> Result<swarm_host::llm::ModelResponse, LlmError> {
    tokio::time::timeout(PATIENCE, models.complete("a", None, req)).await.expect("the call did not finish in time")
}

fn read_tool() -> Tool {
    Tool {
        name: "read_file".into(),
        description: "Reads a file".into(),
        input_schema: json!({"type": "object", "properties": {"path": {"type": "string"}}, "required": ["path"]}),
    }
}

// ---------------------------------------------------------------- anthropic

#[tokio::test]
async fn anthropic_text_turn_sends_the_wire_format_and_charges_usage() {
    let server = Server::start(vec![reply(200, anthropic_text("hi there", 12, 5))]).await;
    let mut cfg = config(alias(ProviderKind::Anthropic, &server.base));
    cfg.teammates.insert("a".into(), teammate(Budget { tokens: Some(10_000), calls: Some(5), usd: None }));
    let models = Models::new(cfg).unwrap();
    let req = ModelRequest {
        system: Some("be brief".into()),
        temperature: Some(0.3),
        stop_sequences: vec!["STOP".into()],
        max_output_tokens: Some(50),
        ..hello()
    };
    let r = call(&models, req).await.unwrap();
    assert_eq!(r.content, vec![Block::text("hi there")]);
    assert_eq!((r.stop_reason, r.alias.as_str(), r.model.as_str()), (StopReason::EndTurn, "m", "claude-test"));
    assert_eq!(r.usage, Usage { input_tokens: 12, output_tokens: 5, ..Usage::default() });
    assert_eq!(r.budget, BudgetLeft { tokens: Some(10_000 - 17), calls: Some(4), usd: None });

    let seen = server.seen();
    assert_eq!(seen.len(), 1);
    let s = &seen[0];
    assert_eq!((s.method.as_str(), s.path.as_str()), ("POST", "/v1/messages"));
    assert_eq!(s.headers["x-api-key"], KEY);
    assert_eq!(s.headers["anthropic-version"], "2023-06-01");
    assert_eq!(s.headers["content-type"], "application/json");
    assert!(!s.headers.contains_key("authorization"));
    assert_eq!(
        s.body,
        json!({"model": "model-x", "max_tokens": 50, "system": "be brief", "temperature": 0.30000001192092896,
               "stop_sequences": ["STOP"], "messages": [{"role": "user", "content": [{"type": "text", "text": "hello"}]}]})
    );
}

#[tokio::test]
async fn anthropic_2026_version_takes_a_bearer_key_and_never_gets_a_temperature() {
    let server = Server::start(vec![reply(200, anthropic_text("ok", 1, 1))]).await;
    let mut a = alias(ProviderKind::Anthropic, &server.base);
    a.anthropic_version = Some(AnthropicVersion::V2026_10_21);
    let models = Models::new(config(a)).unwrap();
    let err = call(&models, ModelRequest { temperature: Some(0.5), ..hello() }).await.unwrap_err();
    assert!(
        matches!(&err, LlmError::InvalidRequest(t) if t.contains("pinned to anthropic-version 2026-10-21")),
        "{err}"
    );
    assert_eq!(server.count(), 0, "a refused request must not be sent");
    assert_eq!(models.budget_left("a").calls, None);

    call(&models, hello()).await.unwrap();
    let s = &server.seen()[0];
    assert_eq!(s.headers["authorization"], format!("Bearer {KEY}"));
    assert_eq!(s.headers["anthropic-version"], "2026-10-21");
    assert!(!s.headers.contains_key("x-api-key"));
    for field in ["temperature", "top_p", "top_k"] {
        assert!(s.body.get(field).is_none(), "{field} sent");
    }
}

#[tokio::test]
async fn anthropic_parallel_tool_calls_then_results_first_in_the_next_user_message() {
    let tool_turn = json!({"id": "msg_2", "type": "message", "role": "assistant", "model": "claude-test",
        "content": [{"type": "text", "text": "Reading both."},
                    {"type": "tool_use", "id": "toolu_01", "name": "read_file", "input": {"path": "a.txt"}},
                    {"type": "tool_use", "id": "toolu_02", "name": "read_file", "input": {"path": "b.txt"}}],
        "stop_reason": "tool_use", "usage": {"input_tokens": 30, "output_tokens": 20}});
    let server = Server::start(vec![reply(200, tool_turn), reply(200, anthropic_text("done", 60, 2))]).await;
    let models = anthropic(&server);
    let mut req = ModelRequest { tools: vec![read_tool()], tool_choice: Some(ToolChoice::Auto), ..hello() };
    let first = call(&models, req.clone()).await.unwrap();
    assert_eq!(first.stop_reason, StopReason::ToolUse);
    let ids: Vec<String> = first
        .content
        .iter()
        .filter_map(|b| if let Block::ToolCall { id, .. } = b { Some(id.clone()) } else { None })
        .collect();
    assert_eq!(ids, ["toolu_01", "toolu_02"]);
    assert_eq!(
        first.content[1],
        Block::ToolCall { id: "toolu_01".into(), name: "read_file".into(), input: json!({"path": "a.txt"}) }
    );

    // Results after text break Anthropic's rule: refused before sending.
    let mut wrong = req.clone();
    wrong.messages.push(Message { role: Role::Assistant, content: first.content.clone() });
    wrong.messages.push(Message {
        role: Role::User,
        content: vec![
            Block::text("here you go"),
            Block::ToolResult { call_id: "toolu_01".into(), content: "A".into(), is_error: false },
            Block::ToolResult { call_id: "toolu_02".into(), content: "B".into(), is_error: false },
        ],
    });
    let err = call(&models, wrong).await.unwrap_err();
    assert!(err.to_string().contains("messages[2].content[1]: tool results must come first"), "{err}");
    assert_eq!(server.count(), 1);

    req.messages.push(Message { role: Role::Assistant, content: first.content.clone() });
    req.messages.push(Message {
        role: Role::User,
        content: vec![
            Block::ToolResult { call_id: "toolu_01".into(), content: "A".into(), is_error: false },
            Block::ToolResult { call_id: "toolu_02".into(), content: "no such file".into(), is_error: true },
            Block::text("continue"),
        ],
    });
    let second = call(&models, req).await.unwrap();
    assert_eq!(second.content, vec![Block::text("done")]);
    let body = &server.seen()[1].body;
    assert_eq!(body["tool_choice"], json!({"type": "auto"}));
    assert_eq!(body["tools"][0]["input_schema"]["required"], json!(["path"]));
    assert_eq!(
        body["messages"][1]["content"][2],
        json!({"type": "tool_use", "id": "toolu_02", "name": "read_file", "input": {"path": "b.txt"}})
    );
    assert_eq!(
        body["messages"][2]["content"],
        json!([{"type": "tool_result", "tool_use_id": "toolu_01", "content": "A"},
               {"type": "tool_result", "tool_use_id": "toolu_02", "content": "no such file", "is_error": true},
               {"type": "text", "text": "continue"}])
    );
}

// ---------------------------------------------------------------- openai

#[tokio::test]
async fn openai_compatible_sends_bearer_and_accepts_object_arguments_and_missing_ids() {
    let deviant = json!({"id": "x", "model": "qwen-local", "choices": [{"index": 0, "finish_reason": "tool_calls",
        "message": {"role": "assistant", "content": null, "tool_calls": [
            {"type": "function", "function": {"name": "read_file", "arguments": {"path": "a.txt"}}},
            {"id": "call_b", "type": "function", "function": {"name": "read_file", "arguments": "{\"path\":\"b.txt\"}"}}]}}],
        "usage": {"prompt_tokens": 20, "completion_tokens": 8, "total_tokens": 28}});
    let server = Server::start(vec![reply(200, deviant), reply(200, openai_text("fine"))]).await;
    let models = Models::new(config(alias(ProviderKind::OpenAi, &format!("{}/v1", server.base)))).unwrap();
    let mut req = ModelRequest {
        system: Some("sys".into()),
        tools: vec![read_tool()],
        tool_choice: Some(ToolChoice::Any),
        ..hello()
    };
    let r = call(&models, req.clone()).await.unwrap();
    assert_eq!(r.stop_reason, StopReason::ToolUse);
    assert_eq!(
        r.content,
        vec![
            Block::ToolCall { id: "call_0".into(), name: "read_file".into(), input: json!({"path": "a.txt"}) },
            Block::ToolCall { id: "call_b".into(), name: "read_file".into(), input: json!({"path": "b.txt"}) },
        ]
    );
    assert_eq!(r.usage.total(), 28);

    req.messages.push(Message { role: Role::Assistant, content: r.content.clone() });
    req.messages.push(Message {
        role: Role::User,
        content: vec![
            Block::ToolResult { call_id: "call_0".into(), content: "A".into(), is_error: false },
            Block::ToolResult { call_id: "call_b".into(), content: "missing".into(), is_error: true },
        ],
    });
    assert_eq!(call(&models, req).await.unwrap().content, vec![Block::text("fine")]);

    let seen = server.seen();
    let s = &seen[0];
    assert_eq!((s.method.as_str(), s.path.as_str()), ("POST", "/v1/chat/completions"));
    assert_eq!(s.headers["authorization"], format!("Bearer {KEY}"));
    assert!(!s.headers.contains_key("x-api-key"));
    assert_eq!(s.body["max_tokens"], 100);
    assert_eq!(s.body["tool_choice"], "required");
    assert_eq!(s.body["messages"][0], json!({"role": "system", "content": "sys"}));
    assert_eq!(s.body["tools"][0]["function"]["name"], "read_file");
    let msgs = &seen[1].body["messages"];
    assert_eq!(msgs[2]["tool_calls"][0]["function"]["arguments"], "{\"path\":\"a.txt\"}");
    assert_eq!(msgs[3], json!({"role": "tool", "tool_call_id": "call_0", "content": "A"}));
    assert_eq!(msgs[4], json!({"role": "tool", "tool_call_id": "call_b", "content": "[tool error] missing"}));
}

#[tokio::test]
async fn openai_quota_429_is_never_retried_and_a_local_server_gets_no_key() {
    let quota = json!({"error": {"message": "You exceeded your current quota", "type": "insufficient_quota", "code": "insufficient_quota"}});
    let server = Server::start(vec![reply(429, quota), reply(200, openai_text("local"))]).await;
    let models = Models::new(config(alias(ProviderKind::OpenAi, &server.base))).unwrap();
    let err = call(&models, hello()).await.unwrap_err();
    assert!(matches!(&err, LlmError::Provider(t) if t.contains("spend limit or quota reached")), "{err}");
    assert_eq!(server.count(), 1);

    let mut a = alias(ProviderKind::OpenAi, &server.base);
    a.key = None;
    let models = Models::new(config(a)).unwrap();
    call(&models, hello()).await.unwrap();
    assert!(!server.seen()[1].headers.contains_key("authorization"));
    assert_eq!(server.seen()[1].path, "/chat/completions");
}

// ---------------------------------------------------------------- errors and retries

#[tokio::test]
async fn a_429_with_retry_after_is_waited_out_then_retried() {
    let limited = reply_with(429, vec![("retry-after", "1".into())], anthropic_error("rate_limit_error", "slow down"));
    let server = Server::start(vec![limited, reply(200, anthropic_text("ok", 1, 1))]).await;
    let models = anthropic(&server);
    let started = Instant::now();
    call(&models, hello()).await.unwrap();
    let waited = started.elapsed();
    assert_eq!(server.count(), 2);
    assert!(waited >= Duration::from_secs(1), "retried after {waited:?}, before the 1 s retry-after");
    assert!(waited < Duration::from_secs(10), "took {waited:?}");
}

#[tokio::test]
async fn rate_limited_overloaded_and_5xx_are_retried_at_most_max_retries_times() {
    let rate = || reply_with(429, vec![("retry-after", "0".into())], anthropic_error("rate_limit_error", "slow"));
    let server = Server::start(vec![rate(), rate(), rate()]).await;
    let err = call(&anthropic(&server), hello()).await.unwrap_err();
    assert_eq!(err, LlmError::RateLimited { retry_after_ms: Some(0) });
    assert_eq!(server.count(), 3, "one attempt and max_retries = 2 retries");

    let over = || reply(529, anthropic_error("overloaded_error", "Overloaded"));
    let server = Server::start(vec![over(), over(), over()]).await;
    assert_eq!(call(&anthropic(&server), hello()).await.unwrap_err(), LlmError::Overloaded);
    assert_eq!(server.count(), 3);

    let server =
        Server::start(vec![reply(500, anthropic_error("api_error", "oops")), reply(200, anthropic_text("ok", 1, 1))])
            .await;
    call(&anthropic(&server), hello()).await.unwrap();
    assert_eq!(server.count(), 2);

    let server = Server::start(vec![
        reply(503, json!("x")),
        reply(502, json!("x")),
        reply(500, anthropic_error("api_error", "still down")),
    ])
    .await;
    let err = call(&anthropic(&server), hello()).await.unwrap_err();
    assert!(
        matches!(&err, LlmError::Provider(t) if t.contains("anthropic failed (500 api_error): still down")),
        "{err}"
    );
    assert_eq!(server.count(), 3);
}

#[tokio::test]
async fn spend_cap_429_400_401_and_403_are_never_retried() {
    let spend = json!({"type": "error", "error": {"type": "rate_limit_error", "message": "spend limit reached",
        "details": {"error_code": "enforced_spend_limit_reached"}}});
    let server = Server::start(vec![reply(429, spend)]).await;
    let err = call(&anthropic(&server), hello()).await.unwrap_err();
    assert!(matches!(&err, LlmError::Provider(t) if t.contains("spend limit or quota reached")), "{err}");
    assert_eq!(server.count(), 1);

    let server =
        Server::start(vec![reply(400, anthropic_error("invalid_request_error", "messages: roles must alternate"))])
            .await;
    let err = call(&anthropic(&server), hello()).await.unwrap_err();
    assert!(
        matches!(&err, LlmError::InvalidRequest(t) if t.contains("(400 invalid_request_error): messages: roles must alternate")),
        "{err}"
    );
    assert_eq!(server.count(), 1);

    for (status, kind) in [(401, "authentication_error"), (403, "permission_error")] {
        let echo = anthropic_error(kind, &format!("invalid x-api-key {KEY}"));
        let server = Server::start(vec![reply(status, echo)]).await;
        let err = call(&anthropic(&server), hello()).await.unwrap_err();
        let text = err.to_string();
        assert!(text.contains(&format!("({status} {kind})")), "{text}");
        assert!(!text.contains(KEY) && text.contains("[redacted]"), "the echoed key must be redacted: {text}");
        assert_eq!(server.count(), 1);
    }
}

#[tokio::test]
async fn malformed_json_cut_short_and_oversized_bodies_are_named_errors() {
    let server = Server::start(vec![Answer::Reply {
        status: 200,
        headers: vec![],
        body: "{\"id\": \"msg\", \"content\": [".into(),
        delay: Duration::ZERO,
    }])
    .await;
    let err = call(&anthropic(&server), hello()).await.unwrap_err();
    assert!(matches!(&err, LlmError::Provider(t) if t.contains("anthropic sent a malformed response")), "{err}");
    assert_eq!(server.count(), 1, "a malformed answer is not retried");

    let cut = || Answer::CutShort { body: anthropic_text("this answer is cut in half", 1, 1).to_string() };
    let server = Server::start(vec![cut(), cut(), cut()]).await;
    let err = call(&anthropic(&server), hello()).await.unwrap_err();
    assert!(matches!(&err, LlmError::Provider(t) if t.contains("response was cut short")), "{err}");
    assert_eq!(server.count(), 3, "a body cut short is retried like a dropped connection");

    let server = Server::start(vec![reply(200, anthropic_text(&"x".repeat(5000), 1, 1))]).await;
    let mut cfg = config(alias(ProviderKind::Anthropic, &server.base));
    cfg.limits.max_response_bytes = 1000;
    let err = call(&Models::new(cfg).unwrap(), hello()).await.unwrap_err();
    assert!(err.to_string().contains("larger than the cap of 1000 bytes (limits.max_response_bytes)"), "{err}");
}

#[tokio::test]
async fn a_slow_body_times_out_and_the_connection_is_dropped() {
    let mut server =
        Server::start(vec![Answer::Stall { body: anthropic_text("never finished", 1, 1).to_string() }]).await;
    let mut cfg = config(alias(ProviderKind::Anthropic, &server.base));
    cfg.limits.timeout = Duration::from_millis(500);
    let models = Models::new(cfg).unwrap();
    let started = Instant::now();
    let err = call(&models, hello()).await.unwrap_err();
    assert_eq!(err, LlmError::Timeout(500));
    assert!(started.elapsed() >= Duration::from_millis(500) && started.elapsed() < Duration::from_secs(10));
    tokio::time::timeout(PATIENCE, server.stall_closed.recv())
        .await
        .expect("the host kept the stalled connection open");
    assert_eq!(models.budget_left("a").calls, None);
}

#[tokio::test]
async fn dropping_the_call_cancels_it_and_releases_the_reservation() {
    let mut server = Server::start(vec![Answer::Stall { body: anthropic_text("never", 1, 1).to_string() }]).await;
    let mut cfg = config(alias(ProviderKind::Anthropic, &server.base));
    cfg.teammates.insert("a".into(), teammate(Budget { tokens: Some(1000), calls: Some(3), usd: None }));
    let models = Arc::new(Models::new(cfg).unwrap());
    let m = models.clone();
    let task = tokio::spawn(async move { m.complete("a", None, hello()).await });
    // Wait until the request reached the server, then drop the call.
    let deadline = Instant::now() + PATIENCE;
    while server.count() == 0 {
        assert!(Instant::now() < deadline, "the request never arrived");
        tokio::task::yield_now().await;
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(models.budget_left("a").tokens < Some(1000), "the call holds a reservation");
    task.abort();
    tokio::time::timeout(PATIENCE, server.stall_closed.recv()).await.expect("the cancelled call kept its connection");
    // The call was sent, so it counts; its token reservation is released.
    assert_eq!(models.budget_left("a"), BudgetLeft { tokens: Some(1000), calls: Some(2), usd: None });
}

// ---------------------------------------------------------------- budgets and concurrency

#[tokio::test]
async fn budgets_refuse_before_sending_and_nothing_leaves_after_exhaustion() {
    let server =
        Server::start(vec![reply(200, anthropic_text("a", 100, 40)), reply(200, anthropic_text("b", 100, 40))]).await;
    let mut a = alias(ProviderKind::Anthropic, &server.base);
    a.price = Some(Price { input_per_mtok: 3.0, output_per_mtok: 15.0 });
    let mut cfg = config(a);
    // The request "hello" is ~110 canonical bytes, so its worst case is
    // about 28 input + 100 output tokens.
    cfg.teammates.insert("a".into(), teammate(Budget { tokens: Some(300), calls: None, usd: Some(1.0) }));
    cfg.teammates.insert("b".into(), teammate(Budget::default()));
    cfg.team_budget = Budget { tokens: None, calls: Some(2), usd: None };
    let models = Models::new(cfg).unwrap();

    let r = call(&models, hello()).await.unwrap();
    assert_eq!(r.budget.tokens, Some(160));
    let usd = r.budget.usd.unwrap();
    assert!((usd - (1.0 - (100.0 * 3.0 + 40.0 * 15.0) / 1e6)).abs() < 1e-9, "{usd}");
    assert_eq!(r.budget.calls, Some(1), "the team's calls budget is the binding one");

    // 160 tokens left: a request of ~520 canonical bytes (~130 input
    // tokens) plus its 100-token output cap does not fit.
    let long = ModelRequest { messages: vec![Message::user("y".repeat(400))], ..ModelRequest::default() };
    let err = call(&models, long).await.unwrap_err();
    match &err {
        LlmError::BudgetExhausted { reason, left } => {
            assert!(reason.contains("teammate 'a' tokens budget (300) has 160 left"), "{reason}");
            assert_eq!(left.tokens, Some(160));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(server.count(), 1, "a refused call is not sent");

    // Teammate b uses the team's last call; then nothing leaves for anyone.
    let b = tokio::time::timeout(PATIENCE, models.complete("b", None, hello())).await.unwrap().unwrap();
    assert_eq!(b.budget.calls, Some(0));
    for who in ["a", "b"] {
        let err = tokio::time::timeout(PATIENCE, models.complete(who, None, hello())).await.unwrap().unwrap_err();
        assert!(err.to_string().contains("team calls budget (2) is used up"), "{err}");
    }
    assert_eq!(server.count(), 2);
}

#[tokio::test]
async fn at_most_the_provider_concurrency_is_in_flight() {
    let slow = || Answer::Reply {
        status: 200,
        headers: vec![],
        body: anthropic_text("ok", 1, 1).to_string(),
        delay: Duration::from_millis(150),
    };
    let server = Server::start((0..6).map(|_| slow()).collect()).await;
    let mut cfg = config(alias(ProviderKind::Anthropic, &server.base));
    cfg.limits.concurrency_per_provider = 2;
    let models = Arc::new(Models::new(cfg).unwrap());
    let calls: Vec<_> = (0..6)
        .map(|_| {
            let m = models.clone();
            tokio::spawn(async move { m.complete("a", None, hello()).await })
        })
        .collect();
    for c in calls {
        tokio::time::timeout(PATIENCE, c).await.unwrap().unwrap().unwrap();
    }
    assert_eq!(server.count(), 6);
    assert_eq!(server.most_at_once.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn aliases_are_checked_against_the_allow_list() {
    let server = Server::start(vec![]).await;
    let models = anthropic(&server);
    let err = models.complete("a", Some("other"), hello()).await.unwrap_err();
    assert_eq!(err, LlmError::ModelNotAllowed("alias 'other' is not on teammate 'a''s allow-list (allowed: m)".into()));
    let err = models.complete("zed", None, hello()).await.unwrap_err();
    assert_eq!(err, LlmError::ModelNotAllowed("teammate 'zed' has no model allow-list".into()));
    let err = models.complete("a", None, ModelRequest { max_output_tokens: Some(101), ..hello() }).await.unwrap_err();
    assert!(err.to_string().contains("max_output_tokens 101 is more than alias 'm' allows (100)"), "{err}");
    let mut cfg = config(alias(ProviderKind::Anthropic, &server.base));
    cfg.limits.max_request_bytes = 50;
    let err = Models::new(cfg).unwrap().complete("a", None, hello()).await.unwrap_err();
    assert!(err.to_string().contains("more than the cap of 50 (limits.max_request_bytes)"), "{err}");
    assert_eq!(server.count(), 0);

    let mut cfg = config(alias(ProviderKind::Anthropic, &server.base));
    cfg.teammates.insert("c".into(), TeammateModels { allow: vec!["nope".into()], ..TeammateModels::default() });
    let err = Models::new(cfg).unwrap_err();
    assert_eq!(err.to_string(), "model configuration: teammate 'c' allows alias 'nope', which is not defined");
    let mut cfg = config(alias(ProviderKind::Anthropic, &server.base));
    cfg.team_budget.usd = Some(5.0);
    let err = Models::new(cfg).unwrap_err();
    assert!(err.to_string().contains("alias 'm' has no price, but a usd budget applies"), "{err}");
}

// ---------------------------------------------------------------- record, replay, keys

#[tokio::test]
async fn record_then_replay_with_no_network_and_a_miss_names_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(vec![
        reply(200, anthropic_text("first", 3, 2)),
        reply(429, anthropic_error("rate_limit_error", "slow")),
        reply(429, anthropic_error("rate_limit_error", "slow")),
        reply(429, anthropic_error("rate_limit_error", "slow")),
    ])
    .await;
    let mut cfg = config(alias(ProviderKind::Anthropic, &server.base));
    cfg.mode = Mode::Record(dir.path().join("cassettes"));
    let recorder = Models::new(cfg).unwrap();
    let first = call(&recorder, hello()).await.unwrap();
    let second = ModelRequest { messages: vec![Message::user("again")], ..ModelRequest::default() };
    let limited = call(&recorder, second.clone()).await.unwrap_err();
    assert!(matches!(limited, LlmError::RateLimited { .. }));
    drop(recorder);
    drop(server);

    let file = dir.path().join("cassettes").join("a.jsonl");
    let text = std::fs::read_to_string(&file).unwrap();
    assert_eq!(text.lines().count(), 2);
    assert!(!text.contains(KEY), "the key is in the cassette");
    assert!(
        !text.contains("127.0.0.1") && !text.contains("x-api-key") && !text.contains("anthropic-version"),
        "{text}"
    );
    let line: Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    assert_eq!(line["seq"], 0);
    assert_eq!(line["fingerprint"].as_str().unwrap().len(), 64);
    assert_eq!(line["request"]["request"]["messages"][0]["content"][0]["text"], "hello");

    // Replay: the alias points at a port nothing listens on any more.
    let mut cfg = config(alias(ProviderKind::Anthropic, "http://127.0.0.1:9"));
    cfg.mode = Mode::Replay(dir.path().join("cassettes"));
    let replayer = Models::new(cfg).unwrap();
    let again = call(&replayer, hello()).await.unwrap();
    assert_eq!((again.content, again.usage), (first.content, first.usage));
    assert_eq!(call(&replayer, second).await.unwrap_err(), limited);
    let err = call(&replayer, hello()).await.unwrap_err();
    assert_eq!(err, LlmError::ReplayMiss("a.jsonl has no unused entry left (2 recorded)".into()));

    let mut cfg = config(alias(ProviderKind::Anthropic, "http://127.0.0.1:9"));
    cfg.mode = Mode::Replay(dir.path().join("cassettes"));
    let replayer = Models::new(cfg).unwrap();
    let err = call(&replayer, ModelRequest { messages: vec![Message::user("hellO")], ..ModelRequest::default() })
        .await
        .unwrap_err();
    assert_eq!(
        err,
        LlmError::ReplayMiss(
            "a.jsonl entry 0 differs at request.messages[0].content[0].text: recorded \"hello\", got \"hellO\"".into()
        )
    );
}

#[tokio::test]
async fn the_key_never_appears_in_debug_output_or_errors() {
    let server =
        Server::start(vec![reply(401, anthropic_error("authentication_error", &format!("bad key {KEY}")))]).await;
    let cfg = config(alias(ProviderKind::Anthropic, &server.base));
    let debug_cfg = format!("{cfg:?} {cfg:#?}");
    assert!(!debug_cfg.contains(KEY) && debug_cfg.contains("[redacted]"), "{debug_cfg}");
    let models = Models::new(cfg).unwrap();
    assert!(!format!("{models:?}").contains(KEY));
    let err = call(&models, hello()).await.unwrap_err();
    for text in [err.to_string(), format!("{err:?}"), serde_json::to_string(&err).unwrap()] {
        assert!(!text.contains(KEY), "{text}");
        assert!(!text.contains(&server.base), "the provider URL reached a teammate-visible error: {text}");
    }

    // Connection refused: the error names neither the URL nor the key.
    let mut cfg = config(alias(ProviderKind::Anthropic, "http://127.0.0.1:9"));
    cfg.limits.retry.max_retries = 0;
    let err = call(&Models::new(cfg).unwrap(), hello()).await.unwrap_err();
    assert_eq!(err, LlmError::Provider("could not connect to anthropic".into()));
}

#[tokio::test]
async fn the_scripted_provider_answers_from_its_file_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("script.json");
    std::fs::write(
        &script,
        json!({"steps": [{"expect": {"tools": ["read_file"]},
                          "reply": {"content": [{"type": "tool_call", "id": "c1", "name": "read_file", "input": {"path": "a"}}],
                                    "stop_reason": "tool_use", "usage": {"input_tokens": 5, "output_tokens": 5}}}]})
        .to_string(),
    )
    .unwrap();
    let models = Models::new(config(AliasConfig::new(ProviderKind::Scripted(script), "demo"))).unwrap();
    let r = call(&models, ModelRequest { tools: vec![read_tool()], ..hello() }).await.unwrap();
    assert_eq!((r.model.as_str(), r.id.as_str(), r.stop_reason), ("scripted:demo", "scripted-0", StopReason::ToolUse));
    let err = call(&models, hello()).await.unwrap_err();
    assert!(err.to_string().contains("scripted provider (script.json): no step left for teammate 'a'"), "{err}");

    let err = Models::new(config(AliasConfig::new(ProviderKind::Scripted(dir.path().join("missing.json")), "demo")))
        .unwrap_err();
    assert!(err.to_string().contains("alias 'm': cannot read scripted provider file missing.json"), "{err}");
}

// ---------------------------------------------------------------- optional real server

/// Runs one text call against a real server when `SWARM_LLM_TEST_BASE_URL`
/// and `SWARM_LLM_TEST_MODEL` are set (`SWARM_LLM_TEST_PROVIDER` =
/// `openai` (default) or `anthropic`; `SWARM_LLM_TEST_KEY` if it needs one),
/// e.g. a local Ollama at `http://localhost:11434/v1`. Skipped otherwise,
/// and says so.
#[tokio::test]
async fn real_server_when_configured() {
    let (Ok(base), Ok(model)) = (std::env::var("SWARM_LLM_TEST_BASE_URL"), std::env::var("SWARM_LLM_TEST_MODEL"))
    else {
        eprintln!(
            "real_server_when_configured: SKIPPED (set SWARM_LLM_TEST_BASE_URL and SWARM_LLM_TEST_MODEL to run it)"
        );
        return;
    };
    let provider = match std::env::var("SWARM_LLM_TEST_PROVIDER").as_deref() {
        Ok("anthropic") => ProviderKind::Anthropic,
        _ => ProviderKind::OpenAi,
    };
    let a = AliasConfig {
        base_url: Some(base),
        key: std::env::var("SWARM_LLM_TEST_KEY").ok().map(Secret::new),
        max_output_tokens: Some(64),
        ..AliasConfig::new(provider, model)
    };
    let mut cfg = config(a);
    cfg.limits.timeout = Duration::from_secs(120);
    let models = Models::new(cfg).unwrap();
    let r = models
        .complete(
            "a",
            None,
            ModelRequest {
                messages: vec![Message::user("Reply with the single word: pong")],
                ..ModelRequest::default()
            },
        )
        .await
        .unwrap();
    eprintln!("real_server_when_configured: {:?} {:?} {:?}", r.content, r.stop_reason, r.usage);
    assert!(!r.content.is_empty());
    assert!(r.usage.output_tokens > 0);
}

#[tokio::test]
async fn a_cassette_that_cannot_be_written_fails_the_call_after_charging_it() {
    let dir = tempfile::tempdir().unwrap();
    let not_a_dir = dir.path().join("file");
    std::fs::write(&not_a_dir, "").unwrap();
    let server = Server::start(vec![reply(200, anthropic_text("paid for", 10, 5))]).await;
    let mut cfg = config(alias(ProviderKind::Anthropic, &server.base));
    cfg.teammates.insert("a".into(), teammate(Budget { tokens: Some(1000), calls: None, usd: None }));
    cfg.mode = Mode::Record(not_a_dir.join("cassettes"));
    let models = Models::new(cfg).unwrap();
    let err = call(&models, hello()).await.unwrap_err();
    assert!(matches!(&err, LlmError::Provider(t) if t.contains("the host cannot write the cassette")), "{err}");
    assert_eq!(models.budget_left("a").tokens, Some(1000 - 15), "the answered call's usage is charged");
}
